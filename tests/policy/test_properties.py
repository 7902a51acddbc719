"""Property tests of the verdict logic on intervals, and of multiple-comparison corrections."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.core.types import AuditResult, AuditStatus, Interval, MetricResult, OutcomeStatus, Quantile
from guardrail.fairness.bootstrap import BootstrapSpec, interval
from guardrail.policy.engine import Policy, evaluate
from guardrail.spec.models import PolicySpec, RuleSpec

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def _policy(rules: list[dict[str, Any]], correction: str = "none") -> Policy:
    specs = tuple(RuleSpec(**{"rationale": "r", **rule}) for rule in rules)
    return Policy(PolicySpec(schema_version=1, kind="policy", name="p", rules=specs, correction=correction), "p", "0")


def _outcome(rule: dict[str, Any], metric: MetricResult) -> OutcomeStatus:
    (outcome,) = evaluate([_policy([{"id": "R", **rule}])], [AuditResult("a", "f", AuditStatus.OK, (metric,))]).outcomes
    return outcome.status


@given(low=unit, width=unit, threshold=unit, op=st.sampled_from(["ge", "le", "gt", "lt"]))
def test_worst_bound_verdict_follows_the_interval(low: float, width: float, threshold: float, op: str) -> None:
    high = min(1.0, low + width)
    metric = MetricResult("m.x", (low + high) / 2, ci=Interval(low, high))
    status = _outcome({"metric": "m.x", "op": op, "threshold": threshold, "on": "worst"}, metric)
    ok = {"ge": lambda x: x >= threshold, "le": lambda x: x <= threshold, "gt": lambda x: x > threshold, "lt": lambda x: x < threshold}[op]
    if ok(low) and ok(high):
        assert status is OutcomeStatus.PASS
    elif not ok(low) and not ok(high):
        assert status is OutcomeStatus.FAIL
    else:
        assert status is OutcomeStatus.INCONCLUSIVE


def _bootstrap_metric(key: str, center: float, spread: float, seed: int) -> MetricResult:
    samples = np.random.default_rng(seed).normal(center, spread, size=1000)
    ci = interval(samples, BootstrapSpec())
    return MetricResult(key, center, ci=ci)


@settings(max_examples=60, deadline=None)
@given(
    centers=st.lists(st.floats(0.5, 1.0), min_size=1, max_size=6),
    spread=st.floats(0.001, 0.1),
    threshold=st.floats(0.5, 1.0),
    method=st.sampled_from(["bonferroni", "holm", "bh"]),
    seed=st.integers(0, 10_000),
)
def test_corrections_only_widen_intervals_and_never_turn_a_failure_into_a_pass(
    centers: list[float], spread: float, threshold: float, method: str, seed: int
) -> None:
    metrics = [_bootstrap_metric(f"m.x{i}", c, spread, seed + i) for i, c in enumerate(centers)]
    rules = [{"id": f"R{i}", "metric": f"m.x{i}", "op": "ge", "threshold": threshold, "on": "worst"} for i in range(len(centers))]
    result = [AuditResult("a", "f", AuditStatus.OK, tuple(metrics))]
    plain = evaluate([_policy(rules)], result).outcomes
    corrected = evaluate([_policy(rules, method)], result).outcomes
    rank = {OutcomeStatus.PASS: 0, OutcomeStatus.INCONCLUSIVE: 1, OutcomeStatus.FAIL: 2}
    for before, after in zip(plain, corrected, strict=True):
        assert before.metric == after.metric
        # a wider interval can move pass -> inconclusive or fail -> inconclusive, never towards pass
        assert not (after.status is OutcomeStatus.PASS and before.status is not OutcomeStatus.PASS)
        assert rank[after.status] >= rank[before.status] or after.status is OutcomeStatus.INCONCLUSIVE


@settings(max_examples=40, deadline=None)
@given(centers=st.lists(st.floats(0.5, 1.0), min_size=2, max_size=6), seed=st.integers(0, 10_000), data=st.data())
def test_reordering_rules_changes_nothing(centers: list[float], seed: int, data: st.DataObject) -> None:
    metrics = tuple(_bootstrap_metric(f"m.x{i}", c, 0.03, seed + i) for i, c in enumerate(centers))
    rules = [{"id": f"R{i}", "metric": f"m.x{i}", "op": "ge", "threshold": 0.8, "on": "worst"} for i in range(len(centers))]
    shuffled = data.draw(st.permutations(rules))
    result = [AuditResult("a", "f", AuditStatus.OK, metrics)]
    for method in ("none", "holm", "bh"):
        forward = {o.rule_id: (o.status, o.message) for o in evaluate([_policy(rules, method)], result).outcomes}
        backward = {o.rule_id: (o.status, o.message) for o in evaluate([_policy(shuffled, method)], result).outcomes}
        assert forward == backward


def test_holm_is_never_wider_than_bonferroni_and_states_its_level() -> None:
    metrics = tuple(_bootstrap_metric(f"m.x{i}", 0.9 + 0.02 * i, 0.02, i) for i in range(4))
    rules = [{"id": f"R{i}", "metric": f"m.x{i}", "op": "ge", "threshold": 0.8, "on": "ci_low"} for i in range(4)]
    result = [AuditResult("a", "f", AuditStatus.OK, metrics)]
    holm = evaluate([_policy(rules, "holm")], result).outcomes
    bonferroni = evaluate([_policy(rules, "bonferroni")], result).outcomes
    for h, b in zip(holm, bonferroni, strict=True):
        assert h.observed is not None and b.observed is not None and h.observed >= b.observed
    assert "Holm-adjusted over 4 comparisons" in holm[0].message
    assert "Bonferroni-adjusted over 4 comparisons" in bonferroni[0].message
    assert "(98.75% CI " in bonferroni[0].message  # 1 - 2 * 0.025 / 4


def test_correction_needs_the_quantile_table() -> None:
    metric = MetricResult("m.x", 0.9, ci=Interval(0.85, 0.95))
    (outcome,) = evaluate(
        [_policy([{"id": "R", "metric": "m.x", "op": "ge", "threshold": 0.8, "on": "ci_low"}], "holm")],
        [AuditResult("a", "f", AuditStatus.OK, (metric,))],
    ).outcomes
    assert outcome.status is OutcomeStatus.ERROR and "quantiles" in outcome.message
    _ = Quantile
