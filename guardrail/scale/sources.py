"""Where the audit rows come from: one data file, a folder or glob of Parquet/CSV partitions, or a query.

A :class:`Source` is resolved once from the spec's ``data.path`` and ``data.query``
(:func:`resolve_source`); every engine then reads it through the same functions, so that the
in-memory engine (:func:`read_frame`), the streaming engine and the Ray engine
(:func:`iter_batches`, one partition per task) see the same rows, in the same order, with the
same pandas dtypes.

* **Partitions** are ordered by path (as text). Folders named ``key=value`` below the folder or
  the glob's fixed part (hive-style) add a text column ``key`` holding ``value``
  (``__HIVE_DEFAULT_PARTITION__`` is a missing value).
* **Types** are the first partition's: Parquet's own schema (dictionary columns decoded to their
  plain values), or for CSV what its first rows parse as (dates and times stay text, as pandas
  reads them; a column empty there takes its type from the next partition that has a value).
  Every later partition must have each requested column with that type (a "schema mismatch"
  otherwise), and every CSV value must parse as it.
* **Reading is lazy**: only the requested columns are read from disk, at most one batch
  (and one Parquet row group or one CSV block) at a time.
* **Queries** run in an embedded DuckDB (relative paths in it resolve against the spec's folder),
  against a DuckDB database file opened read-only when ``data.path`` names one, or in Python's
  sqlite3 when ``data.path`` names a SQLite database.

Every problem with the data is a :class:`~guardrail.core.errors.DataError` (exit 3) that names the
partition, the column and how to fix it. pyarrow and duckdb are imported only where they are used.
"""

from __future__ import annotations

import glob
import os
import re
import sqlite3
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from guardrail.adapters.tables import _TEXT_SUFFIXES, _format, _need_pyarrow, _reading
from guardrail.core.errors import DataError, first_line
from guardrail.core.files import file_kind, read_head
from guardrail.spec.yamlsource import display_path

if TYPE_CHECKING:
    import pyarrow as pa

HIVE_DEFAULT = "__HIVE_DEFAULT_PARTITION__"
"""A hive folder value that stands for a missing value (what Spark and pyarrow write for one)."""
CSV_BLOCK_BYTES = 8 << 20
"""CSV is parsed (and its types inferred) in blocks of this many bytes; no row may be longer."""
READ_FRAME_ROWS = 1 << 20
"""Rows per batch when :func:`read_frame` reads everything."""
DUCKDB_MEMORY_LIMIT = "1GB"
"""DuckDB's memory limit; beyond it, a large GROUP BY spills to a temporary folder."""
NULL_SCAN_PARTITIONS = 32
"""How many partitions are looked at for the type of a column that is empty in the first one."""
CSV_NULL_VALUES = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
"""Cells that are missing values: pandas' ``read_csv`` defaults, so both readers agree."""
CSV_TRUE = ("True", "TRUE", "true")
CSV_FALSE = ("False", "FALSE", "false")
_DATA_BASES = {".parquet", ".csv", ".tsv"}
"""File types a folder scan picks up (a glob may also name ``.txt`` files)."""
_COMPRESSED = {".gz", ".bz2", ".xz", ".zst", ".zip"}
_GLOB_MAGIC = re.compile(r"[*?\[]")
_CSV_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to ([^:]+): (.*)")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_QUERY_WHERE = "data.query"

Format = Literal["parquet", "csv", "duckdb", "sqlite"]


@dataclass(frozen=True)
class Partition:
    """One data file of a source."""

    path: Path
    values: tuple[tuple[str, str], ...]
    """Hive partition columns from its folders below the root, e.g. ``(("month", "2026-07"),)``."""
    size: int
    """Bytes on disk."""


