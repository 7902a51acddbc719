"""Baseline comparison: candidate − baseline on the same resamples (paired bootstrap)."""

from __future__ import annotations

import numpy as np
import pytest

from guardrail.api import audit_fairness


def _models(seed: int = 0, n: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    y_true = (rng.random(n) < 0.4).astype(int)
    baseline = np.where(rng.random(n) < 0.8, y_true, 1 - y_true)
    # the candidate changes a few decisions, more often for group c
    flip = rng.random(n) < np.where(groups == "c", 0.15, 0.03)
    candidate = np.where(flip, 1 - baseline, baseline)
    return y_true, candidate, baseline, groups


def test_deltas_equal_the_difference_of_two_audits() -> None:
    y_true, candidate, baseline, groups = _models()
    paired = audit_fairness(y_true, candidate, sensitive_features=groups, y_pred_baseline=baseline)
    alone_c = {m.key: m for m in audit_fairness(y_true, candidate, sensitive_features=groups).metrics}
    alone_b = {m.key: m for m in audit_fairness(y_true, baseline, sensitive_features=groups).metrics}
    deltas = [m for m in paired.metrics if m.key.startswith("fairness.delta.")]
    assert {m.key for m in deltas} >= {"fairness.delta.tpr", "fairness.delta.equalized_odds_difference"}
    for delta in deltas:
        name = "fairness." + delta.key.removeprefix("fairness.delta.")
        assert delta.value == pytest.approx(alone_c[name].value - alone_b[name].value, abs=1e-12)  # type: ignore[operator]
        assert delta.ci is not None and delta.ci.low <= delta.ci.high
    # the candidate's own metrics are reported as without a baseline
    same = {m.key: m.value for m in paired.metrics if not m.key.startswith("fairness.delta.")}
    assert same == {k: m.value for k, m in alone_c.items()}


def test_identical_models_have_zero_deltas_and_intervals_as_narrow_as_the_rows_allow() -> None:
    """Two models that agree on all 3,000 rows may still differ on rows the audit has not
    seen: the interval is not [0, 0] but the exact bound for no discordant row (≈ 4.4/n)."""
    y_true, candidate, _, groups = _models()
    result = audit_fairness(y_true, candidate, sensitive_features=groups, y_pred_baseline=candidate)
    deltas = [m for m in result.metrics if m.key.startswith("fairness.delta.")]
    assert deltas
    for metric in deltas:
        assert metric.value == 0.0 and metric.ci is not None
        assert metric.ci.low < 0.0 < metric.ci.high and metric.ci.low == -metric.ci.high
        assert metric.ci.method.startswith("exact bounds from the rows where the models differ")
    selection = next(m for m in deltas if m.key == "fairness.delta.selection_rate")
    assert selection.ci is not None and selection.ci.high == pytest.approx(1 - 0.0125 ** (1 / 3000), rel=1e-6)


def test_paired_intervals_are_narrower_than_unpaired_ones() -> None:
    y_true, candidate, baseline, groups = _models(seed=1)
    paired = audit_fairness(y_true, candidate, sensitive_features=groups, y_pred_baseline=baseline)
    delta = next(m for m in paired.metrics if m.key == "fairness.delta.accuracy")
    c = next(m for m in audit_fairness(y_true, candidate, sensitive_features=groups).metrics if m.key == "fairness.accuracy")
    b = next(m for m in audit_fairness(y_true, baseline, sensitive_features=groups, seed=1).metrics if m.key == "fairness.accuracy")
    assert delta.ci is not None and c.ci is not None and b.ci is not None
    unpaired_width = np.hypot(c.ci.high - c.ci.low, b.ci.high - b.ci.low)
    assert delta.ci.high - delta.ci.low < 0.6 * unpaired_width
