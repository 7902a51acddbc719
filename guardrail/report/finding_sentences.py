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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from markupsafe import Markup, escape

from guardrail.core.scopes import scope_part
from guardrail.core.types import GroupValue, Interval, MetricResult, OutcomeStatus, Requirement, RuleOutcome
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
    "base_rate": "positive-label base rate",
    "missing_rate": "missing rate",
}
"""Words for the per-group quantity a disparity compares."""

PERCENT_RATES = frozenset({"selection_rate", "tpr", "fpr", "fnr", "tnr", "precision", "accuracy", "base_rate", "missing_rate"})
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
    "robustness.counterfactual_flip_rate": "the counterfactual flip rate",
    "robustness.counterfactual_flip_rate_difference": "the gap in counterfactual flip rate between groups",
    "robustness.counterfactual_score_change": "the mean counterfactual change of the positive-class score",
    "robustness.coverage": "the share of documents a probe applies to",
    "robustness.perturbation_flip_rate": "the perturbation flip rate",
    "robustness.perturbation_flip_rate_difference": "the gap in perturbation flip rate between groups",
    "robustness.accuracy_drop": "the accuracy drop under perturbation",
    "robustness.site_style_flip_rate": "the site-style flip rate",
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
        built = _observed(outcome, metric, need, metrics)
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
    if metric.key in DATA_UNITS:
        return Unit(DATA_UNITS[metric.key])
    if metric.key in ROBUSTNESS_UNITS:
        return Unit(ROBUSTNESS_UNITS[metric.key])
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


def _observed(
    outcome: RuleOutcome, metric: MetricResult, need: Requirement | None, metrics: Mapping[str, MetricResult] | None = None
) -> tuple[Segment, ...] | None:
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
    data = data_body(metric, value, ci, unit, avoid, metrics) if metric.key.startswith("data.") else None
    if data is not None:
        return (*data, *_tail(outcome, need, unit, metric))
    robust = robustness_body(metric, value, ci, unit, avoid) if metric.key.startswith("robustness.") else None
    if robust is not None:
        return (*_capitalised(robust), *_tail(outcome, need, unit, metric))
    disparity = _disparity(metric, value, ci, unit, avoid)
    if disparity is not None:
        return (*_scope_lead(metric), *disparity, *_tail(outcome, need, unit, metric))
    return (*_generic(metric, value, ci, unit, avoid), *_tail(outcome, need, unit, metric))


def _disparity(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float], words: str | None = None
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
    selection = words is None and rate == "selection_rate"
    words = words or RATE_WORDS.get(rate, rate.replace("_", " "))
    size = Segment("num", unit.show(value, avoid).replace(" points", " percentage points"))
    if aggregation == "ratio" and selection:
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


# -- the data audit: one sentence per metric, with or without a rule -------------------------------------------------

DATA_UNITS: dict[str, Literal["percent", "points", "count", "plain"]] = {
    "data.group_share": "percent",
    "data.representation_ratio": "plain",
    "data.small_cells": "count",
    "data.base_rate": "percent",
    "data.base_rate_difference": "points",
    "data.base_rate_ratio": "percent",
    "data.conflicting_labels": "percent",
    "data.missing_rate": "percent",
    "data.missing_rate_difference": "points",
    "data.max_missing_rate_difference": "points",
    "data.proxy_nmi": "plain",
    "data.max_proxy_nmi": "plain",
    "data.shift_js": "plain",
    "data.max_shift_js": "plain",
    "data.shifted_features": "count",
    "data.duplicate_rows": "percent",
    "data.leaked_rows": "percent",
}
"""How each metric of the data audit reads: shares of rows in percent (their gaps in points),
the representation ratio, NMI and Jensen–Shannon distances as plain numbers, counts as counts."""

BASE_RATE = "positive-label base rate"
NMI = "normalised mutual information"
JS = "Jensen–Shannon distance"
LISTED = 5
"""Names listed in one sentence before the rest are counted (small cells, proxies, shifted columns)."""

DataSentence = Callable[[MetricResult, float, Interval | None, Unit, Sequence[float]], "tuple[Segment, ...] | None"]


def describe(metric: MetricResult, related: Mapping[str, MetricResult] | None = None) -> tuple[Segment, ...] | None:
    """What ``metric`` of a data or robustness audit shows, as one sentence with no rule (the
    sections' summaries and the model card); ``None`` without a value (see
    :func:`robustness_undefined`) or for a key it does not know.
    ``related``: the audit's other metrics by ref, from which a largest gap names its groups."""
    if metric.value is None:
        return None
    if metric.key in ROBUSTNESS_UNITS:
        body = robustness_body(metric, metric.value, metric.ci, _unit(metric), (), related)
    elif metric.key in DATA_UNITS:
        body = data_body(metric, metric.value, metric.ci, _unit(metric), (), related)
    else:
        return None
    if body is None:
        return None
    return (*_capitalised(body), Segment("text", "."))


