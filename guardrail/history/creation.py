"""Creating an audit history: a new history is built complete (schema, ``application_id``,
WAL mode) in a private folder beside it and hard-linked into place only if no file is
there yet, so the path never names a half-made database and two audits starting a history
at once both record into the one that won. guardrail never deletes a history file: a run
that fails after the history was created leaves an empty, valid one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from guardrail.core.errors import UsageError
from guardrail.core.folders import make_dirs, remove_dirs
from guardrail.history.schema import create_schema

CREATING = ".creating-"
"""Infix of the private folder in which a new history is built (``.<name>.creating-XXXX``)."""


def create(path: Path) -> None:
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
        create_schema(db)
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
