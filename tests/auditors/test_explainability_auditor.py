"""The explainability auditor end to end: a scikit-learn pipeline and a torch MLP from spec files,
budgets, parameter errors, and a policy that denies a model driven by a proxy of a sensitive column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import guardrail
from guardrail.core.errors import SpecError
from guardrail.core.types import AuditStatus, MetricResult, OutcomeStatus, RunRecord

pytest.importorskip("captum")
pytest.importorskip("lime")

FEATURES = ["a", "b", "c", "noise", "zip"]
SPEC = """\
schema_version: 1
kind: audit
name: explain-test
seed: 0
model: {model}
data: {{path: data.csv, target: y, sensitive: [group]{features}}}
audits:
  - id: explain
    use: explainability
    params: {params}
{policies}report: {{out: out, history: false}}
"""
POLICY = """\
schema_version: 1
kind: policy
name: proxies
rules:
  - id: XAI-001
    metric: explain.proxy.proxy_in_top_k
    op: le
    threshold: 0
    severity: deny
    rationale: No protected attribute or proxy of one may be among the top drivers.
"""


def _frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """``zip`` is a near-copy of the sensitive ``group`` (a proxy) and drives the outcome with ``a``."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["F", "M"], size=n)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(["x", "y", "z"], size=n),
            "noise": rng.normal(size=n),
            "zip": np.where(group == "F", rng.normal(1.0, 0.3, size=n), rng.normal(-1.0, 0.3, size=n)),
            "group": group,
        }
    )
    z = 2.5 * frame["a"] - 0.3 * frame["b"] + 2.0 * frame["zip"]
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return frame


def _write(tmp_path: Path, frame: pd.DataFrame, model: str, params: str, *, features: bool, policy: bool = False) -> Path:
    frame.to_csv(tmp_path / "data.csv", index=False)
    policies = ""
    if policy:
        (tmp_path / "policy.yaml").write_text(POLICY)
        policies = "policies: [policy.yaml]\n"
    spec = SPEC.format(
        model=model, params=params, features=f", features: {FEATURES}" if features else "", policies=policies
    )
    (tmp_path / "spec.yaml").write_text(spec)
    return tmp_path / "spec.yaml"


@pytest.fixture(scope="module")
def sklearn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = _frame(seed=1)
    pipeline = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["c"]), remainder="passthrough"), LogisticRegression()
    ).fit(frame[FEATURES], frame["y"])
    path = tmp_path_factory.mktemp("sk") / "model.skops"
    sio.dump(pipeline, path)
    return path


SKLEARN = "{{adapter: sklearn, path: {path}}}"


def _metric(record: RunRecord, key: str, scope: str | None = None) -> MetricResult:
    return next(m for m in record.metrics() if m.key == key and m.scope == scope)