@dataclass(frozen=True)
class Source:
    """Where the rows come from (see :func:`resolve_source`)."""

    kind: Literal["file", "partitions", "query"]
    format: Format
    partitions: tuple[Partition, ...]
    """Ordered by path; ``()`` for a query."""
    where: str
    """How errors name the source, e.g. ``data/decisions/ (12 Parquet partitions)``."""
    query: str | None = None
    database: Path | None = None
    """The DuckDB or SQLite database a query runs against (``None``: an in-memory DuckDB)."""
    folder: Path | None = None
    """The spec's folder: relative paths inside a query resolve here."""


@dataclass(frozen=True)
class Batch:
    """Some rows of one partition (``0`` for a query), as a pandas frame."""

    partition: int
    frame: pd.DataFrame


# ----------------------------------------------------------------------------------------------
# Resolving data.path / data.query


def resolve_source(path: str | None, query: str | None, *, folder: Path) -> Source:
    """The source that ``data.path`` and ``data.query`` name, relative to the spec's ``folder``.

    ``path`` is a data file, a folder (every ``*.parquet`` / ``*.csv`` / ``*.tsv``, optionally
    compressed, below it, recursively; names starting with ``.`` or ``_`` are skipped) or a glob
    such as ``decisions/month=*/*.parquet``. With ``query``, ``path`` is left out (the query names
    its files, relative to ``folder``) or names the DuckDB or SQLite database it runs against.
    """
    if query is not None:
        return _query_source(path, query, folder)
    if path is None:
        raise DataError("no data: the spec names neither data.path nor data.query", where="data", hint="set data.path to a data file, a folder or a glob")
    shown = path
    if _GLOB_MAGIC.search(path):
        files, root = _glob(path, folder)
        if not files:
            raise DataError(
                f"no data file matches {path!r}",
                where=f"data.path ({display_path(folder)})",
                hint="check the pattern; it is relative to the spec's folder (e.g. decisions/month=*/*.parquet)",
            )
        return _partitions(files, root, shown)
    target = folder / path
    kind = file_kind(target)
    if kind == "a folder":
        files = _scan(target)
        if not files:
            raise DataError(
                "the data folder holds no data file (*.parquet, *.csv or *.tsv, optionally compressed)",
                where=display_path(target),
                hint="point data.path to a folder of Parquet or CSV partitions, or to a file",
            )
        return _partitions(files, target, shown.rstrip("/") + "/")
    where = display_path(target)
    if kind is None and _is_database(target):
        raise DataError("the data file is a database; a database needs data.query", where=where, hint="add data.query: SELECT ... FROM <table>")
    base = _format(target, where)  # a missing file, a FIFO, a wrong suffix: the same errors as read_table
    partition = Partition(target, (), _size(target, where))
    return Source("file", "parquet" if base == ".parquet" else "csv", (partition,), where)


def _query_source(path: str | None, query: str, folder: Path) -> Source:
    text = query.strip().rstrip(";").strip()
    if not text:
        raise DataError("data.query is empty", where=_QUERY_WHERE, hint="write a SELECT, e.g. SELECT * FROM read_parquet('decisions/*.parquet')")
    if path is None:
        return Source("query", "duckdb", (), _QUERY_WHERE, query=text, folder=folder)
    target = folder / path
    where = display_path(target)
    kind = file_kind(target)
    if kind is not None:
        problem = "the database is not there (not found)" if kind == "missing" else f"the database is {kind}, not a database file"
        raise DataError(
            problem,
            where=where,
            hint="with data.query, data.path names the DuckDB or SQLite database it runs against; "
            "leave data.path out to query files (read_parquet('decisions/*.parquet'))",
        )
    head = _head(target, where)
    if head.startswith(_SQLITE_MAGIC):
        return Source("query", "sqlite", (), f"{_QUERY_WHERE} on {where}", query=text, database=target, folder=folder)
    if head[8:12] == b"DUCK":
        return Source("query", "duckdb", (), f"{_QUERY_WHERE} on {where}", query=text, database=target, folder=folder)
    raise DataError(
        "the file is not a DuckDB or SQLite database",
        where=where,
        hint="with data.query, data.path names the database the query runs against; "
        "leave data.path out to query data files (FROM read_parquet('decisions/*.parquet'))",
    )


