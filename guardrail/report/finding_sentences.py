"""One rule outcome as one sentence a reviewer can act on: the groups, the size of the gap
with its interval, and what the rule requires, in the units the metric is read in ("Female is
selected at 32% of Male's rate (95% CI 29–35%); the rule requires at least 80% over the whole
interval.").

Pure functions of an outcome and the metric it judged. The requirement comes from the
outcome's :class:`~guardrail.core.types.Requirement`; an outcome without one (a record written
before it was kept, or a ``present`` rule) says its ``expected`` text instead, and a sentence
that cannot be built from the record falls back to the outcome's own message.
:mod:`guardrail.report.findings` sorts and groups these sentences.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from markupsafe import Markup, escape

from guardrail.core.types import Interval, MetricResult, OutcomeStatus, Requirement, RuleOutcome
from guardrail.core.vocab import MISSING_EVIDENCE, SMALL_GROUP, UNDERPOWERED
from guardrail.report._format import Unit

Kind = Literal["text", "group", "scope", "num"]

RATE_WORDS: dict[str, str] = {
    "selection_rate": "selection rate",
    "tpr": "true-positive rate",
    "fpr": "false-positive rate",
    "fnr": "false-negative rate",
    "tnr": "true-negative rate",
    "precision": "precision",
    "accuracy": "accuracy",
    "auc": "AUC",
    "ece": "calibration error",
    "brier": "Brier score",
    "mean_prediction": "mean prediction",
}
"""Words for the per-group quantity a disparity compares."""

PERCENT_RATES = frozenset({"selection_rate", "tpr", "fpr", "fnr", "tnr", "precision", "accuracy"})
"""Quantities that are shares of people, shown in percent (their differences in percentage points)."""

LABELS: dict[str, str] = {
    "privacy.dp.epsilon": "the privacy loss ε",
    "privacy.dp.delta": "the privacy parameter δ",
    "federated.epsilon": "the privacy loss ε",
    "federated.epsilon_max": "the largest privacy loss ε of any hospital",
    "privacy.mia.lira.auc": "the membership-inference attack's AUC (LiRA)",
    "privacy.mia.lira.tpr_at_0_1pct_fpr": "the membership-inference attack's true-positive rate at 0.1% false positives",
    "privacy.dp_audit.claim_excess": "the canary audit's excess over the DP claim",
    "fairness.accuracy": "accuracy",
    "fairness.ece": "the calibration error",
    "federated.accuracy": "accuracy",
    "explain.coverage": "the share of requested rows explained",
}
"""Words for metrics a rule commonly judges; any other metric is named by its key."""

BOUND_WORDS: dict[str, str] = {
    "value": "",
    "ci_low": " at the interval's lower bound",
    "ci_high": " at the interval's upper bound",
    "worst": " over the whole interval",
}
OP_WORDS: dict[str, str] = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than", "eq": "equal to"}
"""Words for a rule's ``op``; ``BOUND_WORDS`` for the bound it is judged ``on``."""
_SMALL_RE = re.compile(r"group\(s\) (?P<names>.+?) are below the minimum of (?P<n>\d+)")
_REDUCED_RE = re.compile(
    r"even without the group\(s\) below the minimum of (?P<n>\d+) \((?P<names>.+?)\) it is (?P<value>\S+?)(?: \(|, required)"
)
_WHY_RE = re.compile(r"(?:could not be evaluated|skipped): (?P<why>.+); required ")


@dataclass(frozen=True)
class Segment:
    """A piece of a sentence: plain text, a group name, a scope or a number (kept on one line)."""

    kind: Kind
    text: str


def html(segments: Sequence[Segment]) -> Markup:
    """``segments`` as escaped HTML, group names in bold and numbers kept on one line."""
    tags = {"text": "{}", "group": "<strong>{}</strong>", "scope": "<code>{}</code>", "num": '<span class="nw">{}</span>'}
    return Markup("").join(Markup(tags[s.kind]).format(escape(s.text)) for s in segments)


