"""The fairness audit's part of the report: per scope, a table of every group's rates, a chart,
and the disparities between groups.

A scope with more than :data:`FOCUS_ABOVE` groups opens with a short table (and chart) of the
groups that matter most; its complete table follows, collapsed on screen and expanded in print.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

import guardrail.report.charts as charts
from guardrail.core.types import GroupValue, MetricResult
from guardrail.report import _format
from guardrail.report._format import Cell
from guardrail.report.evidence import IntervalNotes, interval_range

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

FOCUS_ABOVE = 24
"""A scope with more groups than this opens with a short table of the groups that matter
most (extremes, smallest, named in a disparity) and a chart of those; the complete table
follows, collapsed on screen and expanded in print."""

FOCUS_EACH = 5
"""How many of the lowest, the highest and the smallest groups the short table shows."""


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
    """The interval's range; its level and method are in the table's caption."""
    n: str
    reason: str
    min_group: str
    max_group: str
    mark: str = ""
    """Which of the caption's interval methods, when the table mixes several."""


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
    disparity_caption: str = ""
    """The disparity table's interval methods, said once."""


def fairness_view(metrics: Sequence[MetricResult]) -> tuple[ScopeView, ...]:
    """One view per scope of a fairness audit: its group table (and short table), chart and disparities."""
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
    intervals = IntervalNotes()
    indices = [intervals.add(m.ci) for m in disparities]
    disparity_rows = tuple(_disparity_row(m, intervals.mark(i)) for m, i in zip(disparities, indices, strict=True))
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
        disparities=disparity_rows,
        min_group_size=_min_group_size(metrics),
        focus=focus,
        focus_on=focus_on,
        disparity_caption=intervals.caption(),
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


def _disparity_row(metric: MetricResult, mark: str = "") -> DisparityRow:
    return DisparityRow(
        ref=metric.key,
        value=Cell(_format.metric_value(metric.key, metric.value), title=metric.reason),
        ci=interval_range(metric.ci),
        mark=mark,
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
