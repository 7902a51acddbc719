"""Atomic file writes: a reader sees the old file or the complete new one, never half."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from guardrail.errors import UsageError


def write_atomic(path: str | os.PathLike[str], data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Parent folders are created. On any failure the temporary file is removed and ``path``
    is left as it was (see :func:`write_all_atomic`).
    """
    (written,) = write_all_atomic({Path(path): data}, encoding)
    return written


def write_all_atomic(files: Mapping[Path, str | bytes], encoding: str = "utf-8") -> list[Path]:
    """Write several files so that either all of them are replaced or none is.

    Every file is first written in full to a temporary file beside its target; only when all
    are on disk are they renamed into place. A failure before that removes the temporary
    files and leaves the targets as they were.

    Raises
    ------
    UsageError
        If a target's folder cannot be created or written (exit code 3).
    """
    staged: list[tuple[str, Path]] = []
    try:
        for target, data in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            payload = data.encode(encoding) if isinstance(data, str) else data
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            staged.append((tmp_name, target))
            mode = target.stat().st_mode & 0o7777 if target.is_file() else 0o666 & ~_current_umask()
            os.chmod(tmp_name, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp_name, target in staged:
            if target.is_dir():
                raise IsADirectoryError(21, "a folder is in the way", str(target))
        for tmp_name, target in staged:
            os.replace(tmp_name, target)
    except OSError as exc:
        for tmp_name, _ in staged:
            Path(tmp_name).unlink(missing_ok=True)
        raise UsageError(
            f"cannot write {exc.filename or 'the reports'}: {exc.strerror or exc}",
            hint="choose an output folder you can write to (--out DIR)",
        ) from None
    return [target for _, target in staged]


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
            hint="choose an output folder you can write to (--out DIR)",
        )


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