def sentence(outcome: RuleOutcome, metrics: Mapping[str, MetricResult]) -> tuple[Segment, ...]:
    """``outcome`` as one sentence (segments), built from the metric it judged when the record
    has it; the outcome's own message when nothing better can be said."""
    metric = metrics.get(outcome.metric)
    need = outcome.requirement if _readable(outcome.requirement) else None
    if outcome.reason == UNDERPOWERED or outcome.reason.endswith(f":{UNDERPOWERED}"):
        built = _underpowered(outcome, metric, need)
    elif metric is None or outcome.reason.endswith(MISSING_EVIDENCE) or outcome.status is OutcomeStatus.ERROR:
        built = _missing(outcome, metric, need)
    else:
        built = _observed(outcome, metric, need)
    if built is None:
        return message_sentence(outcome)
    first = built[0]
    if first.kind == "text":
        built = (Segment("text", first.text[:1].upper() + first.text[1:]), *built[1:])
    return (*built, *_waiver(outcome))


def _readable(need: Requirement | None) -> bool:
    """Whether ``need`` can be put in words (else the outcome's ``expected`` text is said)."""
    if need is None or need.on not in BOUND_WORDS:
        return False
    return len(need.threshold) == 2 if need.op == "between" else need.op in OP_WORDS and len(need.threshold) == 1


def message_sentence(outcome: RuleOutcome) -> tuple[Segment, ...]:
    """``outcome`` said by its own message (without the rule id the heading says): for an outcome
    whose metric cannot be told apart from another audit's of the same ref."""
    return (Segment("text", _without_rule_id(outcome)),)


def _without_rule_id(outcome: RuleOutcome) -> str:
    """The outcome's message, without the leading ``RULE-ID failed:`` the rule heading already says."""
    message = outcome.message
    head = f"{outcome.rule_id} "
    if message.startswith(head) and ": " in message:
        rest = message.split(": ", 1)[1]
        return rest[:1].upper() + rest[1:]
    return message


def _waiver(outcome: RuleOutcome) -> tuple[Segment, ...]:
    for marker in (" Waived by ", " (A waiver by "):
        if marker in outcome.message:
            return (Segment("text", " " + marker.strip() + " " + outcome.message.split(marker, 1)[1]),)
    return ()


def _unit(metric: MetricResult | None) -> Unit:
    if metric is None:
        return Unit("plain")
    aggregation = metric.details.get("aggregation")
    if metric.key.endswith(("count", "min_group_size")):
        return Unit("count")
    if aggregation == "ratio":
        return Unit("percent")
    rate = _rate(metric)
    if aggregation == "difference":
        return Unit("points" if rate in PERCENT_RATES else "plain")
    return Unit("percent" if metric.key.rsplit(".", 1)[-1] in PERCENT_RATES else "plain")


def _rate(metric: MetricResult) -> str:
    """The per-group quantity a disparity compares (``tpr`` for an equalized-odds gap set by TPR)."""
    worst = metric.details.get("worst_rate")
    if isinstance(worst, str):
        return worst
    based = metric.details.get("based_on")
    if isinstance(based, Sequence) and not isinstance(based, str) and based:
        return str(based[0])
    name = metric.key.rsplit(".", 1)[-1]
    return re.sub(r"_(difference|ratio|gap)$", "", name)


def _requires(need: Requirement | None, unit: Unit, outcome: RuleOutcome) -> str:
    """The requirement in words: ``at least 80% over the whole interval``."""
    if need is None:
        return outcome.expected
    if need.op == "between":
        low, high = need.threshold
        return f"between {unit.show(low)} and {unit.show(high)}{BOUND_WORDS[need.on]}"
    text = f"{OP_WORDS[need.op]} {unit.show(need.threshold[0])}"
    if need.tolerance:
        text += f" ± {unit.bare(need.tolerance)}"
    return text + BOUND_WORDS[need.on]


def _ci_text(ci: Interval | None, unit: Unit, avoid: Sequence[float]) -> str:
    if ci is None:
        return ""
    level = f"{round(ci.level * 100, 4):g}% CI"
    return f"{level} {unit.bare(ci.low, avoid)}–{unit.show(ci.high, avoid)}"


