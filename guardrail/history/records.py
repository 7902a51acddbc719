"""What the audit history hands back: a line per recorded run, and the approved baseline."""

from __future__ import annotations

from dataclasses import dataclass

from guardrail.core.types import RunRecord

RunRef = str
"""A run id, a unique prefix of one, ``latest`` or ``approved``."""


@dataclass(frozen=True)
class RunSummary:
    """One line of ``guardrail history``."""

    run_id: str
    name: str
    started_at: str
    exit_code: int
    spec_sha256: str
    model_sha256: str | None
    data_sha256: str | None
    git_commit: str | None
    failed_rules: int
    approved: bool
    gated: bool = True
    """False for a run measured without a gate (``--no-gate``): its exit code 0 is no pass."""


@dataclass(frozen=True)
class ApprovedRun:
    """A run marked as the baseline, and who marked it when."""

    record: RunRecord
    approved_by: str
    approved_at: str
    note: str | None
    database: str
