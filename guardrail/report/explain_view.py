"""What the HTML report shows for an explainability audit: what drives the model (global
importance with intervals, by method), whether the explanations can be trusted (quality
and agreement), whether a protected attribute or a proxy drives it, faithfulness and
importance by group and, for tabular models, sampled local explanations
(:mod:`.explain_tabular_view`) or, for text models, token heatmaps and the words associated
with a group (:mod:`.explain_text_view`).

Built only from the audit's metrics and artifacts in the run record, so a report
re-rendered from ``run.json`` shows the same. Every string is plain text here; the
template and :mod:`.charts` escape it (token and feature names included).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from guardrail.core.types import AuditResult, MetricResult
from guardrail.report import _format, charts
from guardrail.report.evidence import IntervalNotes, interval_range
from guardrail.report.explain_tabular_view import TABULAR_IMPORTANCE, LocalRow, lime_note, local_rows
from guardrail.report.explain_text_view import (
    RANDOM_ORDER,
    TEXT_IMPORTANCE,
    Heatmap,
    heatmaps,
    random_order_values,
    strongest_association,
)

CHART_FEATURES = 15
"""Most features (or tokens) in the importance chart; the full ranking is in run.json."""

GROUP_FEATURES = 8
"""Features shown in the importance-by-group table."""

METHOD_NAMES = {
    "integrated_gradients": "Integrated Gradients",
    "gradient_shap": "GradientShap",
    "feature_ablation": "Feature ablation",
    "shapley_sampling": "Shapley value sampling",
    "lime": "LIME",
    "layer_ig": "Layer Integrated Gradients",
}

QUALITY_COLUMNS = (
    ("deletion_auc", "Deletion AUC ↓"),
    ("insertion_auc", "Insertion AUC ↑"),
    ("faithfulness", "Faithfulness ↑"),
    ("stability", "Stability (top-k Jaccard) ↑"),
    ("infidelity", "Infidelity ↓"),
    ("sensitivity", "Sensitivity ↓"),
)


@dataclass(frozen=True)
class ValueCell:
    text: str
    ci: str = ""


@dataclass(frozen=True)
class QualityRow:
    method: str
    cells: tuple[ValueCell, ...]


@dataclass(frozen=True)
class GroupImportanceTable:
    """Importance of the top features for each group of one sensitive column (one method)."""

    column: str
    method: str
    groups: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class FaithfulnessByGroup:
    """Mean faithfulness per group of one sensitive column, one row per method, and the gap."""

    column: str
    groups: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...], ValueCell], ...]
    """(method, a cell per group, the gap)."""


@dataclass(frozen=True)
class ExplainView:
    """The explainability section of one audit."""

    unit: str
    """What is attributed to, as a column header: "Feature", or "Word" for a text model."""
    charts: tuple[tuple[str, Markup], ...]
    """One importance chart per method, each on its own scale: (method name, chart)."""
    ranking_note: str
    importance_note: str
    lime_note: str
    """How tabular LIME drew its samples (pools) and what its intervals resample; empty otherwise."""
    quality: tuple[QualityRow, ...]
    quality_columns: tuple[str, ...]
    quality_caption: str
    """The quality table's interval methods, said once."""
    completeness: tuple[tuple[str, str], ...]
    agreement: tuple[tuple[str, ValueCell, ValueCell], ...]
    proxy: tuple[str, ...]
    proxy_associations: tuple[tuple[str, str, str], ...]
    proxy_caption: str
    faithfulness_by_group: tuple[FaithfulnessByGroup, ...]
    unit_plural: str
    """What was explained, in the plural: "rows", or "documents" for a text model."""
    by_group: tuple[GroupImportanceTable, ...]
    local_method: str
    local: tuple[LocalRow, ...]
    heatmaps: tuple[Heatmap, ...]
    coverage: str


COVERED = re.compile(
    r"explain\.(?:[a-z_]+\.(?:importance|faithfulness_gap|" + "|".join(key for key, _ in QUALITY_COLUMNS)
    + r"|max_relative_delta|converged)|agreement\.[a-z_]+|proxy\.[a-z_]+|coverage)"
)
"""Metric keys the explainability part shows (chart, quality, agreement, proxy, faithfulness by
group, completeness, coverage); the report does not repeat them in a table."""


