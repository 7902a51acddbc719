"""Policy rules are checked against what the spec's audits can produce, before any audit runs.

Issue 14 defect 10: a rule on ``fairness.disparate_impact[age_band]``, or on a scope the
spec never audits, used to validate and run the whole audit, then exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

SPEC = """\
schema_version: 1
kind: audit
name: catalog
model: {{adapter: predictions, column: pred}}
data: {{path: data.csv, target: y, sensitive: [sex, age_band]}}
audits:
  - {{id: fairness, use: fairness, params: {{min_group_size: 2, groupings: {groupings}}}}}
policies: [policy.yaml]
report: {{out: out}}
"""
POLICY = """\
schema_version: 1
kind: policy
name: tiny
rules:
  - id: OK-1
    metric: fairness.demographic_parity_difference
    op: le
    threshold: 0.9
    rationale: Selection rates must be close.
  - id: R-2
    metric: {metric}
    op: le
    threshold: 0.9
    rationale: Under test.{extra}
"""


def _folder(tmp_path: Path, metric: str, *, extra: str = "", groupings: str = "each") -> Path:
    rows = ["y,pred,sex,age_band"]
    rows += [f"{(i * 7) % 2},{(i * 3) % 2},{'F' if i % 2 else 'M'},{'old' if i % 3 else 'young'}" for i in range(24)]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "policy.yaml").write_text(POLICY.format(metric=metric, extra=extra))
    (tmp_path / "spec.yaml").write_text(SPEC.format(groupings=groupings))
    return tmp_path / "spec.yaml"


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("guardrail: ")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("command", ["validate", "audit"])
def test_a_misspelt_metric_key_is_refused_before_any_audit(tmp_path: Path, command: str) -> None:
    spec = _folder(tmp_path, "fairness.demographic_parity_diference[sex]")
    done = run_cli(command, spec)
    assert done.returncode == 3, done.stdout + done.stderr
    line = _one_error_line(done.stderr)
    assert "policy.yaml:10: rule R-2: no audit of this spec produces fairness.demographic_parity_diference" in line
    assert "did you mean fairness.demographic_parity_difference?" in line
    assert "running audit" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing written


def test_every_rule_no_audit_answers_is_named_in_one_run(tmp_path: Path) -> None:
    """Two bad rules, two lines (the second used to be "1 more rule(s) with the same problem")."""
    extra = "\n  - id: R-3\n    metric: fairness.selection_rat\n    op: ge\n    threshold: 0.1\n    rationale: Also under test."
    done = run_cli("validate", _folder(tmp_path, "fairness.disparate_impact", extra=extra))
    assert done.returncode == 3, done.stdout + done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 2, done.stderr
    assert "policy.yaml:10: rule R-2: no audit of this spec produces fairness.disparate_impact" in lines[0]
    assert "policy.yaml:15: rule R-3: no audit of this spec produces fairness.selection_rat" in lines[1]
    assert "more rule" not in done.stderr


def test_the_issue_example_a_key_no_auditor_has_is_refused(tmp_path: Path) -> None:
    done = run_cli("validate", _folder(tmp_path, "fairness.disparate_impact[age_band]"))
    assert done.returncode == 3
    assert "rule R-2: no audit of this spec produces fairness.disparate_impact" in _one_error_line(done.stderr)


@pytest.mark.parametrize(
    ("metric", "groupings", "said"),
    [
        ("fairness.demographic_parity_ratio[sexx]", "each", "did you mean fairness.demographic_parity_ratio[sex]?"),
        ("fairness.demographic_parity_ratio[race]", "each", "the audited scopes of fairness.demographic_parity_ratio are: age_band, sex"),
        # the intersection is not audited when the spec asks for each feature alone
        ("fairness.demographic_parity_ratio[sex+age_band]", "each", "never audits fairness.demographic_parity_ratio in scope [sex+age_band]"),
    ],
)
def test_a_scope_the_spec_never_audits_is_refused(tmp_path: Path, metric: str, groupings: str, said: str) -> None:
    done = run_cli("validate", _folder(tmp_path, metric, groupings=groupings))
    assert done.returncode == 3
    line = _one_error_line(done.stderr)
    assert "policy.yaml:10: rule R-2" in line and said in line


def test_scopes_the_spec_does_audit_validate(tmp_path: Path) -> None:
    for metric in ("fairness.demographic_parity_ratio[age_band]", "fairness.tpr[sex]", "fairness.min_group_size"):
        done = run_cli("validate", _folder(tmp_path, metric, groupings="each"))
        assert done.returncode == 0, (metric, done.stderr)
    done = run_cli("validate", _folder(tmp_path, "fairness.demographic_parity_ratio[sex+age_band]", groupings="both"))
    assert done.returncode == 0, done.stderr


def test_optional_evidence_may_name_another_audits_key_but_required_evidence_may_not(tmp_path: Path) -> None:
    optional = run_cli("validate", _folder(tmp_path, "privacy.mia.lira.auc", extra="\n    on_missing: warn"))
    assert optional.returncode == 0, optional.stderr
    required = run_cli("validate", _folder(tmp_path, "privacy.mia.lira.auc"))
    assert required.returncode == 3
    line = _one_error_line(required.stderr)
    assert "no audit of this spec produces privacy.mia.lira.auc" in line
    assert "set on_missing: warn or skip" in line
    typo = run_cli("validate", _folder(tmp_path, "privacy.mia.lira.acu", extra="\n    on_missing: warn"))
    assert typo.returncode == 3  # optional, but no auditor produces that key under any params


def test_a_policy_file_alone_is_checked_against_every_auditors_keys(tmp_path: Path) -> None:
    _folder(tmp_path, "fairness.equalized_odds_diference")
    done = run_cli("validate", tmp_path / "policy.yaml")
    assert done.returncode == 3
    assert "did you mean fairness.equalized_odds_difference?" in _one_error_line(done.stderr)
    _folder(tmp_path, "explain.lime.faithfulness")
    assert run_cli("validate", tmp_path / "policy.yaml").returncode == 0


def test_every_shipped_policy_and_spec_validates(demo_root: Path) -> None:
    """Every shipped rule names a key and scope its specs' audits produce. The demo spec is
    validated where its model was trained (a fresh checkout has no models/ folder); the
    others train their own model, so they validate before it exists."""
    files = sorted((REPO / "policies").glob("*.yaml"))
    # the demo spec and the data-only heart spec read files `make` writes (tests/auditors/test_data_demos.py
    # validates the heart spec where its data was exported)
    files += [f for f in sorted((REPO / "audits").glob("*.yaml")) if f.name not in ("adult-income.yaml", "heart-sites.yaml")]
    done = run_cli("validate", *files, cwd=REPO)
    assert done.returncode == 0, done.stderr
    demo = run_cli("validate", "audits/adult-income.yaml", cwd=demo_root)
    assert demo.returncode == 0, demo.stderr


def test_a_regression_rule_needs_a_history_or_optional_evidence(tmp_path: Path) -> None:
    spec = _folder(tmp_path, "regression.fairness.demographic_parity_difference")
    assert run_cli("validate", spec).returncode == 0  # recorded in a history: an approved run may be there
    spec.write_text(spec.read_text().replace("report: {out: out}", "report: {out: out, history: false}"))
    done = run_cli("validate", spec)
    assert done.returncode == 3
    assert "regression.fairness.demographic_parity_difference" in _one_error_line(done.stderr)


def test_the_schema_of_every_rule_outcome_still_round_trips(tmp_path: Path) -> None:
    """A spec whose rules all name producible keys runs as before (the check adds no outcome)."""
    spec = _folder(tmp_path, "fairness.tpr[sex]")
    done = run_cli("audit", spec, "--quiet")
    assert done.returncode in (0, 1), done.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert {o["rule_id"] for o in record["verdict"]["outcomes"]} == {"OK-1", "R-2"}
