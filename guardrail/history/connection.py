"""How the audit history uses its SQLite connection: every write is one ``BEGIN IMMEDIATE``
transaction (the write lock is taken before anything is read for the write), a writer
waits up to :data:`BUSY_TIMEOUT_S` for another one to finish (in short waits, so that
Ctrl-C or SIGTERM interrupts the wait), and SQLite's errors are put in words.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from guardrail.core.errors import UsageError

BUSY_TIMEOUT_S = 60.0
_LOCK_STEP_S = 0.1


@contextmanager
def transaction(db: sqlite3.Connection, path: Path) -> Iterator[Callable[[], None]]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; the body gets a function that commits early."""
    done = False

    def commit() -> None:
        nonlocal done
        if not done:
            with guard(path, "write"):
                db.execute("COMMIT")
            done = True

    begin_immediate(db, path)
    try:
        yield commit
    except BaseException:
        if not done and db.in_transaction:
            db.execute("ROLLBACK")
        raise
    commit()


def begin_immediate(db: sqlite3.Connection, path: Path) -> None:
    """Take the write lock, waiting in short steps: Python runs signal handlers between
    them, where one long wait inside SQLite would hold an interruption back."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    db.execute(f"PRAGMA busy_timeout = {int(_LOCK_STEP_S * 1000)}")
    try:
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not busy(exc) or time.monotonic() >= deadline:
                    with guard(path, "write"):
                        raise
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")


@contextmanager
def guard(path: Path, action: Literal["open", "read", "write"]) -> Iterator[None]:
    """Turn SQLite's errors in the body into usage errors about the history ``path``."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if busy(exc):
            raise UsageError(
                f"the audit history stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s",
                where=str(path),
                hint="retry when the other audit has finished",
            ) from None
        raise UsageError(f"cannot {action} the audit history ({exc})", where=str(path)) from None
    except sqlite3.DatabaseError as exc:
        raise UsageError(
            f"the audit history is not a readable SQLite database ({exc})",
            where=str(path),
            hint="point --history at another file, or move this one away to start a new history",
        ) from None


def busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)