def _is_database(path: Path) -> bool:
    head = _head(path, display_path(path))
    return head.startswith(_SQLITE_MAGIC) or head[8:12] == b"DUCK"


def _head(path: Path, where: str) -> bytes:
    try:
        return read_head(path, 16)
    except OSError as exc:
        raise DataError(f"cannot read the file: {first_line(exc)}", where=where) from None


def _size(path: Path, where: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise DataError(f"cannot read the data file: {first_line(exc)}", where=where) from None


def _glob(pattern: str, folder: Path) -> tuple[list[Path], Path]:
    """Files matching ``pattern`` (matched folders are scanned), and the pattern's fixed root."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if _GLOB_MAGIC.search(part)), len(parts))
    root = folder.joinpath(*parts[:fixed])
    full = pattern if Path(pattern).is_absolute() else os.path.join(glob.escape(str(folder)), pattern)
    files: list[Path] = []
    for match in glob.glob(full, recursive=True):
        kind = file_kind(match)
        if kind == "a folder":
            files.extend(_scan(Path(match)))
        elif kind != "missing":
            files.append(Path(match))
    return sorted(set(files), key=str), root


def _scan(folder: Path) -> list[Path]:
    """Every data file below ``folder``, recursively, skipping names that start with ``.`` or ``_``."""
    found: list[Path] = []
    for current, dirs, names in os.walk(folder):  # symlinked folders are not followed (a loop never ends)
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        for name in names:
            if not name.startswith((".", "_")) and _data_base(name) in _DATA_BASES:
                found.append(Path(current) / name)
    return sorted(found, key=str)


def _data_base(name: str) -> str:
    suffixes = [s.lower() for s in Path(name).suffixes]
    if len(suffixes) > 1 and suffixes[-1] in _COMPRESSED:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def _partitions(files: list[Path], root: Path, shown: str) -> Source:
    formats = {("parquet" if _data_base(f.name) == ".parquet" else "csv"): f for f in files}
    if len(formats) > 1:
        raise DataError(
            f"the partitions mix Parquet and CSV files ({display_path(formats['parquet'])}, {display_path(formats['csv'])})",
            where=shown,
            hint="keep one format per source, or narrow data.path with a glob (e.g. decisions/**/*.parquet)",
        )
    fmt: Literal["parquet", "csv"] = "parquet" if "parquet" in formats else "csv"
    partitions = tuple(Partition(f, _hive_values(f, root), _size(f, display_path(f))) for f in files)
    keys = [tuple(k for k, _ in p.values) for p in partitions]
    for partition, its in zip(partitions, keys, strict=True):
        if its != keys[0]:
            raise DataError(
                f"the partition folders disagree: {_keys(its)} here, {_keys(keys[0])} in {display_path(partitions[0].path)}",
                where=display_path(partition.path),
                hint="every partition needs the same key=value folders below data.path",
            )
    count = len(partitions)
    where = f"{shown} ({count} {'Parquet' if fmt == 'parquet' else 'CSV'} partition{'s' if count != 1 else ''})"
    return Source("partitions", fmt, partitions, where)


def _keys(keys: tuple[str, ...]) -> str:
    return "/".join(f"{k}=..." for k in keys) if keys else "no key=value folders"


def _hive_values(path: Path, root: Path) -> tuple[tuple[str, str], ...]:
    try:
        parts = path.parent.relative_to(root).parts
    except ValueError:
        return ()
    values = []
    for part in parts:
        key, sep, value = part.partition("=")
        if sep and key:
            values.append((urllib.parse.unquote(key), urllib.parse.unquote(value)))
    return tuple(values)


# ----------------------------------------------------------------------------------------------
# Schema


def schema(source: Source) -> dict[str, str]:
    """Column name -> type name (``int64``, ``double``, ``string``, ``bool``, ...), hive columns
    included (always ``string``). For Parquet every partition's columns are checked against the
    first partition's (their footers only); CSV partitions are checked as they are read."""
    arrow = _arrow_schema(source)
    if source.format == "parquet":
        for index in range(1, len(source.partitions)):
            _parquet_file_schema(source, index, arrow, _data_names(source, arrow), missing_ok=True)
    return {field.name: str(field.type) for field in arrow}


def _data_names(source: Source, arrow: pa.Schema) -> list[str]:
    hive = _hive_names(source)
    return [name for name in arrow.names if name not in hive]


def _hive_names(source: Source) -> tuple[str, ...]:
    return tuple(k for k, _ in source.partitions[0].values) if source.partitions else ()


def _arrow_schema(source: Source) -> pa.Schema:
    """The unified schema: the first partition's columns (plain types), then the hive columns."""
    _need_pyarrow()
    import pyarrow as pa

    if source.kind == "query":
        return _query_schema(source)
    first = source.partitions[0]
    where = display_path(first.path)
    fields = _parquet_schema(first.path, where) if source.format == "parquet" else _csv_schema(first.path, where)
    names = [f.name for f in fields]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"column {dup!r} appears twice", where=where, hint="give every column its own name")
    for key in _hive_names(source):
        if key in names:
            raise DataError(
                f"column {key!r} is both in the file and a partition folder name ({key}=...)",
                where=where,
                hint="rename the column or the folders",
            )
    empty = [i for i, f in enumerate(fields) if pa.types.is_null(f.type)]
    for index in range(1, min(len(source.partitions), NULL_SCAN_PARTITIONS)):
        if not empty:
            break
        part = source.partitions[index]
        where = display_path(part.path)
        theirs = _parquet_schema(part.path, where) if source.format == "parquet" else _csv_schema(part.path, where)
        types = {f.name: f.type for f in theirs}
        for i in list(empty):
            found = types.get(fields[i].name)
            if found is not None and not pa.types.is_null(found):
                fields[i] = pa.field(fields[i].name, found)
                empty.remove(i)
    if source.format == "csv":  # a CSV column that is empty everywhere looked at is text
        fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in fields]
    fields += [pa.field(key, pa.string()) for key in _hive_names(source)]
    return pa.schema(fields)