def _tail(
    outcome: RuleOutcome, need: Requirement | None, unit: Unit, metric: MetricResult | None = None
) -> tuple[Segment, ...]:
    """What the rule says of the observation, after the observation itself."""
    requires = _requires(need, unit, outcome)
    status = outcome.status
    reason = outcome.reason.removeprefix("waived:")
    if reason == "interval_straddles":
        limit = _requires(need and dataclasses.replace(need, on="value"), unit, outcome)
        return (Segment("text", f"; the interval straddles the limit ({limit}), so it cannot be judged."),)
    if reason.startswith(SMALL_GROUP) and status is not OutcomeStatus.FAIL:
        small = _SMALL_RE.search(outcome.message)
        if small is not None:
            return (
                Segment("text", "; it cannot be judged: group(s) "),
                Segment("group", small["names"]),
                Segment("text", f" are below the rule's minimum of {small['n']} people (the rule requires {requires})."),
            )
        return (Segment("text", f"; it cannot be judged on groups this small (the rule requires {requires})."),)
    if status is OutcomeStatus.PASS or reason == "satisfied":
        return (Segment("text", f"; the rule requires {requires}, which holds."),)
    reduced = _REDUCED_RE.search(outcome.message)
    if reduced is not None:
        avoid = need.threshold if need is not None else ()
        value = _reduced_value(metric, reduced["value"])
        judged = unit.show(value, avoid) if value is not None else None
        on_interval = need is not None and need.on != "value" and outcome.ci is not None
        extra = f" ({_ci_text(outcome.ci, unit, avoid)})" if on_interval else ""  # the interval the rule was judged on
        lead = (Segment("text", "; without group(s) "), Segment("group", reduced["names"]),
                Segment("text", f", below the rule's minimum of {reduced['n']} people, "))
        if judged is None:
            return (*lead, Segment("text", f"it still fails: the rule requires {requires}."))
        return (*lead, Segment("text", "it is "), Segment("num", judged),
                Segment("text", f"{extra}, which still fails: the rule requires {requires}."))
    return (Segment("text", f"; the rule requires {requires}."),)


def _reduced_value(metric: MetricResult | None, said: str) -> float | None:
    """The disparity over the groups at or above a rule's minimum size, as the outcome's message
    states it (the number the engine judged), else the auditor's (``details["without_small"]``)."""
    try:
        return float(said.replace(",", ""))
    except ValueError:
        pass
    reduced = metric.details.get("without_small") if metric is not None else None
    if isinstance(reduced, Mapping) and isinstance(reduced.get("value"), float | int):
        return float(reduced["value"])
    return None


def _scope_lead(metric: MetricResult) -> tuple[Segment, ...]:
    if not metric.scope:
        return ()
    return (Segment("text", "By "), Segment("scope", metric.scope), Segment("text", ", "))


def _observed(outcome: RuleOutcome, metric: MetricResult, need: Requirement | None) -> tuple[Segment, ...] | None:
    unit = _unit(metric)
    avoid = need.threshold if need is not None else ()
    # judged without the small groups: the outcome holds that judged value and interval (said in the
    # tail); the lead states the metric over every group
    reduced = _REDUCED_RE.search(outcome.message) is not None
    value = metric.value if reduced or outcome.observed is None else outcome.observed
    ci = metric.ci if reduced else outcome.ci or metric.ci
    if value is None:
        return _undefined(outcome, metric, need, unit)
    if metric.key.endswith("min_group_size"):
        smallest = metric.details.get("smallest_group")
        if isinstance(smallest, str):
            body: tuple[Segment, ...] = (
                Segment("text", "the smallest group, "),
                Segment("group", smallest),
                Segment("text", ", has "),
                Segment("num", f"{unit.show(value, avoid)} people"),
            )
            return (*_scope_lead(metric), *body, *_tail(outcome, need, unit, metric))
    disparity = _disparity(metric, value, ci, unit, avoid)
    if disparity is not None:
        return (*_scope_lead(metric), *disparity, *_tail(outcome, need, unit, metric))
    return (*_generic(metric, value, ci, unit, avoid), *_tail(outcome, need, unit, metric))


