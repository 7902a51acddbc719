"""The policy engine: operators, bounds, missing evidence, small groups, sentences."""

from __future__ import annotations

from typing import Any

import pytest

from guardrail.core.types import (
    AuditResult,
    AuditStatus,
    ErrorInfo,
    GroupValue,
    Interval,
    MetricResult,
    OutcomeStatus,
    Severity,
)
from guardrail.policy.engine import Policy, evaluate
from guardrail.spec.models import PolicySpec, RuleSpec


def _policy(*rules: dict[str, Any], inconclusive: str = "block") -> Policy:
    specs = tuple(RuleSpec(**{"id": f"R{i}", "rationale": "because", **rule}) for i, rule in enumerate(rules, 1))
    return Policy(PolicySpec(schema_version=1, kind="policy", name="p", rules=specs, inconclusive=inconclusive), "p.yaml", "0" * 64)


def _result(*metrics: MetricResult, status: AuditStatus = AuditStatus.OK) -> AuditResult:
    return AuditResult("audit", "fairness", status, metrics)


def _judge(rule: dict[str, Any], *metrics: MetricResult, **kwargs: Any):  # type: ignore[no-untyped-def]
    (outcome,) = evaluate([_policy(rule, **kwargs)], [_result(*metrics)]).outcomes
    return outcome


@pytest.mark.parametrize(
    ("op", "threshold", "value", "status"),
    [
        ("ge", 0.8, 0.8, "pass"),
        ("ge", 0.8, 0.79, "fail"),
        ("gt", 0.8, 0.8, "fail"),
        ("le", 0.1, 0.1, "pass"),
        ("lt", 0.1, 0.1, "fail"),
        ("between", (0.8, 1.25), 1.0, "pass"),
        ("between", (0.8, 1.25), 1.3, "fail"),
        ("eq", 1.0, 1.0, "pass"),
        ("eq", 1.0, 0.9, "fail"),
    ],
)
def test_operators(op: str, threshold: Any, value: float, status: str) -> None:
    outcome = _judge({"metric": "m.x", "op": op, "threshold": threshold}, MetricResult("m.x", value))
    assert outcome.status.value == status
    assert outcome.observed == value


def test_sentence_repeats_constraint_and_observation() -> None:
    metric = MetricResult("fairness.dp", 0.71, scope="sex", ci=Interval(0.66, 0.76))
    outcome = _judge({"metric": "fairness.dp", "op": "ge", "threshold": 0.8, "on": "ci_low"}, metric)
    assert outcome.message == "R1 failed: fairness.dp[sex] = 0.71 (95% CI 0.66–0.76), required ≥ 0.8 on the lower bound."
    assert outcome.expected == "fairness.dp[sex] ≥ 0.8 on the lower bound"


def test_a_rule_applies_to_every_scope_or_to_one() -> None:
    metrics = [MetricResult("m.x", 0.9, scope="sex"), MetricResult("m.x", 0.5, scope="race")]
    every = evaluate([_policy({"metric": "m.x", "op": "ge", "threshold": 0.8})], [_result(*metrics)]).outcomes
    assert [(o.metric, o.status.value) for o in every] == [("m.x[sex]", "pass"), ("m.x[race]", "fail")]
    one = evaluate([_policy({"metric": "m.x[race]", "op": "ge", "threshold": 0.8})], [_result(*metrics)]).outcomes
    assert [o.metric for o in one] == ["m.x[race]"]


@pytest.mark.parametrize("on_missing", ["fail", "warn", "skip"])
def test_missing_evidence_never_passes(on_missing: str) -> None:
    outcome = _judge({"metric": "m.absent", "op": "ge", "threshold": 0.8, "on_missing": on_missing}, MetricResult("m.x", 1.0))
    expected = {"fail": ("error", "deny"), "warn": ("error", "warn"), "skip": ("skipped", "deny")}[on_missing]
    assert (outcome.status.value, outcome.severity.value) == expected
    assert outcome.reason == "missing_evidence"
    assert "no audit produced m.absent" in outcome.message


