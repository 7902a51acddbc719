"""Tamper evidence: recompute every digest a run recorded and report what changed.

``run.json`` records the SHA-256 of the spec, policies, model(s) and data the run read
(``provenance.files``) and of the reports written beside it (``outputs``). Verification
reads the files again; anything missing or different is a mismatch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from guardrail.core.types import FileDigest, RunRecord


@dataclass(frozen=True)
class Check:
    role: str
    path: str
    status: Literal["ok", "changed", "missing"]
    expected: str
    found: str | None


def verify(record: RunRecord, record_path: Path) -> list[Check]:
    """Check every input and output digest of ``record`` (read from ``record_path``)."""
    folder = record_path.resolve().parent
    checks = [_check(d, Path(d.path)) for d in record.provenance.files]
    checks += [_check(d, folder / d.path) for d in record.outputs]
    return checks


def _check(digest: FileDigest, path: Path) -> Check:
    if not path.is_file():
        return Check(digest.role, str(path), "missing", digest.sha256, None)
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    found = hasher.hexdigest()
    return Check(digest.role, str(path), "ok" if found == digest.sha256 else "changed", digest.sha256, found)
