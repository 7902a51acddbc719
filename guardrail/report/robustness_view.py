"""The robustness audit's part of the report (``use: robustness``): what the probes found first,
then the evidence, one table per probe.

- counterfactual: each group's flip rate and mean change of the positive-class score when the
  sensitive attribute is set to another value (tabular) or identity terms are swapped (text),
  with the coverage of text probes and the tabular value pairs (``counterfactual_pairs``);
- perturbation: for tabular data, the flip rate by noise strength as a line chart with its
  intervals, its numbers also in a table (``curve``); for text, a table perturbation × group
  with flip rate, accuracy drop and coverage;
- site style: the hospital × hospital matrix of the notes rewritten in another site's style
  (``site_style``), the share in every cell, shaded as the data section's heatmap;
- a few flipped examples (``examples``): the changed words of a document marked as deleted and
  inserted, or the changed features of a row, with the decision and score before and after.

Built only from the audit's metrics and artifacts in the run record, so a report re-rendered from
``run.json`` shows the same. Every string from the record is plain text here, escaped by the
template; the only markup built here (the chart, the word diff) escapes what it holds through
:meth:`markupsafe.Markup.format`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import unquote

from markupsafe import Markup

from guardrail.core.scopes import scope_features, scope_part
from guardrail.core.types import AuditResult, GroupValue, Interval, MetricResult
from guardrail.report import _format
from guardrail.report.charts import PALETTE, nice_maximum
from guardrail.report.curves import DASHES, LINE_HEIGHT, LINE_WIDTH, TOP, line_frame
from guardrail.report.data_view import heat_style
from guardrail.report.finding_sentences import (
    ROBUSTNESS_UNITS,
    Segment,
    describe,
    html,
    phrase,
    robustness_undefined,
    split_scope,
)

T = TypeVar("T")

SUMMARY_KEYS: tuple[str, ...] = (
    "robustness.counterfactual_flip_rate",
    "robustness.perturbation_flip_rate",
    "robustness.site_style_flip_rate",
)
"""The metrics said as sentences at the head of the section, in this order (a tabular
perturbation at its largest strength only, a site style by site only: the tables show the rest)."""

CONTEXT_WORDS = 30
"""Words of unchanged text kept on each side of a change in an example; longer runs are cut to ``…``."""
EXAMPLE_CHARS = 300
"""Longest feature value shown in a tabular example, in characters; the full value is in run.json."""
EXAMPLES_SHOWN = 2
"""Examples shown open; the others are collapsed below them (and printed)."""

@dataclass
class ColumnIntervals:
    """The interval methods of one table, by column: the caption names each column's method(s)
    once (a table mixes Clopper–Pearson shares, bootstrap score changes and gap intervals)."""

    columns: dict[str, list[str]] = field(default_factory=dict)

    def add(self, column: str, ci: Interval | None) -> None:
        if ci is not None:
            found = self.columns.setdefault(column, [])
            said = f"{_format.level(ci.level)}, {ci.method}"
            if said not in found:
                found.append(said)

    def caption(self) -> str:
        """``Intervals — flip rate: 95%, Clopper–Pearson; mean |Δscore|: 95%, percentile bootstrap.``"""
        if not self.columns:
            return ""
        return "Intervals — " + "; ".join(f"{column}: {' or '.join(said)}" for column, said in self.columns.items()) + "."


@dataclass(frozen=True)
class Rate:
    """A rate as shown: its value, its interval's range (a note under it), and why it has none."""

    text: str
    ci: str = ""
    reason: str = ""


@dataclass(frozen=True)
class GroupRow:
    group: str
    n: str
    small: bool
    flip: Rate
    score: Rate
    coverage: Rate


@dataclass(frozen=True)
class GapRow:
    """The gap between the groups' flip rates (or accuracy drops) of one probe."""

    what: str
    value: str
    ci: str
    low_group: str
    high_group: str
    reason: str = ""


@dataclass(frozen=True)
class PairRow:
    source: str
    target: str
    flip: str
    n: str


@dataclass(frozen=True)
class CounterfactualView:
    """One counterfactual probe: setting an attribute to another value, or swapping identity terms."""

    title: str
    scope: str
    text: bool
    rows: tuple[GroupRow, ...]
    overall: GroupRow
    gaps: tuple[GapRow, ...]
    pairs: tuple[PairRow, ...]
    caption: str
    reason: str = ""
    """Why the probe has no value (it applied to no row)."""


@dataclass(frozen=True)
class CurveCell:
    text: str
    ci: str


@dataclass(frozen=True)
class CurveRow:
    strength: str
    overall: CurveCell
    cells: tuple[CurveCell, ...]
    gap: CurveCell
    drop: CurveCell