def test_undefined_value_is_missing_evidence_with_its_reason() -> None:
    metric = MetricResult("m.x", None, reason="TPR undefined for group 'b'")
    outcome = _judge({"metric": "m.x", "op": "le", "threshold": 0.1}, metric)
    assert outcome.status is OutcomeStatus.ERROR
    assert "TPR undefined for group 'b'" in outcome.message


def test_errored_audit_is_named_when_its_metric_is_missing() -> None:
    crashed = AuditResult("explain", "explainability", AuditStatus.ERROR, error=ErrorInfo("RuntimeError", "boom"))
    (outcome,) = evaluate([_policy({"metric": "explain.x", "op": "present"})], [crashed]).outcomes
    assert outcome.status is OutcomeStatus.ERROR and "'explain' failed" in outcome.message


def test_small_group_makes_the_rule_inconclusive() -> None:
    metric = MetricResult("m.x", 0.95, by_group=(GroupValue("a", 0.5, 100), GroupValue("b", 0.6, 12)))
    outcome = _judge({"metric": "m.x", "op": "ge", "threshold": 0.8, "min_group_n": 30}, metric)
    assert outcome.status is OutcomeStatus.INCONCLUSIVE and outcome.reason == "small_group"
    assert "'b' (n=12)" in outcome.message


@pytest.mark.parametrize(
    ("low", "high", "status"),
    [(0.85, 0.95, "pass"), (0.7, 0.9, "inconclusive"), (0.6, 0.75, "fail")],
)
def test_worst_bound_straddling_is_inconclusive(low: float, high: float, status: str) -> None:
    metric = MetricResult("m.x", (low + high) / 2, ci=Interval(low, high))
    outcome = _judge({"metric": "m.x", "op": "ge", "threshold": 0.8, "on": "worst"}, metric)
    assert outcome.status.value == status


def test_interval_rule_without_interval_is_missing_evidence() -> None:
    outcome = _judge({"metric": "m.x", "op": "ge", "threshold": 0.8, "on": "ci_low"}, MetricResult("m.x", 0.9))
    assert outcome.status is OutcomeStatus.ERROR and "no confidence interval" in outcome.message


def test_policy_may_downgrade_inconclusive_to_warning() -> None:
    metric = MetricResult("m.x", 0.95, by_group=(GroupValue("b", 0.6, 12),))
    outcome = _judge({"metric": "m.x", "op": "ge", "threshold": 0.8, "min_group_n": 30}, metric, inconclusive="warn")
    assert outcome.status is OutcomeStatus.INCONCLUSIVE and outcome.severity is Severity.WARN
    assert not outcome.blocks(Severity.DENY) and outcome.blocks(Severity.WARN)


def test_rule_order_does_not_change_outcomes() -> None:
    rules = [
        {"metric": "m.x", "op": "ge", "threshold": 0.8},
        {"metric": "m.y", "op": "le", "threshold": 0.1},
    ]
    metrics = _result(MetricResult("m.x", 0.7), MetricResult("m.y", 0.05))
    forward = evaluate([_policy(*rules)], [metrics]).outcomes
    backward = evaluate([_policy(*reversed(rules))], [metrics]).outcomes
    assert sorted((o.metric, o.status) for o in forward) == sorted((o.metric, o.status) for o in backward)


def test_a_scope_missing_one_metric_is_missing_evidence() -> None:
    metrics = [
        MetricResult("fairness.dp", 0.9, scope="race"),
        MetricResult("fairness.selection_rate", 0.2, scope="sex"),  # sex was audited, dp was not
    ]
    outcomes = evaluate([_policy({"metric": "fairness.dp", "op": "ge", "threshold": 0.8})], [_result(*metrics)]).outcomes
    assert [(o.metric, o.status.value) for o in outcomes] == [("fairness.dp[race]", "pass"), ("fairness.dp[sex]", "error")]


