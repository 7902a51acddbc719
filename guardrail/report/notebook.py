"""Rich display in Jupyter: every public result type as HTML inside a sandboxed iframe.

:class:`~guardrail.core.types.RunRecord` and :class:`~guardrail.core.types.AuditResult`
show the whole HTML report; :class:`~guardrail.core.types.MetricResult` one metric with its
groups; :class:`~guardrail.core.types.PolicyVerdict` and
:class:`~guardrail.core.types.RuleOutcome` the verdict and the outcomes table. The report's
CSS stays inside the frame (it cannot restyle the notebook), and the frame runs no script
(``sandbox`` without ``allow-scripts``).
"""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from markupsafe import escape

from guardrail.core.types import (
    AuditResult,
    MetricResult,
    PolicyVerdict,
    Provenance,
    RuleOutcome,
    RunRecord,
    Severity,
)
from guardrail.report.html import (
    render_html,
    render_metric_fragment,
    render_verdict_fragment,
)

FRAME = '<iframe sandbox="" srcdoc="{doc}" style="width:100%;height:{height}px;border:1px solid #ccc"></iframe>'

ROW_HEIGHT = 44
"""Rough height of one table row, to size the frame of a small result."""


def record_html(record: RunRecord, height: int = 720) -> str:
    """The whole report of ``record`` for a notebook cell."""
    return FRAME.format(doc=escape(render_html(record)), height=height)


def audit_html(result: AuditResult, height: int = 640) -> str:
    """One audit result (e.g. from :func:`guardrail.audit_fairness`) for a notebook cell."""
    return record_html(_bare_record(results=(result,), name=result.audit_id, gated=False), height)


def metric_html(metric: MetricResult) -> str:
    """One metric and its per-group values for a notebook cell."""
    height = min(200 + ROW_HEIGHT * (len(metric.by_group) + 1), 560)
    return FRAME.format(doc=escape(render_metric_fragment(metric)), height=height)


def verdict_html(verdict: PolicyVerdict, fail_on: Severity = Severity.DENY) -> str:
    """Policy outcomes (e.g. ``record.verdict``) for a notebook cell, with the verdict the
    CLI would give them if every audit ran (never a pass when no blocking rule was judged)."""
    judged = _bare_record(verdict=verdict).judged(fail_on)
    height = min(260 + 2 * ROW_HEIGHT * len(verdict.outcomes), 640)
    return FRAME.format(doc=escape(render_verdict_fragment(verdict, judged, fail_on)), height=height)


def outcome_html(outcome: RuleOutcome) -> str:
    """One rule outcome for a notebook cell."""
    return verdict_html(PolicyVerdict(outcomes=(outcome,)))


def _bare_record(
    *,
    results: tuple[AuditResult, ...] = (),
    verdict: PolicyVerdict | None = None,
    name: str = "in-memory",
    gated: bool = True,
) -> RunRecord:
    """A record around results or a verdict made in Python, without a spec or files.

    Results shown alone (``gated=False``) were judged by no policy: they show as ``NO GATE``,
    neutrally, never as a pass."""
    try:
        guardrail_version = version("guardrail")
    except PackageNotFoundError:
        guardrail_version = "unknown"
    return RunRecord(
        run_id="in-memory",
        name=name,
        started_at="",
        finished_at="",
        spec_path="(Python API)",
        spec_sha256="",
        spec={},
        results=results,
        verdict=verdict or PolicyVerdict(),
        provenance=Provenance(
            guardrail_version=guardrail_version,
            python=sys.version.split()[0],
            platform=platform.platform(),
            packages={},
            seeds={},
            files=(),
            command="(Python API: no policy was applied)",
        ),
        gated=gated,
    )
