"""Durable writes of single files and folder entries: a new file written in full and
fsynced, a folder fsynced after its entries changed (see :mod:`guardrail.core.atomic`).

Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_file(path: Path, payload: bytes, mode: int, *, chmod: int | None = None) -> None:
    """Create ``path`` (it must not exist), write ``payload`` in full and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        if chmod is not None:
            os.fchmod(fd, chmod)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Fsync the folder ``path`` (its entries); a folder that cannot be opened or synced is
    left as it is."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the renames are still atomic
    finally:
        os.close(fd)
