"""Evaluate policy rules against audit results.

A pure function: no I/O, no printing. Missing evidence never passes: a metric that is
absent, undefined, or from an errored audit yields an ``error`` outcome (or ``skipped`` /
a warning when the rule says so); an interval that straddles the threshold, a group
smaller than the rule's ``min_group_n``, or a metric left undefined because a group was
below the auditor's minimum size (reason ``small_group...``), yields ``inconclusive``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from guardrail.core.types import (
    SMALL_GROUP,
    AuditResult,
    AuditStatus,
    Interval,
    MetricResult,
    OutcomeStatus,
    PolicyInfo,
    PolicyVerdict,
    Requirement,
    RuleOutcome,
    Severity,
    SourceLocation,
)
from guardrail.core.vocab import MISSING_EVIDENCE, UNDERPOWERED
from guardrail.policy.corrections import Adjustment, adjust
from guardrail.policy.sentences import constraint, fmt, observation, requirement
from guardrail.spec.models import PolicySpec, RuleSpec
from guardrail.spec.packs import pack_reference

if TYPE_CHECKING:
    from guardrail.spec.loader import LoadedPolicy




@dataclass(frozen=True)
class Policy:
    """A validated policy with where it came from."""

    spec: PolicySpec
    path: str
    sha256: str
    locations: Mapping[str, SourceLocation] = dataclasses.field(default_factory=dict)
    """Where each rule (by id) is written; inherited rules point into the file that defines them."""

    @classmethod
    def from_loaded(cls, loaded: LoadedPolicy) -> Policy:
        """The policy of a file read by :func:`guardrail.spec.loader.load_policy`, with each rule's location.

        A shipped pack is named as ``guardrail:<name>`` (as in provenance), not by its installed path;
        its rules' locations stay real files, so SARIF can point into them."""
        return cls(
            spec=loaded.policy,
            path=pack_reference(loaded.path) or str(loaded.path),
            sha256=loaded.sha256,
            locations={rule_id: SourceLocation(str(path), line) for rule_id, (path, line) in loaded.rule_lines.items()},
        )

    @property
    def info(self) -> PolicyInfo:
        return PolicyInfo(name=self.spec.name, path=self.path, sha256=self.sha256, rules=len(self.spec.rules))


OWN_SCOPES: tuple[str, ...] = ("data.", "robustness.")
"""Key prefixes whose keys each have scopes of their own (the data audit's: per column, per
declared population, per intersection; the robustness audit's: per probe, strength and
perturbation), so that a sibling's scope is no evidence that the
rule's key should have it; the auditor's catalog says which scopes each key is reported in."""


def evaluate(policies: Sequence[Policy], results: Sequence[AuditResult], *, today: date | None = None) -> PolicyVerdict:
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
    day = today or date.today()
    outcomes: list[RuleOutcome] = []
    for policy in policies:
        adjustments = _adjustments(policy.spec, metrics)
        for rule in policy.spec.rules:
            judged = _judge_rule(policy.spec, rule, metrics, errored, adjustments)
            location = policy.locations.get(rule.id)
            outcomes += [dataclasses.replace(_apply_waiver(rule, o, day), location=location) for o in judged]
    return PolicyVerdict(outcomes=tuple(outcomes), policies=tuple(p.info for p in policies))


def _adjustments(policy: PolicySpec, metrics: Sequence[MetricResult]) -> dict[tuple[str, str], Adjustment]:
    """The corrected tail of every interval-judged (rule, metric) comparison of ``policy``."""
    if policy.correction == "none":
        return {}
    family = [
        (rule, metric)
        for rule in policy.rules
        if rule.on != "value" and rule.op not in ("present", "eq")
        for metric in metrics
        if matches(rule.metric, metric) and metric.value is not None and metric.ci is not None and metric.ci.quantiles
    ]
    return {
        (rule.id, metric.ref): adjustment
        for (rule, metric), adjustment in zip(family, adjust(policy.correction, family), strict=True)
    }


def matches(pattern: str, metric: MetricResult) -> bool:
    """A rule's ``metric`` names a key (every scope) or a key with one scope.

    >>> matches("f.x", MetricResult("f.x", 1.0, scope="sex")), matches("f.x[race]", MetricResult("f.x", 1.0, scope="sex"))
    (True, False)
    """
    return pattern == metric.ref or pattern == metric.key


