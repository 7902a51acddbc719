"""Writing to the audit history: a run recorded with its files, metrics and outcomes (inside
the caller's write transaction), the witness that tells after a crash whether it committed,
and the approval that makes a run the baseline."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from guardrail.core.errors import UsageError
from guardrail.core.serialize import to_jsonable
from guardrail.core.types import RunRecord
from guardrail.core.witness import Witness
from guardrail.history.connection import transaction
from guardrail.history.queries import resolve, stored_record
from guardrail.history.records import ApprovedRun, RunRef


def run_witness(path: Path, run_id: str) -> Witness:
    """What tells, after a crash, whether run ``run_id`` was committed to the history ``path``."""
    return Witness(str(path.resolve()), "SELECT 1 FROM runs WHERE run_id = ?", (run_id,))


def approve(
    db: sqlite3.Connection, path: Path, ref: RunRef, *, by: str, note: str | None = None, name: str | None = None
) -> ApprovedRun:
    """Mark a run as the approved baseline of its spec name (the latest approval wins)."""
    if not by.strip():
        raise UsageError("an approval needs the name of who approves", where="--by", hint="pass --by NAME")
    with transaction(db, path):
        run_id = resolve(db, path, ref, name=name)
        record = stored_record(db, path, run_id)  # only a sound record can be approved (inside the transaction)
        approved_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        db.execute(
            "INSERT INTO approvals (run_id, approved_by, approved_at, note) VALUES (?, ?, ?, ?)",
            (run_id, by, approved_at, note),
        )
    return ApprovedRun(record, by, approved_at, note, str(path))


def insert_run(db: sqlite3.Connection, path: Path, record: RunRecord, exit_code: int) -> None:
    """Insert ``record`` and its files, metrics and outcomes (the caller holds the transaction)."""
    text = json.dumps(to_jsonable(record), ensure_ascii=False, sort_keys=True)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(
            f"run {record.run_id} holds text that is not valid Unicode ({exc.reason}: "
            f"{exc.object[exc.start:exc.end]!a}); it cannot be recorded",
            where=str(path),
            hint="remove the lone surrogate (e.g. \\udc80) from the spec",
        ) from None
    recorded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        db.execute(
            "INSERT INTO runs (run_id, name, started_at, finished_at, recorded_at, exit_code, spec_sha256,"
            " git_commit, record_sha256, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.run_id, record.name, record.started_at, record.finished_at, recorded_at, int(exit_code),
                record.spec_sha256, record.provenance.git_commit,
                hashlib.sha256(text.encode("utf-8")).hexdigest(), text,
            ),
        )
    except sqlite3.IntegrityError:
        raise UsageError(f"run {record.run_id} is already in the history", where=str(path)) from None
    db.executemany(
        "INSERT INTO files (run_id, role, path, sha256, bytes) VALUES (?, ?, ?, ?, ?)",
        [(record.run_id, f.role, f.path, f.sha256, f.bytes) for f in record.provenance.files],
    )
    db.executemany(
        "INSERT INTO metrics (run_id, audit_id, key, scope, value, ci_low, ci_high, ci_level, n, higher_is_better)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                record.run_id, result.audit_id, m.key, m.scope or "", m.value,
                m.ci.low if m.ci else None, m.ci.high if m.ci else None, m.ci.level if m.ci else None,
                m.n, None if m.higher_is_better is None else int(m.higher_is_better),
            )
            for result in record.results
            for m in result.metrics
        ],
    )
    db.executemany(
        "INSERT INTO outcomes (run_id, policy, rule_id, metric, severity, status, observed) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (record.run_id, o.policy, o.rule_id, o.metric, o.severity.value, o.status.value, o.observed)
            for o in record.verdict.outcomes
        ],
    )
