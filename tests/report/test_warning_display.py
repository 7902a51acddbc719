"""A warning looks like a warning: a ``:power`` outcome (the data cannot detect a gap as
small as the rule's limit) cannot block under ``--fail-on deny``, so no output shows it as
a failure or counts it as one, and its "observed" column holds no detectable gap."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import guardrail.report as report
from guardrail.cli import verdict_table
from guardrail.core.types import (
    AuditResult,
    AuditStatus,
    Interval,
    MetricResult,
    Provenance,
    RunRecord,
    Severity,
)
from guardrail.policy.engine import Policy, evaluate
from guardrail.spec.models import PolicySpec, RuleSpec
from tests.cli.test_exit_codes import _folder
from tests.conftest import run_cli

SCOPES = ("sex", "race")


def _record() -> RunRecord:
    """A deny rule `le 0.1` on the worse bound, inconclusive in each of two scopes, and
    each scope too small to detect a gap of 0.1: two blockers inconclusive, two warnings."""
    rule = RuleSpec(id="DP", metric="f.dp", op="le", threshold=0.1, on="worst", rationale="Selection rates must be close.")
    policy = Policy(PolicySpec(schema_version=1, kind="policy", name="p", rules=(rule,)), "p.yaml", "0")
    metrics = tuple(
        MetricResult(
            "f.dp",
            0.05,
            scope=scope,
            ci=Interval(0.0, 0.3),
            details={
                "detectable_gap": 0.3,
                "detectable_gap_basis": {"groups": ["a", "b"], "n": [10, 12]},
                "aggregation": "difference",
            },
        )
        for scope in SCOPES
    )
    result = AuditResult("fairness", "fairness", AuditStatus.OK, metrics)
    provenance = Provenance("0", "3.11", "linux", {}, {}, (), "guardrail audit x.yaml")
    verdict = evaluate([policy], [result])
    return RunRecord("id", "n", "t0", "t1", "x.yaml", "0", {}, (result,), verdict, provenance)


def _power_ids(record: RunRecord) -> list[str]:
    return [o.rule_id for o in record.verdict.outcomes if o.rule_id.endswith(":power")]


def _tiers(page: str) -> dict[str, str]:
    """The findings of each tier (``fail``, ``warning``, ...): its heading and rules."""
    return dict(re.findall(r'<section class="tier tier-(\w+)"[^>]*>(.*?)</section>', page, flags=re.S))


def _html_findings(tier: str, rule_id: str) -> list[str]:
    """The finding sentences of ``rule_id`` in one tier's HTML."""
    blocks = re.findall(r'<div class="rule-findings">(.*?)</div>', tier, flags=re.S)
    return [li for block in blocks if f"<code>{rule_id}</code>" in block.replace("<wbr>", "") for li in re.findall(r"<li[^>]*>(.*?)</li>", block, re.S)]


def _cli_rows(table: str, rule_id: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines() if line.split()[:1] == [rule_id]]


def test_the_engine_makes_power_outcomes_warnings_with_nothing_observed() -> None:
    record = _record()
    statuses = sorted((o.rule_id, o.metric, o.status.value, o.severity.value) for o in record.verdict.outcomes)
    assert statuses == [
        ("DP", "f.dp[race]", "inconclusive", "deny"),
        ("DP", "f.dp[sex]", "inconclusive", "deny"),
        ("DP:power", "f.dp[race]", "fail", "warn"),
        ("DP:power", "f.dp[sex]", "fail", "warn"),
    ]
    for outcome in record.verdict.outcomes:
        if outcome.rule_id.endswith(":power"):
            # 0.3 is the smallest detectable gap, a property of the sample sizes, not an observation
            assert outcome.observed is None
            assert "0.3" in outcome.message
    assert record.judged().counts == (("inconclusive", 2), ("warning", 2))


def test_html_shows_power_outcomes_as_warnings_and_counts_no_failure() -> None:
    page = report.render(_record(), "html")
    tiers = _tiers(page)
    assert list(tiers) == ["inconclusive", "warning"], "no tier of failures"
    rows = _html_findings(tiers["warning"], "DP:power")
    assert len(rows) == 2
    for row in rows:
        assert "smallest detectable gap" in row and "cannot detect" in row, "a detectable gap, never an observation"
    assert 'class="badge st-warning">warning</span> 2' in tiers["warning"]
    assert 'class="badge st-inconclusive">inconclusive</span> 2' in tiers["inconclusive"]
    assert 'class="badge st-fail"' not in page
    # the notebook view of the verdict alone shows the same counts
    fragment = _record().verdict._repr_html_()
    assert "st-warning" in fragment and "badge st-fail" not in fragment