@dataclass(frozen=True)
class CurveView:
    """The flip rate by noise strength of one grouping (tabular perturbation)."""

    grouping: str
    chart: Markup
    groups: tuple[tuple[str, str], ...]
    """(group, rows)."""
    rows: tuple[CurveRow, ...]
    caption: str


@dataclass(frozen=True)
class TextPerturbationRow:
    perturbation: str
    group: str
    n: str
    small: bool
    overall: bool
    flip: Rate
    drop: Rate
    coverage: Rate


@dataclass(frozen=True)
class TextPerturbationView:
    """Every text perturbation × every group of one grouping."""

    grouping: str
    rows: tuple[TextPerturbationRow, ...]
    gaps: tuple[GapRow, ...]
    caption: str


@dataclass(frozen=True)
class MatrixCell:
    text: str
    note: str
    style: str
    title: str
    own: bool


@dataclass(frozen=True)
class MatrixRow:
    site: str
    style: str
    cells: tuple[MatrixCell, ...]
    any_other: Rate
    n: str


@dataclass(frozen=True)
class SiteStyleView:
    """Rows: the patient's site; columns: the site whose style the note is written in."""

    columns: tuple[tuple[str, str], ...]
    """(site, its style's name)."""
    rows: tuple[MatrixRow, ...]
    caption: str


@dataclass(frozen=True)
class ExampleView:
    title: str
    group: str
    row: str
    decision: str
    score: str
    before: Markup
    after: Markup
    changes: tuple[tuple[str, str, str], ...]
    """(feature, before, after) for a tabular row."""


@dataclass(frozen=True)
class RobustnessView:
    """The robustness section of one audit."""

    findings: tuple[Markup, ...]
    facts: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    counterfactual: tuple[CounterfactualView, ...]
    curves: tuple[CurveView, ...]
    text_perturbations: tuple[TextPerturbationView, ...]
    site_style: SiteStyleView | None
    examples: tuple[ExampleView, ...]
    shown_examples: int = EXAMPLES_SHOWN
    """How many of :attr:`examples` are shown open."""


def robustness_view(result: AuditResult) -> RobustnessView | None:
    """The robustness section of ``result`` (an audit by the ``robustness`` auditor); ``None``
    when it has nothing to show."""
    metrics, artifacts = result.metrics, result.artifacts
    notes = tuple(str(n) for n in artifacts.get("notes") or () if isinstance(n, str))
    view = RobustnessView(
        findings=summary(metrics, html),
        facts=_facts(artifacts),
        notes=notes,
        counterfactual=_counterfactuals(metrics, artifacts.get("counterfactual_pairs")),
        curves=_curves(metrics, artifacts.get("curve")),
        text_perturbations=_text_perturbations(metrics),
        site_style=_site_style(metrics, artifacts.get("site_style")),
        examples=tuple(_example(e) for e in _interleaved([e for e in artifacts.get("examples") or () if isinstance(e, Mapping)])),
    )
    shown = (view.findings, view.facts, view.notes, view.counterfactual, view.curves, view.text_perturbations, view.examples)
    return view if any(shown) or view.site_style is not None else None


def summary(metrics: Sequence[MetricResult], write: Callable[[tuple[Segment, ...]], T]) -> tuple[T, ...]:
    """What a robustness audit found, one sentence per headline metric of :data:`SUMMARY_KEYS`
    (in that order; a metric without a value says why the probe is inconclusive), each written
    by ``write`` (:func:`~guardrail.report.finding_sentences.html`, or plain text)."""
    related = {m.ref: m for m in metrics}
    said = []
    for key in SUMMARY_KEYS:
        for metric in metrics:
            if metric.key != key or not _headline(metric, metrics):
                continue
            sentence = describe(metric, related) if metric.value is not None else robustness_undefined(metric)
            if sentence is not None:
                said.append(write(sentence))
    return tuple(said)


def robustness_covers(metric: MetricResult) -> bool:
    """Whether the robustness section shows ``metric`` (value and interval): every metric of the
    robustness audit's contract, by key and scope."""
    if metric.key not in ROBUSTNESS_UNITS or not metric.scope:
        return False
    _, name, _ = split_scope(metric.scope)
    key = metric.key.removeprefix("robustness.")
    if key.startswith("counterfactual"):
        return name in (None, "swap")
    if key == "coverage":
        return name in ("swap", "perturbation")
    if key.startswith("perturbation") or key == "accuracy_drop":
        return name in ("strength", "perturbation")
    return name in (None, "style")  # site_style_flip_rate


