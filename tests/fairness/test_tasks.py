"""Multiclass (one-vs-rest) and regression targets, against fairlearn's MetricFrame."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate
from sklearn.metrics import mean_absolute_error

from guardrail.api import audit_fairness

TOL = 1e-12


def test_multiclass_one_vs_rest_matches_metricframe_per_class() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    groups = rng.choice(["a", "b"], size=n)
    y_true = rng.choice(["cat", "dog", "fish"], size=n, p=[0.5, 0.3, 0.2])
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.choice(["cat", "dog", "fish"], size=n))
    result = audit_fairness(y_true, y_pred, sensitive_features=pd.Series(groups, name="g"), task="multiclass")
    assert result.artifacts["classes"] == ["cat", "dog", "fish"] and "one class versus the rest" in result.artifacts["note"]
    for label in ("cat", "dog", "fish"):
        scope = f"g/class={label}"
        ours = {m.key: m for m in result.metrics if m.scope == scope}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = MetricFrame(
                metrics={"selection_rate": selection_rate, "tpr": true_positive_rate},
                y_true=(y_true == label).astype(int),
                y_pred=(y_pred == label).astype(int),
                sensitive_features=groups,
            )
        for name in ("selection_rate", "tpr"):
            assert ours[f"fairness.{name}"].value == pytest.approx(frame.overall[name], abs=TOL)
            for group in ours[f"fairness.{name}"].by_group:
                assert group.value == pytest.approx(frame.by_group[name][group.group], abs=TOL)
        assert ours["fairness.demographic_parity_difference"].ci is not None


def test_regression_group_errors_match_metricframe() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    groups = rng.choice(["a", "b", "c"], size=n)
    y_true = rng.normal(50, 10, size=n)
    y_pred = y_true + rng.normal(np.where(groups == "c", 3.0, 0.0), 5.0)  # biased for group c
    result = audit_fairness(y_true, y_pred, sensitive_features=groups, task="regression")
    ours = {m.key: m for m in result.metrics}
    frame = MetricFrame(
        metrics={
            "mean_absolute_error": mean_absolute_error,
            "mean_error": lambda t, p: float(np.mean(p - t)),
            "mean_prediction": lambda t, p: float(np.mean(p)),
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    for name in ("mean_absolute_error", "mean_error", "mean_prediction"):
        assert ours[f"fairness.{name}"].value == pytest.approx(frame.overall[name], abs=1e-9)
        for group in ours[f"fairness.{name}"].by_group:
            assert group.value == pytest.approx(frame.by_group[name][group.group], abs=1e-9)
            assert group.ci is not None and group.ci.low <= group.value <= group.ci.high  # type: ignore[operator]
        assert ours[f"fairness.{name}_difference"].value == pytest.approx(frame.difference()[name], abs=1e-9)
    gap = ours["fairness.mean_error_difference"]
    assert gap.details["max_group"] == "c" and gap.ci is not None and gap.ci.low > 1.5


def test_task_mismatches_are_clear_errors() -> None:
    from guardrail.core.errors import DataError, ModelError

    with pytest.raises(DataError, match="has 3 classes.*multiclass"):
        audit_fairness([0, 1, 2], [0, 1, 2], sensitive_features=["a", "b", "a"])
    with pytest.raises(DataError, match="not numeric"):
        audit_fairness(["x", "y"], ["x", "y"], sensitive_features=["a", "b"], task="regression")
    with pytest.raises(ModelError, match="does not match"):
        audit_fairness(["x", "y"], ["x", "z"], sensitive_features=["a", "b"], task="multiclass")