def data_body(
    metric: MetricResult,
    value: float,
    ci: Interval | None,
    unit: Unit,
    avoid: Sequence[float],
    related: Mapping[str, MetricResult] | None = None,
) -> tuple[Segment, ...] | None:
    """The observation of a ``data.*`` metric (before what a rule requires of it); ``None`` when
    its key or details are not those of the data audit's contract. With ``related`` (metrics by
    ref), the largest gap in missingness names its column's groups and rates."""
    if metric.key == "data.max_missing_rate_difference" and related:
        worst = _worst_missing(metric, related)
        if worst is not None:
            named = _missing_gap(worst, value, None, unit, avoid)
            if named is not None:
                size = unit.show(value, avoid).replace(" points", " percentage points")
                return (*_by(metric.scope), *named[:-1], Segment("text", "'s: the largest gap of any column, "), Segment("num", size),
                        *_paren(_ci_text(ci, unit, avoid)))  # fmt: skip
    build = _DATA_SENTENCES.get(metric.key.removeprefix("data."))
    return build(metric, value, ci, unit, avoid) if build is not None else None


def _capitalised(segments: Sequence[Segment]) -> tuple[Segment, ...]:
    first = segments[0]
    if first.kind != "text":
        return tuple(segments)
    return (Segment("text", first.text[:1].upper() + first.text[1:]), *segments[1:])


def _qualified(scope: str | None) -> tuple[str | None, str | None]:
    """A data metric's scope split into its grouping (as written in the scope) and its column
    (unescaped): ``sex/column=chol`` gives ``("sex", "chol")``, ``column=age`` ``(None, "age")``."""
    if scope is None:
        return None, None
    head, found, column = scope.rpartition("column=")
    if not found or (head and not head.endswith("/")):
        return scope, None
    return head.removesuffix("/") or None, unquote(column)


def _by(grouping: str | None) -> tuple[Segment, ...]:
    return () if not grouping else (Segment("text", "By "), Segment("scope", grouping), Segment("text", ", "))


def _names(names: Sequence[str], kind: Kind) -> list[Segment]:
    """``a``, ``b`` and 3 more: at most :data:`LISTED` names, each a segment of ``kind``."""
    out: list[Segment] = []
    for index, name in enumerate(names[:LISTED]):
        if index:
            out.append(Segment("text", ", "))
        out.append(Segment(kind, name))
    if len(names) > LISTED:
        out.append(Segment("text", f" and {len(names) - LISTED} more"))
    return out


def _paren(*parts: str) -> list[Segment]:
    shown = [p for p in parts if p]
    return [Segment("text", " (" + "; ".join(shown) + ")")] if shown else []


def _by_value(metric: MetricResult) -> dict[str, GroupValue]:
    return {g.group: g for g in metric.by_group}


def _defined(metric: MetricResult) -> list[GroupValue]:
    return [g for g in metric.by_group if g.value is not None]


def _rows(part: object, whole: object) -> str:
    """``210 of 10,500 rows`` from two counts in a metric's details, or nothing."""
    if isinstance(part, int) and isinstance(whole, int) and not isinstance(part, bool):
        return f"{part:,} of {whole:,} rows"
    return ""


def _p(value: object) -> str:
    return f"{float(value):.2g}" if isinstance(value, float | int) and not isinstance(value, bool) else "?"