def _plain(kind: pa.DataType) -> pa.DataType:
    """The type a column is read as: dictionaries decoded, large/view strings as strings,
    decimals as doubles (pandas has no decimal dtype)."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return _plain(kind.value_type)
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return pa.binary()
    if pa.types.is_decimal(kind):
        return pa.float64()
    return kind


def _parquet_schema(path: Path, where: str) -> list[pa.Field]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with _reading(path, where):
        _format(path, where)
        arrow = pq.read_schema(path)
    return [pa.field(f.name, _plain(f.type)) for f in arrow if not f.name.startswith("__index_level_")]


def _csv_schema(path: Path, where: str) -> list[pa.Field]:
    """What the first block of a CSV file parses as; dates and times stay text (as in pandas)."""
    import pyarrow as pa

    with _reading(path, where):
        base = _format(path, where)
        with _csv_input(path) as stream:
            reader = _open_csv(stream, base, None, None)
            arrow = reader.schema
            reader.close()
    fields = []
    for f in arrow:
        kind = f.type
        if pa.types.is_temporal(kind):
            kind = pa.string()
        fields.append(pa.field(f.name, kind))
    return fields


def _query_schema(source: Source) -> pa.Schema:
    import pyarrow as pa

    assert source.query is not None
    if source.format == "sqlite":
        with _sqlite(source) as con:
            names, types = _sqlite_types(con, source)
        return pa.schema([pa.field(n, t) for n, t in zip(names, types, strict=True)])
    with _duckdb(source) as con:
        table = _duck_run(con, source, f"SELECT * FROM ({source.query}) AS q LIMIT 0").to_arrow_table()
    names = table.schema.names
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"the query returns column {dup!r} twice", where=source.where, hint="give every column its own name (AS ...)")
    return pa.schema([pa.field(f.name, _plain(f.type)) for f in table.schema])


# ----------------------------------------------------------------------------------------------
# Reading


def read_frame(source: Source, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every row in memory (the in-memory engine on a folder, a glob or a query): the
    concatenation of :func:`iter_batches`' frames, with their dtypes. ``None``: every column."""
    arrow = _arrow_schema(source)
    names = list(arrow.names) if columns is None else list(columns)
    frames = [batch.frame for batch in iter_batches(source, names, READ_FRAME_ROWS)]
    if not frames:
        return _to_frame(_project(arrow, names, source).empty_table())
    return pd.concat(frames, ignore_index=True)


