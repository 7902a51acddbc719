"""The self-contained HTML report: the verdict and the findings first, then the evidence (one
section per audit), then provenance.

The findings (:mod:`.findings`) are every rule outcome as one sentence, sorted by consequence
and grouped by rule; the evidence sections show each audit's parameters (collapsed, only those
that mattered), its own part and only the metrics that part does not already show.

The page holds no script and loads nothing: CSS and SVG are inline and a
Content-Security-Policy forbids everything else. Every value from the record is escaped, by
Jinja2's autoescape in the template and by :mod:`markupsafe` in :mod:`.charts`. Each auditor's
own part of its audit comes from the :data:`SECTIONS` table (the fairness scopes from
:mod:`.fairness_view`, the mitigation trade-off from :mod:`.mitigation_view`, ...).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from guardrail.core.types import (
    AuditResult,
    MetricResult,
    PolicyVerdict,
    RuleOutcome,
    RunRecord,
    Severity,
)
from guardrail.core.verdict import Verdict, display_status
from guardrail.report import _format
from guardrail.report._format import Cell
from guardrail.report.data_view import data_covers, data_view
from guardrail.report.evidence import IntervalNotes, interval_range, shown_params
from guardrail.report.explain_view import explain_covers, explain_view
from guardrail.report.fairness_view import fairness_view
from guardrail.report.federated_view import federated_view
from guardrail.report.findings import findings
from guardrail.report.mitigation_view import tradeoff_chart
from guardrail.report.privacy_view import privacy_view
from guardrail.report.robustness_view import robustness_covers, robustness_view
from guardrail.report.scan_view import scan_sentence

VALUE_LIMIT = 300
"""Longest parameter value shown, in characters; the full value is in run.json."""

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
    mark: str = ""
    """Which of the table's interval methods (see its caption), when it mixes several."""


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
    metrics_caption: str = ""
    """The interval method(s) of the metrics table, said once."""
    metric_count: int = 0
    """Every metric of the audit, shown in its part or in the table."""


@dataclass(frozen=True)
class Section:
    """An auditor's own part of its audit in the report, shown between its parameters and the
    table of every metric: ``build`` turns a result that ran into the part's view (``None``:
    nothing to show), and ``macro`` of ``template`` renders it, called with the view and the
    audit's number on the page."""

    build: Callable[[AuditResult], object | None]
    template: str
    macro: str
    metrics_title: str = "Other metrics"
    """The heading of the table of the metrics the part does not show."""
    covers: Callable[[MetricResult], bool] = lambda metric: False
    """Whether the part shows ``metric`` (value and interval); such a metric is not repeated in the table."""


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
        "tiers": findings(record, fail_on, gated=record.gated),
        "audits": tuple(_audit_view(r) for r in record.results),
        "packages": tuple(sorted(record.provenance.packages.items())),
        "seeds": tuple(record.provenance.seeds.items()),
        "scan": scan_sentence(record.scan),
        **_files(record),
    }


FILES_SHOWN = 20
"""Input files listed in the report's provenance; the rest (a data set's many partitions) are in run.json."""


def _files(record: RunRecord) -> dict[str, Any]:
    """The input files the provenance lists, and how many more run.json holds."""
    files = record.provenance.files
    return {"files": files[:FILES_SHOWN], "files_hidden": max(0, len(files) - FILES_SHOWN)}


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


COUNT_METRICS = frozenset({"data.small_cells", "data.shifted_features"})
"""Metrics that count cells or columns, printed as integers like those that count people."""


def _is_count(metric_ref: str) -> bool:
    """Metrics that count people (``fairness.min_group_size[sex]``), cells or columns print as integers."""
    key = metric_ref.split("[", 1)[0]
    return key.endswith(("count", "min_group_size")) or key in COUNT_METRICS


def _audit_view(result: AuditResult) -> AuditView:
    error = result.error
    section = SECTIONS.get(result.auditor) if error is None else None
    view = section.build(result) if section is not None else None
    shown = section if view is not None else None  # a part with nothing to show is left out, heading included
    listed = [m for m in result.metrics if shown is None or not shown.covers(m)]
    notes = IntervalNotes()
    indices = [notes.add(m.ci) for m in listed]
    return AuditView(
        audit_id=result.audit_id,
        auditor=result.auditor,
        status=result.status.value,
        duration=_format.duration(result.duration_s),
        error=ErrorView(error.type, error.message, error.hint) if error else None,
        params=tuple((key, _show(value)) for key, value in shown_params(result.params)),
        metrics=tuple(_listed_row(m, notes.mark(i)) for m, i in zip(listed, indices, strict=True)),
        section=SectionView(shown.template, shown.macro, view) if shown is not None else None,
        metrics_title=shown.metrics_title if shown is not None else "Metrics",
        note=str(result.artifacts["note"]) if isinstance(result.artifacts.get("note"), str) else None,
        metrics_caption=notes.caption(),
        metric_count=len(result.metrics),
    )


def _metric_row(metric: MetricResult) -> MetricRow:
    return MetricRow(
        ref=metric.ref,
        value=Cell(_format.metric_value(metric.key, metric.value), title=metric.reason),
        ci=_format.interval(metric.ci),
        n=_format.integer(metric.n),
        reason=(metric.reason or "") if metric.value is None else "",
    )


def _listed_row(metric: MetricResult, mark: str) -> MetricRow:
    """A row of an audit's metrics table: the interval's range only (the caption names its method)."""
    row = _metric_row(metric)
    return dataclasses.replace(row, ci=interval_range(metric.ci), mark=mark)


def _show(value: Any) -> str:
    """A parameter value as short text: strings as they are, anything else as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return _format.shorten(text, VALUE_LIMIT)


SECTIONS: dict[str, Section] = {
    "fairness": Section(
        lambda r: fairness_view(r.metrics) or None, "_fairness.html.j2", "fairness_section", covers=lambda m: m.scope is not None
    ),
    "mitigation": Section(lambda r: tradeoff_chart(r.metrics), "_mitigation.html.j2", "mitigation_section", "Numbers behind the chart"),
    "privacy": Section(privacy_view, "_privacy.html.j2", "privacy_section", "Metrics"),
    "explainability": Section(explain_view, "_explain.html.j2", "explain_section", covers=explain_covers),
    "federated": Section(federated_view, "_federated.html.j2", "federated_section", "Metrics"),
    "data": Section(data_view, "_data.html.j2", "data_section", covers=data_covers),
    "robustness": Section(robustness_view, "_robustness.html.j2", "robustness_section", covers=robustness_covers),
}
"""The report's part for each auditor that has one, by auditor name; an auditor not listed
(a third party's included) gets the generic section: its parameters, notes and metrics."""