def test_markdown_card_and_cli_table_say_warning() -> None:
    record = _record()
    markdown = report.render(record, "markdown")
    power_lines = [line for line in markdown.splitlines() if "| DP:power |" in line]
    assert len(power_lines) == 2
    assert all(line.startswith("| ⚠️ warning") for line in power_lines), power_lines
    assert "⚠️ warning: 2" in markdown and "fail:" not in markdown and "❌" not in markdown.split("\n", 1)[1]
    card = json.loads(report.render(record, "card-json"))
    assert sorted(o["status"] for o in card["evaluation"]["outcomes"]) == ["inconclusive", "inconclusive", "warning", "warning"]
    table = verdict_table(record, record.exit_code(), Severity.DENY)
    assert [row[2] for row in _cli_rows(table, "DP:power")] == ["warning", "warning"]
    assert table.splitlines()[-1].strip() == "2 inconclusive, 2 warning"


def test_junit_keeps_warnings_out_of_the_failures() -> None:
    root = ET.fromstring(report.render(_record(), "junit").encode("utf-8"))
    (suite,) = root.findall("testsuite")
    assert (suite.get("failures"), suite.get("errors")) == ("2", "0")  # the two inconclusive blockers
    power = [c for c in suite.iter("testcase") if c.get("name", "").startswith("DP:power ")]
    assert len(power) == 2
    for case in power:
        assert case.find("failure") is None and case.find("error") is None
        out = case.findtext("system-out") or ""
        assert "not blocking" in out and "observed: —" in out


def test_fail_on_warn_makes_power_warnings_block_as_failures() -> None:
    record = _record()
    # under deny they are warnings ...
    assert [row[2] for row in _cli_rows(verdict_table(record, record.exit_code(), Severity.DENY), "DP:power")] == ["warning"] * 2
    # ... under warn they block, and say so everywhere
    assert int(record.exit_code(Severity.WARN)) == 1
    assert record.judged(Severity.WARN).counts == (("fail", 2), ("inconclusive", 2))
    page = report.render(record, "html", fail_on=Severity.WARN)
    tiers = _tiers(page)
    assert list(tiers) == ["fail", "inconclusive"], "the power checks block: no warnings left"
    assert len(_html_findings(tiers["fail"], "DP:power")) == 2
    assert 'class="badge st-fail">fail</span> 2' in tiers["fail"]
    markdown = report.render(record, "markdown", fail_on=Severity.WARN)
    assert all(line.startswith("| ❌ fail |") for line in markdown.splitlines() if "| DP:power |" in line)
    table = verdict_table(record, record.exit_code(Severity.WARN), Severity.WARN)
    assert [row[2] for row in _cli_rows(table, "DP:power")] == ["fail", "fail"]
    root = ET.fromstring(report.render(record, "junit", fail_on=Severity.WARN).encode("utf-8"))
    assert root.findall("testsuite")[0].get("failures") == "4"


def test_the_cli_prints_a_power_warning_as_a_warning(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.1)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy.read_text() + "    on: worst\n")  # 4 rows a group: the interval straddles 0.1
    done = run_cli("audit", spec)
    assert done.returncode == 1, done.stdout + done.stderr
    assert [row[2] for row in _cli_rows(done.stdout, "DP:power")] == ["warning"], done.stdout
    assert [row[2] for row in _cli_rows(done.stdout, "DP")] == ["inconclusive"], done.stdout
    assert "1 inconclusive, 1 warning" in done.stdout and " fail" not in done.stdout.split("\n", 1)[1]
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    (power,) = [o for o in record["verdict"]["outcomes"] if o["rule_id"] == "DP:power"]
    assert power["status"] == "fail" and power["severity"] == "warn" and power["observed"] is None
    blocked = run_cli("audit", spec, "--fail-on", "warn")
    assert [row[2] for row in _cli_rows(blocked.stdout, "DP:power")] == ["fail"], blocked.stdout