def _judge_rule(
    policy: PolicySpec,
    rule: RuleSpec,
    metrics: Sequence[MetricResult],
    errored: Sequence[AuditResult],
    adjustments: dict[tuple[str, str], Adjustment],
) -> list[RuleOutcome]:
    matched = [metric for metric in metrics if matches(rule.metric, metric)]
    if not matched:
        why = f"no audit produced {rule.metric}"
        if errored:
            why += " (audit(s) " + ", ".join(f"{r.audit_id!r}" for r in errored) + " failed)"
        return [_missing(policy, rule, rule.metric, why)]
    outcomes = [_judge_metric(policy, rule, metric, adjustments.get((rule.id, metric.ref))) for metric in matched]
    outcomes += [warning for metric in matched if (warning := _underpowered(policy, rule, metric)) is not None]
    if "[" not in rule.metric and any(metric.scope for metric in matched) and not rule.metric.startswith(OWN_SCOPES):
        # A rule on every scope of a per-scope metric: a scope whose sibling metrics exist
        # but this one is absent is missing evidence, not a silent pass. (A metric that is
        # only ever reported unscoped, such as a model-wide epsilon, has no scopes to miss.)
        # Siblings share the key up to its last dot: fairness.* for fairness.dp, but
        # federated.fairness.* (scoped by hospital and attribute) are not siblings of
        # federated.epsilon (scoped by hospital), whose scopes they would never have.
        family = rule.metric.rpartition(".")[0]
        judged = {metric.scope for metric in matched}
        for scope in dict.fromkeys(m.scope for m in metrics if m.key.rpartition(".")[0] == family and m.scope):
            if scope not in judged:
                ref = f"{rule.metric}[{scope}]"
                outcomes.append(_missing(policy, rule, ref, f"no audit produced {ref}, though scope {scope!r} was audited"))
    return outcomes


def _apply_waiver(rule: RuleSpec, outcome: RuleOutcome, today: date) -> RuleOutcome:
    """A running waiver turns a non-passing outcome into ``waived``; an expired one only
    adds that it expired, and the outcome stands."""
    waiver = rule.waiver
    if waiver is None or outcome.status in (OutcomeStatus.PASS, OutcomeStatus.SKIPPED) or outcome.rule_id != rule.id:
        return outcome
    if today < waiver.expires:
        return dataclasses.replace(
            outcome,
            status=OutcomeStatus.WAIVED,
            reason=f"waived:{outcome.reason}",
            message=f"{outcome.message} Waived by {waiver.owner} until {waiver.expires.isoformat()}: {waiver.reason}",
        )
    return dataclasses.replace(
        outcome,
        message=f"{outcome.message} (A waiver by {waiver.owner} expired on {waiver.expires.isoformat()} and no longer applies.)",
    )


def _underpowered(policy: PolicySpec, rule: RuleSpec, metric: MetricResult) -> RuleOutcome | None:
    """A warning when the data cannot detect a gap as small as the rule's limit.

    For an upper limit on a difference, if the smallest gap detectable at 80% power
    (``details["detectable_gap"]``) exceeds the threshold, a pass would mean little: the
    audit cannot answer the question asked.
    """
    gap = metric.details.get("detectable_gap")
    if rule.op not in ("le", "lt") or not isinstance(gap, float | int) or not isinstance(rule.threshold, float | int):
        return None
    if gap <= rule.threshold:
        return None
    basis = metric.details.get("detectable_gap_basis") or {}
    groups = " and ".join(repr(g) for g in basis.get("groups", []))
    sizes = "/".join(str(n) for n in basis.get("n", []))
    return RuleOutcome(
        rule_id=f"{rule.id}:power",
        policy=policy.name,
        metric=metric.ref,
        severity=Severity.WARN,
        status=OutcomeStatus.FAIL,
        reason=UNDERPOWERED,
        expected=f"smallest detectable gap of {metric.ref} ≤ {fmt(rule.threshold)}",
        message=(
            f"{rule.id} cannot be answered with this data: the smallest gap detectable at 80% power "
            f"between groups {groups} (n={sizes}) is {fmt(gap)}, above the limit {fmt(rule.threshold)}; "
            "collect more data for the smallest groups or justify a wider limit."
        ),
        observed=None,  # a detectable gap is a property of the sample sizes, not an observation of the metric
        rationale=rule.rationale,
        reference=rule.reference,
        requirement=Requirement(rule.op, (float(rule.threshold),)),  # on the gap itself, a point
    )


