"""SARIF 2.1.0: valid against the published schema, one result per non-passing rule outcome,
each located at the policy line that defines the rule."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from guardrail.core.types import OutcomeStatus, RunRecord, Severity, SourceLocation
from guardrail.report import render, render_sarif
from tests.cli.test_exit_codes import _folder
from tests.conftest import REPO, run_cli
from tests.report.conftest import make_record, outcome

SCHEMA_FILE = REPO / "tests" / "data" / "sarif-2.1.0-rtm.5.json.gz"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(gzip.decompress(SCHEMA_FILE.read_bytes()))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def _sarif(record: RunRecord, root: Path | None = None) -> dict[str, Any]:
    text = render(record, "sarif") if root is None else render_sarif(record, root=root)
    return json.loads(text)  # type: ignore[no-any-return]


def test_sarif_validates_against_the_schema(validator: jsonschema.Draft4Validator) -> None:
    record = make_record()
    errors = sorted(validator.iter_errors(_sarif(record)), key=str)
    assert errors == []


def test_invalid_sarif_is_caught_by_the_schema(validator: jsonschema.Draft4Validator) -> None:
    """The schema check can fail: a result level outside SARIF's enum is rejected."""
    log = _sarif(make_record())
    log["runs"][0]["results"][0]["level"] = "fatal"
    assert list(validator.iter_errors(log))


def test_each_non_passing_outcome_is_one_result_with_the_severity_as_level() -> None:
    record = make_record()
    run = _sarif(record)["runs"][0]
    reported = [o for o in record.verdict.outcomes if o.status not in (OutcomeStatus.PASS, OutcomeStatus.SKIPPED)]
    assert [r["ruleId"] for r in run["results"]] == [o.rule_id for o in reported]
    levels = {Severity.DENY: "error", Severity.WARN: "warning", Severity.INFO: "note"}
    assert [r["level"] for r in run["results"]] == [levels[o.severity] for o in reported]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rule_ids == list(dict.fromkeys(o.rule_id for o in record.verdict.outcomes))  # passing rules described too
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]


def test_a_waived_outcome_is_an_accepted_suppression_and_a_crashed_audit_a_failed_invocation() -> None:
    run = _sarif(make_record())["runs"][0]
    waived = [r for r in run["results"] if r["properties"]["status"] == "waived"]
    assert len(waived) == 1 and waived[0]["suppressions"][0]["status"] == "accepted"
    assert all("suppressions" not in r for r in run["results"] if r["properties"]["status"] != "waived")
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert "explain-shap" in invocation["toolExecutionNotifications"][0]["message"]["text"]


def test_locations_are_relative_to_the_source_root_when_below_it(tmp_path: Path) -> None:
    inside = SourceLocation(str(tmp_path / "policies" / "p.yaml"), 12)
    outside = SourceLocation("/elsewhere/p.yaml", 3)
    record = make_record(outcomes=(outcome("A", OutcomeStatus.FAIL, location=inside), outcome("B", OutcomeStatus.FAIL, location=outside)))
    results = _sarif(record, root=tmp_path)["runs"][0]["results"]
    first, second = (r["locations"][0]["physicalLocation"] for r in results)
    assert first == {"artifactLocation": {"uri": "policies/p.yaml", "uriBaseId": "%SRCROOT%"}, "region": {"startLine": 12}}
    assert second["artifactLocation"] == {"uri": "file:///elsewhere/p.yaml"}


def test_fingerprints_are_stable_across_observed_values() -> None:
    first = _sarif(make_record(outcomes=(outcome("A", OutcomeStatus.FAIL, observed=0.6),)))
    second = _sarif(make_record(outcomes=(outcome("A", OutcomeStatus.FAIL, observed=0.5),)))
    fingerprint = [log["runs"][0]["results"][0]["partialFingerprints"] for log in (first, second)]
    assert fingerprint[0] == fingerprint[1]


PARENT = """\
schema_version: 1
kind: policy
name: parent
rules:
  - id: WIDE
    metric: fairness.demographic_parity_difference
    op: le
    threshold: 0.9
    rationale: Loose inherited limit.
  - id: DP-PARENT
    metric: fairness.demographic_parity_difference
    op: le
    threshold: 0.1
    rationale: Inherited limit that fails.
"""


def test_audit_writes_sarif_located_at_each_violated_rule(tmp_path: Path, validator: jsonschema.Draft4Validator) -> None:
    spec = _folder(tmp_path, threshold=0.1)  # DP difference 0.25 > 0.1: rule DP fails
    (tmp_path / "parent.yaml").write_text(PARENT)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy.read_text().replace("name: tiny\n", "name: tiny\nextends: [parent.yaml]\n"))
    done = run_cli("audit", spec, "--format", "sarif", "--format", "json", "--quiet", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    log = json.loads((tmp_path / "out" / "results.sarif").read_text())
    assert list(validator.iter_errors(log)) == []
    located = {
        r["ruleId"]: r["locations"][0]["physicalLocation"] for r in log["runs"][0]["results"]
    }
    # the two violated rules, and the power warnings of all three (8 rows cannot detect small gaps)
    assert set(located) == {"DP", "DP-PARENT", "DP:power", "DP-PARENT:power", "WIDE:power"}
    for rule_id, where in located.items():
        lines = (tmp_path / where["artifactLocation"]["uri"]).read_text().splitlines()
        assert lines[where["region"]["startLine"] - 1].strip() == f"- id: {rule_id.removesuffix(':power')}"
    assert located["DP-PARENT"]["artifactLocation"]["uri"] == "parent.yaml"  # inherited: where it is written
    assert located["DP"]["artifactLocation"]["uri"] == "policy.yaml"
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert {o["rule_id"]: o["location"]["line"] for o in record["verdict"]["outcomes"]}["DP"] == located["DP"]["region"]["startLine"]


def test_the_shipped_schema_is_the_documented_file() -> None:
    import hashlib

    digest = hashlib.sha256(gzip.decompress(SCHEMA_FILE.read_bytes())).hexdigest()
    assert digest == "2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8"