def test_a_deeper_family_of_keys_is_not_a_sibling() -> None:
    # federated.fairness.* are scoped by hospital and attribute, federated.epsilon by hospital:
    # neither rule may call the other's scopes missing
    metrics = [
        MetricResult("federated.epsilon", 3.0, scope="hospital=a"),
        MetricResult("federated.accuracy", 0.8, scope="hospital=b"),  # b was audited, its epsilon was not
        MetricResult("federated.fairness.eod", 0.1, scope="hospital=a/sex"),
        MetricResult("federated.fairness.tpr", 0.5, scope="federation/sex"),  # pooled, eod missing
    ]
    epsilon = evaluate([_policy({"metric": "federated.epsilon", "op": "le", "threshold": 8})], [_result(*metrics)])
    assert [(o.metric, o.status.value) for o in epsilon.outcomes] == [
        ("federated.epsilon[hospital=a]", "pass"),
        ("federated.epsilon[hospital=b]", "error"),
    ]
    eod = evaluate([_policy({"metric": "federated.fairness.eod", "op": "le", "threshold": 0.2})], [_result(*metrics)])
    assert [(o.metric, o.status.value) for o in eod.outcomes] == [
        ("federated.fairness.eod[hospital=a/sex]", "pass"),
        ("federated.fairness.eod[federation/sex]", "error"),
    ]


@pytest.mark.parametrize(("severity", "blocks"), [("deny", True), ("warn", False)])
def test_a_metric_undefined_for_a_small_group_is_inconclusive(severity: str, blocks: bool) -> None:
    reason = "small_group: group(s) 'Female' (n=24) below min_group_size 30; inconclusive"
    metric = MetricResult(
        "federated.fairness.eod", None, scope="hospital=a/sex", reason=reason,
        by_group=(GroupValue("Female", None, 24, small=True, reason="small_group: n=24 below 30"), GroupValue("Male", 0.1, 52)),
    )
    outcome = _judge({"metric": "federated.fairness.eod", "op": "le", "threshold": 0.2, "severity": severity}, metric)
    assert (outcome.status, outcome.reason, outcome.observed) == (OutcomeStatus.INCONCLUSIVE, "small_group", None)
    assert outcome.message == f"R1 inconclusive: federated.fairness.eod[hospital=a/sex] has no value ({reason}); required ≤ 0.2."
    assert outcome.blocks() is blocks
    other = _judge({"metric": "m.x", "op": "le", "threshold": 0.2}, MetricResult("m.x", None, reason="no positive labels"))
    assert other.status is OutcomeStatus.ERROR  # undefined for any other reason is still missing evidence


def test_small_group_cannot_hide_a_failure_among_the_large_groups() -> None:
    by_group = (GroupValue("a", 0.1, 1000), GroupValue("b", 1.0, 1000), GroupValue("c", 0.5, 3))
    ratio = MetricResult("m.ratio", 0.1, by_group=by_group, details={"aggregation": "ratio"})
    outcome = _judge({"metric": "m.ratio", "op": "ge", "threshold": 0.8, "min_group_n": 30}, ratio, inconclusive="warn")
    assert outcome.status is OutcomeStatus.FAIL and "even without the group(s)" in outcome.message
    close = (GroupValue("a", 0.9, 1000), GroupValue("b", 1.0, 1000), GroupValue("c", 0.1, 3))
    ratio = MetricResult("m.ratio", 0.1, by_group=close, details={"aggregation": "ratio"})
    outcome = _judge({"metric": "m.ratio", "op": "ge", "threshold": 0.8, "min_group_n": 30}, ratio)
    assert outcome.status is OutcomeStatus.INCONCLUSIVE  # only the small group fails it


def _ratio_with_a_small_group(reduced: dict[str, Any] | None) -> MetricResult:
    """A ratio of 0.5 whose larger groups alone give 0.78 (CI 0.62–0.97), with a 10-row group."""
    by_group = (GroupValue("a", 0.39, 400), GroupValue("b", 0.5, 400), GroupValue("c", 0.25, 10))
    details: dict[str, Any] = {"aggregation": "ratio"}
    if reduced is not None:
        details["without_small"] = reduced
    return MetricResult("m.ratio", 0.5, ci=Interval(0.3, 0.9), by_group=by_group, details=details)