def test_a_sklearn_pipeline_is_explained_and_the_proxy_is_named(tmp_path: Path, sklearn_model: Path) -> None:
    params = "{samples: 60, lime_samples: 300, bootstrap: 100, top_k: 2, min_group_size: 10}"
    spec = _write(tmp_path, _frame(), SKLEARN.format(path=sklearn_model), params, features=True, policy=True)
    record = guardrail.audit(spec, write=False)
    (result,) = record.results
    assert result.status is AuditStatus.OK, result.error
    assert result.params["methods"] is None  # the default: feature_ablation and lime for sklearn
    for method in ("feature_ablation", "lime"):
        importance = {m.scope: m for m in record.metrics() if m.key == f"explain.{method}.importance"}
        assert set(importance) == set(FEATURES)
        assert max(importance, key=lambda f: importance[f].value or 0.0) in {"a", "zip"}  # the true drivers
        assert importance["noise"].value is not None and importance["noise"].value < importance["a"].value  # type: ignore[operator]
        assert importance["a"].ci is not None and importance["a"].ci.low <= importance["a"].value <= importance["a"].ci.high  # type: ignore[operator]
        assert {g.group for g in importance["a"].by_group} == {"group=F", "group=M"}
        faith = _metric(record, f"explain.{method}.faithfulness")
        assert faith.value is not None and faith.value > 0  # better than nothing: insertion above deletion
        gap = _metric(record, f"explain.{method}.faithfulness_gap", "group")
        by_group = {g.group: g.value for g in faith.by_group}
        assert set(by_group) == {"group=F", "group=M"} and {g.group for g in gap.by_group} == {"F", "M"}
        assert gap.value == pytest.approx(abs(by_group["group=F"] - by_group["group=M"]))  # type: ignore[operator]
        weighted = sum(g.value * g.n for g in faith.by_group) / sum(g.n for g in faith.by_group)  # type: ignore[operator]
        assert weighted == pytest.approx(faith.value)
    assert _metric(record, "explain.feature_ablation.stability").value == 1.0
    assert 0 < (_metric(record, "explain.lime.stability").value or 0) <= 1
    assert (_metric(record, "explain.agreement.spearman", "feature_ablation~lime").value or 0) > 0.5
    proxy = _metric(record, "explain.proxy.proxy_in_top_k")
    assert proxy.value == 1.0 and proxy.details["in_top_k"] == ["zip"] and proxy.details["proxies"] == {"zip": ["group"]}
    assert _metric(record, "explain.proxy.sensitive_in_top_k").value == 0.0  # group itself is not a model feature
    assert _metric(record, "explain.coverage").value == 1.0
    (outcome,) = record.verdict.outcomes
    assert outcome.rule_id == "XAI-001" and outcome.status is OutcomeStatus.FAIL
    local = result.artifacts["local"]
    assert {e["outcome"] for e in local} == {"TP", "FP", "FN", "TN"}
    assert all(len(e["top"]["lime"]) == 2 and isinstance(e["top"]["lime"][0]["attribution"], float) for e in local)
    assert result.artifacts["ranking"]["lime"][0] in {"a", "zip"}


def test_the_budget_stops_early_and_says_so(tmp_path: Path, sklearn_model: Path) -> None:
    params = "{samples: 400, max_seconds: 0.001, batch_size: 1000, lime_samples: 100, bootstrap: 0}"
    spec = _write(tmp_path, _frame(), SKLEARN.format(path=sklearn_model), params, features=True)
    (result,) = guardrail.audit(spec, write=False).results
    assert result.status is AuditStatus.OK, result.error
    coverage = next(m for m in result.metrics if m.key == "explain.coverage")
    assert coverage.value is not None and coverage.value < 1.0
    # one chunk of whole LIME pools: batch_size // max(2 (d + 1), 1 + 99 // 8) = 1000 // 13 = 76 rows
    # (the deletion and insertion curves score 2 (d + 1) = 12 rows per row, a pool of 8 rows 99),
    # rounded down to 9 pools of 8 = 72
    assert coverage.details["stopped_by_budget"] is True and coverage.details["explained"] == 72
    assert "time budget" in result.artifacts["note"] and "72 of 400" in result.artifacts["note"]
    stability = next(m for m in result.metrics if m.key == "explain.lime.stability")
    assert stability.value is None and "budget" in (stability.reason or "")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{methods: [shap]}", "methods"),
        ("{samples: 0}", "samples"),
        ("{ig_steps: 100, ig_max_steps: 50}", "ig_max_steps"),
        ("{methods: [lime, lime]}", "once"),
        ("{stability_seeds: 2}", "stability_seeds"),
        ("{sensitive: [age]}", "age"),
        ("{sampels: 10}", "sampels"),
    ],
)
def test_bad_params_are_spec_errors(tmp_path: Path, sklearn_model: Path, params: str, message: str) -> None:
    spec = _write(tmp_path, _frame(100), SKLEARN.format(path=sklearn_model), params, features=True)
    with pytest.raises(SpecError, match=message):
        guardrail.audit(spec, write=False)


def test_gradient_methods_on_a_sklearn_model_are_an_audit_error_with_a_fix(tmp_path: Path, sklearn_model: Path) -> None:
    spec = _write(tmp_path, _frame(200), SKLEARN.format(path=sklearn_model), "{methods: [integrated_gradients]}", features=True)
    (result,) = guardrail.audit(spec, write=False).results
    assert result.status is AuditStatus.ERROR and result.error is not None
    assert "need a tabular torch model" in result.error.message and "feature_ablation" in (result.error.hint or "")


