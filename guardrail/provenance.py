"""Where a run came from: versions, platform, seeds, file digests, the command to rerun."""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from guardrail.core.types import FileDigest, Provenance
from guardrail.spec.loader import sha256_file

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
    return FileDigest(role=role, path=str(path), sha256=sha256_file(path), bytes=path.stat().st_size)


def digests(role: str, path: Path) -> list[FileDigest]:
    """The digest of a file, or of every file inside a folder (a torch model folder), by name."""
    if path.is_dir():
        return [digest(role, item) for item in sorted(path.rglob("*")) if item.is_file()]
    return [digest(role, path)]


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
