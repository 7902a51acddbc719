"""Atomic file writes: a reader sees the old files or the complete new set, never a mix.

How a set of files is replaced (:func:`write_all_atomic`, :func:`staged_files`):

1. **Lock.** The folder that holds every target (their nearest common folder, *the root*)
   is locked with ``flock`` for the whole write, so writers into one folder take turns and
   none sees another's half-done work. Folders that did not exist are created first, and
   removed again (only if still empty) when the write fails before it commits.
2. **Recover.** A write killed earlier left its transaction folder
   ``<root>/.guardrail-txn-XXXXXXXX``: it is finished if it had committed and discarded if
   not (:func:`recover`), before anything new is staged. Temporary files of the targets
   left by older versions of guardrail (``.<name>.XXXXXXXX.tmp``) are removed too.
3. **Stage.** Every file is written in full (and fsynced) into a new transaction folder,
   with a manifest ``pending.json`` that names the targets and, optionally, a
   :class:`Witness`.
4. **Commit.** With SIGINT and SIGTERM held back (their handlers run right after), the
   caller's ``decide`` runs (the audit history's ``COMMIT``), the manifest is renamed to
   ``commit.json``, the staged files are renamed over their targets in the order given (so
   a caller names its index file, ``run.json``, last), the folders are fsynced and the
   transaction folder is removed.

Before step 4 nothing has changed; a failure or an interruption (Ctrl-C, SIGTERM) removes
the transaction folder and the folders it created. Step 4 cannot be interrupted by a
signal that Python handles (in the main thread); only a hard kill (SIGKILL, power loss)
can stop it midway, and then the next write into the same folder finishes it: the write
*committed* once its manifest is ``commit.json`` or its witness says so. Until then the
folder may mix old and new files (the file named last is still the old one, and a
``run.json`` whose digests no longer match says so to ``guardrail verify``). The witness
lets a commit that happens elsewhere (a run in the audit history, in SQLite) be the single
point that decides both: a query, only read, that returns a row exactly when the write
committed.

Why files are renamed one by one rather than the folder swapped whole: a report folder
also holds files that are not part of the set (the audit history, open in other
processes; whatever else the user keeps there), and a folder may be the spec's own. Only
writers that lock the same root take turns; two writers whose roots differ (one writes
into a subfolder of the other's root) may interleave on files they share.

Each piece has its own module, re-exported here: the witness
(:mod:`guardrail.core.witness`), the folders and their lock (:mod:`guardrail.core.folders`),
a single file written and fsynced (:mod:`guardrail.core.durable`, looked up here as
``_write_file`` and ``_fsync_dir``) and the signals held back (:mod:`guardrail.core.signals`).
This module is the transaction: staging, commit and recovery.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from guardrail.core.durable import fsync_dir as _fsync_dir
from guardrail.core.durable import write_file as _write_file
from guardrail.core.errors import UsageError
from guardrail.core.folders import WRITE_HINT, check_output_dir, lock_folder, make_dirs, remove_dirs
from guardrail.core.signals import signals_deferred
from guardrail.core.witness import Witness

__all__ = [
    "COMMITTED",
    "PENDING",
    "TXN_PREFIX",
    "WRITE_HINT",
    "StagedFiles",
    "Witness",
    "check_output_dir",
    "make_dirs",
    "recover",
    "remove_dirs",
    "signals_deferred",
    "staged_files",
    "write_all_atomic",
    "write_atomic",
]

TXN_PREFIX = ".guardrail-txn-"
"""Name prefix of a transaction folder inside the root of a write (never a report)."""
PENDING = "pending.json"
COMMITTED = "commit.json"


def write_atomic(path: str | os.PathLike[str], data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path``: a reader sees the old file or the complete new one.

    Parent folders are created. On any failure ``path`` is left as it was and nothing new
    remains (see :func:`write_all_atomic`).
    """
    (written,) = write_all_atomic({Path(path): data}, encoding)
    return written


