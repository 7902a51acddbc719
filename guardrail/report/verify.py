"""Tamper evidence: recompute every digest a run recorded and report what changed.

``run.json`` records the SHA-256 of the spec, policies, model(s) and data the run read
(``provenance.files``) and of the reports written beside it (``outputs``). Verification
reads the files again; anything missing or different is a mismatch. A path that is not a
regular file any more (a FIFO or a device swapped in, a symlink loop) is never opened: it is
missing, as is a file that cannot be read. A policy pack recorded by name
(``guardrail:baseline``) is checked in the guardrail installed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from guardrail.core.files import file_sha256
from guardrail.core.types import FileDigest, RunRecord
from guardrail.spec.packs import PACK_PREFIX, is_pack_reference, pack_names, pack_path


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
    checks = [_check(d, _input(d.path), shown=d.path) for d in record.provenance.files]
    checks += [_check(d, folder / d.path) for d in record.outputs]
    return checks


def _input(recorded: str) -> Path:
    """The file a recorded input path names: a shipped pack's installed file for its name."""
    if is_pack_reference(recorded) and recorded.removeprefix(PACK_PREFIX) in pack_names():
        return pack_path(recorded)
    return Path(recorded)


def _check(digest: FileDigest, path: Path, *, shown: str | None = None) -> Check:
    found = _sha256(path)
    if found is None:
        return Check(digest.role, shown or str(path), "missing", digest.sha256, None)
    return Check(digest.role, shown or str(path), "ok" if found == digest.sha256 else "changed", digest.sha256, found)


def _sha256(path: Path) -> str | None:
    """The SHA-256 of the regular file ``path``; None if it is not one or cannot be read (a FIFO
    never hangs: :func:`guardrail.core.files.open_regular`)."""
    try:
        return file_sha256(path)
    except OSError:
        return None