def _headline(metric: MetricResult, metrics: Sequence[MetricResult]) -> bool:
    grouping, name, setting = split_scope(metric.scope)
    if metric.key == "robustness.site_style_flip_rate":
        return name is None
    if name != "strength":
        return True
    strengths = [_number(split_scope(m.scope)[2]) for m in metrics if m.key == metric.key and split_scope(m.scope)[:2] == (grouping, name)]
    return _number(setting) == max((s for s in strengths if s is not None), default=None)


# -- what was probed -----------------------------------------------------------------------------------------------


def _facts(artifacts: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    facts: list[tuple[str, str]] = []
    sample = artifacts.get("sample")
    if isinstance(sample, Mapping) and isinstance(sample.get("rows"), int):
        rows, of = sample["rows"], sample.get("of")
        text = f"{rows:,}" + (f" of {of:,}" if isinstance(of, int) else "")
        if isinstance(of, int) and of > rows and isinstance(sample.get("seed"), int):
            text += f" (a random sample, seed {sample['seed']})"
        facts.append(("Rows probed", text))
    for probe in artifacts.get("probes") or ():
        if isinstance(probe, Mapping) and probe.get("label"):
            applicable, rows = probe.get("applicable"), probe.get("rows")
            unit = "documents" if probe.get("kind") == "text" else "rows"
            counted = f" — applies to {applicable:,} of {rows:,} {unit}" if isinstance(applicable, int) and isinstance(rows, int) else ""
            facts.append((f"Probe ({probe.get('kind') or 'data'})", f"{probe['label']}{counted}"))
    scoring = artifacts.get("scoring")
    if isinstance(scoring, Mapping) and isinstance(scoring.get("inputs"), int):
        seconds = scoring.get("seconds")
        batches = scoring.get("batches")
        text = f"{scoring['inputs']:,} inputs" + (f" in {batches:,} batches" if isinstance(batches, int) else "")
        facts.append(("Model calls", text + (f", {_format.duration(float(seconds))}" if isinstance(seconds, float | int) else "")))
    return tuple(facts)


# -- counterfactual ------------------------------------------------------------------------------------------------


def _counterfactuals(metrics: Sequence[MetricResult], pairs: object) -> tuple[CounterfactualView, ...]:
    flips = _scoped(metrics, "robustness.counterfactual_flip_rate", ("swap", None))
    scores = _scoped(metrics, "robustness.counterfactual_score_change", ("swap", None))
    gaps = _scoped(metrics, "robustness.counterfactual_flip_rate_difference", ("swap", None))
    coverage = _scoped(metrics, "robustness.coverage", ("swap",))
    all_pairs = [p for p in pairs or () if isinstance(p, Mapping)] if isinstance(pairs, Sequence) else []
    views = []
    for scope in dict.fromkeys([*flips, *scores, *gaps]):
        flip, score, gap, cover = flips.get(scope), scores.get(scope), gaps.get(scope), coverage.get(scope)
        grouping, name, _ = split_scope(scope)
        text = name == "swap"
        anchor = flip or score or gap
        attribute = str(anchor.details.get("attribute") or " × ".join(scope_features(grouping))) if anchor else grouping
        notes = ColumnIntervals()
        groups = list(dict.fromkeys(g.group for m in (flip, score, cover) if m is not None for g in m.by_group))
        values = [{g.group: g for g in m.by_group} if m is not None else {} for m in (flip, score, cover)]
        rows = []
        for group in groups:
            f, s, c = (found.get(group) for found in values)
            first = f or s or c
            rows.append(GroupRow(group, _format.integer(first.n) if first else _format.DASH, bool(first and first.small),
                                 _group_rate(f, "percent", notes, "flip rate"), _group_rate(s, "plain", notes, "mean |Δscore|"),
                                 _group_rate(c, "percent", notes, "coverage")))  # fmt: skip
        overall = GroupRow(
            "All documents with an identity term" if text else "All rows", _format.integer(anchor.n if anchor else None),
            False, _metric_rate(flip, "percent", notes, "flip rate"), _metric_rate(score, "plain", notes, "mean |Δscore|"),
            _metric_rate(cover, "percent", notes, "coverage"),
        )  # fmt: skip
        gap_rows = tuple(_gap_row("Flip rate", gap, notes, "gap") for gap in (gap,) if gap is not None)
        pair_rows = tuple(
            PairRow(str(p.get("from", "")), str(p.get("to", "")), _percent(_float(p.get("flip_rate"))), _count(p.get("n")))
            for p in all_pairs
            if not text and scope_part(str(p.get("attribute", ""))) == grouping
        )
        caption = (
            "Flip rate: the share of the group's "
            + ("documents that contain an identity term whose decision changes when every identity term is swapped (he↔she, …)"
               if text else f"rows whose decision changes when {attribute} is set to any other value (the group is the row's own value)")
            + ". Score change: the mean absolute change of the positive-class score"
            + (", the largest over the other values" if not text else "")
            + ". "
            + ("Coverage: the share of the group's documents that contain an identity term. " if text else "")
            + notes.caption()
        )  # fmt: skip
        reason = (flip.reason or "") if flip is not None and flip.value is None else ""
        title = f"identity terms swapped, by {' × '.join(scope_features(grouping))}" if text else f"setting {attribute} to another value"
        views.append(CounterfactualView(title, scope, text, tuple(rows), overall, gap_rows, pair_rows, caption.strip(), reason))
    return tuple(views)


# -- perturbation --------------------------------------------------------------------------------------------------


def _curves(metrics: Sequence[MetricResult], curve: object) -> tuple[CurveView, ...]:
    """One view per grouping of the tabular perturbation: from its metrics, and from the
    ``curve`` artifact for any strength the metrics lack."""
    flips = _scoped(metrics, "robustness.perturbation_flip_rate", ("strength",))
    gaps = _scoped(metrics, "robustness.perturbation_flip_rate_difference", ("strength",))
    drops = _scoped(metrics, "robustness.accuracy_drop", ("strength",))
    points: dict[str, dict[float, _Point]] = {}
    for entry in curve if isinstance(curve, Sequence) and not isinstance(curve, str) else ():
        if isinstance(entry, Mapping) and _float(entry.get("strength")) is not None:
            points.setdefault(str(entry.get("grouping", "")), {})[float(entry["strength"])] = _Point.of_entry(entry)
    for scope, metric in flips.items():
        grouping, _, setting = split_scope(scope)
        strength = _number(metric.details.get("strength", setting))
        if strength is not None:
            points.setdefault(grouping, {})[strength] = _Point.of_metric(metric)
    views = []
    for grouping, by_strength in points.items():
        strengths = sorted(by_strength)
        groups = list(dict.fromkeys(g for s in strengths for g in by_strength[s].groups))
        sizes = {g: n for s in strengths for g, (_, _, n) in by_strength[s].groups.items()}
        notes = ColumnIntervals()
        rows = []
        for strength in strengths:
            point = by_strength[strength]
            if point.measured:
                notes.add("flip rate", point.ci)
            qualified = f"{grouping}/strength={_strength_part(strength, flips, grouping)}"
            gap, drop = gaps.get(qualified), drops.get(qualified)
            notes.add("gap", gap.ci if gap is not None else None)
            notes.add("accuracy drop", drop.ci if drop is not None else None)
            cells = []
            for group in groups:
                value, ci, _ = point.groups.get(group, (None, None, None))
                if point.measured:
                    notes.add("flip rate", ci)
                cells.append(CurveCell(_percent(value), _percent_range(ci)))
            rows.append(
                CurveRow(
                    strength=f"{strength:g}", overall=CurveCell(_percent(point.value), _percent_range(point.ci)), cells=tuple(cells),
                    gap=_cell(gap, "points"), drop=_cell(drop, "points"),
                )  # fmt: skip
            )
        features = " × ".join(scope_features(grouping))
        chart = curve_chart(grouping, strengths, groups, by_strength)
        caption = (
            f"Flip rate by {features}: the share of each group's rows whose decision changes when the numeric features move by "
            "the strength × their spread (interquartile range / 1.349, the standard deviation of a normal feature; "
            "features whose middle half holds one value are not moved). The gap is the largest difference between two "
            "groups' flip rates; the accuracy drop is accuracy on the original rows minus accuracy on the moved rows "
            "(percentage points, positive = worse). " + notes.caption()
        )
        views.append(CurveView(grouping, chart, tuple((g, _count(sizes.get(g))) for g in groups), tuple(rows), caption))
    return tuple(views)


@dataclass(frozen=True)
class _Point:
    """The flip rate at one strength: overall and by group (value, interval, rows)."""

    value: float | None
    ci: Interval | None
    groups: Mapping[str, tuple[float | None, Interval | None, int | None]]
    measured: bool = False
    """From a metric (its intervals name their method), not only from the ``curve`` artifact."""

    @classmethod
    def of_metric(cls, metric: MetricResult) -> _Point:
        return cls(metric.value, metric.ci, {g.group: (g.value, g.ci, g.n) for g in metric.by_group}, measured=True)

    @classmethod
    def of_entry(cls, entry: Mapping[str, Any]) -> _Point:
        groups = {
            str(g.get("group")): (_float(g.get("value")), _interval(g.get("ci")), g.get("n") if isinstance(g.get("n"), int) else None)
            for g in entry.get("by_group") or ()
            if isinstance(g, Mapping)
        }
        return cls(_float(entry.get("overall")), _interval(entry.get("ci")), groups)


def _strength_part(strength: float, flips: Mapping[str, MetricResult], grouping: str) -> str:
    """How ``strength`` is written in the scopes of ``grouping`` (``0.05``, whatever its float spelling)."""
    for scope in flips:
        head, _, setting = split_scope(scope)
        if head == grouping and _number(setting) == strength:
            return scope_part(setting or "")
    return f"{strength:g}"


def _text_perturbations(metrics: Sequence[MetricResult]) -> tuple[TextPerturbationView, ...]:
    flips = _scoped(metrics, "robustness.perturbation_flip_rate", ("perturbation",))
    gaps = _scoped(metrics, "robustness.perturbation_flip_rate_difference", ("perturbation",))
    drops = _scoped(metrics, "robustness.accuracy_drop", ("perturbation",))
    covers = _scoped(metrics, "robustness.coverage", ("perturbation",))
    by_grouping: dict[str, list[str]] = {}
    for scope in dict.fromkeys([*flips, *drops, *covers, *gaps]):
        by_grouping.setdefault(split_scope(scope)[0], []).append(scope)
    views = []
    for grouping, scopes in by_grouping.items():
        notes = ColumnIntervals()
        rows: list[TextPerturbationRow] = []
        gap_rows = []
        for scope in scopes:
            name = split_scope(scope)[2] or ""
            flip, drop, cover = flips.get(scope), drops.get(scope), covers.get(scope)
            anchor = flip or drop or cover
            rows.append(TextPerturbationRow(name, "All documents", _format.integer(anchor.n if anchor else None), False, True,
                                            _metric_rate(flip, "percent", notes, "flip rate"),
                                            _metric_rate(drop, "points", notes, "accuracy drop"),
                                            _metric_rate(cover, "percent", notes, "coverage")))  # fmt: skip
            values = [{g.group: g for g in m.by_group} if m is not None else {} for m in (flip, drop, cover)]
            for group in dict.fromkeys(g for found in values for g in found):
                f, d, c = (found.get(group) for found in values)
                first = f or d or c
                rows.append(TextPerturbationRow(name, group, _format.integer(first.n) if first else _format.DASH, bool(first and first.small),
                                                False, _group_rate(f, "percent", notes, "flip rate"),
                                                _group_rate(d, "points", notes, "accuracy drop"), _group_rate(c, "percent", notes, "coverage")))  # fmt: skip
            if scope in gaps:
                gap_rows.append(_gap_row(name, gaps[scope], notes, "gap"))
        caption = (
            f"By {' × '.join(scope_features(grouping))}: flip rate, the share of the documents a perturbation applies to whose "
            "decision changes; accuracy drop, accuracy on the original documents minus accuracy on the perturbed ones (percentage "
            "points, positive = worse); coverage, the share of the group's documents the perturbation applies to. " + notes.caption()
        )
        views.append(TextPerturbationView(grouping, tuple(rows), tuple(gap_rows), caption.strip()))
    return tuple(views)


# -- site style ----------------------------------------------------------------------------------------------------


def _site_style(metrics: Sequence[MetricResult], matrix: object) -> SiteStyleView | None:
    """The hospital × hospital matrix: each cell from its pair metric (``site=A/style=B``), the
    ``site_style`` artifact giving the order of the sites, their styles' names and any cell the
    metrics lack; the last column from the metric by site."""
    pairs = [m for m in metrics if m.key == "robustness.site_style_flip_rate" and split_scope(m.scope)[1] == "style"]
    overall = next((m for m in metrics if m.key == "robustness.site_style_flip_rate" and split_scope(m.scope)[1] is None), None)
    cells: dict[tuple[str, str], tuple[float | None, Interval | None, int | None]] = {}
    sites: list[str] = []
    styles: Mapping[str, Any] = {}
    for metric in pairs:  # the metrics first: their intervals name their method
        site, style_of = _pair(metric)
        cells[(site, style_of)] = (metric.value, metric.ci, metric.n)
    measured = set(cells)
    if isinstance(matrix, Mapping):
        sites = [str(s) for s in matrix.get("sites") or ()]
        found = matrix.get("styles")
        styles = found if isinstance(found, Mapping) else {}
        for cell in matrix.get("cells") or ():
            if isinstance(cell, Mapping):
                n = cell.get("n")
                key = (str(cell.get("site")), str(cell.get("style_of")))
                cells.setdefault(key, (_float(cell.get("value")), _interval(cell.get("ci")), n if isinstance(n, int) else None))
    for site, style_of in cells:
        sites += [s for s in (site, style_of) if s not in sites]
    if not cells and overall is None:
        return None
    by_site = {g.group: g for g in overall.by_group} if overall is not None else {}
    sites += [s for s in by_site if s not in sites]
    notes = ColumnIntervals()
    rows = []
    for site in sites:
        row = []
        for style_of in sites:
            if style_of == site:
                row.append(MatrixCell("own style", "", "", f"{site}'s patients in their own site's style", True))
                continue
            value, ci, n = cells.get((site, style_of), (None, None, None))
            if (site, style_of) in measured:
                notes.add("cells", ci)
            title = f"{site}'s patients written in {style_of}'s style: " + (
                "not probed" if value is None else f"{_percent(value)} change decision" + (f", n={n:,}" if n is not None else "")
            )
            row.append(MatrixCell(_percent(value), ", ".join(p for p in (_percent_range(ci), f"n={n:,}" if n is not None else "") if p),
                                  heat_style(value) if value is not None else "", title, False))  # fmt: skip
        found = by_site.get(site)
        rows.append(MatrixRow(site, str(styles.get(site) or ""), tuple(row), _group_rate(found, "percent", notes, "any other style"),
                              _format.integer(found.n) if found is not None else _format.DASH))  # fmt: skip
    caption = (
        "Each row is a site's held-out patients; each column the site whose writing style their notes are rewritten in. A cell is the "
        "share of the row's patients whose decision differs from the one on their note in their own site's style, with its interval "
        "and the patients probed; colour repeats the number (white: none, darker blue: more). “Any other style”: the share whose "
        "decision changes in at least one other site's style. " + notes.caption()
    )
    return SiteStyleView(tuple((s, str(styles.get(s) or "")) for s in sites), tuple(rows), caption.strip())


def _pair(metric: MetricResult) -> tuple[str, str]:
    head, _, style_of = split_scope(metric.scope)
    site = metric.details.get("site")
    named = metric.details.get("style_of")
    return (
        site if isinstance(site, str) else unquote(head.partition("=")[2]),
        named if isinstance(named, str) else style_of or "",
    )


# -- examples ------------------------------------------------------------------------------------------------------


def _interleaved(entries: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The examples taken in turn from each probe, so that the first ones shown cover every probe."""
    by_probe: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_probe.setdefault(str(entry.get("probe", "")), []).append(entry)
    rounds = max((len(found) for found in by_probe.values()), default=0)
    return [found[i] for i in range(rounds) for found in by_probe.values() if i < len(found)]


def _example(entry: Mapping[str, Any]) -> ExampleView:
    probe = str(entry.get("probe", ""))
    scope = str(entry.get("scope", ""))
    said = phrase(f"{probe}_flip_rate", scope or None, {})
    before, after = diff_words(str(entry.get("before") or ""), str(entry.get("after") or ""))
    changes = tuple(
        (str(c.get("feature", "")), _format.shorten(str(c.get("before", "")), EXAMPLE_CHARS), _format.shorten(str(c.get("after", "")), EXAMPLE_CHARS))
        for c in entry.get("changes") or ()
        if isinstance(c, Mapping)
    )
    row = entry.get("row")
    score_before, score_after = _float(entry.get("score_before")), _float(entry.get("score_after"))
    score = "" if score_before is None or score_after is None else f"{_format.number(score_before)} → {_format.number(score_after)}"
    return ExampleView(
        title=said[:1].upper() + said[1:],
        group=str(entry.get("group", "")),
        row=f"{row:,}" if isinstance(row, int) and not isinstance(row, bool) else _format.DASH,
        decision=f"{entry.get('decision_before', '')} → {entry.get('decision_after', '')}",
        score=score,
        before=before,
        after=after,
        changes=changes,
    )


_TOKEN = re.compile(r"\s+|[^\s]+")


def diff_words(before: str, after: str, context: int = CONTEXT_WORDS) -> tuple[Markup, Markup]:
    """``before`` and ``after`` as escaped HTML, the words only in ``before`` in ``<del>`` and those
    only in ``after`` in ``<ins>`` (a word diff, whitespace kept); runs of unchanged text longer than
    twice ``context`` words keep ``context`` words on each side of a change, the rest cut to ``…``.

    >>> diff_words("he is <b>", "she is <b>")
    (Markup('<del>he</del> is &lt;b&gt;'), Markup('<ins>she</ins> is &lt;b&gt;'))
    """
    old, new = _TOKEN.findall(before), _TOKEN.findall(after)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    left: list[Markup] = []
    right: list[Markup] = []
    codes = matcher.get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(codes):
        if tag == "equal":
            same = _elide(old[i1:i2], context, first=index == 0, last=index == len(codes) - 1)
            left.append(same)
            right.append(same)
            continue
        if i2 > i1:
            left.append(Markup("<del>{}</del>").format("".join(old[i1:i2])))
        if j2 > j1:
            right.append(Markup("<ins>{}</ins>").format("".join(new[j1:j2])))
    return Markup("").join(left), Markup("").join(right)


def _elide(tokens: Sequence[str], context: int, *, first: bool, last: bool) -> Markup:
    """Unchanged tokens, cut to ``…`` beyond ``context`` words of a change: before the first
    change only its last words are kept (``first``), after the last change only its first
    (``last``), between two changes both ends."""
    words = [i for i, t in enumerate(tokens) if not t.isspace()]
    text = "".join(tokens)
    if first and last:
        return Markup("{}").format(text)
    if first:
        return Markup("… {}").format("".join(tokens[words[-context] :])) if len(words) > context else Markup("{}").format(text)
    if last:
        return Markup("{}…").format("".join(tokens[: words[context]])) if len(words) > context else Markup("{}").format(text)
    if len(words) <= 2 * context:
        return Markup("{}").format(text)
    return Markup("{}… {}").format("".join(tokens[: words[context]]), "".join(tokens[words[-context] :]))


# -- the curve chart -----------------------------------------------------------------------------------------------

CHART_LEFT = 64
CHART_TOP = TOP
CHART_WIDTH = LINE_WIDTH
CHART_HEIGHT = LINE_HEIGHT
CHART_BOTTOM = 44
LEGEND_LINE = 20
OVERALL_COLOUR = "#333333"


def curve_chart(grouping: str, strengths: Sequence[float], groups: Sequence[str], points: Mapping[float, _Point]) -> Markup:
    """The flip rate (percent) against the noise strength: one line for all rows and one per group,
    each point with its interval as a whisker (lines told apart by dash pattern as well as colour).
    The numbers are also in the table beside it."""
    top = _ceiling(max([v for p in points.values() for v in (p.value, p.ci.high if p.ci else None,
                                                                *(x for g in p.groups.values() for x in (g[0], g[1].high if g[1] else None)))
                        if v is not None], default=0.0))  # fmt: skip
    x_max = max(strengths, default=1.0) or 1.0
    series: list[tuple[str, str, str, list[tuple[float, float | None, Interval | None]]]] = [
        ("All rows", OVERALL_COLOUR, "", [(s, points[s].value, points[s].ci) for s in strengths])
    ]
    for index, group in enumerate(groups):
        line: list[tuple[float, float | None, Interval | None]] = []
        for s in strengths:
            value, ci, _ = points[s].groups.get(group, (None, None, None))
            line.append((s, value, ci))
        series.append((group, PALETTE[index % len(PALETTE)], DASHES[(index + 1) % len(DASHES)], line))

    def px(x: float) -> float:
        return CHART_LEFT + x / x_max * CHART_WIDTH

    def py(y: float) -> float:
        return CHART_TOP + (1.0 - min(max(y, 0.0), top) / top) * CHART_HEIGHT

    height = CHART_TOP + CHART_HEIGHT + CHART_BOTTOM + LEGEND_LINE * len(series) + 4
    features = " × ".join(scope_features(grouping))
    title = f"Flip rate by noise strength, by {features}"
    parts = line_frame(title, top, py, left=CHART_LEFT, height=height, tick=lambda value: f"{value * 100:.3g}%")
    for x in (0.0, *strengths):
        parts.append(
            Markup('<text x="{x}" y="{y}" text-anchor="middle" fill="#333">{t}</text>').format(
                x=f"{px(x):.1f}", y=CHART_TOP + CHART_HEIGHT + 16, t=f"{x:g}"
            )
        )
    parts.append(
        Markup(
            '<text x="{cx}" y="{by}" text-anchor="middle" fill="#333">strength (share of the spread)</text>'
            '<text transform="translate(12 {cy}) rotate(-90)" text-anchor="middle" fill="#333">decisions changed</text>'
        ).format(cx=CHART_LEFT + CHART_WIDTH / 2, by=CHART_TOP + CHART_HEIGHT + 36, cy=CHART_TOP + CHART_HEIGHT / 2)
    )
    spread = 3.0
    for index, (label, colour, dash, line) in enumerate(series):
        offset = (index - (len(series) - 1) / 2) * spread
        run = [f"{px(0.0):.1f},{py(0.0):.1f}"]  # no noise, no change
        for x, y, ci in line:
            if y is None:
                continue
            cx = px(x) + offset
            run.append(f"{cx:.1f},{py(y):.1f}")
            tip = f"{label}, strength {x:g}: {_percent(y)}" + (f" ({_format.level(ci.level)} CI {_percent_range(ci)})" if ci else "")
            if ci is not None:
                parts.append(
                    Markup('<line x1="{x}" x2="{x}" y1="{lo}" y2="{hi}" stroke="{c}" stroke-width="1.2"><title>{tip}</title></line>').format(
                        x=f"{cx:.1f}", lo=f"{py(ci.low):.1f}", hi=f"{py(ci.high):.1f}", c=colour, tip=tip
                    )
                )
            parts.append(
                Markup('<circle cx="{x}" cy="{y}" r="3.5" fill="{c}"><title>{tip}</title></circle>').format(
                    x=f"{cx:.1f}", y=f"{py(y):.1f}", c=colour, tip=tip
                )
            )
        parts.insert(
            1,
            Markup('<polyline points="{p}" fill="none" stroke="{c}" stroke-width="2"{d}><title>{label}</title></polyline>').format(
                p=" ".join(run), c=colour, d=Markup(' stroke-dasharray="{}"').format(dash) if dash else Markup(""), label=label
            ),
        )
        y = CHART_TOP + CHART_HEIGHT + CHART_BOTTOM + 8 + index * LEGEND_LINE
        shown = label if len(label) <= 52 else label[:51] + "…"
        parts.append(
            Markup(
                '<line x1="{x}" y1="{y}" x2="{x2}" y2="{y}" stroke="{c}" stroke-width="2"{d}/>'
                '<text x="{tx}" y="{ty}" fill="#222"><title>{label}</title>{shown}</text>'
            ).format(x=CHART_LEFT, x2=CHART_LEFT + 24, y=y, c=colour, d=Markup(' stroke-dasharray="{}"').format(dash) if dash else Markup(""),
                     tx=CHART_LEFT + 30, ty=y + 4, label=label, shown=shown)  # fmt: skip
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _ceiling(value: float) -> float:
    """The top of the chart's axis: the smallest of 1, 2, 2.5, 5 × a power of ten at or above ``value``."""
    return min(nice_maximum(value), 1.0) if value > 0 else 0.05


# -- helpers -------------------------------------------------------------------------------------------------------


def _scoped(metrics: Sequence[MetricResult], key: str, qualifiers: Sequence[str | None]) -> dict[str, MetricResult]:
    """The metrics of ``key`` by scope, those whose last qualifier is one of ``qualifiers``."""
    return {m.scope: m for m in metrics if m.key == key and m.scope and split_scope(m.scope)[1] in qualifiers}


def _group_rate(value: GroupValue | None, kind: Literal["percent", "points", "plain"], notes: ColumnIntervals, column: str) -> Rate:
    if value is None:
        return Rate("")
    notes.add(column, value.ci)
    if value.value is None:
        return Rate(_format.DASH, reason=value.reason or "")
    return Rate(_show(value.value, kind), _range(value.ci, kind))


def _metric_rate(metric: MetricResult | None, kind: Literal["percent", "points", "plain"], notes: ColumnIntervals, column: str) -> Rate:
    if metric is None:
        return Rate("")
    notes.add(column, metric.ci)
    if metric.value is None:
        return Rate(_format.DASH, reason=metric.reason or "")
    return Rate(_show(metric.value, kind), _range(metric.ci, kind))


def _gap_row(what: str, metric: MetricResult, notes: ColumnIntervals, column: str) -> GapRow:
    notes.add(column, metric.ci)
    low, high = metric.details.get("min_group"), metric.details.get("max_group")
    return GapRow(
        what=what,
        value=_show(metric.value, "points"),
        ci=_range(metric.ci, "points"),
        low_group="" if low is None else str(low),
        high_group="" if high is None else str(high),
        reason=(metric.reason or "") if metric.value is None else "",
    )


def _cell(metric: MetricResult | None, kind: Literal["percent", "points"]) -> CurveCell:
    if metric is None:
        return CurveCell("", "")
    return CurveCell(_show(metric.value, kind), _range(metric.ci, kind))


def _show(value: float | None, kind: Literal["percent", "points", "plain"]) -> str:
    return _format.DASH if value is None else _format.Unit(kind).show(value)


def _range(ci: Interval | None, kind: Literal["percent", "points", "plain"]) -> str:
    if ci is None:
        return ""
    unit = _format.Unit(kind)
    return f"{unit.bare(ci.low)}–{unit.show(ci.high)}"


def _percent(value: float | None) -> str:
    return _show(value, "percent")


def _percent_range(ci: Interval | None) -> str:
    return _range(ci, "percent")


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, float | int) and not isinstance(value, bool) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value) if isinstance(value, float | int | str) else None
    except ValueError:
        return None


def _interval(value: object) -> Interval | None:
    """A ``[low, high]`` of an artifact as a 95% interval (the artifacts keep no method; the metrics do)."""
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = _float(value[0]), _float(value[1])
        if low is not None and high is not None:
            return Interval(low, high, 0.95, "Clopper–Pearson")
    return None


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _format.DASH


__all__ = ["SUMMARY_KEYS", "RobustnessView", "curve_chart", "diff_words", "robustness_covers", "robustness_view", "summary"]
