"""Read the audit data table (CSV/TSV, optionally compressed; Parquet when pyarrow is installed).

Every way a data file can be unreadable is a :class:`DataError` (exit 3) that names the file:
not a regular file (a FIFO would block, a device never ends), a compressed file that is not
what its name says or is cut short, text that is not UTF-8, rows the CSV parser cannot split.
"""

from __future__ import annotations

import csv
import lzma
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from guardrail.core.errors import DataError, MissingExtraError
from guardrail.core.files import describe, file_kind, read_head

if TYPE_CHECKING:
    import pandas as pd

_TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}
_COMPRESSIONS = {".gz", ".bz2", ".xz", ".zst", ".zip"}
_SIGNATURES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".gz": ("a gzip", (b"\x1f\x8b",)),
    ".bz2": ("a bzip2", (b"BZh",)),
    ".xz": ("an xz", (b"\xfd7zXZ\x00",)),
    ".zip": ("a zip", (b"PK\x03\x04", b"PK\x05\x06")),
    ".zst": ("a zstandard", (b"\x28\xb5\x2f\xfd",)),
}
"""The magic bytes each compressed format starts with."""
_DECODING_ERRORS = (EOFError, lzma.LZMAError, zipfile.BadZipFile, zlib.error, csv.Error)
"""Raised by the decompressors (a truncated or corrupt stream) and the csv module, besides
pandas' own ``ValueError``\\ s and ``OSError``\\ s (``gzip.BadGzipFile`` is one)."""


def read_table(path: Path, *, where: str | None = None) -> pd.DataFrame:
    """Load ``path`` as a data frame; unreadable or empty files raise :class:`DataError`."""
    import pandas as pd

    where = where or str(path)
    with _reading(path, where):
        base = _format(path, where)
        if base == ".parquet":
            _need_pyarrow()
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep=_TEXT_SUFFIXES[base], low_memory=False)
    if frame.empty:
        raise DataError("the data file has no rows", where=where)
    return frame


def read_header(path: Path, *, where: str | None = None) -> tuple[str, ...]:
    """The column names of the data file ``path`` as :func:`read_table` gives them, from its
    first line (Parquet: its schema); no row is read. Raises as :func:`read_table` does."""
    import pandas as pd

    where = where or str(path)
    with _reading(path, where):
        base = _format(path, where)
        if base == ".parquet":
            _need_pyarrow()
            import pyarrow.parquet as pq

            return tuple(name for name in pq.read_schema(path).names if not name.startswith("__index_level_"))
        frame = pd.read_csv(path, sep=_TEXT_SUFFIXES[base], nrows=0)
    return tuple(str(column) for column in frame.columns)


def _format(path: Path, where: str) -> str:
    """The table format of ``path`` (``.csv``, ``.tsv``, ``.txt`` or ``.parquet``), once it is
    known to be a regular file whose compression, if any, is what its name says."""
    kind = file_kind(path)
    if kind is not None:
        problem = "the data file is not there (not found)" if kind == "missing" else f"the data file is {kind}, not a regular file"
        raise DataError(problem, where=where, hint="point data.path to a CSV, TSV or Parquet file")
    suffixes = [s.lower() for s in path.suffixes]
    compression = suffixes[-1] if len(suffixes) > 1 and suffixes[-1] in _COMPRESSIONS else None
    base = suffixes[-2] if compression else (suffixes[-1] if suffixes else "")
    if compression is not None:
        _check_signature(path, compression, where)
    if base != ".parquet" and base not in _TEXT_SUFFIXES:
        raise DataError(
            f"unsupported data file type {''.join(path.suffixes) or '(none)'}",
            where=where,
            hint="use CSV or TSV (optionally .gz), or Parquet",
        )
    return base


def _need_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MissingExtraError("pyarrow", "scale") from None


@contextmanager
def _reading(path: Path, where: str) -> Iterator[None]:
    """Every way reading ``path`` fails, as a :class:`DataError` that names it."""
    import pandas as pd

    try:
        yield
    except (DataError, MissingExtraError):
        raise
    except ImportError as exc:  # pandas names the package a compression needs (zstandard for .zst)
        package = getattr(exc, "name", None) or "zstandard"
        raise DataError(
            f"reading {path.suffixes[-1]} files needs the {package} package, which is not installed",
            where=where,
            hint=f"pip install {package}, or decompress the file",
        ) from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError, *_DECODING_ERRORS) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            reason = f"it {describe(exc)}"
        else:
            reason = " ".join(str(exc).split())  # pandas' messages may span lines
        raise DataError(f"cannot read the data file: {reason}", where=where) from None


def _check_signature(path: Path, compression: str, where: str) -> None:
    """A compressed file must start with its format's magic bytes (before any decompressor sees it)."""
    name, signatures = _SIGNATURES[compression]
    head = read_head(path, max(len(s) for s in signatures))
    if not any(head.startswith(signature) for signature in signatures):
        raise DataError(
            f"the data file is not {name} file, although its name ends in {compression}",
            where=where,
            hint=f"compress it with {name.split()[1]}, or rename it to what it is (e.g. {path.name[: -len(compression)]})",
        )

