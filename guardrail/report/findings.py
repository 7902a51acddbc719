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
from guardrail.report.finding_sentences import Segment, html, sentence


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


def findings(record: RunRecord, fail_on: Severity = Severity.DENY) -> tuple[TierFindings, ...]:
    """Every rule outcome of ``record`` as a sentence, in :data:`TIERS` order (empty tiers left out),
    grouped by rule in policy order; each rule's rationale is kept in the first tier it appears in
    (a rule's ``:power`` check shares the rule's rationale)."""
    metrics = _metric_index(record.metrics())
    by_tier: dict[str, dict[tuple[str, str], list[Finding]]] = {t.key: {} for t in TIERS}
    for outcome in record.verdict.outcomes:
        finding = Finding(outcome, display_status(outcome, fail_on), sentence(outcome, metrics))
        by_tier[tier_of(outcome, fail_on)].setdefault((outcome.policy, outcome.rule_id), []).append(finding)
    said: set[tuple[str, str]] = set()
    out = []
    for tier in TIERS:
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


def _metric_index(metrics: Sequence[MetricResult]) -> dict[str, MetricResult]:
    index: dict[str, MetricResult] = {}
    for metric in metrics:
        index.setdefault(metric.ref, metric)
    return index


__all__ = ["TIERS", "Finding", "RuleFindings", "Tier", "TierFindings", "base_rule", "findings", "tier_of"]