def _outcome(
    policy: PolicySpec,
    rule: RuleSpec,
    metric: str,
    status: OutcomeStatus,
    reason: str,
    message: str,
    observed: float | None = None,
    severity: Severity | None = None,
    ci: Interval | None = None,
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
        ci=ci,
        rationale=rule.rationale,
        reference=rule.reference,
        requirement=requirement_of(rule),
    )


def requirement_of(rule: RuleSpec) -> Requirement | None:
    """What ``rule`` requires, as data; ``None`` for ``present``, which has no threshold.

    >>> requirement_of(RuleSpec(id="R", metric="m", op="between", threshold=(0.8, 1.25), on="worst", rationale="why"))
    Requirement(op='between', threshold=(0.8, 1.25), on='worst', tolerance=0.0)
    """
    threshold = rule.threshold
    if rule.op == "present" or threshold is None:
        return None
    numbers = tuple(float(t) for t in threshold) if isinstance(threshold, tuple) else (float(threshold),)
    return Requirement(rule.op, numbers, rule.on, rule.tolerance if rule.op == "eq" else 0.0)


def _missing(policy: PolicySpec, rule: RuleSpec, metric: str, why: str) -> RuleOutcome:
    expected = constraint(metric, rule.op, rule.threshold, rule.on, rule.tolerance)
    if rule.on_missing == "skip":
        return _outcome(
            policy, rule, metric, OutcomeStatus.SKIPPED, MISSING_EVIDENCE,
            f"{rule.id} skipped: {why}; required {expected}.",
        )
    severity = Severity.WARN if rule.on_missing == "warn" and rule.severity == "deny" else None
    return _outcome(
        policy, rule, metric, OutcomeStatus.ERROR, MISSING_EVIDENCE,
        f"{rule.id} could not be evaluated: {why}; required {expected}.",
        severity=severity,
    )


def _judge_metric(
    policy: PolicySpec, rule: RuleSpec, metric: MetricResult, adjustment: Adjustment | None = None
) -> RuleOutcome:
    ref = metric.ref
    if metric.value is None and rule.op != "present" and (metric.reason or "").startswith(SMALL_GROUP):
        # undefined because a group is below the auditor's minimum size: too small to judge,
        # like a group below min_group_n; never a pass, and not an error either
        return _inconclusive(
            policy, rule, ref, None,
            f"{rule.id} inconclusive: {ref} has no value ({metric.reason}); required "
            f"{requirement(rule.op, rule.threshold, rule.on, rule.tolerance)}.",
            SMALL_GROUP,
        )
    if metric.value is None:
        return _missing(policy, rule, ref, f"{ref} is undefined ({metric.reason})")
    expected = requirement(rule.op, rule.threshold, rule.on, rule.tolerance)
    ci = metric.ci
    if policy.correction != "none" and rule.on != "value" and ci is not None and not ci.quantiles:
        return _missing(policy, rule, ref, f"{ref} keeps no bootstrap quantiles to apply the {policy.correction} correction to")
    if adjustment is not None and ci is not None:
        ci = Interval(
            low=ci.bound(adjustment.tail, "low"),
            high=ci.bound(adjustment.tail, "high"),
            level=1 - 2 * adjustment.tail,
            method=f"{ci.method}, {adjustment.label()}",
        )
    seen = observation(ref, metric.value, ci, rule.threshold)
    if rule.op == "present":
        return _outcome(policy, rule, ref, OutcomeStatus.PASS, "present", f"{rule.id} passed: {seen}.", metric.value, ci=ci)

    if rule.min_group_n is not None:
        small = [g for g in metric.by_group if g.n < rule.min_group_n]
        if small:
            names = ", ".join(f"{g.group!r} (n={g.n})" for g in small[:3]) + (", …" if len(small) > 3 else "")
            without = _judged_without(policy, rule, metric, {g.group for g in small})
            if without is not None and _fails_on_worse_side(rule, metric, without):
                return _outcome(
                    policy, rule, ref, OutcomeStatus.FAIL, "violated",
                    f"{rule.id} failed: {seen}; even without the group(s) below the minimum of "
                    f"{rule.min_group_n} ({names}) it is {_shown(without, rule.threshold)}, required {expected}.",
                    without.value,  # what was judged: the larger groups' disparity and its own interval (None on `value`)
                    ci=without.ci,
                )
            return _inconclusive(
                policy, rule, ref, metric.value,
                f"{rule.id} inconclusive: {seen}, but group(s) {names} are below the minimum of "
                f"{rule.min_group_n}; required {expected}.",
                SMALL_GROUP,
                ci,
            )

    if rule.on == "value":
        bounds = (metric.value, metric.value)
    elif ci is None:
        return _missing(policy, rule, ref, f"{ref} has no confidence interval to judge {rule.on} on")
    elif rule.on == "ci_low":
        bounds = (ci.low, ci.low)
    elif rule.on == "ci_high":
        bounds = (ci.high, ci.high)
    else:  # worst: pass only if the whole interval passes
        bounds = (ci.low, ci.high)

    passes = [_satisfies(rule, b) for b in bounds]
    if all(passes):
        return _outcome(
            policy, rule, ref, OutcomeStatus.PASS, "satisfied",
            f"{rule.id} passed: {seen}, required {expected}.", metric.value, ci=ci,
        )
    if any(passes):
        return _inconclusive(
            policy, rule, ref, metric.value,
            f"{rule.id} inconclusive: {seen} straddles the threshold; required {expected}.",
            "interval_straddles",
            ci,
        )
    return _outcome(
        policy, rule, ref, OutcomeStatus.FAIL, "violated",
        f"{rule.id} failed: {seen}, required {expected}.", metric.value, ci=ci,
    )


