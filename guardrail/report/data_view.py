"""The data audit's part of the report (``use: data``): what the audit found first, then the
evidence, one table per question.

- representation: each group's share of the audit rows beside its declared population share
  (the source cited) and their ratio; the small cells of an intersection;
- label base rates by group, and their gap;
- missingness: a heatmap of features × groups, the rate written in every cell (the colour only
  repeats it), with the overall rate and the gap between groups;
- proxies: each examined column's normalised mutual information with each sensitive column;
- shift between the training and audit data, per column and per group (or why it was not examined);
- duplicated rows, rows leaked from training and conflicting labels.

Built only from the audit's metrics and artifacts in the run record (``population``,
``missingness``, ``proxies``, ``shift``, ``notes``, ``reference``), so a report re-rendered from
``run.json`` shows the same. Every string is plain text here; the template escapes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from markupsafe import Markup

from guardrail.core.scopes import scope_features, scope_part
from guardrail.core.types import AuditResult, GroupValue, Interval, MetricResult
from guardrail.report import _format
from guardrail.report.evidence import IntervalNotes, interval_range
from guardrail.report.finding_sentences import DATA_UNITS, Segment, describe, html

T = TypeVar("T")

SUMMARY_KEYS: tuple[str, ...] = (
    "data.representation_ratio",
    "data.small_cells",
    "data.base_rate_difference",
    "data.max_missing_rate_difference",
    "data.max_proxy_nmi",
    "data.shifted_features",
    "data.max_shift_js",
    "data.duplicate_rows",
    "data.leaked_rows",
    "data.conflicting_labels",
)
"""The metrics said as sentences at the head of the section, in this order."""

SHOWN_KEYS = frozenset(DATA_UNITS)
"""Every metric of the data audit; the section shows each one's value and interval."""

FOCUS_ROWS = 12
"""A proxy or shift table longer than this shows its first rows (and every flagged one) and
collapses the rest."""

HEAT_RGB = "47,109,181"
"""The heatmap's colour (the report's chart blue); a cell's opacity grows with its missing rate."""
HEAT_DARKEST = 0.85
"""The opacity of a cell where every row is missing: dark enough to read as full, light enough for dark text."""


@dataclass(frozen=True)
class ShareRow:
    """One group of a grouping: its rows and share of the audit rows, and against its population."""

    group: str
    n: str
    small: bool
    share: str
    share_ci: str
    population: str
    ratio: str
    ratio_ci: str


@dataclass(frozen=True)
class RepresentationView:
    scope: str
    rows: tuple[ShareRow, ...]
    source: str
    """The population shares' citation; empty when none was declared for this grouping."""
    caption: str
    small_cells: tuple[tuple[str, str], ...] = ()
    """Cells of an intersection below the minimum size: (cell, rows), smallest first."""
    cells_note: str = ""
    min_group_size: str = ""
    smallest: str = ""
    """The smallest group's share with the grouping's interval (its method covers every group at once)."""


@dataclass(frozen=True)
class RateRow:
    group: str
    n: str
    small: bool
    rate: str
    ci: str


@dataclass(frozen=True)
class GapRow:
    ref: str
    value: str
    ci: str
    low_group: str
    high_group: str
    reason: str = ""


@dataclass(frozen=True)
class BaseRateView:
    scope: str
    rows: tuple[RateRow, ...]
    overall: RateRow
    gaps: tuple[GapRow, ...]
    caption: str
    gap_caption: str = ""


@dataclass(frozen=True)
class HeatCell:
    text: str
    style: str
    title: str


@dataclass(frozen=True)
class HeatRow:
    feature: str
    cells: tuple[HeatCell, ...]
    overall: str
    overall_ci: str
    gap: str
    gap_ci: str
    gap_groups: str


@dataclass(frozen=True)
class HeatmapView:
    """Missing rates of one grouping: features (rows) × groups (columns)."""

    scope: str
    groups: tuple[tuple[str, str, bool], ...]
    """(group, rows, below minimum size)."""
    rows: tuple[HeatRow, ...]
    caption: str


@dataclass(frozen=True)
class ProxyRow:
    feature: str
    sensitive: str
    nmi: str
    ci: str
    mi: str
    proxy: bool


