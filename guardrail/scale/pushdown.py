"""Counts computed where the data lives: one GROUP BY instead of a pass in Python.

The predictions-only audit needs nothing but the number of rows of each combination of
(sensitive values, target, prediction): :func:`grouped_counts` asks an embedded DuckDB for it
(all cores, bounded memory, spilling to disk past :data:`~guardrail.scale.sources.DUCKDB_MEMORY_LIMIT`),
or SQLite for a SQLite query. The key columns come back with the types
:func:`~guardrail.scale.sources.iter_batches` gives them, so the counts equal a pandas
``groupby(keys, dropna=False).size()`` on :func:`~guardrail.scale.sources.read_frame`.

* Parquet partitions are read by DuckDB itself (their footers checked first, so a schema
  mismatch is the same :class:`~guardrail.core.errors.DataError` as when streaming); hive
  columns come from the partitions' paths, joined on each row's file name.
* CSV partitions are parsed by the same reader as :func:`~guardrail.scale.sources.iter_batches`
  (one batch at a time, streamed into DuckDB), so every value parses identically.
* A query is run as a subquery.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd

from guardrail.core.errors import DataError, first_line
from guardrail.scale import sources
from guardrail.scale.sources import Source

if TYPE_CHECKING:
    import pyarrow as pa

COUNT = "n"
"""The column of :func:`grouped_counts` that holds each combination's number of rows."""
_FILE = "__guardrail_file"
_PARTS = "__guardrail_parts"
_ROWS = "__guardrail_rows"
_N = "__guardrail_n"


def grouped_counts(source: Source, keys: Sequence[str], *, limit: int | None = None) -> pd.DataFrame:
    """One row per distinct combination of ``keys`` in ``source`` (missing values kept, as NA),
    with its number of rows in column ``n`` (int64); ordered by the keys (missing last). With
    ``limit``, at most that many combinations (any of them): a caller that gets ``limit`` rows
    knows there may be more.

    Equals ``read_frame(source, keys).groupby(keys, dropna=False).size()`` without reading the
    rows into Python (CSV rows are parsed, but only a batch at a time)."""
    return _grouped(source, keys, limit=limit)


def distinct_values(source: Source, column: str, limit: int) -> list[object]:
    """The distinct values of ``column`` (as :func:`iter_batches` gives them) sorted by their
    text, then one missing value (NaN or None) if the column has any; at most ``limit + 1``
    values, so that a caller knows when there are more than ``limit``."""
    values = _grouped(source, [column], limit=limit + 2)[column]  # + 2: DuckDB parts NaN from NULL
    present = sorted(values[values.notna()].tolist(), key=str)
    missing = values[values.isna()].tolist()[:1]
    return [*present, *missing][: limit + 1]


def _grouped(source: Source, keys: Sequence[str], *, limit: int | None = None, dropna: bool = False) -> pd.DataFrame:
    """:func:`grouped_counts`; ``limit``: at most that many combinations (any of them);
    ``dropna``: leave out rows with a missing key (one key only)."""
    import pyarrow as pa

    keys = list(dict.fromkeys(keys))
    if not keys:
        raise ValueError("keys must name at least one column")
    if COUNT in keys:
        raise DataError(
            f"a key column is named {COUNT!r}, the name of the count column",
            where=source.where,
            hint=f"rename the column (in a query: AS {COUNT}_)",
        )
    target = sources._project(sources._arrow_schema(source), keys, source)
    counted = pa.schema([*target, pa.field(_N, pa.int64())])
    names = ", ".join(sources._sql_name(k) for k in keys)
    where = f" WHERE {sources._sql_name(keys[0])} IS NOT NULL" if dropna else ""
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    if source.format == "sqlite":
        assert source.query is not None
        with sources._sqlite(source) as con:
            sql = f"SELECT {names}, count(*) FROM ({source.query}){where} GROUP BY {names}{tail}"
            batch = sources._sqlite_arrays(con.execute(sql).fetchall(), counted)
    else:
        with _duck_from(source, target) as (con, relation):
            sql = f"SELECT {names}, count(*) AS {_N} FROM {relation}{where} GROUP BY ALL{tail}"
            table = _run(con, source, sql)
        batch = sources._conform(table, list(counted))
    frame = sources._to_frame(batch).rename(columns={_N: COUNT})
    if dropna:
        frame = frame[frame[keys[0]].notna()]
    # DuckDB and SQLite may part values that pandas groups together (NaN and NULL, 1 and '1' in SQLite)
    counts = frame.groupby(keys, dropna=False, sort=False)[COUNT].sum().astype("int64").reset_index()
    return counts.sort_values(keys, na_position="last", kind="stable", ignore_index=True)


def _run(con: Any, source: Source, sql: str) -> pa.Table:
    import duckdb

    relation = sources._duck_run(con, source, sql)
    try:
        return relation.to_arrow_table()
    except duckdb.Error as exc:
        raise DataError(f"cannot count the rows: {first_line(exc)}", where=source.where) from None


@contextmanager
def _duck_from(source: Source, target: pa.Schema) -> Iterator[tuple[Any, str]]:
    """A DuckDB connection and the FROM clause that reads ``target``'s columns of ``source``."""
    import pyarrow as pa

    if source.kind == "query":
        assert source.query is not None
        with sources._duckdb(source) as con:
            yield con, f"({source.query}) AS q"
        return
    hive = sources._hive_names(source)
    if source.format == "parquet":
        arrow = sources._arrow_schema(source)
        sources._checked_partitions(source, arrow, [k for k in target.names if k not in hive])
        files = ", ".join(sources._sql_text(str(p.path)) for p in source.partitions)
        relation = f"read_parquet([{files}], filename = {sources._sql_text(_FILE)}, union_by_name = true, hive_partitioning = false)"
        parts = None
        if any(k in hive for k in target.names):
            rows: list[list[str | None]] = [[str(p.path) for p in source.partitions]]
            for i, key in enumerate(hive):
                rows.append([None if p.values[i][1] == sources.HIVE_DEFAULT else p.values[i][1] for p in source.partitions])
            parts = pa.table(rows, schema=pa.schema([pa.field(n, pa.string()) for n in [_FILE, *hive]]))
            relation += f" AS t JOIN {_PARTS} AS p USING ({_FILE})"
        with sources._duckdb(source) as con:
            if parts is not None:
                con.register(_PARTS, parts)
            yield con, relation
        return
    failure: list[DataError] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for _, batch in sources._arrow_batches(source, target.names, sources.READ_FRAME_ROWS):
                yield batch
        except DataError as exc:
            failure.append(exc)
            raise

    reader = pa.RecordBatchReader.from_batches(target, batches())
    with sources._duckdb(source) as con:
        con.register(_ROWS, reader)
        try:
            yield con, _ROWS
        except DataError:
            if failure:
                raise failure[0] from None
            raise
