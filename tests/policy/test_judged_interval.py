"""An outcome's ``observed`` and ``ci`` are what the rule was judged on: for a rule that fails on
the larger groups alone (``min_group_n``), their own disparity and interval, never the interval of
one set of groups beside the estimate of another (an interval that excludes its own estimate)."""

from __future__ import annotations

from typing import Any

import pytest

from guardrail.core.types import AuditResult, AuditStatus, GroupValue, Interval, MetricResult, OutcomeStatus
from guardrail.policy.engine import Policy, evaluate
from guardrail.spec.models import PolicySpec, RuleSpec

FULL = Interval(0.2, 0.9)
REDUCED = {"min_group_n": 30, "excluded": ["c"], "value": 0.5, "ci": {"low": 0.41, "high": 0.62, "level": 0.95, "method": "boot"}}


def _judge(on: str, reduced: dict[str, Any] | None = REDUCED):  # type: ignore[no-untyped-def]
    rule = RuleSpec(id="R1", metric="m.ratio", op="ge", threshold=0.8, on=on, min_group_n=30, rationale="why")  # type: ignore[arg-type]
    policy = Policy(PolicySpec(schema_version=1, kind="policy", name="p", rules=(rule,)), "p.yaml", "0")
    by_group = (GroupValue("a", 0.25, 400), GroupValue("b", 0.5, 400), GroupValue("c", 0.1, 10))
    details: dict[str, Any] = {"aggregation": "ratio"} | ({"without_small": reduced} if reduced else {})
    metric = MetricResult("m.ratio", 0.2, ci=FULL, by_group=by_group, details=details)
    (outcome,) = evaluate([policy], [AuditResult("a", "fairness", AuditStatus.OK, (metric,))]).outcomes
    return outcome


@pytest.mark.parametrize("on", ["worst", "ci_low", "ci_high"])
def test_a_failure_on_the_larger_groups_carries_their_interval(on: str) -> None:
    outcome = _judge(on)
    assert outcome.status is OutcomeStatus.FAIL and "even without the group(s)" in outcome.message
    assert outcome.ci == Interval(0.41, 0.62, 0.95, "boot"), "the interval judged, not the one over every group"
    assert outcome.observed == 0.5, "the estimate judged, inside its own interval"
    assert outcome.ci.low <= outcome.observed <= outcome.ci.high


def test_an_outcome_not_judged_on_the_larger_groups_keeps_the_metrics_interval() -> None:
    outcome = _judge("worst", {**REDUCED, "ci": {"low": 0.6, "high": 0.95, "level": 0.95}})  # straddles 0.8
    assert outcome.status is OutcomeStatus.INCONCLUSIVE and outcome.ci == FULL
    judged_on_the_point = _judge("value")
    assert judged_on_the_point.status is OutcomeStatus.FAIL
    assert judged_on_the_point.observed == 0.5, "the larger groups' own ratio, a/b = 0.25/0.5"
    assert judged_on_the_point.ci is None, "no interval of the larger groups to carry, and the full one would not hold 0.5"
