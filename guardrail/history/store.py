"""The audit history: every published run in an embedded SQLite database.

One file (by default ``history.sqlite`` in the report folder) holds each run's record
(run.json, verbatim, with its SHA-256), its file hashes, metrics and verdict, and the
approvals that make a run the baseline later runs must not regress from.

Concurrency: every write is one ``BEGIN IMMEDIATE`` transaction (the write lock is taken
before anything is read for the write), the journal is in WAL mode so readers never block
the writer, and a writer waits up to :data:`BUSY_TIMEOUT_S` for another one to finish (in
short waits, so that Ctrl-C or SIGTERM interrupts the wait).
Two audits recording into the same database at once therefore both land, whole, in some
order; a run whose reports fail to write is rolled back out of the history.

Creation: a new history is built complete (schema, ``application_id``, WAL mode) in a
private folder beside it and hard-linked into place only if no file is there yet, so the
path never names a half-made database and two audits starting a history at once both
record into the one that won. An existing file is checked (``application_id``,
``user_version``, its tables) in one read transaction; an empty SQLite file is given the
schema inside a write transaction that re-checks it first. guardrail never deletes a
history file: a run that fails after the history was created leaves an empty, valid one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from guardrail.core.atomic import Witness, make_dirs, remove_dirs
from guardrail.core.errors import UsageError
from guardrail.core.serialize import from_jsonable, to_jsonable
from guardrail.core.types import RunRecord

DEFAULT_NAME = "history.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
APPLICATION_ID = 0x47524844  # "GRHD": marks the file as a guardrail history database
_LOCK_STEP_S = 0.1
CREATING = ".creating-"
"""Infix of the private folder in which a new history is built (``.<name>.creating-XXXX``)."""
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


class HistoryStore:
    """An audit history database (see the module docstring).

    Parameters
    ----------
    path:
        The SQLite file.
    create:
        Create the file if it does not exist; otherwise a missing file is a usage error.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UsageError(
                "no audit history here",
                where=str(self.path),
                hint="`guardrail audit` records every run in history.sqlite inside its report folder; pass that file or folder",
            )
        if create and not os.path.lexists(self.path):
            _create(self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the audit history ({exc})", where=str(self.path)) from None
        try:
            with self._guard("open"):
                self._db.execute("PRAGMA foreign_keys = ON")
                self._prepare()
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------

    @contextmanager
    def recording(self, record: RunRecord, exit_code: int) -> Iterator[Callable[[], None]]:
        """Record ``record`` in a transaction that commits only if the ``with`` body succeeds.

        The write lock is held for the body. The body gets a function that commits at once
        (the moment a caller's reports are put in place, see
        :meth:`guardrail.core.atomic.StagedFiles.commit`); otherwise the run is committed when
        the body ends, and rolled back if it raises before committing.
        """
        with self._transaction() as commit:
            self._insert(record, exit_code)
            yield commit

    def witness(self, run_id: str) -> Witness:
        """What tells, after a crash, whether run ``run_id`` was committed to this history."""
        return Witness(str(self.path.resolve()), "SELECT 1 FROM runs WHERE run_id = ?", (run_id,))

    def add(self, record: RunRecord, exit_code: int) -> None:
        """Record ``record`` (its own transaction)."""
        with self.recording(record, exit_code):
            pass

    def approve(self, ref: RunRef, *, by: str, note: str | None = None, name: str | None = None) -> ApprovedRun:
        """Mark a run as the approved baseline of its spec name (the latest approval wins)."""
        if not by.strip():
            raise UsageError("an approval needs the name of who approves", where="--by", hint="pass --by NAME")
        with self._transaction():
            run_id = self.resolve(ref, name=name)
            record = self.get(run_id)  # only a sound record can be approved (inside the transaction)
            approved_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self._db.execute(
                "INSERT INTO approvals (run_id, approved_by, approved_at, note) VALUES (?, ?, ?, ?)",
                (run_id, by, approved_at, note),
            )
        return ApprovedRun(record, by, approved_at, note, str(self.path))

    # --- reading -----------------------------------------------------------------------

    def runs(self, *, name: str | None = None, limit: int | None = None) -> list[RunSummary]:
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
        with self._guard("read"):
            rows = self._db.execute(query, args).fetchall()
        return [
            RunSummary(
                run_id=row[0], name=row[1], started_at=row[2], exit_code=row[3], spec_sha256=row[4], git_commit=row[5],
                model_sha256=row[6], data_sha256=row[7], failed_rules=row[8], approved=bool(row[9]), gated=bool(row[10]),
            )
            for row in rows
        ]

    def resolve(self, ref: RunRef, *, name: str | None = None) -> str:
        """The run id that ``ref`` names (an id, a unique id prefix, ``latest``, ``approved``)."""
        only = " AND name = ?" if name else ""
        extra: list[object] = [name] if name else []
        with self._guard("read"):
            if ref in ("latest", "approved"):
                query = (
                    f"SELECT run_id FROM runs WHERE 1 = 1{only} ORDER BY seq DESC LIMIT 1"
                    if ref == "latest"
                    else f"SELECT a.run_id FROM approvals a JOIN runs USING (run_id) WHERE 1 = 1{only} ORDER BY a.seq DESC LIMIT 1"
                )
                row = self._db.execute(query, extra).fetchone()
                if row is None:
                    scope = f" of {name!r}" if name else ""
                    hint = "approve one with `guardrail approve RUN --by NAME`" if ref == "approved" else "run `guardrail audit` first"
                    raise UsageError(f"no {ref} run{scope} in the history", where=str(self.path), hint=hint)
                return str(row[0])
            escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._db.execute(
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
                f"no run {ref!r} in the history", where=str(self.path), hint="`guardrail history` lists the recorded runs"
            )
        raise UsageError(
            f"run {ref!r} is ambiguous: it starts {', '.join(str(r[0]) for r in rows)}{', …' if len(rows) > 2 else ''}",
            where=str(self.path),
            hint="give more characters of the run id",
        )

    def get(self, ref: RunRef, *, name: str | None = None) -> RunRecord:
        """The full record of a run, checked against the SHA-256 stored with it."""
        run_id = self.resolve(ref, name=name)
        with self._guard("read"):
            text, digest = self._db.execute("SELECT record, record_sha256 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
            raise UsageError(
                f"the stored record of run {run_id} does not match its SHA-256: the history was altered",
                where=str(self.path),
                hint="restore the database from a backup; `guardrail verify` checks the run.json files themselves",
            )
        try:
            return from_jsonable(RunRecord, json.loads(text))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise UsageError(
                f"the stored record of run {run_id} is not a guardrail run record ({type(exc).__name__}: {exc})",
                where=str(self.path),
                hint="restore the database from a backup; `guardrail verify` checks the run.json files themselves",
            ) from None

    def approved(self, name: str) -> ApprovedRun | None:
        """The latest approved run of spec ``name``, if any."""
        with self._guard("read"):
            row = self._db.execute(
                "SELECT a.run_id, a.approved_by, a.approved_at, a.note FROM approvals a JOIN runs r USING (run_id)"
                " WHERE r.name = ? ORDER BY a.seq DESC LIMIT 1",
                (name,),
            ).fetchone()
        if row is None:
            return None
        return ApprovedRun(self.get(row[0]), row[1], row[2], row[3], str(self.path))

    def integrity(self) -> str:
        """SQLite's own integrity check: ``ok`` when the file is sound."""
        with self._guard("read"):
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # --- internals ---------------------------------------------------------------------

    def _prepare(self) -> None:
        """Check the file's identity in one read transaction (a consistent snapshot); give an
        empty file the schema in a write transaction that checks again under the lock."""
        self._db.execute("BEGIN")
        try:
            tables = self._identify()
        finally:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")  # it only read
        if not tables:
            with self._transaction():
                if not self._identify():
                    _create_schema(self._db)
        try:
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:  # a file made empty elsewhere, opened by several at once:
            if not _busy(exc):  # SQLite refuses the switch rather than deadlock; a later opener makes it
                raise
            return
        if mode != "wal":  # a file system without shared memory: the rollback journal still serialises writers
            self._db.execute("PRAGMA journal_mode = DELETE")

    def _identify(self) -> int:
        """The number of schema objects, once the file is known to be a history of this version."""
        application_id = self._db.execute("PRAGMA application_id").fetchone()[0]
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = int(self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        if tables and application_id != APPLICATION_ID:
            raise UsageError(
                NOT_A_HISTORY,
                where=str(self.path),
                hint="point --history at another file; guardrail will not write into a foreign database",
            )
        if tables and version != SCHEMA_VERSION:
            raise UsageError(
                f"audit history schema version {version}, this guardrail reads version {SCHEMA_VERSION}",
                where=str(self.path),
                hint="use the guardrail version that wrote it, or start a new history file",
            )
        return tables

    @contextmanager
    def _transaction(self) -> Iterator[Callable[[], None]]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; the body gets a function that commits early."""
        done = False

        def commit() -> None:
            nonlocal done
            if not done:
                with self._guard("write"):
                    self._db.execute("COMMIT")
                done = True

        self._begin_immediate()
        try:
            yield commit
        except BaseException:
            if not done and self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        commit()

    def _begin_immediate(self) -> None:
        """Take the write lock, waiting in short steps: Python runs signal handlers between
        them, where one long wait inside SQLite would hold an interruption back."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        self._db.execute(f"PRAGMA busy_timeout = {int(_LOCK_STEP_S * 1000)}")
        try:
            while True:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _busy(exc) or time.monotonic() >= deadline:
                        with self._guard("write"):
                            raise
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")

    @contextmanager
    def _guard(self, action: Literal["open", "read", "write"]) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                raise UsageError(
                    f"the audit history stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s",
                    where=str(self.path),
                    hint="retry when the other audit has finished",
                ) from None
            raise UsageError(f"cannot {action} the audit history ({exc})", where=str(self.path)) from None
        except sqlite3.DatabaseError as exc:
            raise UsageError(
                f"the audit history is not a readable SQLite database ({exc})",
                where=str(self.path),
                hint="point --history at another file, or move this one away to start a new history",
            ) from None

    def _insert(self, record: RunRecord, exit_code: int) -> None:
        text = json.dumps(to_jsonable(record), ensure_ascii=False, sort_keys=True)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UsageError(
                f"run {record.run_id} holds text that is not valid Unicode ({exc.reason}: "
                f"{exc.object[exc.start:exc.end]!a}); it cannot be recorded",
                where=str(self.path),
                hint="remove the lone surrogate (e.g. \\udc80) from the spec",
            ) from None
        recorded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            self._db.execute(
                "INSERT INTO runs (run_id, name, started_at, finished_at, recorded_at, exit_code, spec_sha256,"
                " git_commit, record_sha256, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id, record.name, record.started_at, record.finished_at, recorded_at, int(exit_code),
                    record.spec_sha256, record.provenance.git_commit,
                    hashlib.sha256(text.encode("utf-8")).hexdigest(), text,
                ),
            )
        except sqlite3.IntegrityError:
            raise UsageError(f"run {record.run_id} is already in the history", where=str(self.path)) from None
        self._db.executemany(
            "INSERT INTO files (run_id, role, path, sha256, bytes) VALUES (?, ?, ?, ?, ?)",
            [(record.run_id, f.role, f.path, f.sha256, f.bytes) for f in record.provenance.files],
        )
        self._db.executemany(
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
        self._db.executemany(
            "INSERT INTO outcomes (run_id, policy, rule_id, metric, severity, status, observed) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (record.run_id, o.policy, o.rule_id, o.metric, o.severity.value, o.status.value, o.observed)
                for o in record.verdict.outcomes
            ],
        )


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _create_schema(db: sqlite3.Connection) -> None:
    for statement in filter(str.strip, _SCHEMA.split(";")):
        db.execute(statement)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _create(path: Path) -> None:
    """Build a complete, empty history in a private folder and link it to ``path`` unless a
    file appeared there meanwhile (then that one is used). On failure or interruption
    nothing is left: neither the private folder nor the (empty) folders this call created."""
    created: list[Path] = []
    try:
        make_dirs(path.parent, created)
        _remove_abandoned(path)
        for _attempt in range(3):
            try:
                make_dirs(path.parent, created)
                _build_and_link(path)
                return
            except FileNotFoundError:  # its private folder was taken for abandoned: build again
                if os.path.lexists(path):
                    return
        make_dirs(path.parent, created)
        _build_and_link(path)
    except BaseException as exc:
        remove_dirs(created)
        if isinstance(exc, (OSError, sqlite3.Error)):
            raise UsageError(f"cannot create the audit history ({exc})", where=str(path)) from None
        raise


def _build_and_link(path: Path) -> None:
    work = path.parent / f".{path.name}{CREATING}{secrets.token_hex(4)}"  # named first: removed even if
    lock = -1  # an interruption comes right after it is made
    try:
        work.mkdir(mode=0o700)
        lock = os.open(work, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        _build_in(work, lock, path)
    except (OSError, sqlite3.Error) as exc:
        if not work.is_dir():  # taken for abandoned in the instant before its lock: build again
            raise FileNotFoundError(2, "the folder in which the history was built vanished", str(work)) from exc
        raise
    finally:
        if lock >= 0:
            os.close(lock)
        shutil.rmtree(work, ignore_errors=True)


def _build_in(work: Path, lock: int, path: Path) -> None:
    """Make the history in ``work`` (locked by ``lock``) and link it to ``path``."""
    if fcntl is not None:
        fcntl.flock(lock, fcntl.LOCK_EX)  # marks the folder as in use (see _remove_abandoned)
    new = work / path.name
    db = sqlite3.connect(new, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = FULL")
        db.execute("BEGIN IMMEDIATE")
        _create_schema(db)
        db.execute("COMMIT")
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = DELETE")
    finally:
        db.close()
    try:
        os.link(new, path)
    except FileExistsError:
        return  # another process created it first: record into that one
    except OSError:  # no hard links on this file system: the path itself gets the schema, under the write lock
        return
    _fsync_dir(path.parent)


def _remove_abandoned(path: Path) -> None:
    """Private folders of creations that were killed (their lock is free)."""
    for folder in path.parent.glob(f".{path.name}{CREATING}*"):
        if not folder.is_dir() or folder.is_symlink() or fcntl is None:
            continue
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # another process is building its history there
        else:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def history_path(where: str | Path) -> Path:
    """The database file that ``where`` names: the file itself, or ``history.sqlite`` in a folder."""
    path = Path(where)
    return path / DEFAULT_NAME if path.is_dir() else path
