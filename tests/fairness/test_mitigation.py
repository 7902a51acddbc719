"""Mitigation what-if: fairlearn's mitigations fitted on the audit data, evaluated by our engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from guardrail.adapters.sklearn import SklearnAdapter
from guardrail.auditors.base import AuditContext
from guardrail.auditors.mitigation import MitigationAuditor, MitigationParams
from guardrail.core.errors import AuditError
from guardrail.core.types import AuditStatus


def _context(with_model: bool = True) -> AuditContext:
    rng = np.random.default_rng(0)
    n = 2000
    data = pd.DataFrame({"x": rng.normal(size=n), "sex": rng.choice(["F", "M"], size=n)})
    data["x"] += np.where(data["sex"] == "M", 0.8, 0.0)  # the feature carries the group
    y = (data["x"] + rng.normal(scale=0.8, size=n) > 0.6).astype(int).to_numpy()
    model = LogisticRegression().fit(data[["x"]], y)
    adapter = SklearnAdapter(model, ["x"])
    scores = model.predict_proba(data[["x"]])[:, 1]
    return AuditContext(
        audit_id="whatif",
        data=data,
        y_true=y.astype(bool),
        y_pred=model.predict(data[["x"]]).astype(bool),
        y_score=scores,
        sensitive=("sex",),
        missing_sensitive="error",
        positive_label=1,
        seed=0,
        where="data.csv",
        model=adapter if with_model else None,
        features=("x",) if with_model else (),
    )


def _table(result) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    return {row["method"]: row for row in result.artifacts["tradeoff"]}


def test_threshold_optimizers_trade_accuracy_for_the_constraint_they_target() -> None:
    result = MitigationAuditor(MitigationParams(bootstrap=100)).run(_context())
    assert result.status is AuditStatus.OK and result.artifacts["in_sample"] is True
    table = _table(result)
    original = table["original"]
    dp = table["threshold_demographic_parity"]
    eo = table["threshold_equalized_odds"]
    assert original["demographic_parity_difference"] > 0.2
    assert dp["demographic_parity_difference"] < 0.05 < original["demographic_parity_difference"]
    assert eo["equalized_odds_difference"] < original["equalized_odds_difference"]
    assert dp["accuracy"] <= original["accuracy"] + 0.01


def test_original_row_equals_the_fairness_audit() -> None:
    from guardrail.api import audit_fairness

    ctx = _context()
    result = MitigationAuditor(MitigationParams(bootstrap=0)).run(ctx)
    fairness = {m.key: m.value for m in audit_fairness(ctx.y_true, ctx.y_pred, sensitive_features=ctx.data["sex"], bootstrap=0).metrics}
    original = _table(result)["original"]
    for name in ("accuracy", "selection_rate", "demographic_parity_difference", "equalized_odds_difference"):
        assert original[name] == pytest.approx(fairness[f"fairness.{name}"], abs=1e-12)


def test_expgrad_retrains_a_clone_and_stored_scores_serve_threshold_methods() -> None:
    params = MitigationParams(methods=("expgrad_demographic_parity",), max_iter=5, bootstrap=0)
    table = _table(MitigationAuditor(params).run(_context()))
    assert table["expgrad_demographic_parity"]["demographic_parity_difference"] < table["original"]["demographic_parity_difference"]
    scores_only = MitigationAuditor(MitigationParams(bootstrap=0)).run(_context(with_model=False))
    assert _table(scores_only)["threshold_demographic_parity"]["demographic_parity_difference"] < 0.05
    with pytest.raises(AuditError, match="needs the model itself"):
        MitigationAuditor(params).run(_context(with_model=False))


def test_an_undeclared_sensitive_column_is_refused_when_called_directly() -> None:
    from guardrail.auditors.fairness import FairnessAuditor, FairnessParams
    from guardrail.core.errors import DataError

    for auditor in (MitigationAuditor(MitigationParams(sensitive=("race",))), FairnessAuditor(FairnessParams(sensitive=("race",)))):
        with pytest.raises(DataError, match=r"params.sensitive: 'race' is not one of data.sensitive \(sex\)"):
            auditor.run(_context())


def test_the_original_model_has_the_fairness_audits_numbers_and_intervals() -> None:
    """Defect 4: one construction per quantity. The what-if used a percentile interval of
    max − min (estimates fell outside their own interval, and the same disparity carried two
    intervals in one report); now both audits build them with one function, on the same resamples."""
    from guardrail.auditors.fairness import FairnessAuditor, FairnessParams
    from guardrail.auditors.mitigation import REPORTED_DISPARITIES, REPORTED_RATES

    ctx = _context()
    whatif = {m.key: m for m in MitigationAuditor(MitigationParams(bootstrap=400)).run(ctx).metrics}
    audit = {m.key: m for m in FairnessAuditor(FairnessParams(bootstrap=400, score_metrics=False)).run(ctx).metrics}
    for name in (*REPORTED_RATES, *REPORTED_DISPARITIES):
        original, fairness = whatif[f"mitigation.original.{name}"], audit[f"fairness.{name}"]
        assert original.ci is not None and original.scope == fairness.scope == "sex"
        assert (original.value, original.ci) == (fairness.value, fairness.ci), name
    for metric in whatif.values():
        assert metric.value is not None and metric.ci is not None
        assert metric.ci.low <= metric.value <= metric.ci.high, metric.key
    assert MitigationParams().bootstrap == FairnessParams().bootstrap  # so the defaults agree too
