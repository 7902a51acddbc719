"""Rich display in Jupyter: the HTML report inside a sandboxed iframe.

The report's CSS stays inside the frame (it cannot restyle the notebook), and the frame
runs no script (``sandbox`` without ``allow-scripts``).
"""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from markupsafe import escape

from guardrail.core.types import AuditResult, PolicyVerdict, Provenance, RunRecord
from guardrail.report.html import render_html

FRAME = '<iframe sandbox="" srcdoc="{doc}" style="width:100%;height:{height}px;border:1px solid #ccc"></iframe>'


def record_html(record: RunRecord, height: int = 720) -> str:
    """The whole report of ``record`` for a notebook cell."""
    return FRAME.format(doc=escape(render_html(record)), height=height)


def audit_html(result: AuditResult, height: int = 640) -> str:
    """One audit result (e.g. from :func:`guardrail.audit_fairness`) for a notebook cell."""
    try:
        guardrail_version = version("guardrail")
    except PackageNotFoundError:
        guardrail_version = "unknown"
    record = RunRecord(
        run_id="in-memory",
        name=result.audit_id,
        started_at="",
        finished_at="",
        spec_path="(Python API)",
        spec_sha256="",
        spec={},
        results=(result,),
        verdict=PolicyVerdict(),
        provenance=Provenance(
            guardrail_version=guardrail_version,
            python=sys.version.split()[0],
            platform=platform.platform(),
            packages={},
            seeds={},
            files=(),
            command="(Python API: no policy was applied)",
        ),
    )
    return record_html(record, height)