@dataclass(frozen=True)
class ProxyView:
    rows: tuple[ProxyRow, ...]
    rest: tuple[ProxyRow, ...]
    threshold: str
    caption: str


@dataclass(frozen=True)
class ShiftRow:
    feature: str
    where: str
    js: str
    ci: str
    statistic: str
    p_value: str
    p_adjusted: str
    shifted: str


@dataclass(frozen=True)
class ShiftView:
    rows: tuple[ShiftRow, ...]
    rest: tuple[ShiftRow, ...]
    caption: str


@dataclass(frozen=True)
class RowCheck:
    """A share of the audit rows: duplicated, leaked from training, with conflicting labels."""

    what: str
    share: str
    ci: str
    rows: str


@dataclass(frozen=True)
class DataView:
    """The data section of one audit."""

    findings: tuple[Markup, ...]
    facts: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    representation: tuple[RepresentationView, ...]
    base_rates: tuple[BaseRateView, ...]
    missingness: tuple[HeatmapView, ...]
    missing_note: str
    proxies: ProxyView | None
    shift: ShiftView | None
    shift_note: str
    row_checks: tuple[RowCheck, ...]
    row_checks_caption: str


def data_view(result: AuditResult) -> DataView:
    """The data section of ``result`` (an audit by the ``data`` auditor)."""
    artifacts = result.artifacts
    metrics = result.metrics
    notes = tuple(str(n) for n in artifacts.get("notes") or () if isinstance(n, str))
    shift = artifacts.get("shift")
    shift_note = "" if isinstance(shift, Mapping) else next((n for n in notes if "reference" in n), "")
    checks, checks_caption = _row_checks(metrics)
    missing = artifacts.get("missingness")
    heatmaps = tuple(_heatmap(piece, metrics) for piece in missing or () if isinstance(piece, Mapping) and piece.get("features"))
    return DataView(
        findings=summary(metrics, html),
        facts=_facts(artifacts),
        notes=tuple(n for n in notes if n != shift_note),
        representation=_representation(metrics, artifacts.get("population")),
        base_rates=_base_rates(metrics),
        missingness=heatmaps,
        missing_note="" if heatmaps or missing is None else "No examined column has a missing value.",
        proxies=_proxies(artifacts.get("proxies")),
        shift=_shift(shift) if isinstance(shift, Mapping) else None,
        shift_note=_not_examined(shift, shift_note) if "shift" in artifacts else "",
        row_checks=checks,
        row_checks_caption=checks_caption,
    )


def summary(metrics: Sequence[MetricResult], write: Callable[[tuple[Segment, ...]], T]) -> tuple[T, ...]:
    """What a data audit found, one sentence per metric of :data:`SUMMARY_KEYS` (in that order),
    each written by ``write`` (:func:`~guardrail.report.finding_sentences.html`, or plain text)."""
    related = {m.ref: m for m in metrics}
    said = (describe(m, related) for key in SUMMARY_KEYS for m in metrics if m.key == key)
    return tuple(write(s) for s in said if s is not None)


def data_covers(metric: MetricResult) -> bool:
    """Whether the data section shows ``metric`` (value and interval): every data-audit metric."""
    return metric.key in SHOWN_KEYS


def heat_style(rate: float) -> str:
    """A heatmap cell's colours: the chart blue at an opacity of :data:`HEAT_DARKEST` × the rate
    (any missing value at least faintly), under dark text that keeps a contrast of at least 5:1
    on the darkest cell."""
    alpha = 0.0 if rate <= 0 else max(min(rate, 1.0) * HEAT_DARKEST, 0.06)
    return f"background: rgba({HEAT_RGB},{alpha:.2f}); color: #1a1a1a"


# -- parts ---------------------------------------------------------------------------------------------------------