def explain_covers(metric: MetricResult) -> bool:
    """Whether the explainability part of the report shows ``metric``."""
    return COVERED.fullmatch(metric.key) is not None


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def explain_view(result: AuditResult) -> ExplainView:
    """The explainability section of ``result`` (an audit by the ``explainability`` auditor)."""
    metrics = result.metrics
    artifacts = result.artifacts
    methods = _methods(metrics, artifacts)
    text = "heatmap" in artifacts
    overall = {m.key: m for m in metrics if m.scope is None}
    quality_keys = [key for key, _ in QUALITY_COLUMNS if any(f"explain.{m}.{key}" in overall for m in methods)]
    intervals = IntervalNotes()
    for method in methods:  # every interval first, so each row's mark agrees with the caption
        for key in quality_keys:
            if (found := overall.get(f"explain.{method}.{key}")) is not None and found.value is not None:
                intervals.add(found.ci)
    quality = tuple(
        QualityRow(
            method=method_name(method),
            cells=tuple(_cell(overall.get(f"explain.{method}.{key}"), intervals) for key in quality_keys),
        )
        for method in methods
    )
    reference = random_order_values(overall, methods)
    if reference:
        cells = tuple(ValueCell(_format.number(reference[k])) if k in reference else ValueCell(_format.DASH) for k in quality_keys)
        quality += (QualityRow(method=RANDOM_ORDER, cells=cells),)
    local_method, local = local_rows(artifacts.get("local"), methods)
    unit = "Word" if text else "Feature"
    return ExplainView(
        unit=unit,
        charts=_importance_charts(metrics, methods, unit.lower()),
        ranking_note=_ranking_note(artifacts.get("ranking")),
        importance_note=TEXT_IMPORTANCE if text else TABULAR_IMPORTANCE,
        lime_note=lime_note(artifacts.get("seeds")),
        quality=quality if quality_keys else (),
        quality_columns=tuple(title for key, title in QUALITY_COLUMNS if key in quality_keys),
        quality_caption=intervals.caption() if quality_keys else "",
        completeness=_completeness(overall),
        agreement=tuple(
            (
                " vs ".join(method_name(part) for part in (m.scope or "").split("~")),
                _cell(m),
                _cell(next((o for o in metrics if o.key == "explain.agreement.top_k_overlap" and o.scope == m.scope), None)),
            )
            for m in metrics
            if m.key == "explain.agreement.spearman"
        ),
        proxy=_proxy_sentences(overall, text) + strongest_association(artifacts.get("proxy")),
        proxy_associations=_associations(artifacts.get("proxy")),
        proxy_caption=PROXY_CAPTIONS[text],
        faithfulness_by_group=_faithfulness_by_group(metrics, methods),
        unit_plural="documents" if text else "rows",
        by_group=_by_group(metrics, methods),
        local_method=method_name(local_method) if local_method else "",
        local=local,
        heatmaps=heatmaps(artifacts.get("heatmap")),
        coverage=_coverage(overall.get("explain.coverage")),
    )


def _methods(metrics: Sequence[MetricResult], artifacts: Mapping[str, Any]) -> list[str]:
    ranking = artifacts.get("ranking")
    if isinstance(ranking, Mapping) and ranking:
        return [str(m) for m in ranking]
    found: list[str] = []
    for m in metrics:
        parts = m.key.split(".")
        if len(parts) == 3 and parts[2] == "importance" and parts[1] not in found:
            found.append(parts[1])
    return found


def _cell(metric: MetricResult | None, intervals: IntervalNotes | None = None) -> ValueCell:
    """A value and its interval; with ``intervals``, only the interval's range (and a mark when the
    table mixes methods), the table's caption naming the method once. ``intervals`` must already
    hold every interval of the table, or a row built early misses the mark a later method calls for."""
    if metric is None:
        return ValueCell(_format.DASH)
    if metric.value is None:
        return ValueCell(_format.DASH, metric.reason or "")
    if intervals is None:
        return ValueCell(_format.number(metric.value), _format.interval(metric.ci))
    mark = intervals.mark(intervals.add(metric.ci))
    return ValueCell(_format.number(metric.value), interval_range(metric.ci) + (f" {mark}" if mark else ""))


