"""A run in which no rule was checked is incomplete (exit 2), never a pass; ``--no-gate``
(``audit(..., gate=False)``) measures without a gate, and every output then says so."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import guardrail
from tests.cli.test_exit_codes import _folder
from tests.conftest import run_cli

SKIPPED_POLICY = """\
schema_version: 1
kind: policy
name: calibration
rules:
  - id: CAL
    metric: fairness.ece
    op: le
    threshold: 0.1
    on_missing: skip
    rationale: Scores must be calibrated in every group (only answerable when the model gives scores).
"""


def _without_policies(tmp_path: Path) -> Path:
    """The tiny spec of the exit-code tests, with no `policies:` at all."""
    spec = _folder(tmp_path)
    text = spec.read_text()
    assert "policies: [policy.yaml]\n" in text
    spec.write_text(text.replace("policies: [policy.yaml]\n", ""))
    return spec


def _verdict_word(page: str) -> str:
    (word,) = re.findall(r'<span class="word">([^<]*)</span>', page)
    return str(word)


def _gate_case(out: Path) -> ET.Element:
    root = ET.fromstring((out / "junit.xml").read_bytes())
    (case,) = [c for c in root.iter("testcase") if c.get("name") == "policy gate"]
    return case


def test_a_spec_without_policies_is_incomplete_not_a_pass(tmp_path: Path) -> None:
    done = run_cli("audit", _without_policies(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("t: INCOMPLETE (exit 2): ") and "No policy was applied" in first, first
    out = tmp_path / "out"
    assert json.loads((out / "run.json").read_text())["gated"] is True
    page = (out / "report.html").read_text()
    assert _verdict_word(page) == "INCOMPLETE"
    assert 'class="verdict verdict-pass"' not in page
    assert "No policy was applied" in page
    assert (out / "summary.md").read_text().splitlines()[0].endswith("— INCOMPLETE")
    error = _gate_case(out).find("error")
    assert error is not None and "No policy was applied" in (error.get("message") or "")


def test_no_gate_measures_and_every_output_says_no_gate_was_applied(tmp_path: Path) -> None:
    done = run_cli("audit", _without_policies(tmp_path), "--no-gate")
    assert done.returncode == 0, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("t: NO GATE (exit 0): No gate was applied"), first
    assert "PASS" not in done.stdout
    out = tmp_path / "out"
    assert json.loads((out / "run.json").read_text())["gated"] is False
    page = (out / "report.html").read_text()
    assert _verdict_word(page) == "NO GATE"
    assert 'class="verdict verdict-neutral"' in page and 'class="verdict verdict-pass"' not in page
    assert "No gate was applied" in page
    summary = (out / "summary.md").read_text()
    assert summary.splitlines()[0].endswith("— NO GATE") and "No gate was applied" in summary
    gate = _gate_case(out)
    assert gate.find("skipped") is not None and gate.find("error") is None and gate.find("failure") is None


def test_history_tells_an_ungated_run_from_a_pass(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.3)  # DP difference 0.25 ≤ 0.3: the one deny rule passes
    assert run_cli("audit", spec, "--quiet").returncode == 0
    ungated = run_cli("audit", spec, "--quiet", "--no-gate")
    assert ungated.returncode == 0, ungated.stderr
    shown = run_cli("history", tmp_path / "out")
    assert shown.returncode == 0, shown.stderr
    newest, older = shown.stdout.splitlines()[1:3]  # newest first, below the header
    assert " NO GATE " in newest and "PASS" not in newest, shown.stdout
    assert " PASS " in older, shown.stdout


def test_every_rule_skipped_is_incomplete(tmp_path: Path) -> None:
    spec = _folder(tmp_path)
    # the predictions adapter gives no scores, so the fairness auditor produces no fairness.ece
    (tmp_path / "policy.yaml").write_text(SKIPPED_POLICY)
    done = run_cli("audit", spec)
    assert done.returncode == 2, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("t: INCOMPLETE (exit 2): Every rule was skipped"), first
    (outcome,) = json.loads((tmp_path / "out" / "run.json").read_text())["verdict"]["outcomes"]
    assert outcome["status"] == "skipped"


def test_the_python_api_audits_with_and_without_a_gate(tmp_path: Path) -> None:
    spec = _without_policies(tmp_path)
    gated = guardrail.audit(spec, write=False, history=False)
    assert (gated.judged().word, int(gated.exit_code())) == ("INCOMPLETE", 2)
    ungated = guardrail.audit(spec, write=False, history=False, gate=False)
    assert ungated.gated is False
    assert (ungated.judged().word, int(ungated.exit_code())) == ("NO GATE", 0)


def test_audit_fairness_in_a_notebook_is_neutral_not_a_pass() -> None:
    result = guardrail.audit_fairness(
        [1, 0, 1, 0, 1, 0, 1, 0],
        [1, 1, 0, 0, 1, 0, 0, 0],
        sensitive_features=["a"] * 4 + ["b"] * 4,
        min_group_size=2,
        bootstrap=0,
    )
    shown = result._repr_html_()
    page = shown.split("</style>", 1)[1]  # the notebook view's markup, after its scoped stylesheet
    assert _verdict_word(page) == "NO GATE"
    assert 'class="verdict verdict-neutral"' in page
    assert 'class="verdict verdict-pass"' not in page
    assert "No gate was applied" in page


def test_no_gate_junit_is_not_red_when_the_run_exits_0(tmp_path: Path) -> None:
    done = run_cli("audit", _folder(tmp_path, threshold=0.1), "--no-gate", "--quiet")
    assert done.returncode == 0, done.stderr
    (suite,) = ET.fromstring((tmp_path / "out" / "junit.xml").read_bytes()).findall("testsuite")
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")
