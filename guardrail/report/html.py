"""The self-contained HTML report: verdict first, then one section per audit, then provenance.

The page holds no script and loads nothing: CSS and SVG are inline and a
Content-Security-Policy forbids everything else. A scope with more than
:data:`FOCUS_ABOVE` groups opens with a short table (and chart) of the groups that matter
most; its complete table follows, collapsed on screen and expanded in print. Every value from the record is escaped,
by Jinja2's autoescape in the template and by :mod:`markupsafe` in :mod:`.charts`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

import guardrail.report.charts as charts
from guardrail.core.types import (
    AuditResult,
    GroupValue,
    MetricResult,
    PolicyVerdict,
    RuleOutcome,
    RunRecord,
    Severity,
)
from guardrail.core.verdict import Verdict, display_status
from guardrail.report import _format
from guardrail.report.explain_view import explain_view
from guardrail.report.federated_view import federated_view
from guardrail.report.privacy_view import privacy_view

RATE_COLUMNS: dict[str, str] = {
    "fairness.count": "Count",
    "fairness.selection_rate": "Selection rate",
    "fairness.tpr": "TPR",
    "fairness.fpr": "FPR",
    "fairness.fnr": "FNR",
    "fairness.precision": "Precision",
    "fairness.accuracy": "Accuracy",
}
"""Per-group rate metrics shown as columns of a fairness scope's group table, in order."""

CHART_SERIES: dict[str, str] = {
    "fairness.selection_rate": "Selection rate",
    "fairness.tpr": "TPR",
    "fairness.fpr": "FPR",
}
"""Rates drawn in a fairness scope's bar chart."""

VALUE_LIMIT = 300
"""Longest parameter value shown, in characters; the full value is in run.json."""

FOCUS_ABOVE = 24
"""A scope with more groups than this opens with a short table of the groups that matter
most (extremes, smallest, named in a disparity) and a chart of those; the complete table
follows, collapsed on screen and expanded in print."""

FOCUS_EACH = 5
"""How many of the lowest, the highest and the smallest groups the short table shows."""


@dataclass(frozen=True)
class Cell:
    """A formatted value; ``title`` and ``note`` explain a missing one."""

    text: str
    title: str | None = None
    note: int | None = None
    extra: str | None = None


@dataclass(frozen=True)
class OutcomeRow:
    rule_id: str
    policy: str
    severity: str
    status: str
    """As shown: the outcome's status, or ``warning``/``note`` for one that cannot block."""
    raw_status: str
    blocking: bool
    metric: str
    observed: str
    expected: str
    message: str
    rationale: str
    reference: str


@dataclass(frozen=True)
class MetricRow:
    ref: str
    value: Cell
    ci: str
    n: str
    reason: str


@dataclass(frozen=True)
class GroupRow:
    group: str
    small: bool
    n: str
    cells: tuple[Cell, ...]
    why: str = ""
    """Why a group is in the short table of a scope with many groups."""


@dataclass(frozen=True)
class DisparityRow:
    ref: str
    value: Cell
    ci: str
    n: str
    reason: str
    min_group: str
    max_group: str


@dataclass(frozen=True)
class ScopeView:
    scope: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[GroupRow, ...]
    overall: GroupRow
    footnotes: tuple[str, ...]
    chart: Markup | None
    disparities: tuple[DisparityRow, ...]
    min_group_size: str | None
    focus: tuple[GroupRow, ...] = ()
    """For a scope with many groups: the few shown first (the complete table follows)."""
    focus_on: str = ""
    """The rate the short table is sorted by."""


@dataclass(frozen=True)
class ErrorView:
    type: str
    message: str
    hint: str | None


@dataclass(frozen=True)
class AuditView:
    audit_id: str
    auditor: str
    status: str
    duration: str
    error: ErrorView | None
    params: tuple[tuple[str, str], ...]
    metrics: tuple[MetricRow, ...]
    section: SectionView | None = None
    metrics_title: str = "Metrics"
    note: str | None = None