def iter_batches(source: Source, columns: Sequence[str], batch_rows: int, *, partitions: Sequence[int] | None = None) -> Iterator[Batch]:
    """Batches of at most ``batch_rows`` rows as pandas frames holding ``columns`` (only those
    are read from disk), partition after partition in order (``partitions``: indices into
    ``source.partitions``, in the order given). A partition that cannot be read, or whose
    columns do not match the first partition's, raises :class:`DataError` when it is met."""
    for index, batch in _arrow_batches(source, columns, batch_rows, partitions=partitions):
        yield Batch(index, _to_frame(batch))


def _to_frame(batch: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """Arrow to pandas, the one conversion every reader uses (text as pandas' ``str`` dtype,
    integers with missing values as floats, booleans with missing values as objects)."""
    frame: pd.DataFrame = batch.to_pandas()
    return frame


def _project(arrow: pa.Schema, columns: Sequence[str], source: Source) -> pa.Schema:
    import pyarrow as pa

    missing = [c for c in columns if c not in arrow.names]
    if missing:
        shown = ", ".join(arrow.names[:20]) + (", …" if len(arrow.names) > 20 else "")
        raise DataError(
            f"column {missing[0]!r} is not in the data (its columns: {shown})",
            where=source.where,
            hint="check the column names in the spec against the data",
        )
    return pa.schema([arrow.field(c) for c in columns])


def _arrow_batches(
    source: Source, columns: Sequence[str], batch_rows: int, *, partitions: Sequence[int] | None = None
) -> Iterator[tuple[int, pa.RecordBatch]]:
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    columns = list(dict.fromkeys(columns))
    if not columns:
        raise ValueError("columns must name at least one column")
    arrow = _arrow_schema(source)
    target = _project(arrow, columns, source)
    if source.kind == "query":
        if partitions is not None and list(partitions) not in ([], [0]):
            raise ValueError("a query has one partition, 0")
        if partitions is not None and not partitions:
            return
        reader = _sqlite_batches if source.format == "sqlite" else _duckdb_batches
        for batch in reader(source, target, batch_rows):
            yield from ((0, piece) for piece in _sliced(batch, batch_rows))
        return
    indices = range(len(source.partitions)) if partitions is None else partitions
    for index in indices:
        read = _parquet_batches if source.format == "parquet" else _csv_batches
        for batch in read(source, index, arrow, target, batch_rows):
            for piece in _sliced(batch, batch_rows):
                yield index, _with_hive(piece, source.partitions[index], target)


def _sliced(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _with_hive(batch: pa.RecordBatch, partition: Partition, target: pa.Schema) -> pa.RecordBatch:
    """``batch`` (the data columns of ``target``) with the partition's hive columns, in ``target``'s order."""
    import pyarrow as pa

    values = dict(partition.values)
    arrays = []
    for field in target:
        if field.name in values:
            value = values[field.name]
            arrays.append(pa.nulls(batch.num_rows, pa.string()) if value == HIVE_DEFAULT else pa.repeat(pa.scalar(value, pa.string()), batch.num_rows))
        else:
            arrays.append(batch.column(field.name))
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _conform(batch: pa.RecordBatch | pa.Table, fields: Sequence[pa.Field]) -> pa.RecordBatch:
    """``batch``'s columns named in ``fields``, cast to their types (dictionaries decoded,
    an all-missing column typed), without the file's metadata."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = []
    for field in fields:
        array = batch.column(field.name)
        if array.type != field.type:
            array = pa.nulls(len(array), field.type) if pa.types.is_null(array.type) else pc.cast(array, field.type)
        arrays.append(array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _partition_fields(source: Source, arrow: pa.Schema, target: pa.Schema) -> list[pa.Field]:
    hive = _hive_names(source)
    fields = [f for f in target if f.name not in hive]
    if not fields:  # only hive columns: read the first data column to count rows
        fields = [next(f for f in arrow if f.name not in hive)]
    return fields


def _mismatch(source: Source, index: int, column: str, ours: pa.DataType, theirs: pa.DataType | None) -> DataError:
    first = display_path(source.partitions[0].path)
    where = display_path(source.partitions[index].path)
    if theirs is None:
        return DataError(
            f"schema mismatch: column {column!r} ({ours} in the first partition, {first}) is not in this partition",
            where=where,
            hint="write the column in every partition, or leave it out of the audit",
        )
    return DataError(
        f"schema mismatch: column {column!r} is {theirs} here but {ours} in the first partition ({first})",
        where=where,
        hint=f"rewrite this partition with {column!r} as {ours} (the first partition in path order sets every column's type)",
    )


def _parquet_file_schema(source: Source, index: int, arrow: pa.Schema, names: Sequence[str], *, missing_ok: bool = False) -> None:
    """Check partition ``index``'s footer: each of ``names`` there (unless ``missing_ok``) with the unified type."""
    import pyarrow as pa

    part = source.partitions[index]
    where = display_path(part.path)
    theirs = {f.name: f.type for f in _parquet_schema(part.path, where)}
    for name in names:
        ours = arrow.field(name).type
        their = theirs.get(name)
        if their is None:
            if missing_ok:
                continue
            raise _mismatch(source, index, name, ours, None)
        if their != ours and not pa.types.is_null(their):
            raise _mismatch(source, index, name, ours, their)


def _parquet_batches(source: Source, index: int, arrow: pa.Schema, target: pa.Schema, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    part = source.partitions[index]
    where = display_path(part.path)
    fields = _partition_fields(source, arrow, target)
    names = [f.name for f in fields]
    _parquet_file_schema(source, index, arrow, names)
    with _reading(part.path, where):
        _format(part.path, where)
        with pq.ParquetFile(part.path) as handle:
            for batch in handle.iter_batches(batch_size=batch_rows, columns=names, use_pandas_metadata=False):
                yield _conform(batch, fields)


def _csv_batches(source: Source, index: int, arrow: pa.Schema, target: pa.Schema, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    part = source.partitions[index]
    where = display_path(part.path)
    fields = _partition_fields(source, arrow, target)
    types = {f.name: f.type for f in fields}
    with _reading(part.path, where):
        base = _format(part.path, where)
        with _csv_input(part.path) as stream:
            try:
                reader = _open_csv(stream, base, types, [f.name for f in fields])
                for batch in reader:
                    yield _conform(batch, fields)
            except pa.ArrowKeyError as exc:
                column = re.search(r"Column '(.*)' in include_columns", str(exc))
                name = column.group(1) if column else fields[0].name
                raise _mismatch(source, index, name, types.get(name, pa.string()), None) from None
            except pa.ArrowInvalid as exc:
                raise _csv_value_error(source, index, base, types, exc) from None


def _csv_value_error(source: Source, index: int, base: str, types: dict[str, pa.DataType], exc: Exception) -> DataError:
    """A CSV value that does not parse as its column's type, named by partition and column."""
    part = source.partitions[index]
    where = display_path(part.path)
    match = _CSV_CONVERSION.search(str(exc))
    if match is None:
        long_row = "straddl" in str(exc)
        hint = f"a row is longer than {CSV_BLOCK_BYTES >> 20} MiB: shorten it, or convert the file to Parquet" if long_row else None
        return DataError(f"cannot read the data file: {first_line(exc)}", where=where, hint=hint)
    number, row, kind, detail = match.groups()
    with _csv_input(part.path) as stream:
        header = _open_csv(stream, base, None, None).schema.names
    column = header[int(number)] if int(number) < len(header) else f"#{number}"
    at = f" (row {row} of the file)" if row else ""
    if "UTF8" in detail:
        return DataError(f"column {column!r} holds text that is not UTF-8{at}", where=where, hint="save the file as UTF-8")
    value = re.sub(r"^invalid value ", "", detail)
    origin = "its first rows" if index == 0 else f"the first partition, {display_path(source.partitions[0].path)},"
    return DataError(
        f"column {column!r} has the value {value} that does not parse as {kind}{at}, the type {origin} give{'' if index == 0 else 's'} it",
        where=where,
        hint="make the column hold the same kind of value in every row and partition (convert the files to Parquet to fix the types)",
    )


@contextmanager
def _csv_input(path: Path) -> Iterator[Any]:
    """``path`` as pyarrow's CSV reader takes it: gzip, bzip2 and zstandard by pyarrow, xz and
    zip by Python's decompressors."""
    suffix = path.suffix.lower()
    if suffix == ".xz":
        import lzma

        with lzma.open(path, "rb") as handle:
            yield handle
    elif suffix == ".zip":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise ValueError(f"a zipped data file holds exactly one file, this one {len(names)}")
            with archive.open(names[0]) as handle:
                yield handle
    else:
        yield str(path)


def _open_csv(stream: Any, base: str, types: dict[str, pa.DataType] | None, include: list[str] | None) -> Any:
    import pyarrow.csv as pacsv

    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=_TEXT_SUFFIXES.get(base, ",")),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=include,
            null_values=list(CSV_NULL_VALUES),
            true_values=list(CSV_TRUE),
            false_values=list(CSV_FALSE),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


# ----------------------------------------------------------------------------------------------
# Queries


@contextmanager
def _duckdb(source: Source) -> Iterator[Any]:
    """A DuckDB connection for ``source``: its database read-only (or in memory), relative paths
    resolved in the spec's folder, all cores, bounded memory (spilling to a temporary folder),
    no extension downloaded."""
    try:
        import duckdb
    except ImportError:
        from guardrail.core.errors import MissingExtraError

        raise MissingExtraError("duckdb", "scale") from None
    with tempfile.TemporaryDirectory(prefix="guardrail-duckdb-") as spill:
        config: dict[str, str | bool | int | float | list[str]] = {
            "threads": max(1, os.cpu_count() or 1),
            "memory_limit": DUCKDB_MEMORY_LIMIT,
            "temp_directory": spill,
            "autoinstall_known_extensions": False,
        }
        try:
            if source.database is not None:
                con = duckdb.connect(str(source.database), read_only=True, config=config)
            else:
                con = duckdb.connect(":memory:", config=config)
        except duckdb.Error as exc:
            raise DataError(f"cannot open the database: {first_line(exc)}", where=source.where) from None
        try:
            if source.folder is not None:
                con.execute(f"SET file_search_path = {_sql_text(str(source.folder))}")
            yield con
        finally:
            con.close()


def _duck_run(con: Any, source: Source, sql: str) -> Any:
    """``con.sql(sql)``, DuckDB's errors as a :class:`DataError` naming the source."""
    import duckdb

    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise DataError(f"the query failed: {first_line(exc)}", where=source.where, hint="check the SQL; paths in it are relative to the spec's folder") from None
    if relation is None:
        raise DataError("the query returns no rows (it is not a SELECT)", where=source.where, hint="write data.query as one SELECT")
    return relation


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_batches(source: Source, target: pa.Schema, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import duckdb

    assert source.query is not None
    names = ", ".join(_sql_name(n) for n in target.names)
    with _duckdb(source) as con:
        relation = _duck_run(con, source, f"SELECT {names} FROM ({source.query}) AS q")
        try:
            for batch in relation.to_arrow_reader(batch_rows):
                yield _conform(batch, list(target))
        except duckdb.Error as exc:
            raise DataError(f"the query failed: {first_line(exc)}", where=source.where) from None


@contextmanager
def _sqlite(source: Source) -> Iterator[sqlite3.Connection]:
    assert source.database is not None
    uri = f"file:{urllib.request.pathname2url(str(source.database.absolute()))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise DataError(f"cannot open the database: {first_line(exc)}", where=source.where) from None
    try:
        yield con
    except sqlite3.Error as exc:
        raise DataError(f"the query failed: {first_line(exc)}", where=source.where, hint="check the SQL (it runs in SQLite)") from None
    finally:
        con.close()


def _sqlite_types(con: sqlite3.Connection, source: Source) -> tuple[list[str], list[pa.DataType]]:
    """The query's columns and their types, from the storage classes of all their values
    (SQLite's columns are not typed): text wins (numbers become their text), then real, then integer."""
    import pyarrow as pa

    assert source.query is not None
    cursor = con.execute(f"SELECT * FROM ({source.query}) LIMIT 0")
    names = [d[0] for d in cursor.description or ()]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"the query returns column {dup!r} twice", where=source.where, hint="give every column its own name (AS ...)")
    if not names:
        return [], []
    probes = ", ".join(
        f"max(typeof({q}) = '{kind}')" for q in (_sql_name(n) for n in names) for kind in ("text", "real", "integer", "blob")
    )
    row = con.execute(f"SELECT {probes} FROM ({source.query})").fetchone() or ()
    types: list[pa.DataType] = []
    for i, name in enumerate(names):
        text, real, integer, blob = (bool(v) for v in row[4 * i : 4 * i + 4])
        if blob and (text or real or integer):
            raise DataError(f"column {name!r} mixes binary and other values", where=source.where, hint="cast the column in the query")
        types.append(pa.binary() if blob else pa.string() if text else pa.float64() if real else pa.int64() if integer else pa.null())
    return names, types


def _sqlite_arrays(rows: list[tuple[object, ...]], target: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [() for _ in target]
    arrays = []
    for values, field in zip(columns, target, strict=True):
        if pa.types.is_string(field.type):
            values = tuple(v if v is None or isinstance(v, str) else str(v) for v in values)
        arrays.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _sqlite_batches(source: Source, target: pa.Schema, batch_rows: int) -> Iterator[pa.RecordBatch]:
    assert source.query is not None
    names = ", ".join(_sql_name(n) for n in target.names)
    with _sqlite(source) as con:
        cursor = con.execute(f"SELECT {names} FROM ({source.query})")
        while rows := cursor.fetchmany(batch_rows):
            yield _sqlite_arrays(rows, target)


# ----------------------------------------------------------------------------------------------
# Cheap facts


def count_rows(source: Source) -> int | None:
    """The number of rows, when it is cheap to know: Parquet footers, or ``count(*)`` of a query;
    ``None`` for CSV."""
    if source.kind == "query":
        assert source.query is not None
        if source.format == "sqlite":
            with _sqlite(source) as con:
                return int(con.execute(f"SELECT count(*) FROM ({source.query})").fetchone()[0])
        with _duckdb(source) as con:
            rows = _duck_run(con, source, f"SELECT count(*) FROM ({source.query}) AS q").fetchall()
            return int(rows[0][0])
    if source.format != "parquet":
        return None
    _need_pyarrow()
    import pyarrow.parquet as pq

    total = 0
    for part in source.partitions:
        where = display_path(part.path)
        with _reading(part.path, where):
            _format(part.path, where)
            total += pq.read_metadata(part.path).num_rows
    return total


def _checked_partitions(source: Source, arrow: pa.Schema, names: Sequence[str]) -> None:
    """Every Parquet partition's footer checked for ``names`` (before DuckDB reads them)."""
    for index in range(len(source.partitions)):
        _parquet_file_schema(source, index, arrow, names)
