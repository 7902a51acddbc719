"""Intervals of rates and disparities: exact for small counts, finite for a group at 0, never
looser than the per-group bounds, always around their own estimate (issue 14, defects 1–3, 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import beta

from guardrail.api import audit_fairness
from guardrail.core.types import AuditResult, AuditStatus, MetricResult, OutcomeStatus
from guardrail.policy.engine import Policy, evaluate
from guardrail.spec.models import PolicySpec, RuleSpec


def _rows(groups: dict[str, tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows from each group's (tn, fp, fn, tp) counts."""
    y_true, y_pred, labels = [], [], []
    for label, cells in groups.items():
        for (t, p), count in zip(((0, 0), (0, 1), (1, 0), (1, 1)), cells, strict=True):
            y_true += [t] * count
            y_pred += [p] * count
            labels += [label] * count
    return np.array(y_true), np.array(y_pred), np.array(labels)


def _metric(result: AuditResult, key: str) -> MetricResult:
    (found,) = [m for m in result.metrics if m.key == key]
    return found


def _judge(metric: MetricResult, **rule: object) -> OutcomeStatus:
    spec = RuleSpec(**{"id": "FAIR-001", "rationale": "four-fifths", "metric": metric.key, **rule})  # type: ignore[arg-type]
    policy = Policy(PolicySpec(schema_version=1, kind="policy", name="p", rules=(spec,)), "p.yaml", "0" * 64)
    (outcome,) = evaluate([policy], [AuditResult("fairness", "fairness", AuditStatus.OK, (metric,))]).outcomes
    return outcome.status


def test_a_rate_of_0_out_of_3_gets_the_exact_interval_not_zero_width() -> None:
    """Defect 5: the percentile bootstrap of 0/3 is [0, 0]."""
    y_true, y_pred, groups = _rows({"a": (50, 10, 3, 0), "b": (300, 60, 90, 150)})
    tpr = _metric(audit_fairness(y_true, y_pred, sensitive_features=groups), "fairness.tpr")
    small = next(g for g in tpr.by_group if g.group == "a")
    assert small.value == 0.0 and small.ci is not None and small.ci.method.startswith("Clopper–Pearson")
    assert small.ci.low == 0.0 and small.ci.high == pytest.approx(1 - 0.025 ** (1 / 3), abs=1e-9)  # 0.7076


def test_a_group_never_selected_fails_the_four_fifths_rule_instead_of_blocking_the_gate() -> None:
    """Defect 2: a ratio of exactly 0 had no interval, so a rule on its bounds was an error (exit 2)."""
    y_true, y_pred, groups = _rows({"a": (40, 0, 26, 0), "b": (500, 100, 100, 300), "c": (400, 150, 150, 300)})
    ratio = _metric(audit_fairness(y_true, y_pred, sensitive_features=groups), "fairness.demographic_parity_ratio")
    assert ratio.value == 0.0 and ratio.ci is not None
    assert ratio.ci.low == 0.0 and 0.0 < ratio.ci.high < 0.2 and math.isfinite(ratio.ci.high)
    assert ratio.ci.bound(0.0005, "high") >= ratio.ci.high  # a quantile table for corrections
    for on in ("ci_low", "worst", "ci_high"):
        assert _judge(ratio, op="ge", threshold=0.8, on=on, min_group_n=30) is OutcomeStatus.FAIL


def test_a_small_group_at_zero_in_some_resamples_no_longer_collapses_the_ratio_to_0_1() -> None:
    """Defect 3: 1 of 66 selected is 0 in a third of the resamples; the log-scale bootstrap
    then spread the ratio over [0, 1]. The per-group exact bounds alone bound it far below."""
    y_true, y_pred, groups = _rows({"a": (60, 1, 5, 0), "b": (600, 200, 100, 300), "c": (1000, 300, 200, 500)})
    ratio = _metric(audit_fairness(y_true, y_pred, sensitive_features=groups), "fairness.demographic_parity_ratio")
    assert ratio.value is not None and ratio.ci is not None
    assert ratio.ci.low <= ratio.value <= ratio.ci.high < 0.3
    # the per-group exact bounds, all three at once (Bonferroni): ratio ≤ min upper / max lower
    selected, rows = np.array([1, 500, 800]), np.array([66, 1200, 2000])
    tail = 0.025 / 3
    upper = beta.ppf(1 - tail, selected + 1, rows - selected)
    lower = beta.ppf(tail, selected, rows - selected + 1)
    assert ratio.ci.high <= upper.min() / lower.max() + 1e-12
    assert _judge(ratio, op="ge", threshold=0.8, on="worst") is OutcomeStatus.FAIL


