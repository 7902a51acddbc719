"""The audit history: every published run in an embedded SQLite database.

One file (by default ``history.sqlite`` in the report folder) holds each run's record
(the run.json record as compact JSON with sorted keys, and its SHA-256), its file hashes, metrics and verdict, and the
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

:class:`HistoryStore` holds the connection; the work is done by one module per job (their
public constants and types are re-exported here): :mod:`~guardrail.history.connection` (transactions, the write
lock, errors), :mod:`~guardrail.history.schema` (tables and identity),
:mod:`~guardrail.history.creation` (a new file), :mod:`~guardrail.history.writing` (runs
recorded and approved), :mod:`~guardrail.history.queries` (reading) and
:mod:`~guardrail.history.records` (what reading returns).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from guardrail.core.errors import UsageError
from guardrail.core.types import RunRecord
from guardrail.core.vocab import HISTORY_FILE
from guardrail.core.witness import Witness
from guardrail.history import creation, queries, writing
from guardrail.history.connection import BUSY_TIMEOUT_S, guard, transaction
from guardrail.history.creation import CREATING
from guardrail.history.records import ApprovedRun, RunRef, RunSummary
from guardrail.history.schema import APPLICATION_ID, NOT_A_HISTORY, SCHEMA_VERSION, prepare

__all__ = [
    "APPLICATION_ID",
    "BUSY_TIMEOUT_S",
    "CREATING",
    "DEFAULT_NAME",
    "NOT_A_HISTORY",
    "SCHEMA_VERSION",
    "ApprovedRun",
    "HistoryStore",
    "RunRef",
    "RunSummary",
    "history_path",
]

DEFAULT_NAME = HISTORY_FILE


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
            creation.create(self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the audit history ({exc})", where=str(self.path)) from None
        try:
            with guard(self.path, "open"):
                self._db.execute("PRAGMA foreign_keys = ON")
                prepare(self._db, self.path)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing (guardrail.history.writing) --------------------------------------------

    @contextmanager
    def recording(self, record: RunRecord, exit_code: int) -> Iterator[Callable[[], None]]:
        """Record ``record`` in a transaction that commits only if the ``with`` body succeeds.

        The write lock is held for the body. The body gets a function that commits at once
        (the moment a caller's reports are put in place, see
        :meth:`guardrail.core.atomic.StagedFiles.commit`); otherwise the run is committed when
        the body ends, and rolled back if it raises before committing.
        """
        with transaction(self._db, self.path) as commit:
            writing.insert_run(self._db, self.path, record, exit_code)
            yield commit

    def witness(self, run_id: str) -> Witness:
        """What tells, after a crash, whether run ``run_id`` was committed to this history."""
        return writing.run_witness(self.path, run_id)

    def add(self, record: RunRecord, exit_code: int) -> None:
        """Record ``record`` (its own transaction)."""
        with self.recording(record, exit_code):
            pass

    def approve(self, ref: RunRef, *, by: str, note: str | None = None, name: str | None = None) -> ApprovedRun:
        """Mark a run as the approved baseline of its spec name (the latest approval wins)."""
        return writing.approve(self._db, self.path, ref, by=by, note=note, name=name)

    # --- reading (guardrail.history.queries) --------------------------------------------

    def runs(self, *, name: str | None = None, limit: int | None = None) -> list[RunSummary]:
        """Recorded runs, newest first (optionally of one spec name)."""
        return queries.run_summaries(self._db, self.path, name=name, limit=limit)

    def resolve(self, ref: RunRef, *, name: str | None = None) -> str:
        """The run id that ``ref`` names (an id, a unique id prefix, ``latest``, ``approved``)."""
        return queries.resolve(self._db, self.path, ref, name=name)

    def get(self, ref: RunRef, *, name: str | None = None) -> RunRecord:
        """The full record of a run, checked against the SHA-256 stored with it."""
        return queries.stored_record(self._db, self.path, ref, name=name)

    def approved(self, name: str) -> ApprovedRun | None:
        """The latest approved run of spec ``name``, if any."""
        return queries.latest_approved(self._db, self.path, name)

    def integrity(self) -> str:
        """SQLite's own integrity check: ``ok`` when the file is sound."""
        return queries.integrity(self._db, self.path)



def history_path(where: str | Path) -> Path:
    """The database file that ``where`` names: the file itself, or ``history.sqlite`` in a folder."""
    path = Path(where)
    return path / DEFAULT_NAME if path.is_dir() else path
