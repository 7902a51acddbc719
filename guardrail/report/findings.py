"""The report's findings: every rule outcome as one sentence a reviewer can act on, sorted by
consequence and grouped by rule.

Each sentence (:mod:`guardrail.report.finding_sentences`) names the groups and the size of the
gap with its interval. Outcomes are sorted into :data:`TIERS` (blocking failures first, passes
last) and, within a tier, grouped by rule, so a rule's rationale is said once, in the first
tier it appears in, not once per scope.

Pure functions of a :class:`~guardrail.core.types.RunRecord`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from guardrail.core.types import MetricResult, RuleOutcome, RunRecord, Severity
from guardrail.core.verdict import display_status
from guardrail.report.finding_sentences import Segment, html, message_sentence, sentence


@dataclass(frozen=True)
class Tier:
    """How much a set of outcomes matters: its key, its heading, and whether it blocks."""

    key: str
    title: str
    blocking: bool


TIERS: tuple[Tier, ...] = (
    Tier("fail", "blocking", True),
    Tier("error", "blocking: no evidence to judge", True),
    Tier("inconclusive", "blocking: the data cannot tell", True),
    Tier("warning", "not blocking", False),
    Tier("note", "not blocking", False),
    Tier("waived", "not blocking while the waiver runs", False),
    Tier("skipped", "not judged", False),
    Tier("pass", "", False),
)
"""The order findings are shown in: by consequence, passes last (and collapsed)."""

UNGATED_TIERS: tuple[Tier, ...] = (
    Tier("fail", "rule not met", False),
    Tier("error", "no evidence to judge", False),
    Tier("inconclusive", "the data cannot tell", False),
    Tier("warning", "from warn-severity rules", False),
    Tier("note", "from info-severity rules", False),
    Tier("waived", "while the waiver runs", False),
    Tier("skipped", "not judged", False),
    Tier("pass", "", False),
)
""":data:`TIERS` for a record no gate was applied to (``gated=False``): nothing blocks, so no
heading says whether it does."""


@dataclass(frozen=True)
class Finding:
    """One outcome as one sentence."""

    outcome: RuleOutcome
    status: str
    """As shown (:func:`guardrail.core.verdict.display_status`)."""
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        """The sentence as plain text."""
        return "".join(s.text for s in self.segments)

    @property
    def html(self) -> Markup:
        """The sentence as escaped HTML, group names in bold and numbers kept on one line."""
        return html(self.segments)


@dataclass(frozen=True)
class RuleFindings:
    """The findings of one rule within one tier, with the rule's rationale when not said before."""

    rule_id: str
    policy: str
    severity: str
    findings: tuple[Finding, ...]
    rationale: str = ""
    reference: str = ""
    said_above: bool = False
    """Whether the rationale was already shown with this rule in a tier above."""


@dataclass(frozen=True)
class TierFindings:
    tier: Tier
    rules: tuple[RuleFindings, ...]

    @property
    def count(self) -> int:
        return sum(len(r.findings) for r in self.rules)


def findings(record: RunRecord, fail_on: Severity = Severity.DENY, gated: bool | None = None) -> tuple[TierFindings, ...]:
    """Every rule outcome of ``record`` as a sentence, in :data:`TIERS` order (empty tiers left out),
    grouped by rule in policy order; each rule's rationale is kept in the first tier it appears in
    (a rule's ``:power`` check shares the rule's rationale). With ``gated`` false (by default,
    ``record.gated``) the tiers are :data:`UNGATED_TIERS`, whose headings say nothing of blocking."""
    tiers = TIERS if (record.gated if gated is None else gated) else UNGATED_TIERS
    candidates = _metric_index(record.metrics())
    by_tier: dict[str, dict[tuple[str, str], list[Finding]]] = {t.key: {} for t in tiers}
    for outcome in record.verdict.outcomes:
        judged = _judged_metric(outcome, candidates.get(outcome.metric, ()))
        related = {ref: found[0] for ref, found in candidates.items() if len(found) == 1}  # e.g. the worst column's own metric
        segments = sentence(outcome, {**related, outcome.metric: judged} if judged is not None else {})
        if judged is None and len(candidates.get(outcome.metric, ())) > 1:
            segments = message_sentence(outcome)  # which audit's metric was judged cannot be told
        finding = Finding(outcome, display_status(outcome, fail_on), segments)
        by_tier[tier_of(outcome, fail_on)].setdefault((outcome.policy, outcome.rule_id), []).append(finding)
    said: set[tuple[str, str]] = set()
    out = []
    for tier in tiers:
        rules = []
        for key, found in by_tier[tier.key].items():
            first = found[0].outcome
            rationale = next((f.outcome.rationale for f in found if f.outcome.rationale), None) or ""
            reference = next((f.outcome.reference for f in found if f.outcome.reference), None) or ""
            rule = (key[0], base_rule(key[1]))  # a rule's power check shares the rule's rationale
            repeat = rule in said and bool(rationale or reference)
            rules.append(
                RuleFindings(
                    rule_id=key[1],
                    policy=first.policy,
                    severity=max((f.outcome.severity for f in found), key=_SEVERITY_ORDER.index).value,
                    findings=tuple(found),
                    rationale="" if repeat else rationale,
                    reference="" if repeat else reference,
                    said_above=repeat,
                )
            )
            if rationale or reference:
                said.add(rule)
        if rules:
            out.append(TierFindings(tier, tuple(rules)))
    return tuple(out)


_SEVERITY_ORDER = [Severity.INFO, Severity.WARN, Severity.DENY]


def tier_of(outcome: RuleOutcome, fail_on: Severity = Severity.DENY) -> str:
    """The key of the :data:`TIERS` entry ``outcome`` belongs to."""
    shown = display_status(outcome, fail_on)
    return shown if shown in {t.key for t in TIERS} else "warning"


def base_rule(rule_id: str) -> str:
    """The rule an outcome comes from: ``FAIR-002`` for its power check ``FAIR-002:power``."""
    return rule_id.split(":", 1)[0]


def _metric_index(metrics: Sequence[MetricResult]) -> dict[str, list[MetricResult]]:
    """Every metric of the record by ref; more than one when audits of the same kind both produce it."""
    index: dict[str, list[MetricResult]] = {}
    for metric in metrics:
        index.setdefault(metric.ref, []).append(metric)
    return index


def _judged_metric(outcome: RuleOutcome, candidates: Sequence[MetricResult]) -> MetricResult | None:
    """The metric ``outcome`` judged among those of its ref: the only one, or, when several audits
    produced the ref (an outcome does not say which), the one candidate whose value and interval
    are the outcome's; ``None`` when that cannot be told."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if outcome.observed is None:
        return None
    same = [m for m in candidates if m.value == outcome.observed]
    if len(same) > 1 and outcome.ci is not None:
        same = [m for m in same if m.ci is not None and (m.ci.low, m.ci.high) == (outcome.ci.low, outcome.ci.high)]
    return same[0] if len(same) == 1 else None


__all__ = ["TIERS", "UNGATED_TIERS", "Finding", "RuleFindings", "Tier", "TierFindings", "base_rule", "findings", "tier_of"]
