"""Regression metrics against the approved run: what a policy gates as "no regression".

For every directed metric (``higher_is_better`` known) that both the approved run and the
current run report, ``regression.<key>[scope]`` is how much worse the current run is
(positive = worse, in the metric's own units), with the interval of
:mod:`guardrail.history.compare`. A rule such as ``metric: regression.fairness.
demographic_parity_difference, op: le, threshold: 0.02`` then allows at most a 0.02
regression; ``on: ci_low`` fails only a regression the intervals make sure of.
"""

from __future__ import annotations

from collections.abc import Sequence

from guardrail.core.types import AuditResult, AuditStatus, MetricResult
from guardrail.history.compare import metric_changes
from guardrail.history.store import ApprovedRun

AUDIT_ID = "regression-vs-approved"
AUDITOR = "history"
PREFIX = "regression."


def regression_result(approved: ApprovedRun, results: Sequence[AuditResult]) -> AuditResult:
    """The regression metrics of ``results`` against the approved run, as one audit result."""
    current = [m for r in results if r.status is AuditStatus.OK for m in r.metrics if not m.key.startswith(PREFIX)]
    metrics = []
    for change in metric_changes(approved.record.metrics(), current):
        if change.higher_is_better is None:
            continue
        details = {
            "approved_run": approved.record.run_id,
            "approved_value": change.before,
            "current_value": change.after,
            "orientation": "positive = worse (" + ("lower" if change.higher_is_better else "higher") + " than approved)",
        }
        if change.worsening is None:
            side = "approved" if change.before is None else "current"
            metrics.append(
                MetricResult(
                    key=PREFIX + change.key,
                    scope=change.scope,
                    value=None,
                    reason=f"{change.ref} is undefined in the {side} run, so its change cannot be judged",
                    higher_is_better=False,
                    details=details,
                )
            )
            continue
        metrics.append(
            MetricResult(
                key=PREFIX + change.key,
                scope=change.scope,
                value=change.worsening,
                ci=change.worsening_ci,
                higher_is_better=False,
                details=details,
            )
        )
    params = {
        "approved_run": approved.record.run_id,
        "approved_by": approved.approved_by,
        "approved_at": approved.approved_at,
        "note": approved.note,
        "history": approved.database,
    }
    return AuditResult(AUDIT_ID, AUDITOR, AuditStatus.OK, metrics=tuple(metrics), params=params)