@dataclass(frozen=True)
class Section:
    """An auditor's own part of its audit in the report, shown between its parameters and the
    table of every metric: ``build`` turns a result that ran into the part's view (``None``:
    nothing to show), and ``macro`` of ``template`` renders it, called with the view and the
    audit's number on the page."""

    build: Callable[[AuditResult], object | None]
    template: str
    macro: str
    metrics_title: str = "Metrics"
    """The heading of the table of every metric below the part."""


@dataclass(frozen=True)
class SectionView:
    template: str
    macro: str
    view: object


def render_html(record: RunRecord, fail_on: Severity = Severity.DENY) -> str:
    """Render ``record`` as one self-contained HTML page.

    Parameters
    ----------
    record:
        The run to report.
    fail_on:
        The lowest severity that blocks; decides the verdict and which outcomes block.
    """
    template = _environment().get_template("report.html.j2")
    return template.render(**_page(record, fail_on))


@dataclass(frozen=True)
class GroupValueRow:
    group: str
    small: bool
    n: str
    value: str
    ci: str
    reason: str


def render_metric_fragment(metric: MetricResult) -> str:
    """A small self-contained page showing one metric and its value for every group
    (for notebooks; same stylesheet, escaping and Content-Security-Policy as the report)."""
    groups = tuple(
        GroupValueRow(
            group=v.group,
            small=v.small,
            n=_format.integer(v.n),
            value=_format.metric_value(metric.key, v.value),
            ci=_format.interval(v.ci),
            reason=(v.reason or "") if v.value is None else "",
        )
        for v in metric.by_group
    )
    template = _environment().get_template("fragment.html.j2")
    return template.render(
        title=metric.ref, kind="metric", metric=_metric_row(metric), groups=groups, verdict=None
    )


