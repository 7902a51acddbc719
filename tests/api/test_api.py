"""The Python API: the same audit as the CLI, results that display in notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import guardrail
from guardrail.core.exitcodes import ExitCode
from guardrail.core.types import AuditResult, RunRecord
from guardrail.report import load_record


def test_audit_returns_the_record_it_writes(demo_root: Path, tmp_path: Path) -> None:
    record = guardrail.audit(demo_root / "audits" / "adult-income.yaml", out=tmp_path / "out")
    assert isinstance(record, RunRecord)
    assert record.exit_code() is ExitCode.VIOLATION
    assert load_record(tmp_path / "out" / "run.json") == record
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["history.sqlite", "junit.xml", "report.html", "run.json", "summary.md"]
    digests = {f.role: f.sha256 for f in record.provenance.files}
    assert set(digests) == {"spec", "model", "data", "reference", "policy"}  # reference: the data audit's training file


def test_audit_without_writing(demo_root: Path, tmp_path: Path) -> None:
    record = guardrail.audit(demo_root / "audits" / "adult-income.yaml", out=tmp_path / "out", write=False)
    assert not (tmp_path / "out").exists()
    # explain.* metrics are scoped by feature and method pair as well, data.* ones by column too,
    # robustness.* ones by probe setting
    model_metrics = [m for m in record.metrics() if not m.key.startswith(("explain.", "data.", "robustness."))]
    assert {m.scope for m in model_metrics} == {"sex", "race", "sex+race"}
    robustness_scopes = {m.scope for m in record.metrics() if m.key.startswith("robustness.")}
    assert {"sex", "race", "sex/strength=0.02", "race/strength=0.2"} <= robustness_scopes
    # measured, not judged by the demo's policy; the robustness pack fails it on sex and race
    # alone (docs/robustness.md, README) and passes its small perturbations
    [robustness] = [r for r in record.results if r.auditor == "robustness"]
    judged = guardrail.check(robustness, "guardrail:robustness").outcomes
    statuses = {(o.rule_id, o.metric): o.status.value for o in judged}
    assert statuses[("ROB-CF", "robustness.counterfactual_flip_rate[sex]")] == "fail"
    assert statuses[("ROB-CF", "robustness.counterfactual_flip_rate[race]")] == "fail"
    assert {status for (rule, _), status in statuses.items() if rule == "ROB-PERTURB"} == {"pass"}
    assert not any(o.rule_id.startswith("ROB") for o in record.verdict.outcomes)
    flips = {m.ref: m.value for m in robustness.metrics}  # the figures the README and docs quote
    assert flips["robustness.counterfactual_flip_rate[sex]"] == pytest.approx(0.0170, abs=5e-4)
    assert flips["robustness.counterfactual_flip_rate[race]"] == pytest.approx(0.0598, abs=5e-4)
    assert flips["robustness.perturbation_flip_rate[sex/strength=0.2]"] == pytest.approx(0.0201, abs=5e-4)
    data_scopes = {m.scope for m in record.metrics() if m.key.startswith("data.")}
    assert {"sex", "race", "sex+race", "column=native_country", "sex/column=relationship", None} <= data_scopes


def test_record_and_audit_result_render_in_notebooks() -> None:
    frame = pd.DataFrame({"sex": ["F", "M"] * 50, "age_band": ["<55", "55+"] * 25 + ["55+", "<55"] * 25})
    y_true = [1, 0, 0, 1] * 25
    y_pred = [1, 0, 1, 1] * 25
    result = guardrail.audit_fairness(y_true, y_pred, sensitive_features=frame)
    assert isinstance(result, AuditResult)
    shown = result._repr_html_()
    assert shown.startswith('<div class="guardrail-nb"><style>') and "<script" not in shown
    page = shown.replace("<wbr>", "")
    assert "fairness.demographic_parity_difference" in page and "sex+age_band" in page


def test_audit_fairness_accepts_series_and_dicts() -> None:
    result = guardrail.audit_fairness([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=pd.Series(["a", "a", "b", "b"], name="g"))
    assert {m.scope for m in result.metrics} == {"g"}
    result = guardrail.audit_fairness([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features={"g": ["a", "a", "b", "b"], "h": list("xyxy")})
    assert {m.scope for m in result.metrics} == {"g", "h", "g+h"}
    json.dumps([m.details for m in result.metrics])  # details stay JSON-able


def test_length_mismatch_is_a_data_error() -> None:
    from guardrail.core.errors import DataError

    with pytest.raises(DataError, match="differ in length"):
        guardrail.audit_fairness([1, 0], [1, 0, 1], sensitive_features=["a", "b"])


def test_audit_fairness_refuses_labels_it_cannot_interpret() -> None:
    from guardrail.core.errors import DataError

    with pytest.raises(DataError, match="has 3 classes"):
        guardrail.audit_fairness([2, 0, 1, 0], [2, 0, 1, 0], sensitive_features=list("aabb"))
    with pytest.raises(DataError, match="pos_label|positive_label"):
        guardrail.audit_fairness(["no", "yes"] * 2, ["no", "yes"] * 2, sensitive_features=list("aabb"))
    result = guardrail.audit_fairness(["no", "yes"] * 2, ["no", "yes"] * 2, sensitive_features=list("aabb"), pos_label="yes")
    assert next(m for m in result.metrics if m.key == "fairness.tpr").value == 1.0