def write_all_atomic(files: Mapping[Path, str | bytes], encoding: str = "utf-8") -> list[Path]:
    """Write several files so that either all of them are replaced or none is.

    See the module docstring for how. The files are renamed into place in the order of
    ``files``; a caller whose readers look at one file first names it last.

    Raises
    ------
    UsageError
        If a file cannot be written or encoded (exit code 3); nothing was changed.
    """
    with staged_files(files, encoding) as staged:
        staged.commit()
    return staged.targets


class StagedFiles:
    """Files written in full into a transaction folder, waiting for :meth:`commit`."""

    def __init__(self, root: Path, folder: Path | None, targets: list[Path]) -> None:
        self.root = root
        self.folder = folder
        self.targets = targets
        self.committed = False

    def commit(self, decide: Callable[[], None] | None = None, witness: Witness | None = None) -> None:
        """Put every staged file in place, all together.

        ``decide``, if given, runs first (with signals held back): it makes the change
        final elsewhere, e.g. commits the audit history; if it raises, nothing changes.
        ``witness`` tells a later recovery whether ``decide`` had committed.
        """
        if self.folder is None:  # nothing to write: only the decision
            with signals_deferred():
                if decide is not None:
                    decide()
                self.committed = True
            return
        manifest: dict[str, Any] = {"targets": [str(t.relative_to(self.root)) for t in self.targets]}
        if witness is not None:
            manifest["witness"] = {"database": witness.database, "query": witness.query, "args": list(witness.args)}
        try:
            _write_file(self.folder / PENDING, json.dumps(manifest).encode("utf-8"), 0o600)
            _fsync_dir(self.folder)
            _check_in_the_way(self.targets, self.folder)
        except OSError as exc:
            raise _write_error(exc, self.root) from None
        with signals_deferred():
            if decide is not None:
                decide()
            self.committed = True
            try:
                os.replace(self.folder / PENDING, self.folder / COMMITTED)
                _finish(self.root, self.folder, manifest["targets"])
            except OSError as exc:
                raise UsageError(
                    f"the new files are committed but could not all be put in place ({exc.strerror or exc}); "
                    f"they wait in {self.folder} and the next write into {self.root} puts them in place",
                    where=str(exc.filename or self.root),
                    hint="fix the folder (space, permissions), then rerun",
                ) from None


@contextmanager
def staged_files(files: Mapping[Path, str | bytes], encoding: str = "utf-8") -> Iterator[StagedFiles]:
    """Lock the folder, recover earlier writes, and stage ``files``; the body calls
    :meth:`StagedFiles.commit`. Leaving the body without committing (an exception, an
    interruption) discards the staged files and removes the folders this call created.

    Raises
    ------
    UsageError
        If a file cannot be encoded or written, or a folder cannot be created.
    """
    payloads: dict[Path, bytes] = {}
    for target, data in files.items():
        target = Path(os.path.abspath(target))
        try:
            payloads[target] = data.encode(encoding) if isinstance(data, str) else bytes(data)
        except UnicodeEncodeError as exc:
            raise UsageError(
                f"cannot write {target.name}: its text cannot be encoded as {encoding} ({exc.reason}, "
                f"character {exc.object[exc.start:exc.end]!a} at position {exc.start})",
                where=str(target),
                hint="remove the invalid character (a lone surrogate such as \\udc80 is half a character)",
            ) from None
    if not payloads:
        yield StagedFiles(Path.cwd(), None, [])
        return
    root = Path(os.path.commonpath([str(t.parent) for t in payloads]))
    created: list[Path] = []
    lock = -1
    folder: Path | None = None
    staged: StagedFiles | None = None
    try:
        try:
            for parent in dict.fromkeys(t.parent for t in payloads):
                make_dirs(parent, created)
            lock = lock_folder(root, created)
            recover(root, locked=True)
            for target in payloads:
                _remove_legacy_temps(target)
            while folder is None or not folder.is_dir():
                folder = root / f"{TXN_PREFIX}{secrets.token_hex(4)}"  # named before it exists: an interruption
                try:  # right after mkdir still removes it
                    folder.mkdir(mode=0o700)
                except FileExistsError:
                    folder = None
            _check_in_the_way(payloads, folder)
            for i, (target, payload) in enumerate(payloads.items()):
                mode = target.stat().st_mode & 0o7777 if target.is_file() else None
                try:
                    _write_file(folder / str(i), payload, 0o666, chmod=mode)
                except OSError as exc:  # say which file could not be written, not its staged name
                    raise OSError(exc.errno, exc.strerror, str(target)) from None
            _fsync_dir(folder)
        except OSError as exc:
            raise _write_error(exc, root) from None
        staged = StagedFiles(root, folder, list(payloads))
        yield staged
    finally:
        if staged is None or not staged.committed:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            remove_dirs(created)
        if lock >= 0:
            os.close(lock)


