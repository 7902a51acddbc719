"""The witness of a write: a query on an SQLite file that tells, after a crash, whether an
interrupted write committed (see :mod:`guardrail.core.atomic`). It only reads.

Standard library only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from guardrail.core.errors import UsageError


@dataclass(frozen=True)
class Witness:
    """Decides whether an interrupted write committed: ``query`` on the SQLite file
    ``database`` returns a row exactly when it did (it is only read)."""

    database: str
    query: str
    args: tuple[str | int, ...] = ()

    def committed(self) -> bool:
        """Whether the write committed. A missing database means it did not.

        Raises
        ------
        UsageError
            If the database exists but cannot be read (the write cannot be decided).
        """
        if not Path(self.database).is_file():
            return False
        try:
            uri = Path(self.database).resolve().as_uri() + "?mode=rw"  # never creates it; only reads
            with _closing(sqlite3.connect(uri, uri=True, timeout=60.0)) as db:
                return db.execute(self.query, self.args).fetchone() is not None
        except sqlite3.Error as exc:
            raise UsageError(
                f"cannot tell whether an interrupted write committed: its witness {self.database} is unreadable ({exc})",
                where=self.database,
                hint="restore that file, or remove the .guardrail-txn-* folder beside the reports by hand",
            ) from None


@contextmanager
def _closing(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield db
    finally:
        db.close()
