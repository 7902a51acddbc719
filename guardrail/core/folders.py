"""The folders a write goes into: created (and removed again when the write fails, only
if still empty), locked with ``flock`` so writers into one folder take turns, and checked
before any work (see :mod:`guardrail.core.atomic`).

Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

from guardrail.core.errors import UsageError

try:  # POSIX only; elsewhere writers into one folder are not serialised
    import fcntl
except ImportError:  # pragma: no cover - not Linux
    fcntl = None  # type: ignore[assignment]

WRITE_HINT = "choose an output folder you can write to (--out DIR)"


def check_output_dir(path: Path) -> None:
    """Fail early, before any work, if reports could not be written into ``path``.

    Nothing is created: the nearest existing ancestor must be a writable folder.
    """
    if path.exists() and not path.is_dir():
        raise UsageError(
            "the output path exists and is not a folder", where=str(path), hint="pass a folder to --out or report.out"
        )
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            f"cannot create or write the output folder ({existing} is not a writable folder)",
            where=str(path),
            hint=WRITE_HINT,
        )


def remove_dirs(created: list[Path]) -> None:
    """Remove the folders that :func:`make_dirs` created, innermost first, as long as they
    are empty (never what someone else has put there meanwhile)."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue  # its mkdir failed, or someone removed it
        except OSError:
            break


def make_dirs(path: Path, created: list[Path]) -> None:
    """Create ``path`` and its missing parents, adding each folder created to ``created``
    (outermost first) as soon as it exists."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        created.append(folder)
        try:
            folder.mkdir()
        except FileExistsError:
            created.pop()
            if not folder.is_dir():
                raise NotADirectoryError(20, "not a folder", str(folder)) from None


def lock_folder(root: Path, created: list[Path]) -> int:
    """Open ``root`` and take its exclusive lock (waits for another writer to finish).

    A writer that failed may remove a folder it created while this one waited; the folder
    is then created again and locked anew.
    """
    for _ in range(100):
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        if fcntl is None:  # pragma: no cover - not POSIX
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            here = os.stat(root)
            held = os.fstat(fd)
            if (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
                return fd
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        make_dirs(root, created)
    raise OSError(16, "the folder keeps being removed while waiting for its lock", str(root))