def _importance_charts(metrics: Sequence[MetricResult], methods: Sequence[str], unit: str = "feature") -> tuple[tuple[str, Markup], ...]:
    """One chart per method, each of its own strongest features on its own axis: methods measure
    importance in different units (a LIME coefficient, a change of probability), so one shared
    axis would compare numbers that are not comparable."""
    by_method: dict[str, dict[str, MetricResult]] = {}
    for m in metrics:
        for method in methods:
            if m.key == f"explain.{method}.importance" and m.scope is not None:
                by_method.setdefault(method, {})[m.scope] = m
    out = []
    for method, found in by_method.items():
        features = sorted(found, key=lambda f: -(found[f].value or 0.0))[:CHART_FEATURES]
        rows = [charts.ChartRow(label=feature, small=False, bars=(_bar(found[feature]),)) for feature in features]
        highest = max(
            (max(b.value, b.ci.high if b.ci else 0.0) for r in rows for b in r.bars if b is not None and b.value is not None),
            default=1.0,
        )
        name = method_name(method)
        more = len(found) - len(features)
        title = f"Mean |attribution| by {unit}, {name}" + (f" (the {len(features)} strongest of {len(found)})" if more > 0 else "")
        chart = charts.bar_chart(rows, [name], title=title, maximum=charts.nice_maximum(highest), legend=False)
        out.append((name, chart))  # the figure's caption names the method
    return tuple(out)


def _bar(metric: MetricResult | None) -> charts.Bar | None:
    if metric is None:
        return None
    return charts.Bar(value=metric.value, n=metric.n, ci=metric.ci, reason=metric.reason)


def _ranking_note(ranking: object) -> str:
    if not isinstance(ranking, Mapping) or not ranking:
        return ""
    parts = [f"{method_name(str(m))}: {', '.join(map(str, list(order)[:5]))}" for m, order in ranking.items()]
    return "Strongest drivers, in order. " + "; ".join(parts) + "."


def _completeness(overall: Mapping[str, MetricResult]) -> tuple[tuple[str, str], ...]:
    rows = []
    method = "layer_ig" if "explain.layer_ig.converged" in overall else "integrated_gradients"
    delta = overall.get(f"explain.{method}.max_relative_delta")
    converged = overall.get(f"explain.{method}.converged")
    if delta is not None:
        rows.append(("Largest relative completeness gap |Σ attributions − (f(x) − f(baseline))|", _format.number(delta.value)))
    if converged is not None:
        tolerance = converged.details.get("tolerance")
        within = f" within {tolerance:g}" if isinstance(tolerance, int | float) else ""
        rows.append((f"Share of rows whose Integrated Gradients converged{within}", _format.number(converged.value)))
    return tuple(rows)


PROXY_WORDS = {
    False: (
        "A protected attribute",
        "A protected attribute or a proxy of one",
        "protected attributes",
        "protected attributes and their proxies",
    ),
    True: (
        "A word naming a group of a sensitive column",
        "Such a word, or a proxy word (its presence in a document reveals the group)",
        "words naming a group",
        "words naming a group and proxy words",
    ),
}
"""The proxy sentences' subjects for a tabular model (False) and a text model (True)."""

PROXY_CAPTIONS = {
    False: "Features associated with a sensitive column (normalised mutual information).",
    True: "Words associated with a sensitive column: normalised mutual information between the word's "
    "presence in a document and the document's group, over every document of the audit data.",
}