def _inconclusive(
    policy: PolicySpec,
    rule: RuleSpec,
    ref: str,
    observed: float | None,
    message: str,
    reason: str,
    ci: Interval | None = None,
) -> RuleOutcome:
    severity = Severity.WARN if policy.inconclusive == "warn" and rule.severity == "deny" else None
    return _outcome(policy, rule, ref, OutcomeStatus.INCONCLUSIVE, reason, message, observed, severity, ci)


@dataclass(frozen=True)
class _Without:
    """A disparity over the groups left when the small ones are set aside, and the bounds a
    rule judges it on (the point for ``on: value``, else the auditor's interval's bounds)."""

    value: float
    bounds: tuple[float, ...]
    ci: Interval | None = None


def _judged_without(policy: PolicySpec, rule: RuleSpec, metric: MetricResult, excluded: set[str]) -> _Without | None:
    """The disparity without the ``excluded`` groups, as the rule must judge it, or ``None``
    when the metric carries no evidence for it.

    ``on: value`` recomputes it from the remaining groups' values. Any other ``on`` needs
    the interval of that reduced disparity, which only the auditor can build (on its own
    resamples): ``details["without_small"]``, for exactly this set of groups. Without it the
    rule cannot fail on the reduced groups' point estimate, and stays inconclusive.
    """
    if rule.on == "value":
        value = _disparity_without(metric, excluded)
        return None if value is None else _Without(value, (value,))
    reduced = metric.details.get("without_small")
    if not isinstance(reduced, Mapping) or set(reduced.get("excluded") or ()) != excluded:
        return None
    value, bounds = reduced.get("value"), reduced.get("ci")
    if not isinstance(value, float | int) or not isinstance(bounds, Mapping) or policy.correction != "none":
        return None  # no interval, or a corrected level the reduced interval keeps no quantiles for
    ci = Interval(float(bounds["low"]), float(bounds["high"]), float(bounds.get("level", 0.95)), str(bounds.get("method", "")))
    chosen = {"ci_low": (ci.low,), "ci_high": (ci.high,)}.get(rule.on, (ci.low, ci.high))
    return _Without(float(value), chosen, ci)


def _shown(without: _Without, threshold: float | tuple[float, float] | None) -> str:
    """The reduced disparity as the failure message states it, with its interval when judged on one."""
    if without.ci is None:
        return fmt(without.value, threshold)
    return f"{fmt(without.value, threshold)} ({fmt(without.ci.level * 100)}% CI {fmt(without.ci.low)}–{fmt(without.ci.high)})"


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


def _fails_on_worse_side(rule: RuleSpec, metric: MetricResult, without: _Without) -> bool:
    """Whether the reduced disparity fails the rule, on every bound the rule judges, in the
    direction that removing groups can only improve.

    Adding groups back can only widen a difference and shrink a ratio, so a difference that
    fails an upper limit, or a ratio that fails a lower limit, fails with them too.
    """
    aggregation = metric.details.get("aggregation")
    upper_limit = rule.op in ("le", "lt")
    lower_limit = rule.op in ("ge", "gt")
    if (aggregation == "difference" and upper_limit) or (aggregation == "ratio" and lower_limit):
        return not any(_satisfies(rule, bound) for bound in without.bounds)
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


__all__ = ["Policy", "evaluate", "fmt", "matches"]