def _disparity(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``Female is selected at 32% of Male's rate (95% CI 29–35%; 8.1% vs 26%)``, or ``None``
    when the metric does not say which groups it compares."""
    aggregation = metric.details.get("aggregation")
    low, high = metric.details.get("min_group"), metric.details.get("max_group")
    if aggregation not in ("ratio", "difference") or not isinstance(low, str) or not isinstance(high, str):
        return None
    values = {g.group: g.value for g in metric.by_group}
    low_value, high_value = values.get(low), values.get(high)
    if low_value is not None and high_value is not None and low_value > high_value:
        low, high, low_value, high_value = high, low, high_value, low_value
    rate = _rate(metric)
    words = RATE_WORDS.get(rate, rate.replace("_", " "))
    size = Segment("num", unit.show(value, avoid).replace(" points", " percentage points"))
    if aggregation == "ratio" and rate == "selection_rate":
        body = [Segment("group", low), Segment("text", " is selected at "), size, Segment("text", " of "),
                Segment("group", high), Segment("text", "'s rate")]
    elif aggregation == "ratio":
        body = [Segment("group", low), Segment("text", f"'s {words} is "), size, Segment("text", " of "),
                Segment("group", high), Segment("text", "'s")]
    else:
        body = [Segment("group", low), Segment("text", f"'s {words} is "), size, Segment("text", " below "),
                Segment("group", high), Segment("text", "'s")]
    extras = []
    if ci is not None:
        extras.append(_ci_text(ci, unit, avoid))
    if low_value is not None and high_value is not None:
        rate_unit = Unit("percent" if rate in PERCENT_RATES else "plain")
        extras.append(f"{rate_unit.show(low_value)} vs {rate_unit.show(high_value)}")
    if extras:
        body.append(Segment("text", " (" + "; ".join(extras) + ")"))
    return tuple(body)


def label(metric_key: str) -> str:
    """Words for a metric: from :data:`LABELS`, else the key itself."""
    return LABELS.get(metric_key, metric_key)


def _generic(metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]) -> tuple[Segment, ...]:
    words = label(metric.key)
    name = Segment("text", words[:1].upper() + words[1:]) if words != metric.key else Segment("scope", metric.key)
    scope = (Segment("text", " for "), Segment("scope", metric.scope)) if metric.scope else ()
    shown = unit.show(value, avoid)
    out = [name, *scope, Segment("text", " is "), Segment("num", shown)]
    extras = [_ci_text(ci, unit, avoid)] if ci is not None else []
    extras += _context(metric)
    if extras:
        out.append(Segment("text", " (" + "; ".join(extras) + ")"))
    return tuple(out)


def _context(metric: MetricResult) -> list[str]:
    """A few words that make a bare number readable (ε's accountant)."""
    accountant = metric.details.get("accountant")
    return [f"{accountant} accountant"] if isinstance(accountant, str) and metric.key.endswith("epsilon") else []


def _undefined(outcome: RuleOutcome, metric: MetricResult, need: Requirement | None, unit: Unit) -> tuple[Segment, ...]:
    words = label(metric.key)
    name = Segment("text", words) if words != metric.key else Segment("scope", metric.key)
    reason = (metric.reason or "no reason given").removeprefix(f"{SMALL_GROUP}: ")
    return (
        *_scope_lead(metric),
        name,
        Segment("text", f" has no value ({reason})"),
        *_tail(outcome, need, unit),
    )


def _missing(outcome: RuleOutcome, metric: MetricResult | None, need: Requirement | None) -> tuple[Segment, ...] | None:
    found = _WHY_RE.search(outcome.message)
    if found is None:
        return None
    unit = _unit(metric)
    requires = _requires(need, unit, outcome)
    why = found["why"]
    then = "the rule is skipped" if outcome.status is OutcomeStatus.SKIPPED else "the rule cannot pass without it"
    return (
        Segment("text", "No evidence for "),
        Segment("scope", outcome.metric),
        Segment("text", f": {why}; {then} (it requires {requires})."),
    )


def _underpowered(outcome: RuleOutcome, metric: MetricResult | None, need: Requirement | None) -> tuple[Segment, ...] | None:
    if metric is None or need is None or need.op == "between":
        return None
    gap = metric.details.get("detectable_gap")
    basis: Any = metric.details.get("detectable_gap_basis") or {}
    if not isinstance(gap, float | int) or not isinstance(basis, Mapping):
        return None
    unit = _unit(metric)
    groups = [str(g) for g in basis.get("groups") or []]
    sizes = "/".join(str(n) for n in basis.get("n") or [])
    power = basis.get("power", 0.8)
    power_text = f"{round(float(power) * 100):g}%" if isinstance(power, float | int) else "80%"
    between: list[Segment] = []
    if len(groups) == 2:
        between = [Segment("text", " between "), Segment("group", groups[0]), Segment("text", " and "),
                   Segment("group", groups[1]), Segment("text", f" (n={sizes})" if sizes else "")]
    return (
        *_scope_lead(metric),
        Segment("text", f"this data cannot detect a gap of {unit.show(need.threshold[0])} (the rule's limit): "
                        f"at {power_text} power the smallest detectable gap"),
        *between,
        Segment("text", " is "),
        Segment("num", unit.show(float(gap), need.threshold)),
        Segment("text", "; collect more data for these groups."),
    )


__all__ = ["BOUND_WORDS", "LABELS", "OP_WORDS", "RATE_WORDS", "Segment", "Unit", "html", "label", "message_sentence", "sentence"]