def test_every_reported_interval_holds_its_estimate() -> None:
    y_true, y_pred, groups = _rows({"a": (20, 1, 3, 0), "b": (40, 5, 10, 30), "c": (400, 40, 60, 300)})
    baseline = np.where(np.random.default_rng(0).random(y_pred.size) < 0.05, 1 - y_pred, y_pred)
    result = audit_fairness(y_true, y_pred, sensitive_features=groups, y_pred_baseline=baseline)
    checked = 0
    for metric in result.metrics:
        for value, ci in [(metric.value, metric.ci), *((g.value, g.ci) for g in metric.by_group)]:
            if value is not None and ci is not None:
                assert ci.low <= value <= ci.high, (metric.ref, value, ci)
                checked += 1
    assert checked > 60


def test_the_disparity_without_the_small_groups_is_there_with_its_own_interval() -> None:
    """Defect 1: the policy cannot bootstrap; the auditor gives the disparity over the groups
    at or above min_group_size, with its interval on the same resamples. Here it equals the
    audit of the data without the small group's rows (same groups, same draws)."""
    big = {"a": (300, 60, 40, 100), "b": (280, 45, 60, 85)}
    y_true, y_pred, groups = _rows({**big, "z": (5, 0, 5, 0)})
    full = audit_fairness(y_true, y_pred, sensitive_features=groups, seed=3)
    y_true_big, y_pred_big, groups_big = _rows(big)
    alone = audit_fairness(y_true_big, y_pred_big, sensitive_features=groups_big, seed=3)
    for name in ("demographic_parity_ratio", "equalized_odds_difference", "equal_opportunity_ratio"):
        metric = _metric(full, f"fairness.{name}")
        reduced = metric.details["without_small"]
        expected = _metric(alone, f"fairness.{name}")
        assert expected.ci is not None
        assert reduced["min_group_n"] == 30 and reduced["excluded"] == ["z"]
        assert reduced["value"] == pytest.approx(expected.value, abs=1e-12)
        assert reduced["ci"] == {"low": expected.ci.low, "high": expected.ci.high, "level": 0.95, "method": expected.ci.method}
        assert reduced["ci"]["low"] <= reduced["value"] <= reduced["ci"]["high"]
        assert "without_small" not in expected.details  # no small group there
    ratio = _metric(full, "fairness.demographic_parity_ratio")
    assert ratio.value == 0.0  # the small group is never selected; without it the ratio straddles 0.8
    assert ratio.details["without_small"]["ci"]["low"] < 0.8 < ratio.details["without_small"]["ci"]["high"]


@pytest.mark.parametrize(
    ("big", "status"),
    [
        # the two large groups alone: ratio ≈ 0.86 with an interval straddling 0.8
        ({"a": (300, 60, 40, 100), "b": (280, 45, 60, 85)}, OutcomeStatus.INCONCLUSIVE),
        # ratio ≈ 0.33, the whole interval below 0.8: a violation whatever the small group does
        ({"a": (400, 20, 50, 30), "b": (300, 100, 50, 50)}, OutcomeStatus.FAIL),
    ],
)
def test_a_rule_that_sets_small_groups_aside_judges_the_others_on_their_interval(
    big: dict[str, tuple[int, int, int, int]], status: OutcomeStatus
) -> None:
    """Defect 1, end to end: a 10-row group below min_group_n must not turn the larger
    groups' straddling interval into a failure on their point estimate."""
    y_true, y_pred, groups = _rows({**big, "z": (5, 0, 5, 0)})
    ratio = _metric(audit_fairness(y_true, y_pred, sensitive_features=groups), "fairness.demographic_parity_ratio")
    assert _judge(ratio, op="ge", threshold=0.8, on="worst", min_group_n=30) is status