def recover(root: str | os.PathLike[str], *, locked: bool = False) -> list[Path]:
    """Finish or discard the writes into ``root`` that were killed midway (see the module
    docstring); returns the files put in place. Takes the folder's lock unless ``locked``.

    Raises
    ------
    UsageError
        If an interrupted write cannot be decided (its witness is unreadable).
    """
    root = Path(root)
    if not root.is_dir():
        return []
    lock = -1 if locked else lock_folder(root, [])
    try:
        placed: list[Path] = []
        for folder in sorted(root.glob(TXN_PREFIX + "*")):
            if not folder.is_dir() or folder.is_symlink():
                continue
            targets = _decided_targets(folder)
            if targets is not None:
                placed += _finish(root, folder, targets)
            else:
                shutil.rmtree(folder, ignore_errors=True)
        return placed
    finally:
        if lock >= 0:
            os.close(lock)


# --- internals ---------------------------------------------------------------------------


def _decided_targets(folder: Path) -> list[str] | None:
    """The targets of an interrupted write if it committed, else None (discard it)."""
    if (folder / COMMITTED).is_file():
        return list(json.loads((folder / COMMITTED).read_text(encoding="utf-8"))["targets"])
    try:
        manifest = json.loads((folder / PENDING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # killed while staging: it never committed
    found = manifest.get("witness")
    if not found:
        return None
    witness = Witness(found["database"], found["query"], tuple(found["args"]))
    return list(manifest["targets"]) if witness.committed() else None


def _finish(root: Path, folder: Path, targets: list[str]) -> list[Path]:
    """Rename the staged files still in ``folder`` over their targets, then remove it."""
    placed = []
    for i, name in enumerate(targets):
        staged = folder / str(i)
        if staged.exists():  # already moved before an interruption otherwise
            target = root / name
            os.replace(staged, target)
            placed.append(target)
    for parent in dict.fromkeys([root, *(p.parent for p in placed)]):
        _fsync_dir(parent)
    shutil.rmtree(folder, ignore_errors=True)
    return placed


def _check_in_the_way(targets: Iterable[Path], staging: Path) -> None:
    """Every target can be renamed over: no folder in its place, and on the staging
    folder's file system (a rename cannot cross file systems)."""
    device = os.stat(staging).st_dev
    for target in targets:
        if target.is_dir():
            raise IsADirectoryError(21, "a folder is in the way", str(target))
        if os.stat(target.parent).st_dev != device:
            raise OSError(errno.EXDEV, f"its folder is on another file system than {staging.parent}", str(target))


def _remove_legacy_temps(target: Path) -> None:
    """Temporary files that earlier versions of guardrail left beside ``target`` when killed."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        middle = stale.name[len(target.name) + 2 : -len(".tmp")]
        if len(middle) == 8 and stale.is_file() and not stale.is_symlink():
            stale.unlink(missing_ok=True)


def _write_error(exc: OSError, folder: Path) -> UsageError:
    full = exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    return UsageError(
        f"cannot write {exc.filename or f'the files into {folder}'}: {exc.strerror or exc}",
        hint="free space on that disk, or choose another output folder (--out DIR)" if full else WRITE_HINT,
    )