def _proxy_sentences(overall: Mapping[str, MetricResult], text: bool = False) -> tuple[str, ...]:
    sentences = []
    direct, either, direct_plural, either_plural = PROXY_WORDS[text]
    for key, what in (
        ("explain.proxy.sensitive_in_top_k", direct),
        ("explain.proxy.proxy_in_top_k", either),
    ):
        metric = overall.get(key)
        if metric is None or metric.value is None:
            continue
        named = metric.details.get("in_top_k") or []
        k = metric.details.get("top_k", "k")
        if metric.value:
            sentences.append(f"{what} is among the top {k} drivers: {', '.join(map(str, named))}.")
        else:
            sentences.append(f"{what} is not among the top {k} drivers of any method.")
    for key, what in (("explain.proxy.sensitive_share", direct_plural), ("explain.proxy.proxy_share", either_plural)):
        metric = overall.get(key)
        if metric is not None and metric.value is not None:
            sentences.append(f"Share of total importance held by {what}: {metric.value:.1%} (largest over methods).")
    return tuple(sentences)


def _associations(proxy: object) -> tuple[tuple[str, str, str], ...]:
    if not isinstance(proxy, Mapping):
        return ()
    rows = proxy.get("associations")
    if not isinstance(rows, Sequence):
        return ()
    out = []
    for row in rows:
        if isinstance(row, Mapping):
            nmi = row.get("nmi")
            out.append((str(row.get("feature")), str(row.get("sensitive")), _format.number(nmi if isinstance(nmi, int | float) else None)))
    return tuple(out)


def _faithfulness_by_group(metrics: Sequence[MetricResult], methods: Sequence[str]) -> tuple[FaithfulnessByGroup, ...]:
    """Mean faithfulness per group (from ``explain.<m>.faithfulness_gap[column]``), a table per column."""
    tables: dict[str, dict[str, MetricResult]] = {}
    for m in metrics:
        for method in methods:
            if m.key == f"explain.{method}.faithfulness_gap" and m.scope is not None:
                tables.setdefault(m.scope, {})[method] = m
    out = []
    for column, by_method in tables.items():
        groups: list[str] = []
        for m in by_method.values():
            groups += [g.group for g in m.by_group if g.group not in groups]
        rows = []
        for method, m in by_method.items():
            values = {g.group: g for g in m.by_group}
            cells = []
            for group in groups:
                found = values.get(group)
                text = _format.DASH if found is None or found.value is None else _format.number(found.value)
                if found is not None:
                    text += f" (n={found.n}{', small' if found.small else ''})"
                cells.append(text)
            gap = _cell(m)
            if m.value is None:  # the reason without its machine-readable prefix ("small_group: …")
                gap = ValueCell(gap.text, gap.ci.partition(": ")[2] or gap.ci)
            rows.append((method_name(method), tuple(cells), gap))
        out.append(FaithfulnessByGroup(column=column, groups=tuple(groups), rows=tuple(rows)))
    return tuple(out)


def _by_group(metrics: Sequence[MetricResult], methods: Sequence[str]) -> tuple[GroupImportanceTable, ...]:
    if not methods:
        return ()
    method = methods[0]
    scoped = [m for m in metrics if m.key == f"explain.{method}.importance" and m.scope is not None]
    scoped.sort(key=lambda m: -(m.value or 0.0))
    top = scoped[:GROUP_FEATURES]
    columns: dict[str, list[str]] = {}
    for m in top:
        for value in m.by_group:
            column, _, group = value.group.partition("=")
            if group and group not in columns.setdefault(column, []):
                columns[column].append(group)
    tables = []
    for column, groups in columns.items():
        rows = []
        for m in top:
            values = {v.group: v for v in m.by_group}
            cells = []
            for group in groups:
                found = values.get(f"{column}={group}")
                text = _format.DASH if found is None or found.value is None else _format.number(found.value)
                if found is not None and found.small:
                    text += " (small)"
                cells.append(text)
            rows.append((m.scope or "", tuple(cells)))
        tables.append(GroupImportanceTable(column=column, method=method_name(method), groups=tuple(groups), rows=tuple(rows)))
    return tuple(tables)


def _coverage(metric: MetricResult | None) -> str:
    if metric is None:
        return ""
    details = metric.details
    explained, requested = details.get("explained"), details.get("requested")
    if explained is None or requested is None:
        return ""
    text = f"Explained {explained} of {requested} requested rows"
    return text + (" (the time budget stopped the audit)." if details.get("stopped_by_budget") else ".")


__all__ = ["ExplainView", "explain_view"]