def _facts(artifacts: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """What was audited: rows, sensitive and examined columns, and the reference data (or none)."""
    facts: list[tuple[str, str]] = []
    rows = artifacts.get("rows")
    if isinstance(rows, int):
        facts.append(("Rows audited", f"{rows:,}"))
    sensitive = artifacts.get("sensitive")
    if isinstance(sensitive, Sequence) and not isinstance(sensitive, str) and sensitive:
        facts.append(("Sensitive columns", ", ".join(map(str, sensitive))))
    features = artifacts.get("features")
    if isinstance(features, Sequence) and not isinstance(features, str):
        facts.append(("Examined columns", f"{len(features)}: " + _format.shorten(", ".join(map(str, features)), 300)))
    reference = artifacts.get("reference")
    if isinstance(reference, Mapping):
        if reference.get("path"):
            digest = str(reference.get("sha256") or "")[:12]
            facts.append(("Reference (training) data", f"{reference['path']} ({_count(reference.get('rows'))} rows, sha256 {digest}…)"))
        elif reference.get("column"):
            facts.append(("Reference (training) data", f"the rows marked by column {reference['column']} ({_count(reference.get('rows'))} rows)"))
    elif "reference" in artifacts or "shift" in artifacts:
        facts.append(("Reference (training) data", "none"))
    return tuple(facts)


def _not_examined(shift: object, note: str) -> str:
    """Why there is no shift table: the audit's note on the reference data, else that none was given."""
    if isinstance(shift, Mapping):
        return ""
    return f"Not examined: {note.rstrip('.')}." if note else "Not examined: no reference (training) data was given."


def _scoped(metrics: Sequence[MetricResult], key: str) -> dict[str, MetricResult]:
    return {m.scope: m for m in metrics if m.key == key and m.scope is not None}


def _unscoped(metrics: Sequence[MetricResult], key: str) -> MetricResult | None:
    return next((m for m in metrics if m.key == key and m.scope is None), None)


def _value(value: float | None) -> str:
    return _format.number(value)


def _representation(metrics: Sequence[MetricResult], population: object) -> tuple[RepresentationView, ...]:
    shares = _scoped(metrics, "data.group_share")
    ratios = _scoped(metrics, "data.representation_ratio")
    cells = _scoped(metrics, "data.small_cells")
    declared = {scope_part(str(c)): p for c, p in population.items()} if isinstance(population, Mapping) else {}
    views = []
    for scope in dict.fromkeys([*shares, *ratios]):
        share, ratio = shares.get(scope), ratios.get(scope)
        pop = declared.get(scope)
        pop = pop if isinstance(pop, Mapping) else ratio.details if ratio is not None else {}
        expected = pop.get("shares", pop.get("population"))
        expected = expected if isinstance(expected, Mapping) else {}
        source = str(pop.get("source") or "")
        by_ratio = {g.group: g for g in ratio.by_group} if ratio is not None else {}
        groups = share.by_group if share is not None else tuple(_share_of(g, _float(expected.get(g.group))) for g in by_ratio.values())
        notes = IntervalNotes()
        for g in groups:
            notes.add(g.ci)
        rows = [
            ShareRow(
                group=g.group, n=_format.integer(g.n), small=g.small, share=_value(g.value), share_ci=interval_range(g.ci),
                population=_value(_float(expected.get(g.group))) if g.group in expected else "",
                ratio=_value(by_ratio[g.group].value) if g.group in by_ratio else "",
                ratio_ci=interval_range(by_ratio[g.group].ci) if g.group in by_ratio else "",
            )  # fmt: skip
            for g in groups
        ]
        seen = {g.group for g in groups}
        rows += [
            ShareRow(group=str(group), n="0", small=True, share=_value(0.0), share_ci="", population=_value(_float(p)),
                     ratio=_value(by_ratio[group].value) if group in by_ratio else "", ratio_ci="")  # fmt: skip
            for group, p in expected.items()
            if group not in seen
        ]
        caption = "Share: each group's rows over all audit rows. " + notes.caption()
        if source:
            caption += " Ratio: share ÷ population share (1 = represented as in the population)."
        small = cells.get(scope)
        views.append(
            RepresentationView(
                scope=scope, rows=tuple(rows), source=source, caption=caption,
                small_cells=_small_cells(small) if small is not None else (),
                cells_note=_cells_note(small) if small is not None else "",
                min_group_size=str((share.details.get("min_group_size") if share else None) or _min_size(metrics)),
                smallest=_smallest(share) if share is not None else "",
            )  # fmt: skip
        )
    return tuple(views)


def _share_of(ratio: GroupValue, population: float | None) -> GroupValue:
    """A group's share of the rows from its representation ratio and population share (for an
    audit whose record has the ratio without the shares)."""
    p = population if population is not None else float("nan")
    ci = ratio.ci and Interval(ratio.ci.low * p, ratio.ci.high * p, ratio.ci.level, ratio.ci.method)
    value = None if ratio.value is None or population is None else ratio.value * p
    return GroupValue(ratio.group, value, ratio.n, ratio.small, ci=ci if population is not None else None)


def _smallest(share: MetricResult) -> str:
    group = share.details.get("smallest_group")
    if not isinstance(group, str) or share.value is None:
        return ""
    ci = share.ci
    interval = f"; {_format.level(ci.level)} interval {interval_range(ci)} ({ci.method})" if ci is not None else ""
    return f"Smallest group: {group}, {_value(share.value)} of the rows{interval}."


def _min_size(metrics: Sequence[MetricResult]) -> str:
    for metric in metrics:
        size = metric.details.get("min_group_size")
        if isinstance(size, int) and not isinstance(size, bool):
            return str(size)
    return ""


def _small_cells(metric: MetricResult) -> tuple[tuple[str, str], ...]:
    minimum = metric.details.get("min_group_size")
    small = [g for g in metric.by_group if g.small or (isinstance(minimum, int) and g.n < minimum)]
    return tuple((g.group, f"{g.n:,}") for g in sorted(small, key=lambda g: (g.n, g.group)))


def _cells_note(metric: MetricResult) -> str:
    cells, empty, minimum = (metric.details.get(k) for k in ("cells", "empty_cells", "min_group_size"))
    count = int(metric.value or 0)
    if not isinstance(cells, int) or not isinstance(minimum, int):
        return f"{count:,} cells below the minimum size."
    if count == 0:
        return f"All {cells:,} cells of {metric.scope} (every combination of the observed values) have at least {minimum:,} rows."
    text = f"{count:,} of the {cells:,} cells of {metric.scope} (every combination of the observed values) have fewer than {minimum:,} rows"
    if isinstance(empty, int) and empty:
        text += f", {empty:,} of them empty"
    return text + "."


def _base_rates(metrics: Sequence[MetricResult]) -> tuple[BaseRateView, ...]:
    gaps = [m for m in metrics if m.key in ("data.base_rate_difference", "data.base_rate_ratio") and m.scope is not None]
    views = []
    for scope, rate in _scoped(metrics, "data.base_rate").items():
        notes = IntervalNotes()
        for g in rate.by_group:
            notes.add(g.ci)
        notes.add(rate.ci)
        rows = tuple(RateRow(g.group, _format.integer(g.n), g.small, _value(g.value), interval_range(g.ci)) for g in rate.by_group)
        overall = RateRow("All rows", _format.integer(rate.n), False, _value(rate.value), interval_range(rate.ci))
        own = [m for m in gaps if m.scope == scope]
        gap_notes = IntervalNotes()
        for m in own:
            gap_notes.add(m.ci)
        caption = "Base rate: the share of each group's rows with the positive label. " + notes.caption()
        views.append(BaseRateView(scope, rows, overall, tuple(_gap_row(m) for m in own), caption, gap_notes.caption()))
    return tuple(views)


def _gap_row(metric: MetricResult) -> GapRow:
    low, high = metric.details.get("min_group"), metric.details.get("max_group")
    return GapRow(
        ref=metric.key,
        value=_value(metric.value),
        ci=interval_range(metric.ci),
        low_group="" if low is None else str(low),
        high_group="" if high is None else str(high),
        reason=(metric.reason or "") if metric.value is None else "",
    )


def _heatmap(piece: Mapping[str, Any], metrics: Sequence[MetricResult]) -> HeatmapView:
    scope = str(piece.get("scope", ""))
    groups = [str(g) for g in piece.get("groups") or ()]
    sizes = list(piece.get("group_n") or ())
    rates = list(piece.get("rates") or ())
    features = [str(f) for f in piece.get("features") or ()]
    rate_metrics = _scoped(metrics, "data.missing_rate")
    gap_metrics = _scoped(metrics, "data.missing_rate_difference")
    minimum = _min_size(metrics)
    small = [bool(minimum) and isinstance(n, int) and n < int(minimum) for n in sizes] + [False] * len(groups)
    header = tuple((g, _count(sizes[j] if j < len(sizes) else None), small[j]) for j, g in enumerate(groups))
    overall_notes, gap_notes = IntervalNotes(), IntervalNotes()
    rows = []
    for i, feature in enumerate(features):
        qualified = f"{scope}/column={scope_part(feature)}"
        rate, gap = rate_metrics.get(qualified), gap_metrics.get(qualified)
        by_group: dict[str, GroupValue] = {g.group: g for g in rate.by_group} if rate is not None else {}
        line = rates[i] if i < len(rates) else []
        cells = tuple(_heat_cell(feature, g, line[j] if j < len(line) else None, by_group.get(g)) for j, g in enumerate(groups))
        if rate is not None:
            overall_notes.add(rate.ci)
        if gap is not None:
            gap_notes.add(gap.ci)
        low, high = (gap.details.get(k) if gap is not None else None for k in ("min_group", "max_group"))
        rows.append(
            HeatRow(
                feature=feature, cells=cells,
                overall=_percent(rate.value) if rate is not None else "", overall_ci=_percent_range(rate.ci) if rate is not None else "",
                gap=_points(gap.value) if gap is not None else "", gap_ci=_percent_range(gap.ci, "points") if gap is not None else "",
                gap_groups=f"{high} vs {low}" if isinstance(low, str) and isinstance(high, str) else "",
            )  # fmt: skip
        )
    caption = (
        f"Missing values by {scope}: each cell is the percent of the group's rows where the column is missing. "
        "Colour repeats the number: white where nothing is missing, darker blue the more is missing (darkest: all rows). "
        "The gap is the largest difference in missing rate between two groups, in percentage points. "
    )
    for what, notes in (("all rows", overall_notes), ("the gap", gap_notes)):
        if notes.methods:
            caption += f"Intervals of {what}: " + "; ".join(f"{level}, {method}" for level, method in notes.methods) + ". "
    return HeatmapView(scope=scope, groups=header, rows=tuple(rows), caption=caption.strip())


def _heat_cell(feature: str, group: str, rate: object, value: GroupValue | None) -> HeatCell:
    if not isinstance(rate, float | int) or isinstance(rate, bool):
        return HeatCell(_format.DASH, "", f"{feature} in {group}: no rows")
    title = f"{feature} missing in {_percent(float(rate))} of {group}'s rows"
    if value is not None:
        title += f" (n={value.n:,}" + (f", {_format.level(value.ci.level)} CI {_percent_range(value.ci)}" if value.ci else "") + ")"
    return HeatCell(_percent(float(rate)), heat_style(float(rate)), title)


def _proxies(table: object) -> ProxyView | None:
    if not isinstance(table, Mapping) or not isinstance(table.get("table"), Sequence):
        return None
    threshold = _float(table.get("threshold"))
    rows = []
    for entry in table["table"]:
        if not isinstance(entry, Mapping):
            continue
        nmi = _float(entry.get("nmi"))
        ci = _range(entry.get("ci_low"), entry.get("ci_high"))
        rows.append(
            ProxyRow(
                feature=str(entry.get("feature", "")), sensitive=str(entry.get("sensitive", "")), nmi=_value(nmi), ci=ci,
                mi=_value(_float(entry.get("mi"))), proxy=nmi is not None and threshold is not None and nmi >= threshold,
            )  # fmt: skip
        )
    shown, rest = _focus(rows, lambda r: r.proxy)
    bins = table.get("bins")
    caption = (
        "Normalised mutual information (0: independent, 1: one determines the other) between each examined column, "
        f"binned{f' into {bins} quantile bins when numeric' if isinstance(bins, int) else ''}, and each sensitive column; "
        "mutual information in nats. Intervals: percentile bootstrap of the joint table. "
    )
    if threshold is not None:
        caption += f"Marked “proxy” at or above the threshold {_format.number(threshold)}."
    return ProxyView(rows=shown, rest=rest, threshold=_value(threshold), caption=caption)


def _shift(table: Mapping[str, Any]) -> ShiftView:
    entries = [e for e in table.get("table") or () if isinstance(e, Mapping)]
    entries.sort(key=lambda e: e.get("group") is not None)  # overall rows first, each group's after (stable)
    rows = [
        ShiftRow(
            feature=str(e.get("feature", "")),
            where="all rows" if e.get("group") is None else f"{_grouping(str(e.get('scope', '')))} = {e.get('group')}",
            js=_value(_float(e.get("js"))) if e.get("js") is not None else str(e.get("reason") or _format.DASH),
            ci=_range(e.get("ci_low"), e.get("ci_high")),
            statistic=_value(_float(e.get("statistic"))),
            p_value=_value(_float(e.get("p_value"))),
            p_adjusted=_value(_float(e.get("p_adjusted"))),
            shifted="yes" if e.get("shifted") is True else "no" if e.get("shifted") is False else _format.DASH,
        )
        for e in entries
    ]
    shown, rest = _focus(rows, lambda r: r.shifted == "yes")
    alpha, threshold = _float(table.get("alpha")), _float(table.get("threshold"))
    caption = (
        f"Each examined column's distribution in the audit data against the training data: Jensen–Shannon distance "
        f"(0: identical, 1: disjoint) with its percentile bootstrap interval, and the {table.get('test') or 'test'} "
        "with its p-value and Holm-adjusted p-value (over every shift test of the audit). "
    )
    if alpha is not None and threshold is not None:
        caption += f"Shifted: Holm-adjusted p below {_format.number(alpha)} and distance at least {_format.number(threshold)}."
    return ShiftView(rows=shown, rest=rest, caption=caption)


def _grouping(scope: str) -> str:
    """The sensitive column of a per-group shift row's scope (``sex/column=age`` gives ``sex``)."""
    head, found, _ = scope.rpartition("/column=")
    return " × ".join(scope_features(head if found else scope))


def _focus(rows: list[Any], flagged: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The rows a reader needs first (every flagged row, then the first of the others, in table
    order) and the rest, for a table longer than :data:`FOCUS_ROWS`."""
    if len(rows) <= FOCUS_ROWS:
        return tuple(rows), ()
    keep = {id(r) for r in rows if flagged(r)}
    for r in rows:
        if len(keep) >= FOCUS_ROWS:
            break
        keep.add(id(r))
    return tuple(r for r in rows if id(r) in keep), tuple(r for r in rows if id(r) not in keep)


def _row_checks(metrics: Sequence[MetricResult]) -> tuple[tuple[RowCheck, ...], str]:
    checks = []
    notes = IntervalNotes()
    for key, what, part in (
        ("data.duplicate_rows", "Duplicated: equal to an earlier audit row", "duplicates"),
        ("data.leaked_rows", "Leaked: also in the training data", "leaked"),
        ("data.conflicting_labels", "Conflicting labels: same values as a row with another label", "conflicting_rows"),
    ):
        metric = _unscoped(metrics, key)
        if metric is None:
            continue
        notes.add(metric.ci)
        count = metric.details.get(part)
        checks.append(RowCheck(what, _value(metric.value), interval_range(metric.ci), _count(count)))
    return tuple(checks), notes.caption()


# -- formatting ----------------------------------------------------------------------------------------------------


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, float | int) and not isinstance(value, bool) else None


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _format.DASH


def _range(low: object, high: object) -> str:
    lo, hi = _float(low), _float(high)
    return "" if lo is None or hi is None else f"{_format.number(lo)}–{_format.number(hi)}"


def _percent(value: float | None) -> str:
    return _format.DASH if value is None else _format.Unit("percent").show(value)


def _points(value: float | None) -> str:
    return _format.DASH if value is None else _format.Unit("points").show(value)


def _percent_range(ci: Interval | None, kind: Literal["percent", "points"] = "percent") -> str:
    if ci is None:
        return ""
    unit = _format.Unit(kind)
    return f"{unit.bare(ci.low)}–{unit.show(ci.high)}"


__all__ = ["SUMMARY_KEYS", "DataView", "data_covers", "data_view", "heat_style", "summary"]
