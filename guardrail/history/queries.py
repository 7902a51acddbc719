"""Reading the audit history: the runs listed, a run reference resolved, a stored record
checked against its SHA-256, the approved baseline. Readers never block the writer (WAL)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from guardrail.core.errors import UsageError
from guardrail.core.serialize import from_jsonable
from guardrail.core.types import RunRecord
from guardrail.history.connection import guard
from guardrail.history.records import ApprovedRun, RunRef, RunSummary


def run_summaries(db: sqlite3.Connection, path: Path, *, name: str | None = None, limit: int | None = None) -> list[RunSummary]:
    """Recorded runs, newest first (optionally of one spec name)."""
    query = (
        "SELECT r.run_id, r.name, r.started_at, r.exit_code, r.spec_sha256, r.git_commit,"
        " (SELECT sha256 FROM files f WHERE f.run_id = r.run_id AND f.role = 'model' LIMIT 1),"
        " (SELECT sha256 FROM files f WHERE f.run_id = r.run_id AND f.role = 'data' LIMIT 1),"
        " (SELECT count(*) FROM outcomes o WHERE o.run_id = r.run_id AND o.status IN ('fail', 'inconclusive', 'error')),"
        " EXISTS (SELECT 1 FROM approvals a WHERE a.run_id = r.run_id),"
        " COALESCE(json_extract(r.record, '$.gated'), 1)"
        " FROM runs r" + (" WHERE r.name = ?" if name else "") + " ORDER BY r.seq DESC"
        + (" LIMIT ?" if limit else "")
    )
    args: list[object] = [a for a in (name, limit) if a]
    with guard(path, "read"):
        rows = db.execute(query, args).fetchall()
    return [
        RunSummary(
            run_id=row[0], name=row[1], started_at=row[2], exit_code=row[3], spec_sha256=row[4], git_commit=row[5],
            model_sha256=row[6], data_sha256=row[7], failed_rules=row[8], approved=bool(row[9]), gated=bool(row[10]),
        )
        for row in rows
    ]


def resolve(db: sqlite3.Connection, path: Path, ref: RunRef, *, name: str | None = None) -> str:
    """The run id that ``ref`` names (an id, a unique id prefix, ``latest``, ``approved``)."""
    only = " AND name = ?" if name else ""
    extra: list[object] = [name] if name else []
    with guard(path, "read"):
        if ref in ("latest", "approved"):
            query = (
                f"SELECT run_id FROM runs WHERE 1 = 1{only} ORDER BY seq DESC LIMIT 1"
                if ref == "latest"
                else f"SELECT a.run_id FROM approvals a JOIN runs USING (run_id) WHERE 1 = 1{only} ORDER BY a.seq DESC LIMIT 1"
            )
            row = db.execute(query, extra).fetchone()
            if row is None:
                scope = f" of {name!r}" if name else ""
                hint = "approve one with `guardrail approve RUN --by NAME`" if ref == "approved" else "run `guardrail audit` first"
                raise UsageError(f"no {ref} run{scope} in the history", where=str(path), hint=hint)
            return str(row[0])
        escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = db.execute(
            f"SELECT run_id FROM runs WHERE run_id LIKE ? ESCAPE '\\'{only} ORDER BY seq DESC LIMIT 3",
            [escaped + "%", *extra],
        ).fetchall()
    exact = [row[0] for row in rows if row[0] == ref]
    if exact:
        return str(exact[0])
    if len(rows) == 1:
        return str(rows[0][0])
    if not rows:
        raise UsageError(
            f"no run {ref!r} in the history", where=str(path), hint="`guardrail history` lists the recorded runs"
        )
    raise UsageError(
        f"run {ref!r} is ambiguous: it starts {', '.join(str(r[0]) for r in rows)}{', …' if len(rows) > 2 else ''}",
        where=str(path),
        hint="give more characters of the run id",
    )


def stored_record(db: sqlite3.Connection, path: Path, ref: RunRef, *, name: str | None = None) -> RunRecord:
    """The full record of a run, checked against the SHA-256 stored with it."""
    run_id = resolve(db, path, ref, name=name)
    with guard(path, "read"):
        text, digest = db.execute("SELECT record, record_sha256 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
        raise UsageError(
            f"the stored record of run {run_id} does not match its SHA-256: the history was altered",
            where=str(path),
            hint="restore the database from a backup; `guardrail verify` checks the run.json files themselves",
        )
    try:
        return from_jsonable(RunRecord, json.loads(text))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise UsageError(
            f"the stored record of run {run_id} is not a guardrail run record ({type(exc).__name__}: {exc})",
            where=str(path),
            hint="restore the database from a backup; `guardrail verify` checks the run.json files themselves",
        ) from None


def latest_approved(db: sqlite3.Connection, path: Path, name: str) -> ApprovedRun | None:
    """The latest approved run of spec ``name``, if any."""
    with guard(path, "read"):
        row = db.execute(
            "SELECT a.run_id, a.approved_by, a.approved_at, a.note FROM approvals a JOIN runs r USING (run_id)"
            " WHERE r.name = ? ORDER BY a.seq DESC LIMIT 1",
            (name,),
        ).fetchone()
    if row is None:
        return None
    return ApprovedRun(stored_record(db, path, row[0]), row[1], row[2], row[3], str(path))


def integrity(db: sqlite3.Connection, path: Path) -> str:
    """SQLite's own integrity check: ``ok`` when the file is sound."""
    with guard(path, "read"):
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
