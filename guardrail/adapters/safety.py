"""Refuse unsafe model files before a single byte is deserialised.

Pickle (and joblib, cloudpickle, dill, torch's legacy zip-of-pickle) files run arbitrary code
when loaded. We recognise them by their first bytes and their name, never by loading them.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from guardrail.core.errors import ModelError, UnsafeModelError
from guardrail.core.files import describe, read_head

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".jbl", ".cloudpickle", ".dill", ".pt", ".pth", ".bin"})

UNSAFE_MESSAGE = (
    "refusing to load {path}: it is a {kind} file, and loading pickle-based files runs "
    "arbitrary code from the file (a model file from anyone could take over this machine)"
)
UNSAFE_HINT = (
    "convert it once, in a trusted environment, to a safe format: for scikit-learn "
    "`import joblib, skops.io as sio; sio.dump(joblib.load('model.pkl'), 'model.skops')`; "
    "for torch save the state dict with safetensors"
)


def pickle_kind(path: Path) -> str | None:
    """Name the pickle-based format of ``path`` from its header and name, or ``None``.

    Raises
    ------
    ModelError
        If ``path`` is not a regular file that can be read (a FIFO is never opened).
    """
    try:
        head = read_head(path, 4)
    except OSError as exc:
        raise ModelError(f"cannot read the model file: it {describe(exc)}", where=str(path)) from None
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return f"pickle (protocol {head[1]})"
    if head[:1] in (b"(", b"]", b"}", b"c") and path.suffix.lower() in PICKLE_SUFFIXES:
        return "pickle (text protocol)"
    if head == b"PK\x03\x04" and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                if any(name.endswith("data.pkl") for name in archive.namelist()):
                    return "torch pickle archive"
        except (zipfile.BadZipFile, OSError):  # a damaged zip: not loadable as a pickle archive either
            return None
        return None
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return f"{path.suffix.lstrip('.')} (pickle-based)"
    return None


def refuse_pickle(path: Path) -> None:
    """Raise :class:`UnsafeModelError` if ``path`` is a pickle-based file."""
    kind = pickle_kind(path)
    if kind is not None:
        raise UnsafeModelError(UNSAFE_MESSAGE.format(path=path, kind=kind), hint=UNSAFE_HINT)
