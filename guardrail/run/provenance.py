"""Where a run came from: versions, platform, seeds, file digests, the command to rerun.

The digests of the inputs are of the bytes the run read, not of whatever the files hold
when the run ends: :class:`InputFiles` hashes each file just before and just after it is
read, and refuses the run (exit 3) if the two differ. A file replaced later, while the
audits run, therefore leaves the record vouching for what was audited, and ``guardrail
verify`` reports the file as changed.

A policy pack shipped with guardrail (``guardrail:baseline``, see :mod:`guardrail.spec.packs`)
is hashed as used, from the installed file, and recorded under its pack name rather than
the path of the installation, which differs from machine to machine; ``guardrail verify``
checks the pack of the guardrail installed where it runs against that digest.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

from guardrail.core.errors import DataError, GuardrailError, ModelError, SpecError
from guardrail.core.files import file_kind, sha256_and_size
from guardrail.core.types import FileDigest, Provenance
from guardrail.spec.packs import pack_reference
from guardrail.spec.yamlsource import display_path

T = TypeVar("T")

CHANGED_WHILE_READ = "the {role} file changed while it was read; nothing was audited"
"""Message of the error raised when an input's bytes differ before and after reading it."""

_ERRORS: dict[str, type[GuardrailError]] = {"spec": SpecError, "policy": SpecError, "data": DataError}

TRACKED_PACKAGES = (
    "guardrail",
    "numpy",
    "pandas",
    "scikit-learn",
    "skops",
    "fairlearn",
    "scipy",
    "pydantic",
    "pyyaml",
    "jinja2",
    "torch",
    "transformers",
    "opacus",
    "captum",
    "lime",
    "flwr",
)


def package_versions(names: Sequence[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names``; packages that are not installed are left out."""
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def digest(role: str, path: Path) -> FileDigest:
    """The SHA-256 and size of the bytes of the regular file ``path`` (both from one read;
    a named pipe or a device is an ``OSError``, never opened in a way that blocks).

    A shipped policy pack is recorded by its name (``guardrail:baseline``), not its path."""
    sha256, size = sha256_and_size(path)
    shown = pack_reference(path) if role == "policy" else None
    return FileDigest(role=role, path=shown or str(path), sha256=sha256, bytes=size)


def digests(role: str, path: Path) -> list[FileDigest]:
    """The digest of a file, or of every file inside a folder (a torch model folder), by name."""
    if path.is_dir():
        return [digest(role, item) for item in sorted(path.rglob("*")) if item.is_file()]
    return [digest(role, path)]


class InputFiles:
    """The digests of a run's input files, taken around the moment each one is read."""

    def __init__(self) -> None:
        self._by_role: dict[str, list[FileDigest]] = {}

    def read(self, role: str, path: Path, load: Callable[[], T], *, also: Callable[[T], Iterable[Path]] | None = None) -> T:
        """``load()`` the file (or folder) ``path``, keeping the digest of the bytes it read.

        ``also`` names further files that ``load`` read (a policy's ``extends:``); they are
        hashed right after it.

        Raises
        ------
        SpecError, DataError, ModelError
            If ``path`` changed while it was read (exit code 3).
        """
        if not path.is_dir() and file_kind(path) is not None:
            load()  # not a regular file: the loader says what is wrong with it, in its own words
            raise _ERRORS.get(role, ModelError)(f"the {role} file is not a regular file", where=display_path(path))
        before = _snapshot(role, path)
        value = load()
        if before is None:
            raise _ERRORS.get(role, ModelError)(
                f"the {role} file could not be read to record its digest", where=display_path(path)
            )
        if _snapshot(role, path) != before:
            raise _changed(role, path)
        self.add(before)
        for extra in also(value) if also is not None else ():
            if extra != path:
                self.add(digests(role, extra))
        return value

    def read_all(self, role: str, paths: Sequence[Path], load: Callable[[], T]) -> T:
        """``load()`` what the files ``paths`` hold (the partitions of a data set), keeping the
        digest of each: hashed before and after, as :meth:`read` does for one file."""
        before = [_snapshot(role, path) for path in paths]
        value = load()
        for path, recorded in zip(paths, before, strict=True):
            if recorded is None:
                raise _ERRORS.get(role, ModelError)(f"the {role} file could not be read to record its digest", where=display_path(path))
            if _snapshot(role, path) != recorded:
                raise _changed(role, path)
            self.add(recorded)
        return value

    def check_unchanged(self, role: str, path: Path) -> None:
        """Raise if ``path`` no longer holds the bytes recorded for it: for a model folder,
        which auditors read again while they run (a privacy ledger, a training history)."""
        recorded = [item for item in self._by_role.get(role, ()) if Path(item.path) == path or path in Path(item.path).parents]
        if recorded and _snapshot(role, path) != recorded:
            raise _changed(role, path)

    def add(self, files: Iterable[FileDigest]) -> None:
        for item in files:
            known = self._by_role.setdefault(item.role, [])
            if all(item.path != other.path for other in known):
                known.append(item)

    def of(self, *roles: str) -> list[FileDigest]:
        """The digests of ``roles``, in that order."""
        return [item for role in roles for item in self._by_role.get(role, ())]


def _snapshot(role: str, path: Path) -> list[FileDigest] | None:
    try:
        return digests(role, path)
    except OSError:
        return None


def _changed(role: str, path: Path) -> GuardrailError:
    return _ERRORS.get(role, ModelError)(
        CHANGED_WHILE_READ.format(role=role),
        where=display_path(path),
        hint="rerun when nothing writes to it any more (or audit a copy that nothing changes)",
    )


def git_commit(folder: Path) -> str | None:
    """The commit checked out in ``folder``'s repository, if any (never fails the run)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def collect(*, files: Sequence[FileDigest], seeds: dict[str, int], command: str, folder: Path) -> Provenance:
    return Provenance(
        guardrail_version=package_versions(["guardrail"]).get("guardrail", "unknown"),
        python=sys.version.split()[0],
        platform=platform.platform(),
        packages=package_versions(),
        seeds=seeds,
        files=tuple(files),
        command=command,
        git_commit=git_commit(folder),
    )
