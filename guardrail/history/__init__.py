"""Audit history: runs recorded in SQLite, compared, approved, and gated against regression.

Layer 4 beside ``auditors``, ``policy``, ``report`` and ``training``: it reads and writes run records
(through :mod:`guardrail.core`) and imports none of its siblings.
"""

from __future__ import annotations

from guardrail.history.compare import MetricChange, OutcomeChange, RunDiff, compare_runs, metric_changes
from guardrail.history.regression import regression_result
from guardrail.history.store import DEFAULT_NAME, ApprovedRun, HistoryStore, RunSummary, history_path

__all__ = [
    "DEFAULT_NAME",
    "ApprovedRun",
    "HistoryStore",
    "MetricChange",
    "OutcomeChange",
    "RunDiff",
    "RunSummary",
    "compare_runs",
    "history_path",
    "metric_changes",
    "regression_result",
]
