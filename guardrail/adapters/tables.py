"""Read the audit data table (CSV/TSV, optionally compressed; Parquet when pyarrow is installed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from guardrail.errors import DataError, MissingExtraError

if TYPE_CHECKING:
    import pandas as pd

_TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}
_COMPRESSIONS = {".gz", ".bz2", ".xz", ".zst", ".zip"}


def read_table(path: Path, *, where: str | None = None) -> pd.DataFrame:
    """Load ``path`` as a data frame; unreadable or empty files raise :class:`DataError`."""
    import pandas as pd

    where = where or str(path)
    suffixes = [s.lower() for s in path.suffixes]
    base = suffixes[-2] if len(suffixes) > 1 and suffixes[-1] in _COMPRESSIONS else (suffixes[-1] if suffixes else "")
    try:
        if base == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise MissingExtraError("pyarrow", "parquet") from None
            frame = pd.read_parquet(path)
        elif base in _TEXT_SUFFIXES:
            frame = pd.read_csv(path, sep=_TEXT_SUFFIXES[base], low_memory=False)
        else:
            raise DataError(
                f"unsupported data file type {''.join(path.suffixes) or '(none)'}",
                where=where,
                hint="use CSV or TSV (optionally .gz), or Parquet",
            )
    except (DataError, MissingExtraError):
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = " ".join(str(exc).split())  # pandas' messages may span lines
        raise DataError(f"cannot read the data file: {reason}", where=where) from None
    if frame.empty:
        raise DataError("the data file has no rows", where=where)
    return frame