def test_a_torch_mlp_is_explained_with_converged_integrated_gradients(tmp_path: Path) -> None:
    import torch

    from guardrail.training import TrainConfig, train_tabular

    torch.set_num_threads(1)
    frame = _frame()
    train_tabular(frame, "y", FEATURES, tmp_path / "mlp", TrainConfig(epochs=4, lr=0.05, optimizer="adam"), hidden=(16,))
    params = (
        "{methods: [integrated_gradients, gradient_shap, lime], samples: 40, lime_samples: 200, bootstrap: 50,"
        " min_group_size: 10, quality_instances: 8, stability_instances: 8, ig_tolerance: 0.02}"
    )
    spec = _write(tmp_path, frame, "{adapter: torch, path: mlp, device: cpu}", params, features=False)
    record = guardrail.audit(spec, write=False)
    (result,) = record.results
    assert result.status is AuditStatus.OK, result.error
    delta = _metric(record, "explain.integrated_gradients.max_relative_delta")
    assert delta.value is not None and delta.value <= 0.02 and delta.details["reached"] is True
    assert _metric(record, "explain.integrated_gradients.converged").value == 1.0
    for method in ("integrated_gradients", "gradient_shap"):
        for key in ("infidelity", "sensitivity"):
            value = _metric(record, f"explain.{method}.{key}").value
            assert value is not None and value >= 0
    sensitivity = {m: _metric(record, f"explain.{m}.sensitivity") for m in ("integrated_gradients", "gradient_shap")}
    assert sensitivity["gradient_shap"].details["radius"] == 0.02
    assert sensitivity["gradient_shap"].details["explanation"] == {"n_samples": 20, "seed": 0, "fixed_samples": True}
    # GradientShap re-explained with its draws fixed: the input change, not sampling noise (0.6–1.1 before, IG 0.022)
    assert (sensitivity["gradient_shap"].value or 0) <= 3 * (sensitivity["integrated_gradients"].value or 0)
    again = guardrail.audit(spec, write=False)  # the same seed gives the same GradientShap, whatever numpy's global state
    for key in ("explain.gradient_shap.sensitivity", "explain.gradient_shap.infidelity"):
        assert _metric(again, key).value == _metric(record, key).value
    importance = {m.scope: m.value for m in record.metrics() if m.key == "explain.integrated_gradients.importance"}
    assert set(importance) == set(FEATURES) and max(importance, key=lambda f: importance[f] or 0.0) in {"a", "zip"}
    assert sum(result.artifacts["integrated_gradients"]["steps"].values()) == 40
    assert (_metric(record, "explain.agreement.spearman", "integrated_gradients~lime").value or 0) > 0.5


def test_a_model_driven_by_the_sensitive_column_itself_is_flagged(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = _frame(800)
    frame["y"] = ((frame["group"] == "M") ^ (np.random.default_rng(3).random(len(frame)) < 0.1)).astype(int)
    features = ["a", "noise", "group"]
    pipeline = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["group"]), remainder="passthrough"), LogisticRegression()
    ).fit(frame[features], frame["y"])
    sio.dump(pipeline, tmp_path / "model.skops")
    spec = _write(tmp_path, frame, SKLEARN.format(path="model.skops"), "{samples: 40, lime_samples: 200, top_k: 1}", features=False)
    spec.write_text(spec.read_text().replace("sensitive: [group]", f"sensitive: [group], features: {features}"))
    record = guardrail.audit(spec, write=False)
    flagged = _metric(record, "explain.proxy.sensitive_in_top_k")
    assert flagged.value == 1.0 and flagged.details["in_top_k"] == ["group"]
    share = _metric(record, "explain.proxy.sensitive_share").value
    assert share is not None and share > 0.5


def test_a_faithfulness_gap_over_small_groups_is_inconclusive_not_an_error(tmp_path: Path, sklearn_model: Path) -> None:
    params = "{methods: [feature_ablation], samples: 20, bootstrap: 0, min_group_size: 50}"
    spec = _write(tmp_path, _frame(), SKLEARN.format(path=sklearn_model), params, features=True)
    record = guardrail.audit(spec, write=False)
    gap = _metric(record, "explain.feature_ablation.faithfulness_gap", "group")
    assert gap.value is None and gap.reason is not None and gap.reason.startswith("small_group:")
