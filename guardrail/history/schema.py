"""The audit history's tables and identity: an existing file is checked
(``application_id``, ``user_version``, its tables) in one read transaction; an empty
SQLite file is given the schema inside a write transaction that re-checks it first.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from guardrail.core.errors import UsageError
from guardrail.history.connection import busy, transaction

SCHEMA_VERSION = 1
APPLICATION_ID = 0x47524844  # "GRHD": marks the file as a guardrail history database
NOT_A_HISTORY = "this SQLite file is not a guardrail audit history"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    spec_sha256 TEXT NOT NULL,
    git_commit TEXT,
    record_sha256 TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_name ON runs (name, seq);
CREATE TABLE IF NOT EXISTS files (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    role TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    audit_id TEXT NOT NULL,
    key TEXT NOT NULL,
    scope TEXT NOT NULL,
    value REAL,
    ci_low REAL,
    ci_high REAL,
    ci_level REAL,
    n INTEGER,
    higher_is_better INTEGER
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    policy TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    observed REAL
);
CREATE TABLE IF NOT EXISTS approvals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    approved_by TEXT NOT NULL,
    approved_at TEXT NOT NULL,
    note TEXT
);
"""


def create_schema(db: sqlite3.Connection) -> None:
    for statement in filter(str.strip, _SCHEMA.split(";")):
        db.execute(statement)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def prepare(db: sqlite3.Connection, path: Path) -> None:
    """Check the file's identity in one read transaction (a consistent snapshot); give an
    empty file the schema in a write transaction that checks again under the lock."""
    db.execute("BEGIN")
    try:
        tables = identify(db, path)
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")  # it only read
    if not tables:
        with transaction(db, path):
            if not identify(db, path):
                create_schema(db)
    try:
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    except sqlite3.OperationalError as exc:  # a file made empty elsewhere, opened by several at once:
        if not busy(exc):  # SQLite refuses the switch rather than deadlock; a later opener makes it
            raise
        return
    if mode != "wal":  # a file system without shared memory: the rollback journal still serialises writers
        db.execute("PRAGMA journal_mode = DELETE")


def identify(db: sqlite3.Connection, path: Path) -> int:
    """The number of schema objects, once the file is known to be a history of this version."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = int(db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    if tables and application_id != APPLICATION_ID:
        raise UsageError(
            NOT_A_HISTORY,
            where=str(path),
            hint="point --history at another file; guardrail will not write into a foreign database",
        )
    if tables and version != SCHEMA_VERSION:
        raise UsageError(
            f"audit history schema version {version}, this guardrail reads version {SCHEMA_VERSION}",
            where=str(path),
            hint="use the guardrail version that wrote it, or start a new history file",
        )
    return tables