def _representation(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``By sex, Female makes up 33% of the audit rows (95% CI 32–34%) against 51% of the
    population (US Census 1990): a ratio of 0.65 (95% CI 0.62–0.68)``."""
    group, population, source = (metric.details.get(k) for k in ("lowest_group", "population", "source"))
    if not isinstance(group, str):
        return None
    found = _by_value(metric).get(group)
    expected = population.get(group) if isinstance(population, Mapping) else None
    cited = f" ({source})" if isinstance(source, str) and source else ""
    percent = Unit("percent")
    out: list[Segment] = [*_by(metric.scope), Segment("group", group)]
    if found is not None and found.value is not None and isinstance(expected, float | int):
        share = float(expected)
        share_ci = found.ci and Interval(found.ci.low * share, found.ci.high * share, found.ci.level, found.ci.method)
        out += [Segment("text", " makes up "), Segment("num", percent.show(found.value * share)), Segment("text", " of the audit rows"),
                *_paren(_ci_text(share_ci, percent, ())), Segment("text", " against "), Segment("num", percent.show(share)),
                Segment("text", f" of the population{cited}")]  # fmt: skip
    else:
        out.append(Segment("text", f" is the least represented group against the population{cited}"))
    return (*out, Segment("text", ": a ratio of "), Segment("num", unit.show(value, avoid)), *_paren(_ci_text(ci, unit, avoid)))


def _group_share(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``By sex+race, the smallest group, Female+Other, makes up 1.2% of the audit rows (95% CI 0.9–1.6%; 41 rows)``."""
    group = metric.details.get("smallest_group")
    if not isinstance(group, str):
        return None
    found = _by_value(metric).get(group)
    rows = f"{found.n:,} rows" if found is not None else ""
    return (
        *_by(metric.scope), Segment("text", "the smallest group, "), Segment("group", group), Segment("text", ", makes up "),
        Segment("num", unit.show(value, avoid)), Segment("text", " of the audit rows"), *_paren(_ci_text(ci, unit, avoid), rows),
    )  # fmt: skip


def _small_cells(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``By sex+race, 3 of the 12 cells have fewer than 30 rows (2 of them empty): Female+Other (12 rows), …``."""
    cells, empty, minimum = (metric.details.get(k) for k in ("cells", "empty_cells", "min_group_size"))
    if not isinstance(minimum, int):
        return None
    of = f" of the {cells:,} cells" if isinstance(cells, int) else " cells"
    if value == 0:
        return (*_by(metric.scope), Segment("text", f"every one{of} has at least {minimum:,} rows"))
    small = sorted((g for g in metric.by_group if g.n < minimum), key=lambda g: (g.n, g.group))
    have = "has" if value == 1 else "have"
    out = [*_by(metric.scope), Segment("num", unit.show(value, avoid)), Segment("text", f"{of} {have} fewer than {minimum:,} rows")]
    if isinstance(empty, int) and empty:
        out.append(Segment("text", f" ({empty:,} of them empty)"))
    if small:
        out.append(Segment("text", ": "))
        for index, cell in enumerate(small[:LISTED]):
            out += [Segment("text", ", " if index else ""), Segment("group", cell.group), Segment("text", f" ({cell.n:,} rows)")]
        if len(small) > LISTED:
            out.append(Segment("text", f" and {len(small) - LISTED} more"))
    return tuple(s for s in out if s.text)


def _base_rate(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``By sex, the positive-label base rate is 24% (95% CI 23–25%); it ranges from 11% for Female to 31% for Male``."""
    out: list[Segment] = [*_by(metric.scope), Segment("text", f"the {BASE_RATE} is "), Segment("num", unit.show(value, avoid)),
                          *_paren(_ci_text(ci, unit, avoid))]  # fmt: skip
    defined = _defined(metric)
    if len(defined) > 1:
        low = min(defined, key=lambda g: g.value or 0.0)
        high = max(defined, key=lambda g: g.value or 0.0)
        out += [Segment("text", "; it ranges from "), Segment("num", unit.show(low.value or 0.0)), Segment("text", " for "),
                Segment("group", low.group), Segment("text", " to "), Segment("num", unit.show(high.value or 0.0)),
                Segment("text", " for "), Segment("group", high.group)]  # fmt: skip
    return tuple(out)


def _base_rate_gap(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``By sex, Female's positive-label base rate is 20 percentage points below Male's (95% CI …; 11% vs 31%)``."""
    body = _disparity(metric, value, ci, unit, avoid, words=BASE_RATE)
    return None if body is None else (*_scope_lead(metric), *body)


def _conflicting(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``1.1% of the audit rows (95% CI …) share every value with a row of another label (115 of 10,500 rows)``."""
    rows = _rows(metric.details.get("conflicting_rows"), metric.details.get("rows"))
    return (Segment("num", unit.show(value, avoid)), Segment("text", " of the audit rows"), *_paren(_ci_text(ci, unit, avoid)),
            Segment("text", " share every examined value with a row that has a different label"), *_paren(rows))  # fmt: skip


def _missing_rate(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``chol is missing for 33% of the audit rows (95% CI 31–35%), most often for VA Long Beach (85% of its rows)``."""
    _, column = _qualified(metric.scope)
    if column is None:
        return None
    out: list[Segment] = [Segment("scope", column), Segment("text", " is missing for "), Segment("num", unit.show(value, avoid)),
                          Segment("text", " of the audit rows"), *_paren(_ci_text(ci, unit, avoid))]  # fmt: skip
    defined = _defined(metric)
    if len(defined) > 1:
        worst = max(defined, key=lambda g: g.value or 0.0)
        out += [Segment("text", ", most often for "), Segment("group", worst.group),
                Segment("text", f" ({unit.show(worst.value or 0.0)} of its rows)")]  # fmt: skip
    return tuple(out)


def _missing_gap(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``chol is missing for 85% of VA Long Beach's rows against 2% of Cleveland's (gap 83 points, 95% CI 77–88 points)``."""
    _, column = _qualified(metric.scope)
    low, high = metric.details.get("min_group"), metric.details.get("max_group")
    if column is None or not isinstance(low, str) or not isinstance(high, str):
        return None
    values = _by_value(metric)
    low_value, high_value = values[low].value if low in values else None, values[high].value if high in values else None
    if low_value is None or high_value is None:
        return None
    if low_value > high_value:
        low, high, low_value, high_value = high, low, high_value, low_value
    rate = Unit("percent")
    gap = ", ".join(p for p in (f"gap {unit.show(value, avoid)}", _ci_text(ci, unit, avoid)) if p)
    return (Segment("scope", column), Segment("text", " is missing for "), Segment("num", rate.show(high_value)), Segment("text", " of "),
            Segment("group", high), Segment("text", "'s rows against "), Segment("num", rate.show(low_value)), Segment("text", " of "),
            Segment("group", low), Segment("text", f"'s ({gap})"))  # fmt: skip


def _worst_missing(metric: MetricResult, related: Mapping[str, MetricResult]) -> MetricResult | None:
    """The ``data.missing_rate_difference`` of the column a largest gap in missingness names."""
    worst = metric.details.get("worst_feature")
    if not isinstance(worst, str) or metric.scope is None:
        return None
    return related.get(f"data.missing_rate_difference[{metric.scope}/column={scope_part(worst)}]")


def _max_missing_gap(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``By hospital, the largest gap in missingness between groups is for chol: 83 percentage points (95% CI 77–88 points)``."""
    worst, missing = metric.details.get("worst_feature"), metric.details.get("features_with_missing")
    if not worst or (isinstance(missing, Sequence) and not missing):
        return (*_by(metric.scope), Segment("text", "no examined column has a missing value"))
    size = unit.show(value, avoid).replace(" points", " percentage points")
    return (*_by(metric.scope), Segment("text", "the largest gap in missingness between groups is for "), Segment("scope", str(worst)),
            Segment("text", ": "), Segment("num", size), *_paren(_ci_text(ci, unit, avoid)))  # fmt: skip


def _proxy(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``zip carries information about race: normalised mutual information 0.31 (95% CI 0.29–0.33)``."""
    sensitive, column = _qualified(metric.scope)
    if sensitive is None or column is None:
        return None
    return (Segment("scope", column), Segment("text", " carries information about "), Segment("scope", unquote(sensitive)),
            Segment("text", f": {NMI} "), Segment("num", unit.show(value, avoid)), *_paren(_ci_text(ci, unit, avoid)))  # fmt: skip


def _max_proxy(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``Of the examined columns, zip carries the most information about race: normalised mutual
    information 0.31 (95% CI …); 2 reach the proxy threshold of 0.1: zip, surname``."""
    feature, proxies, threshold = (metric.details.get(k) for k in ("feature", "proxies", "threshold"))
    if not isinstance(feature, str) or metric.scope is None:
        return None
    out: list[Segment] = [Segment("text", "of the examined columns, "), Segment("scope", feature),
                          Segment("text", " carries the most information about "), Segment("scope", unquote(metric.scope)),
                          Segment("text", f": {NMI} "), Segment("num", unit.show(value, avoid)), *_paren(_ci_text(ci, unit, avoid))]  # fmt: skip
    if isinstance(threshold, float | int) and isinstance(proxies, Sequence) and not isinstance(proxies, str):
        limit = unit.show(float(threshold))
        if proxies:
            reach = "reaches" if len(proxies) == 1 else "reach"
            out += [Segment("text", f"; {len(proxies)} {reach} the proxy threshold of {limit}: "), *_names([str(p) for p in proxies], "scope")]
        else:
            out.append(Segment("text", f"; none reaches the proxy threshold of {limit}"))
    return tuple(out)


def _shift(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``age's distribution differs between the training and audit data by a Jensen–Shannon
    distance of 0.21 (95% CI …; chi-square test of homogeneity: p = 1.2e-08, Holm-adjusted p = 3.4e-07)``,
    or, by group, ``By sex, age shifted most within Female: …``."""
    grouping, column = _qualified(metric.scope)
    if column is None:
        return None
    distance = Segment("num", unit.show(value, avoid))
    if grouping is not None:
        defined = _defined(metric)
        if not defined:
            return None
        worst = max(defined, key=lambda g: g.value or 0.0)
        adjusted = metric.details.get("p_adjusted")
        p = _p(adjusted.get(worst.group)) if isinstance(adjusted, Mapping) and worst.group in adjusted else ""
        return (*_by(grouping), Segment("scope", column), Segment("text", " shifted most within "), Segment("group", worst.group),
                Segment("text", f": {JS} "), distance,
                *_paren(_ci_text(ci, unit, avoid), f"Holm-adjusted p = {p}" if p else ""))  # fmt: skip
    test, p_value, adjusted = (metric.details.get(k) for k in ("test", "p_value", "p_adjusted"))
    tested = f"{test}: p = {_p(p_value)}, Holm-adjusted p = {_p(adjusted)}" if isinstance(test, str) else ""
    return (Segment("scope", column), Segment("text", f"'s distribution differs between the training and audit data by a {JS} of "),
            distance, *_paren(_ci_text(ci, unit, avoid), tested))  # fmt: skip


def _max_shift(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``The largest shift between the training and audit data is in age: Jensen–Shannon distance 0.21 (95% CI …)``."""
    feature = metric.details.get("feature")
    if not isinstance(feature, str):
        return None
    return (Segment("text", "the largest shift between the training and audit data is in "), Segment("scope", feature),
            Segment("text", f": {JS} "), Segment("num", unit.show(value, avoid)), *_paren(_ci_text(ci, unit, avoid)))  # fmt: skip


def _shifted(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]
) -> tuple[Segment, ...] | None:
    """``3 examined columns shifted between the training and audit data (Holm-adjusted p below
    0.05 and Jensen–Shannon distance at least 0.1): age, income, zip``."""
    features, alpha, threshold = (metric.details.get(k) for k in ("features", "alpha", "threshold"))
    if not isinstance(features, Sequence) or isinstance(features, str):
        return None
    test = _paren(
        f"Holm-adjusted p below {_p(alpha)} and {JS} at least {_p(threshold)}"
        if isinstance(alpha, float | int) and isinstance(threshold, float | int)
        else ""
    )
    if value == 0:
        return (Segment("text", "no examined column shifted between the training and audit data"), *test)
    column = "column" if value == 1 else "columns"
    return (Segment("num", unit.show(value, avoid)), Segment("text", f" examined {column} shifted between the training and audit data"),
            *test, Segment("text", ": "), *_names([str(f) for f in features], "scope"))  # fmt: skip


def _row_share(what: str, part: str) -> DataSentence:
    """A share of the audit rows with its interval and count: duplicates, leaked rows."""

    def build(metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float]) -> tuple[Segment, ...]:
        rows = _rows(metric.details.get(part), metric.details.get("rows"))
        return (Segment("num", unit.show(value, avoid)), Segment("text", " of the audit rows"), *_paren(_ci_text(ci, unit, avoid)),
                Segment("text", f" {what}"), *_paren(rows))  # fmt: skip

    return build


_DATA_SENTENCES: dict[str, DataSentence] = {
    "representation_ratio": _representation,
    "group_share": _group_share,
    "small_cells": _small_cells,
    "base_rate": _base_rate,
    "base_rate_difference": _base_rate_gap,
    "base_rate_ratio": _base_rate_gap,
    "conflicting_labels": _conflicting,
    "missing_rate": _missing_rate,
    "missing_rate_difference": _missing_gap,
    "max_missing_rate_difference": _max_missing_gap,
    "proxy_nmi": _proxy,
    "max_proxy_nmi": _max_proxy,
    "shift_js": _shift,
    "max_shift_js": _max_shift,
    "shifted_features": _shifted,
    "duplicate_rows": _row_share("repeat an earlier audit row", "duplicates"),
    "leaked_rows": _row_share("also occur in the training data", "leaked"),
}
"""The sentence of each data-audit metric, by key without ``data.``."""


# -- the robustness audit: one sentence per metric, with or without a rule -------------------------------------------

ROBUSTNESS_UNITS: dict[str, Literal["percent", "points", "count", "plain"]] = {
    "robustness.counterfactual_flip_rate": "percent",
    "robustness.counterfactual_flip_rate_difference": "points",
    "robustness.counterfactual_score_change": "plain",
    "robustness.coverage": "percent",
    "robustness.perturbation_flip_rate": "percent",
    "robustness.perturbation_flip_rate_difference": "points",
    "robustness.accuracy_drop": "points",
    "robustness.site_style_flip_rate": "percent",
}
"""How each metric of the robustness audit reads: flip rates and coverage are shares of decisions
or documents (percent), their gaps and accuracy drops differences of shares (percentage points),
the change of the positive-class score a probability (plain)."""

PERTURBATION_WORDS: dict[str, str] = {
    "typos": "with typos",
    "case": "with the letter case changed",
    "whitespace": "with the whitespace changed",
    "numbers": "with numbers written another way",
    "units": "with measurements in other units",
}
"""How a text perturbation reads after "decisions change": its name in words."""

SWAP = "swap=terms"
"""The qualifier of a text counterfactual's scope: identity terms swapped."""


def robustness_body(
    metric: MetricResult,
    value: float,
    ci: Interval | None,
    unit: Unit,
    avoid: Sequence[float],
    related: Mapping[str, MetricResult] | None = None,
) -> tuple[Segment, ...] | None:
    """The observation of a ``robustness.*`` metric (before what a rule requires of it); ``None``
    for a key or scope outside the robustness audit's contract. With ``related`` (the audit's
    metrics by ref), a text counterfactual adds its coverage and a perturbation its accuracy drop."""
    build = _ROBUSTNESS_SENTENCES.get(metric.key.removeprefix("robustness."))
    return None if build is None else build(metric, value, ci, unit, avoid, related or {})


def robustness_undefined(metric: MetricResult) -> tuple[Segment, ...]:
    """Why a robustness metric has no value, as a sentence: ``No document contains an identity
    term of the lexicon: the counterfactual probe by sex is inconclusive.``"""
    reason = (metric.reason or "the probe applies to no row").removeprefix(f"{SMALL_GROUP}: ").rstrip(".")
    probe = str(metric.details.get("probe") or metric.key.removeprefix("robustness.").split("_", 1)[0]).replace("_", "-")
    grouping, name, setting = split_scope(metric.scope)
    what = {"strength": f" at strength {setting}", "perturbation": f" ({setting})"}.get(name or "", "")
    lead = (Segment("text", reason[:1].upper() + reason[1:] + f": the {probe} probe{what}"),)
    by = (Segment("text", " by "), Segment("scope", grouping)) if grouping and not (name == "style" or "=" in grouping) else ()
    return (*lead, *by, Segment("text", " is inconclusive."))


def split_scope(scope: str | None) -> tuple[str, str | None, str | None]:
    """A robustness scope split into its grouping and its last qualifier (unescaped):
    ``sex/strength=0.05`` gives ``("sex", "strength", "0.05")``, ``sex`` ``("sex", None, None)``.

    >>> split_scope("sex+race/perturbation=typos"), split_scope("site=A%2FB/style=C"), split_scope("strength=0.1")
    (('sex+race', 'perturbation', 'typos'), ('site=A%2FB', 'style', 'C'), ('', 'strength', '0.1'))
    """
    if not scope:
        return "", None, None
    head, _, qualifier = scope.rpartition("/")
    name, equals, setting = qualifier.partition("=")
    if not equals:
        return scope, None, None
    return head, name, unquote(setting)


def probe_phrase(metric: MetricResult) -> str:
    """What the probe of ``metric`` did, as a phrase that starts a sentence's clause: ``when sex
    is set to another value``, ``when identity terms are swapped``, ``with typos``."""
    return phrase(metric.key, metric.scope, metric.details)


def phrase(key: str, scope: str | None, details: Mapping[str, Any]) -> str:
    """:func:`probe_phrase` of a metric's (or an example's) key, scope and details."""
    grouping, name, setting = split_scope(scope)
    key = key.removeprefix("robustness.")
    if key.startswith("site_style"):
        return "when written in another hospital's style"
    if key.startswith("counterfactual"):
        if name == "swap":
            return "when identity terms are swapped"
        attribute = details.get("attribute")
        return f"when {attribute if isinstance(attribute, str) else unquote(grouping)} is set to another value"
    strength = details.get("strength", setting)
    if name == "strength" or isinstance(details.get("strength"), float | int):
        return f"when the numeric features move by {_strength(strength)} of their spread"
    perturbation = str(details.get("perturbation") or setting or "")
    return PERTURBATION_WORDS.get(perturbation, f"under the {perturbation} perturbation")


def _strength(value: object) -> str:
    return f"{float(value):g}" if isinstance(value, float | int | str) and _is_number(value) else str(value)


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _documents(metric: MetricResult) -> str:
    """What a probed row is: a document (text probes) or a row."""
    _, name, _ = split_scope(metric.scope)
    return "documents" if name in ("swap", "perturbation") or "perturbation" in metric.details else "rows"


def _spread(metric: MetricResult, unit: Unit, what: str) -> list[Segment]:
    """``: 4.0% of Female rows against 2.6% of Male rows`` (the highest and the lowest group), or nothing."""
    defined = _defined(metric)
    if len(defined) < 2:
        return []
    high = max(defined, key=lambda g: g.value or 0.0)
    low = min(defined, key=lambda g: g.value or 0.0)
    of = " for " if unit.kind == "plain" else " of "
    return [Segment("text", ": "), Segment("num", unit.show(high.value or 0.0)), Segment("text", of), Segment("group", high.group),
            Segment("text", f" {what} against "), Segment("num", unit.show(low.value or 0.0)), Segment("text", of),
            Segment("group", low.group), Segment("text", f" {what}")]  # fmt: skip


def _related(metric: MetricResult, key: str, related: Mapping[str, MetricResult]) -> MetricResult | None:
    found = related.get(f"robustness.{key}[{metric.scope}]" if metric.scope else f"robustness.{key}")
    return found if found is not None and found.value is not None else None


def _counterfactual(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float], related: Mapping[str, MetricResult]
) -> tuple[Segment, ...]:
    """``Setting sex to another value changes 3.1% of decisions (95% CI 2.8–3.4%): 4.0% of Female
    rows against 2.6% of Male rows`` or ``With identity terms swapped, 12% of the 240 documents
    that contain one get another decision (95% CI …); 31% of documents contain an identity term``."""
    grouping, name, _ = split_scope(metric.scope)
    if name == "swap":
        rows = metric.details.get("rows", metric.n)
        counted = f"the {rows:,} documents" if isinstance(rows, int) else "the documents"
        out = [Segment("text", "with identity terms swapped, "), Segment("num", unit.show(value, avoid)),
               Segment("text", f" of {counted} that contain one get another decision"), *_paren(_ci_text(ci, unit, avoid)),
               *_spread(metric, unit, "documents")]  # fmt: skip
        coverage = _related(metric, "coverage", related)
        if coverage is not None and coverage.value is not None:
            out += [Segment("text", "; "), Segment("num", Unit("percent").show(coverage.value)),
                    Segment("text", " of documents contain an identity term")]  # fmt: skip
        return tuple(out)
    attribute = metric.details.get("attribute")
    return (Segment("text", f"setting {attribute if isinstance(attribute, str) else unquote(grouping)} to another value changes "),
            Segment("num", unit.show(value, avoid)), Segment("text", " of decisions"), *_paren(_ci_text(ci, unit, avoid)),
            *_spread(metric, unit, "rows"))  # fmt: skip


def _perturbation(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float], related: Mapping[str, MetricResult]
) -> tuple[Segment, ...]:
    """``With typos, 4.2% of decisions change (95% CI …); accuracy drops by 1.1 percentage points (95% CI …)``."""
    out = [Segment("text", probe_phrase(metric) + ", "), Segment("num", unit.show(value, avoid)),
           Segment("text", " of decisions change"), *_paren(_ci_text(ci, unit, avoid)), *_spread(metric, unit, _documents(metric))]  # fmt: skip
    drop = _related(metric, "accuracy_drop", related)
    if drop is not None and drop.value is not None:
        points = Unit("points")
        out += [Segment("text", "; accuracy drops by " if drop.value >= 0 else "; accuracy changes by "),
                Segment("num", points.show(drop.value).replace(" points", " percentage points")),
                *_paren(_ci_text(drop.ci, points, ()))]  # fmt: skip
    return tuple(out)


def _flip_gap(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float], related: Mapping[str, MetricResult]
) -> tuple[Segment, ...]:
    """``When sex is set to another value, Female's decisions change 1.4 percentage points more
    often than Male's (95% CI 0.2–2.6 points; 4.0% vs 2.6%)``."""
    values = _by_value(metric)
    low, high = metric.details.get("min_group"), metric.details.get("max_group")
    defined = _defined(metric)
    if not (isinstance(low, str) and isinstance(high, str)) and len(defined) >= 2:
        low = min(defined, key=lambda g: g.value or 0.0).group
        high = max(defined, key=lambda g: g.value or 0.0).group
    size = Segment("num", unit.show(value, avoid).replace(" points", " percentage points"))
    lead = Segment("text", probe_phrase(metric) + ", ")
    if not isinstance(low, str) or not isinstance(high, str):
        return (lead, Segment("text", "the flip rates of the groups differ by up to "), size, *_paren(_ci_text(ci, unit, avoid)))
    low_value = values[low].value if low in values else None
    high_value = values[high].value if high in values else None
    if low_value is not None and high_value is not None and low_value > high_value:
        low, high, low_value, high_value = high, low, high_value, low_value
    rates = f"{Unit('percent').show(high_value)} vs {Unit('percent').show(low_value)}" if low_value is not None and high_value is not None else ""
    return (lead, Segment("group", high), Segment("text", "'s decisions change "), size, Segment("text", " more often than "),
            Segment("group", low), Segment("text", "'s"), *_paren(_ci_text(ci, unit, avoid), rates))  # fmt: skip


def _score_change(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float], related: Mapping[str, MetricResult]
) -> tuple[Segment, ...]:
    """``When sex is set to another value, the positive-class score moves by 0.021 on average (95% CI …)``."""
    return (Segment("text", probe_phrase(metric) + ", the positive-class score moves by "), Segment("num", unit.show(value, avoid)),
            Segment("text", " on average"), *_paren(_ci_text(ci, unit, avoid)), *_spread(metric, unit, _documents(metric)))  # fmt: skip


def _coverage(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float], related: Mapping[str, MetricResult]
) -> tuple[Segment, ...]:
    """``31% of documents contain an identity term of the lexicon (95% CI …)`` or ``The typos probe applies to 98% of documents``."""
    _, name, setting = split_scope(metric.scope)
    if name == "swap":
        return (Segment("num", unit.show(value, avoid)), Segment("text", " of documents contain an identity term of the lexicon"),
                *_paren(_ci_text(ci, unit, avoid)), *_spread(metric, unit, "documents"))  # fmt: skip
    perturbation = str(metric.details.get("perturbation") or setting or "")
    return (Segment("text", f"the {perturbation} probe applies to "), Segment("num", unit.show(value, avoid)),
            Segment("text", " of documents"), *_paren(_ci_text(ci, unit, avoid)), *_spread(metric, unit, "documents"))  # fmt: skip


def _accuracy_drop(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float], related: Mapping[str, MetricResult]
) -> tuple[Segment, ...]:
    """``With typos, accuracy drops by 1.1 percentage points (95% CI …) on the 500 documents probed``."""
    rows = metric.details.get("rows", metric.n)
    probed = f" on the {rows:,} {_documents(metric)} probed" if isinstance(rows, int) and not isinstance(rows, bool) else ""
    verb = "accuracy drops by " if value >= 0 else "accuracy changes by "
    return (Segment("text", probe_phrase(metric) + ", " + verb), Segment("num", unit.show(value, avoid).replace(" points", " percentage points")),
            *_paren(_ci_text(ci, unit, avoid)), Segment("text", probed))  # fmt: skip


def _site_style(
    metric: MetricResult, value: float, ci: Interval | None, unit: Unit, avoid: Sequence[float], related: Mapping[str, MetricResult]
) -> tuple[Segment, ...]:
    """``Written in another hospital's style, 18% of held-out patients' decisions change (95% CI …);
    most for VA Long Beach's patients (25%, 40 patients)`` or, for one pair of sites, ``Written in
    Hungary's style, 12% of Cleveland's held-out patients get another decision than in their own
    site's style (95% CI …; 40 patients)``."""
    site, style = metric.details.get("site"), metric.details.get("style_of")
    head, name, setting = split_scope(metric.scope)
    if name == "style" or isinstance(style, str):
        site = site if isinstance(site, str) else unquote(head.partition("=")[2])
        style = style if isinstance(style, str) else setting or ""
        patients = f"{metric.n:,} patients" if metric.n is not None else ""
        return (Segment("text", "written in "), Segment("group", style), Segment("text", "'s style, "), Segment("num", unit.show(value, avoid)),
                Segment("text", " of "), Segment("group", site),
                Segment("text", "'s held-out patients get another decision than in their own site's style"),
                *_paren(_ci_text(ci, unit, avoid), patients))  # fmt: skip
    out = [Segment("text", "written in another hospital's style, "), Segment("num", unit.show(value, avoid)),
           Segment("text", " of held-out patients' decisions change"), *_paren(_ci_text(ci, unit, avoid))]  # fmt: skip
    defined = _defined(metric)
    if len(defined) > 1:
        worst = max(defined, key=lambda g: g.value or 0.0)
        out += [Segment("text", "; most for "), Segment("group", worst.group),
                Segment("text", f"'s patients ({unit.show(worst.value or 0.0)}, {worst.n:,} patients)")]  # fmt: skip
    return tuple(out)


RobustnessSentence = Callable[
    [MetricResult, float, Interval | None, Unit, Sequence[float], Mapping[str, MetricResult]], "tuple[Segment, ...] | None"
]

_ROBUSTNESS_SENTENCES: dict[str, RobustnessSentence] = {
    "counterfactual_flip_rate": _counterfactual,
    "counterfactual_flip_rate_difference": _flip_gap,
    "counterfactual_score_change": _score_change,
    "coverage": _coverage,
    "perturbation_flip_rate": _perturbation,
    "perturbation_flip_rate_difference": _flip_gap,
    "accuracy_drop": _accuracy_drop,
    "site_style_flip_rate": _site_style,
}
"""The sentence of each robustness-audit metric, by key without ``robustness.``."""



__all__ = [
    "BOUND_WORDS", "DATA_UNITS", "LABELS", "OP_WORDS", "PERTURBATION_WORDS", "RATE_WORDS", "ROBUSTNESS_UNITS", "Segment", "Unit",
    "data_body", "describe", "html", "label", "message_sentence", "phrase", "probe_phrase", "robustness_body", "robustness_undefined",
    "sentence", "split_scope",
]  # fmt: skip