REDUCED = {"min_group_n": 30, "excluded": ["c"], "value": 0.78, "ci": {"low": 0.62, "high": 0.97, "level": 0.95}}


@pytest.mark.parametrize("on", ["worst", "ci_low", "ci_high"])
def test_a_small_group_never_turns_a_straddling_interval_into_a_failure(on: str) -> None:
    """Issue 14 defect 1: the larger groups' point estimate (0.78) violates ≥ 0.8, but their
    interval [0.62, 0.97] does not decide it: inconclusive, never a failure on the point."""
    rule = {"metric": "m.ratio", "op": "ge", "threshold": 0.8, "min_group_n": 30, "on": on}
    outcome = _judge(rule, _ratio_with_a_small_group(REDUCED))
    expected = OutcomeStatus.FAIL if on == "ci_low" else OutcomeStatus.INCONCLUSIVE
    assert outcome.status is expected, outcome.message
    # without the auditor's interval for the larger groups, no bound-judged rule fails on them
    outcome = _judge(rule, _ratio_with_a_small_group(None))
    assert outcome.status is OutcomeStatus.INCONCLUSIVE and outcome.reason == "small_group"


def test_the_larger_groups_fail_on_their_interval_when_it_excludes_the_threshold() -> None:
    reduced = {**REDUCED, "value": 0.5, "ci": {"low": 0.41, "high": 0.62, "level": 0.95}}
    rule = {"metric": "m.ratio", "op": "ge", "threshold": 0.8, "min_group_n": 30, "on": "worst"}
    outcome = _judge(rule, _ratio_with_a_small_group(reduced))
    assert outcome.status is OutcomeStatus.FAIL
    assert "even without the group(s) below the minimum of 30 ('c' (n=10)) it is 0.5 (95% CI 0.41–0.62)" in outcome.message


def test_a_reduced_interval_for_other_groups_is_not_used() -> None:
    """The auditor's reduced interval set aside other groups than the rule's min_group_n does."""
    reduced = {**REDUCED, "excluded": ["b", "c"], "value": 0.1, "ci": {"low": 0.05, "high": 0.2, "level": 0.95}}
    rule = {"metric": "m.ratio", "op": "ge", "threshold": 0.8, "min_group_n": 30, "on": "worst"}
    assert _judge(rule, _ratio_with_a_small_group(reduced)).status is OutcomeStatus.INCONCLUSIVE


def test_observed_value_never_reads_as_the_threshold() -> None:
    outcome = _judge({"metric": "m.x", "op": "ge", "threshold": 0.8}, MetricResult("m.x", 0.79996))
    assert outcome.message == "R1 failed: m.x = 0.79996, required ≥ 0.8."


def test_eq_holds_at_the_edge_of_its_tolerance() -> None:
    outcome = _judge({"metric": "m.x", "op": "eq", "threshold": 0.3, "tolerance": 0.1}, MetricResult("m.x", 0.4))
    assert outcome.status is OutcomeStatus.PASS


def test_waiver_applies_until_it_expires_and_the_report_says_so() -> None:
    from datetime import date

    rule = {
        "metric": "m.x",
        "op": "ge",
        "threshold": 0.8,
        "waiver": {"owner": "dr.lee@hospital.example", "reason": "retraining scheduled", "expires": "2027-01-01"},
    }
    result = [_result(MetricResult("m.x", 0.7))]
    (before,) = evaluate([_policy(rule)], result, today=date(2026, 12, 31)).outcomes
    assert before.status is OutcomeStatus.WAIVED  # does not block: see test_exit_codes
    assert "Waived by dr.lee@hospital.example until 2027-01-01: retraining scheduled" in before.message
    (after,) = evaluate([_policy(rule)], result, today=date(2027, 1, 1)).outcomes
    assert after.status is OutcomeStatus.FAIL
    assert "expired on 2027-01-01 and no longer applies" in after.message
    passing = evaluate([_policy(rule)], [_result(MetricResult("m.x", 0.9))], today=date(2026, 12, 31)).outcomes
    assert passing[0].status is OutcomeStatus.PASS  # a waiver never hides a pass
