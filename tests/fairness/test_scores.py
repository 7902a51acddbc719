"""ROC AUC and calibration error per group against scikit-learn, with bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from guardrail.api import audit_fairness


def _scored(seed: int = 0, n: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1])
    y_true = (rng.random(n) < 0.35).astype(int)
    noise = np.where(groups == "c", 0.9, 0.6)  # group c is served by a worse model
    scores = np.clip(0.5 * y_true + noise * rng.random(n) - 0.1, 0, 1).round(3)  # ties on purpose
    return y_true, (scores >= 0.5).astype(int), scores, groups


def _ece(y: np.ndarray, s: np.ndarray, bins: int = 10) -> float:
    prob_true, prob_pred = calibration_curve(y, s, n_bins=bins, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], s), minlength=bins)
    counts = counts[counts > 0]
    return float((counts / len(y) * np.abs(prob_true - prob_pred)).sum())


def test_auc_and_ece_per_group_match_scikit_learn() -> None:
    y_true, y_pred, scores, groups = _scored()
    result = audit_fairness(y_true, y_pred, sensitive_features=groups, y_score=scores)
    by_key = {m.key: m for m in result.metrics}
    auc, ece = by_key["fairness.auc"], by_key["fairness.ece"]
    assert auc.value == pytest.approx(roc_auc_score(y_true, scores), abs=1e-12)
    assert ece.value == pytest.approx(_ece(y_true, scores), abs=1e-12)
    for group in auc.by_group:
        rows = groups == group.group
        assert group.value == pytest.approx(roc_auc_score(y_true[rows], scores[rows]), abs=1e-12)
        assert group.ci is not None and group.ci.low <= group.value <= group.ci.high  # type: ignore[operator]
    for group in ece.by_group:
        rows = groups == group.group
        assert group.value == pytest.approx(_ece(y_true[rows], scores[rows]), abs=1e-12)
    gap = by_key["fairness.auc_difference"]
    values = [g.value for g in auc.by_group]
    assert gap.value == pytest.approx(max(values) - min(values))  # type: ignore[type-var]
    assert gap.details["min_group"] == "c" and gap.ci is not None and gap.ci.low > 0


def test_auc_undefined_for_a_group_with_one_label() -> None:
    y_true = np.array([1, 0, 1, 0, 1, 1])
    scores = np.array([0.9, 0.1, 0.8, 0.3, 0.7, 0.6])
    result = audit_fairness(y_true, (scores > 0.5).astype(int), sensitive_features=list("aaaabb"), y_score=scores, min_group_size=1)
    by_key = {m.key: m for m in result.metrics}
    b = next(g for g in by_key["fairness.auc"].by_group if g.group == "b")
    assert b.value is None and b.reason == "needs both positive and negative labels"
    assert by_key["fairness.auc_difference"].value is None


def test_scores_must_be_probabilities() -> None:
    from guardrail.core.errors import DataError

    with pytest.raises(DataError, match="probability"):
        audit_fairness([1, 0], [1, 0], sensitive_features=["a", "b"], y_score=[1.5, 0.2])
