"""Rich display in Jupyter: every public result type as HTML that takes the height of its content.

:class:`~guardrail.core.types.RunRecord` and :class:`~guardrail.core.types.AuditResult`
show the whole HTML report; :class:`~guardrail.core.types.MetricResult` one metric with its
groups; :class:`~guardrail.core.types.PolicyVerdict` and
:class:`~guardrail.core.types.RuleOutcome` the verdict and the outcomes table.

Each is shown inline, not in a frame of fixed height, so the notebook lays it out at the
height of its content in JupyterLab, VS Code and the classic notebook alike
(:func:`guardrail.report.inline_html.inline`): the report's CSS is scoped to the output (it
cannot restyle the notebook), its ids are prefixed per output, and its markup is checked
first. A page that fails the check (only a renderer bug can make one) is shown as before, in
a sandboxed frame that runs no script (``sandbox`` without ``allow-scripts``). Where a front
end strips ``<style>`` (an untrusted notebook), the content stays readable, unstyled.
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
from guardrail.report.inline_html import UnsafeMarkup, inline

FRAME = '<iframe sandbox="" srcdoc="{doc}" style="width:100%;height:{height}px;border:1px solid #ccc"></iframe>'
"""The fallback for a page that may not be shown inline."""
FRAME_HEIGHT = 720


def shown(page: str) -> str:
    """``page`` (a whole document from the report renderer) as a notebook shows it: inline,
    or in the sandboxed frame when its markup fails the check."""
    try:
        return inline(page)
    except UnsafeMarkup:
        return FRAME.format(doc=escape(page), height=FRAME_HEIGHT)


def record_html(record: RunRecord) -> str:
    """The whole report of ``record`` for a notebook cell."""
    return shown(render_html(record))


def audit_html(result: AuditResult) -> str:
    """One audit result (e.g. from :func:`guardrail.audit_fairness`) for a notebook cell."""
    return record_html(_bare_record(results=(result,), name=result.audit_id, gated=False))


def metric_html(metric: MetricResult) -> str:
    """One metric and its per-group values for a notebook cell."""
    return shown(render_metric_fragment(metric))


def verdict_html(verdict: PolicyVerdict, fail_on: Severity = Severity.DENY) -> str:
    """Policy outcomes (e.g. ``record.verdict``) for a notebook cell, with the verdict the
    CLI would give them if every audit ran (never a pass when no blocking rule was judged)."""
    judged = _bare_record(verdict=verdict).judged(fail_on)
    return shown(render_verdict_fragment(verdict, judged, fail_on))


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
