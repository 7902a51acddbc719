"""Evaluate policy rules against audit results.

A pure function: no I/O, no printing. Missing evidence never passes: a metric that is
absent, undefined, or from an errored audit yields an ``error`` outcome (or ``skipped`` /
a warning when the rule says so); an interval that straddles the threshold, or a group
smaller than the rule's ``min_group_n``, yields ``inconclusive``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guardrail.core.types import (
    AuditResult,
    AuditStatus,
    MetricResult,
    OutcomeStatus,
    PolicyInfo,
    PolicyVerdict,
    RuleOutcome,
    Severity,
)
from guardrail.policy.sentences import constraint, fmt, observation, requirement
from guardrail.spec.models import PolicySpec, RuleSpec


@dataclass(frozen=True)
class Policy:
    """A validated policy with where it came from."""

    spec: PolicySpec
    path: str
    sha256: str

    @property
    def info(self) -> PolicyInfo:
        return PolicyInfo(name=self.spec.name, path=self.path, sha256=self.sha256, rules=len(self.spec.rules))


def evaluate(policies: Sequence[Policy], results: Sequence[AuditResult]) -> PolicyVerdict:
    """Judge every rule of every policy against the metrics in ``results``.

    Examples
    --------
    >>> from guardrail.core.types import MetricResult
    >>> rule = RuleSpec(id="R1", metric="m.x", op="ge", threshold=0.8, rationale="why")
    >>> policy = Policy(PolicySpec(schema_version=1, kind="policy", name="p", rules=(rule,)), "p.yaml", "0")
    >>> result = AuditResult("a", "m", AuditStatus.OK, (MetricResult("m.x", 0.7),))
    >>> evaluate([policy], [result]).outcomes[0].message
    'R1 failed: m.x = 0.7, required ≥ 0.8.'
    """
    metrics = [metric for result in results for metric in result.metrics]
    errored = [result for result in results if result.status is AuditStatus.ERROR]
    outcomes: list[RuleOutcome] = []
    for policy in policies:
        for rule in policy.spec.rules:
            outcomes += _judge_rule(policy.spec, rule, metrics, errored)
    return PolicyVerdict(outcomes=tuple(outcomes), policies=tuple(p.info for p in policies))


def matches(pattern: str, metric: MetricResult) -> bool:
    """A rule's ``metric`` names a key (every scope) or a key with one scope.

    >>> matches("f.x", MetricResult("f.x", 1.0, scope="sex")), matches("f.x[race]", MetricResult("f.x", 1.0, scope="sex"))
    (True, False)
    """
    return pattern == metric.ref or pattern == metric.key


def _judge_rule(
    policy: PolicySpec, rule: RuleSpec, metrics: Sequence[MetricResult], errored: Sequence[AuditResult]
) -> list[RuleOutcome]:
    matched = [metric for metric in metrics if matches(rule.metric, metric)]
    if not matched:
        why = f"no audit produced {rule.metric}"
        if errored:
            why += " (audit(s) " + ", ".join(f"{r.audit_id!r}" for r in errored) + " failed)"
        return [_missing(policy, rule, rule.metric, why)]
    outcomes = [_judge_metric(policy, rule, metric) for metric in matched]
    if "[" not in rule.metric:
        # A rule on every scope: a scope whose sibling metrics exist but this one is absent
        # is missing evidence, not a silent pass.
        namespace = rule.metric.split(".", 1)[0] + "."
        judged = {metric.scope for metric in matched}
        for scope in dict.fromkeys(m.scope for m in metrics if m.key.startswith(namespace) and m.scope):
            if scope not in judged:
                ref = f"{rule.metric}[{scope}]"
                outcomes.append(_missing(policy, rule, ref, f"no audit produced {ref}, though scope {scope!r} was audited"))
    return outcomes


def _outcome(
    policy: PolicySpec,
    rule: RuleSpec,
    metric: str,
    status: OutcomeStatus,
    reason: str,
    message: str,
    observed: float | None = None,
    severity: Severity | None = None,
) -> RuleOutcome:
    return RuleOutcome(
        rule_id=rule.id,
        policy=policy.name,
        metric=metric,
        severity=severity or Severity(rule.severity),
        status=status,
        reason=reason,
        expected=constraint(metric, rule.op, rule.threshold, rule.on, rule.tolerance),
        message=message,
        observed=observed,
        rationale=rule.rationale,
        reference=rule.reference,
    )


def _missing(policy: PolicySpec, rule: RuleSpec, metric: str, why: str) -> RuleOutcome:
    expected = constraint(metric, rule.op, rule.threshold, rule.on, rule.tolerance)
    if rule.on_missing == "skip":
        return _outcome(
            policy, rule, metric, OutcomeStatus.SKIPPED, "missing_evidence",
            f"{rule.id} skipped: {why}; required {expected}.",
        )
    severity = Severity.WARN if rule.on_missing == "warn" and rule.severity == "deny" else None
    return _outcome(
        policy, rule, metric, OutcomeStatus.ERROR, "missing_evidence",
        f"{rule.id} could not be evaluated: {why}; required {expected}.",
        severity=severity,
    )


def _judge_metric(policy: PolicySpec, rule: RuleSpec, metric: MetricResult) -> RuleOutcome:
    ref = metric.ref
    if metric.value is None:
        return _missing(policy, rule, ref, f"{ref} is undefined ({metric.reason})")
    expected = requirement(rule.op, rule.threshold, rule.on, rule.tolerance)
    seen = observation(ref, metric.value, metric.ci, rule.threshold)
    if rule.op == "present":
        return _outcome(policy, rule, ref, OutcomeStatus.PASS, "present", f"{rule.id} passed: {seen}.", metric.value)

    if rule.min_group_n is not None:
        small = [g for g in metric.by_group if g.n < rule.min_group_n]
        if small:
            names = ", ".join(f"{g.group!r} (n={g.n})" for g in small[:3]) + (", …" if len(small) > 3 else "")
            without_small = _disparity_without(metric, {g.group for g in small})
            if without_small is not None and _fails_on_worse_side(rule, metric, without_small):
                return _outcome(
                    policy, rule, ref, OutcomeStatus.FAIL, "violated",
                    f"{rule.id} failed: {seen}; even without the group(s) below the minimum of "
                    f"{rule.min_group_n} ({names}) it is {fmt(without_small, rule.threshold)}, required {expected}.",
                    without_small,
                )
            return _inconclusive(
                policy, rule, ref, metric.value,
                f"{rule.id} inconclusive: {seen}, but group(s) {names} are below the minimum of "
                f"{rule.min_group_n}; required {expected}.",
                "small_group",
            )

    if rule.on == "value":
        bounds = (metric.value, metric.value)
    elif metric.ci is None:
        return _missing(policy, rule, ref, f"{ref} has no confidence interval to judge {rule.on} on")
    elif rule.on == "ci_low":
        bounds = (metric.ci.low, metric.ci.low)
    elif rule.on == "ci_high":
        bounds = (metric.ci.high, metric.ci.high)
    else:  # worst: pass only if the whole interval passes
        bounds = (metric.ci.low, metric.ci.high)

    passes = [_satisfies(rule, b) for b in bounds]
    judged = bounds[0] if not passes[0] else bounds[1]
    if all(passes):
        return _outcome(policy, rule, ref, OutcomeStatus.PASS, "satisfied", f"{rule.id} passed: {seen}, required {expected}.", judged)
    if any(passes):
        return _inconclusive(
            policy, rule, ref, metric.value,
            f"{rule.id} inconclusive: {seen} straddles the threshold; required {expected}.",
            "interval_straddles",
        )
    return _outcome(
        policy, rule, ref, OutcomeStatus.FAIL, "violated",
        f"{rule.id} failed: {seen}, required {expected}.", judged,
    )


def _inconclusive(policy: PolicySpec, rule: RuleSpec, ref: str, observed: float, message: str, reason: str) -> RuleOutcome:
    severity = Severity.WARN if policy.inconclusive == "warn" and rule.severity == "deny" else None
    return _outcome(policy, rule, ref, OutcomeStatus.INCONCLUSIVE, reason, message, observed, severity)


def _disparity_without(metric: MetricResult, excluded: set[str]) -> float | None:
    """The between-groups disparity over the groups not in ``excluded``, when the metric says
    how it aggregates (``details["aggregation"]``) and at least two such groups have values.

    For a worst-case disparity over several rates (equalized odds) this is computed on the
    rate shown in ``by_group``, a bound on the side of the violation.
    """
    aggregation = metric.details.get("aggregation")
    values = [g.value for g in metric.by_group if g.group not in excluded and g.value is not None]
    if aggregation not in ("difference", "ratio") or len(values) < 2:
        return None
    if aggregation == "difference":
        return max(values) - min(values)
    return min(values) / max(values) if max(values) > 0 else None


def _fails_on_worse_side(rule: RuleSpec, metric: MetricResult, bound: float) -> bool:
    """Whether ``bound`` fails the rule in the direction that removing groups can only improve.

    Adding groups back can only widen a difference and shrink a ratio, so a difference that
    fails an upper limit, or a ratio that fails a lower limit, fails with them too.
    """
    aggregation = metric.details.get("aggregation")
    upper_limit = rule.op in ("le", "lt")
    lower_limit = rule.op in ("ge", "gt")
    if (aggregation == "difference" and upper_limit) or (aggregation == "ratio" and lower_limit):
        return not _satisfies(rule, bound)
    return False


def _satisfies(rule: RuleSpec, x: float) -> bool:
    threshold = rule.threshold
    if rule.op == "between":
        assert isinstance(threshold, tuple)
        return threshold[0] <= x <= threshold[1]
    assert isinstance(threshold, float | int)
    return {
        "le": x <= threshold,
        "ge": x >= threshold,
        "lt": x < threshold,
        "gt": x > threshold,
        # a relative epsilon keeps `eq 0.3 ± 0.1` true at 0.4 despite binary rounding
        "eq": abs(x - threshold) <= rule.tolerance + 1e-12 * max(1.0, abs(threshold)),
    }[rule.op]


__all__ = ["Policy", "evaluate", "matches", "fmt"]