def render_verdict_fragment(verdict: PolicyVerdict, judged: Verdict, fail_on: Severity = Severity.DENY) -> str:
    """A small self-contained page showing policy outcomes: the verdict ``judged`` of them
    (word and sentence), the count per status and one row per outcome (for notebooks)."""
    template = _environment().get_template("fragment.html.j2")
    return template.render(
        title=f"{judged.word} · guardrail policy verdict",
        kind="policy verdict",
        metric=None,
        groups=(),
        verdict=judged,
        fail_on=fail_on.value,
        counts=judged.counts,
        outcomes=tuple(_outcome_row(o, fail_on) for o in verdict.outcomes),
        policies=verdict.policies,
    )


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("guardrail.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["breakable"] = breakable
    env.filters["interval"] = interval_markup
    return env


def interval_markup(text: str) -> Markup:
    """An interval as :func:`._format.interval` writes it, the range kept on one line and
    the level and method free to wrap (some methods have long names)."""
    bounds, space, rest = text.partition(" (")
    if not space:
        return escape(text)
    return Markup('<span class="nw">{}</span> ({}').format(bounds, rest)


_BREAK_AFTER = re.compile(r"(?<=[._+/\[,=])")


def breakable(text: str) -> Markup:
    """Escape ``text`` and allow line breaks after ``. _ + / [ , =`` (for long identifiers)."""
    return Markup("<wbr>").join(escape(part) for part in _BREAK_AFTER.split(text))


def _page(record: RunRecord, fail_on: Severity) -> dict[str, Any]:
    verdict = record.judged(fail_on)
    return {
        "record": record,
        "fail_on": fail_on.value,
        "verdict": verdict,
        "exit_code": int(verdict.code),
        "counts": verdict.counts,
        "outcomes": tuple(_outcome_row(o, fail_on) for o in record.verdict.outcomes),
        "audits": tuple(_audit_view(r) for r in record.results),
        "packages": tuple(sorted(record.provenance.packages.items())),
        "seeds": tuple(record.provenance.seeds.items()),
    }


def _outcome_row(outcome: RuleOutcome, fail_on: Severity) -> OutcomeRow:
    return OutcomeRow(
        rule_id=outcome.rule_id,
        policy=outcome.policy,
        severity=outcome.severity.value,
        status=display_status(outcome, fail_on),
        raw_status=outcome.status.value,
        blocking=outcome.blocks(fail_on),
        metric=outcome.metric,
        observed=_format.number(outcome.observed, count=_is_count(outcome.metric)),
        expected=outcome.expected,
        message=outcome.message,
        rationale=outcome.rationale or "",
        reference=outcome.reference or "",
    )


def _is_count(metric_ref: str) -> bool:
    """Metrics that count people print as integers (``fairness.min_group_size[sex]``)."""
    return metric_ref.split("[", 1)[0].endswith(("count", "min_group_size"))


def _audit_view(result: AuditResult) -> AuditView:
    error = result.error
    section = SECTIONS.get(result.auditor) if error is None else None
    view = section.build(result) if section is not None else None
    shown = section if view is not None else None
    return AuditView(
        audit_id=result.audit_id,
        auditor=result.auditor,
        status=result.status.value,
        duration=_format.duration(result.duration_s),
        error=ErrorView(error.type, error.message, error.hint) if error else None,
        params=tuple((str(k), _show(v)) for k, v in result.params.items()),
        metrics=tuple(_metric_row(m) for m in result.metrics),
        section=SectionView(shown.template, shown.macro, view) if shown is not None and view is not None else None,
        metrics_title=shown.metrics_title if shown is not None else "Metrics",
        note=str(result.artifacts["note"]) if isinstance(result.artifacts.get("note"), str) else None,
    )


TRADEOFF_SERIES = {
    "accuracy": "Accuracy",
    "demographic_parity_difference": "Demographic parity difference",
    "equalized_odds_difference": "Equalized odds difference",
}


def _tradeoff_chart(metrics: Sequence[MetricResult]) -> Markup | None:
    """Accuracy and disparities of the original model and of each mitigation, with intervals."""
    methods: dict[str, dict[str, MetricResult]] = {}
    for metric in metrics:
        method, _, name = metric.key.removeprefix("mitigation.").rpartition(".")
        if name in TRADEOFF_SERIES:
            methods.setdefault(method, {})[name] = metric
    if not methods:
        return None
    rows = [
        charts.ChartRow(
            label=method.replace("_", " "),
            small=False,
            bars=tuple(
                charts.Bar(value=m.value, n=m.n, ci=m.ci, reason=m.reason) if (m := values.get(key)) else None
                for key in TRADEOFF_SERIES
            ),
        )
        for method, values in methods.items()
    ]
    return charts.bar_chart(rows, list(TRADEOFF_SERIES.values()), title="Fairness–accuracy trade-off by mitigation")


def _metric_row(metric: MetricResult) -> MetricRow:
    return MetricRow(
        ref=metric.ref,
        value=Cell(_format.metric_value(metric.key, metric.value), title=metric.reason),
        ci=_format.interval(metric.ci),
        n=_format.integer(metric.n),
        reason=(metric.reason or "") if metric.value is None else "",
    )


def _scopes(metrics: Sequence[MetricResult]) -> tuple[ScopeView, ...]:
    by_scope: dict[str, list[MetricResult]] = {}
    for metric in metrics:
        if metric.scope is not None:
            by_scope.setdefault(metric.scope, []).append(metric)
    return tuple(_scope_view(scope, members) for scope, members in by_scope.items())


def _scope_view(scope: str, metrics: Sequence[MetricResult]) -> ScopeView:
    rates: dict[str, MetricResult] = {}
    for metric in metrics:
        if metric.key in RATE_COLUMNS and metric.by_group and metric.key not in rates:
            rates[metric.key] = metric
    ordered = [rates[key] for key in RATE_COLUMNS if key in rates and not _redundant_count(rates[key])]
    notes = _Footnotes()
    groups = _group_index(ordered)
    rows = tuple(_group_row(label, ordered, groups, notes) for label in groups)
    overall = GroupRow(
        group="Overall",
        small=False,
        n=_format.integer(next((m.n for m in ordered if m.n is not None), None)),
        cells=tuple(_overall_cell(m, notes) for m in ordered),
    )
    disparities = [m for m in metrics if m.key not in rates or rates[m.key] is not m]
    focus: tuple[GroupRow, ...] = ()
    focus_on = ""
    chart_groups: Mapping[str, Mapping[str, GroupValue]] = groups
    if len(groups) > FOCUS_ABOVE:
        focus_on, why = _focus(groups, ordered, disparities)
        by_label = {row.group: row for row in rows}
        focus = tuple(dataclasses.replace(by_label[label], why=reasons) for label, reasons in why.items())
        chart_groups = {label: groups[label] for label in why}
    return ScopeView(
        scope=scope,
        columns=tuple((m.key, RATE_COLUMNS[m.key]) for m in ordered),
        rows=rows,
        overall=overall,
        footnotes=tuple(notes.reasons),
        chart=_chart(scope, rates, chart_groups, of=len(groups)),
        disparities=tuple(_disparity_row(m) for m in disparities),
        min_group_size=_min_group_size(metrics),
        focus=focus,
        focus_on=focus_on,
    )


def _focus(
    groups: Mapping[str, Mapping[str, GroupValue]],
    columns: Sequence[MetricResult],
    disparities: Sequence[MetricResult],
) -> tuple[str, dict[str, str]]:
    """The groups a reader of a scope with many groups needs first, each with why.

    The lowest and highest groups on the first rate column (selection rate when there is
    one), the smallest groups, and any group a disparity names as its lowest or highest.
    Returns the name of the rate and the chosen groups, sorted by that rate (undefined last).
    """
    why: dict[str, list[str]] = {}

    def add(label: str, reason: str) -> None:
        if label in groups and reason not in why.setdefault(label, []):
            why[label].append(reason)

    rate = next((m for m in columns if m.key != "fairness.count"), None)
    rate_name = RATE_COLUMNS[rate.key].lower() if rate else ""
    defined: list[tuple[float, str]] = []
    if rate is not None:
        for label, values in groups.items():
            value = values.get(rate.key)
            if value is not None and value.value is not None:
                defined.append((value.value, label))
        defined.sort()
        for _, label in defined[:FOCUS_EACH]:
            add(label, f"lowest {rate_name}")
        for _, label in defined[::-1][:FOCUS_EACH]:
            add(label, f"highest {rate_name}")
    sizes = sorted(groups, key=lambda label: (next(iter(groups[label].values())).n, label))
    for label in sizes[:FOCUS_EACH]:
        add(label, "smallest")
    for metric in disparities:
        for side in ("min_group", "max_group"):
            named = metric.details.get(side)
            if isinstance(named, str):
                add(named, "named by a disparity")
    position = {label: index for index, (_, label) in enumerate(defined)}
    order = sorted(why, key=lambda label: (position.get(label, len(position)), label))
    return rate_name, {label: ", ".join(why[label]) for label in order}


def _redundant_count(metric: MetricResult) -> bool:
    """Whether ``metric`` is a count column that only repeats the group sizes."""
    return metric.key == "fairness.count" and all(v.value == v.n for v in metric.by_group)


class _Footnotes:
    """Numbered, deduplicated reasons for values that could not be computed."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def number(self, reason: str | None) -> int:
        text = reason or "not computed (no reason given)"
        if text not in self.reasons:
            self.reasons.append(text)
        return self.reasons.index(text) + 1


def _group_index(metrics: Sequence[MetricResult]) -> dict[str, dict[str, GroupValue]]:
    """Group label -> metric key -> value, groups in order of first appearance."""
    index: dict[str, dict[str, GroupValue]] = {}
    for metric in metrics:
        for value in metric.by_group:
            index.setdefault(value.group, {}).setdefault(metric.key, value)
    return index


def _group_row(
    label: str, metrics: Sequence[MetricResult], groups: Mapping[str, Mapping[str, GroupValue]], notes: _Footnotes
) -> GroupRow:
    values = groups[label]
    row_n = next(iter(values.values())).n
    cells = []
    for metric in metrics:
        value = values.get(metric.key)
        if value is None:
            cells.append(Cell(_format.DASH, title="not reported for this group"))
        elif value.value is None:
            cells.append(Cell(_format.DASH, title=value.reason, note=notes.number(value.reason)))
        else:
            extra = f"n={value.n}" if value.n != row_n else None
            ci = _format.interval(value.ci) or None
            cells.append(Cell(_format.metric_value(metric.key, value.value), title=ci, extra=extra))
    return GroupRow(group=label, small=any(v.small for v in values.values()), n=_format.integer(row_n), cells=tuple(cells))


def _overall_cell(metric: MetricResult, notes: _Footnotes) -> Cell:
    if metric.value is None:
        return Cell(_format.DASH, title=metric.reason, note=notes.number(metric.reason))
    return Cell(_format.metric_value(metric.key, metric.value), title=_format.interval(metric.ci) or None)


def _disparity_row(metric: MetricResult) -> DisparityRow:
    return DisparityRow(
        ref=metric.key,
        value=Cell(_format.metric_value(metric.key, metric.value), title=metric.reason),
        ci=_format.interval(metric.ci),
        n=_format.integer(metric.n),
        reason=(metric.reason or "") if metric.value is None else "",
        min_group=_text_or_empty(metric.details.get("min_group")),
        max_group=_text_or_empty(metric.details.get("max_group")),
    )


def _min_group_size(metrics: Sequence[MetricResult]) -> str | None:
    for metric in metrics:
        size = metric.details.get("min_group_size")
        if isinstance(size, int) and not isinstance(size, bool):
            return str(size)
    return None


def _chart(
    scope: str, rates: Mapping[str, MetricResult], groups: Mapping[str, Mapping[str, GroupValue]], *, of: int
) -> Markup | None:
    keys = [key for key in CHART_SERIES if key in rates]
    if not keys or not groups:
        return None
    rows = [
        charts.ChartRow(
            label=label,
            small=any(v.small for v in values.values()),
            bars=tuple(_bar(values.get(key)) for key in keys),
        )
        for label, values in groups.items()
    ]
    series = [CHART_SERIES[key] for key in keys]
    which = "by group" if len(rows) == of else f"for the {len(rows)} groups of the short table (of {of})"
    return charts.bar_chart(rows, series, title=f"{', '.join(series)} {which} for {scope}")


def _bar(value: GroupValue | None) -> charts.Bar | None:
    if value is None:
        return None
    return charts.Bar(value=value.value, n=value.n, ci=value.ci, reason=value.reason)


def _text_or_empty(value: Any) -> str:
    return "" if value is None else str(value)


def _show(value: Any) -> str:
    """A parameter value as short text: strings as they are, anything else as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return _format.shorten(text, VALUE_LIMIT)


SECTIONS: dict[str, Section] = {
    "fairness": Section(lambda r: _scopes(r.metrics) or None, "_fairness.html.j2", "fairness_section", "All metrics"),
    "mitigation": Section(lambda r: _tradeoff_chart(r.metrics), "_mitigation.html.j2", "mitigation_section"),
    "privacy": Section(privacy_view, "_privacy.html.j2", "privacy_section"),
    "explainability": Section(explain_view, "_explain.html.j2", "explain_section"),
    "federated": Section(federated_view, "_federated.html.j2", "federated_section"),
}
"""The report's part for each auditor that has one, by auditor name; an auditor not listed
(a third party's included) gets the generic section: its parameters, notes and metrics."""
