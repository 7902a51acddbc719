"""Open the files a run reads (spec, policies, data, model, history) without surprises.

A path in a spec may name anything: a named pipe (FIFO) whose ``open()`` waits forever for a
writer, ``/dev/zero`` that never ends, a folder, a symlink loop, a file that vanishes before
it is read. Every reader here looks before it opens (:func:`file_kind`), opens without
blocking and checks again on the open descriptor (:func:`open_regular`), and reads a bounded
amount where the file should be small (:func:`read_limited`). Problems are ``OSError``\\ s that
:func:`describe` puts in words; callers raise them as the error of their own layer.

Standard library only (``guardrail validate`` imports this).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


class NotRegularFileError(OSError):
    """The path exists but is not a regular file (``kind`` says what it is)."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        super().__init__(errno.EINVAL, f"is {kind}, not a regular file", os.fspath(path))
        self.kind = kind


class FileTooLargeError(OSError):
    """The file holds more than the reader accepts."""

    def __init__(self, path: str | os.PathLike[str], limit: int) -> None:
        super().__init__(errno.EFBIG, f"is larger than {_size(limit)}", os.fspath(path))
        self.limit = limit


def resolve(path: str | os.PathLike[str]) -> Path:
    """``Path(path).resolve()``; a symlink loop is an ``OSError`` (ELOOP) on every Python version."""
    try:
        return Path(path).resolve()
    except RuntimeError:  # Python < 3.13 raises RuntimeError("Symlink loop from ...")
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fspath(path)) from None


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """``None`` for a regular file (symlinks followed), else what the path is, in words:
    ``"missing"``, ``"a folder"``, ``"a named pipe (FIFO)"``, ``"a device"``, ``"a socket"``,
    ``"a symlink loop"`` or ``"unreadable (<reason>)"``. Never opens the path."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # not there, or below something that is not a folder
        return "missing"
    except OSError as exc:
        return "a symlink loop" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror or exc})"
    return _kind(mode)


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


@contextmanager
def open_regular(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open ``path`` for reading in binary, only if it is a regular file.

    The path is looked at first (nothing else is opened: a device may act on ``open``), then
    opened without blocking (a FIFO swapped in meanwhile cannot hang the run) and checked
    again on the descriptor.

    Raises
    ------
    OSError
        ``FileNotFoundError``, ELOOP, :class:`NotRegularFileError`, or any reading error.
    """
    kind = file_kind(path)
    if kind is not None:
        if kind == "missing":
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(path))
        if kind == "a symlink loop":
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fspath(path))
        raise NotRegularFileError(path, kind)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotRegularFileError(path, kind)
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_limited(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file ``path``; :class:`FileTooLargeError` past ``limit`` bytes."""
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(path, limit)
    return data


def read_head(path: str | os.PathLike[str], size: int) -> bytes:
    """The first ``size`` bytes of the regular file ``path`` (fewer if it is shorter)."""
    with open_regular(path) as handle:
        return handle.read(size)


def sha256_and_size(path: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 (hex) and length of the regular file ``path``, read once."""
    digest = hashlib.sha256()
    size = 0
    with open_regular(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of the regular file ``path`` (:func:`sha256_and_size` without the size)."""
    return sha256_and_size(path)[0]


def describe(exc: OSError) -> str:
    """What is wrong with a file, as the rest of a sentence whose subject is the file
    ("… is a named pipe (FIFO), not a regular file"); the caller names the file."""
    if isinstance(exc, (NotRegularFileError, FileTooLargeError)):
        return str(exc.strerror)
    if isinstance(exc, FileNotFoundError):
        return "is not there (not found)"
    if exc.errno == errno.ELOOP:
        return "is a symlink loop (too many levels of symbolic links)"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, PermissionError):
        return "may not be read (permission denied)"
    return f"cannot be read ({exc.strerror or exc})"


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and limit % (1 << 20) == 0 else f"{limit:,} bytes"
