"""Partitioned sources: folders, globs, hive columns, CSV and Parquet, queries, and their errors."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.scale import sources
from guardrail.scale.pushdown import distinct_values
from guardrail.scale.sources import count_rows, iter_batches, read_frame, resolve_source, schema

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "score": rng.random(rows),
            "approved": rng.random(rows) < 0.5,
            "sex": rng.choice(["F", "M"], rows),
            "region": pd.Categorical(rng.choice(["north", "south"], rows)),
        }
    )


def _write_hive(root: Path, parts: dict[str, pd.DataFrame]) -> None:
    for month, frame in parts.items():
        folder = root / f"month={month}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part-0.parquet", index=False)


@pytest.fixture
def hive(tmp_path: Path) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A spec folder holding decisions/month=.../part-0.parquet: 1 row, 5000 rows, 37 rows."""
    parts = {"2026-07": _frame(1, 1), "2026-08": _frame(5000, 2), "2026-09": _frame(37, 3)}
    parts["2026-09"]["sex"] = "X"  # a group present in one partition only
    _write_hive(tmp_path / "decisions", parts)
    return tmp_path, parts


def _expected(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frames = []
    for month in sorted(parts):
        frame = parts[month].copy()
        frame["region"] = frame["region"].astype(str)
        frame["month"] = month
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _concat(source: sources.Source, columns: list[str], rows: int) -> pd.DataFrame:
    return pd.concat([b.frame for b in iter_batches(source, columns, rows)], ignore_index=True)


# ----------------------------------------------------------------------------------------------
# Resolving


def test_folder_of_hive_partitions_in_path_order(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, parts = hive
    source = resolve_source("decisions", None, folder=folder)
    assert (source.kind, source.format) == ("partitions", "parquet")
    assert [p.values for p in source.partitions] == [(("month", m),) for m in sorted(parts)]
    assert [str(p.path) for p in source.partitions] == sorted(str(p.path) for p in source.partitions)
    assert all(p.size == p.path.stat().st_size for p in source.partitions)
    assert "3 Parquet partitions" in source.where


def test_glob_matches_the_same_partitions_as_the_folder(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, _ = hive
    by_folder = resolve_source("decisions", None, folder=folder)
    by_glob = resolve_source("decisions/month=*/*.parquet", None, folder=folder)
    assert by_glob.partitions == by_folder.partitions
    assert resolve_source("decisions/month=*", None, folder=folder).partitions == by_folder.partitions
    narrow = resolve_source("decisions/month=2026-0[78]/*.parquet", None, folder=folder)
    assert [p.values for p in narrow.partitions] == [(("month", "2026-07"),), (("month", "2026-08"),)]


def test_folder_skips_hidden_and_underscore_files(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, _ = hive
    (folder / "decisions" / "_SUCCESS").write_text("")
    (folder / "decisions" / ".part-0.parquet.crc").write_text("")
    (folder / "decisions" / "README.md").write_text("notes")
    assert len(resolve_source("decisions", None, folder=folder).partitions) == 3


def test_one_file(tmp_path: Path) -> None:
    _frame(10, 0).to_parquet(tmp_path / "d.parquet", index=False)
    source = resolve_source("d.parquet", None, folder=tmp_path)
    assert (source.kind, source.format, len(source.partitions)) == ("file", "parquet", 1)
    assert len(read_frame(source)) == 10


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("decisions/*.parquet", "no data file matches"),
        ("empty", "holds no data file"),
        ("missing.parquet", "not found"),
    ],
)
def test_nothing_to_read(tmp_path: Path, path: str, message: str) -> None:
    (tmp_path / "decisions").mkdir()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.md").write_text("x")
    with pytest.raises(DataError, match=message) as info:
        resolve_source(path, None, folder=tmp_path)
    assert info.value.hint


def test_mixed_formats_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    _frame(3, 0).to_parquet(tmp_path / "d" / "a.parquet", index=False)
    _frame(3, 0).to_csv(tmp_path / "d" / "b.csv", index=False)
    with pytest.raises(DataError, match="mix Parquet and CSV"):
        resolve_source("d", None, folder=tmp_path)


def test_partitions_with_different_folder_keys_are_refused(tmp_path: Path) -> None:
    _write_hive(tmp_path / "d", {"2026-07": _frame(3, 0)})
    (tmp_path / "d" / "other").mkdir()
    _frame(3, 0).to_parquet(tmp_path / "d" / "other" / "p.parquet", index=False)
    with pytest.raises(DataError, match="partition folders disagree"):
        resolve_source("d", None, folder=tmp_path)


# ----------------------------------------------------------------------------------------------
# Reading Parquet


def test_read_frame_is_every_partition_with_hive_columns_as_text(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, parts = hive
    source = resolve_source("decisions", None, folder=folder)
    frame = read_frame(source)
    expected = _expected(parts)
    assert list(frame.columns) == ["age", "score", "approved", "sex", "region", "month"]
    assert frame.equals(expected[frame.columns])
    assert frame["region"].dtype == frame["sex"].dtype == frame["month"].dtype  # decoded, text
    assert schema(source) == {"age": "int64", "score": "double", "approved": "bool", "sex": "string", "region": "string", "month": "string"}


@pytest.mark.parametrize("rows", [1, 7, 1000, 1 << 20])
def test_read_frame_equals_the_batches_whatever_their_size(hive: tuple[Path, dict[str, pd.DataFrame]], rows: int) -> None:
    folder, _ = hive
    source = resolve_source("decisions", None, folder=folder)
    columns = ["month", "sex", "score", "age"]
    batches = list(iter_batches(source, columns, rows))
    assert all(0 < len(b.frame) <= rows for b in batches)
    assert [b.partition for b in batches] == sorted(b.partition for b in batches)
    for batch in batches:
        assert list(batch.frame.columns) == columns
        assert (batch.frame["month"] == source.partitions[batch.partition].values[0][1]).all()
    together = pd.concat([b.frame for b in batches], ignore_index=True)
    assert together.equals(read_frame(source, columns))
    assert (together.dtypes == read_frame(source, columns).dtypes).all()


def test_partitions_argument_reads_only_those(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, parts = hive
    source = resolve_source("decisions", None, folder=folder)
    batches = list(iter_batches(source, ["sex", "month"], 100, partitions=[2, 0]))
    assert [b.partition for b in batches] == [2, 0]
    assert sum(len(b.frame) for b in batches) == 37 + 1


def test_only_the_requested_columns_are_read(hive: tuple[Path, dict[str, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = hive
    source = resolve_source("decisions", None, folder=folder)
    asked: list[object] = []
    original = pq.ParquetFile.iter_batches

    def spy(self: object, *args: object, **kwargs: object) -> object:
        asked.append(kwargs.get("columns"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    frame = read_frame(source, ["score"])
    assert list(frame.columns) == ["score"]
    assert asked == [["score"]] * 3


def test_only_hive_columns(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, _ = hive
    frame = read_frame(resolve_source("decisions", None, folder=folder), ["month"])
    assert frame["month"].value_counts().to_dict() == {"2026-08": 5000, "2026-09": 37, "2026-07": 1}


def test_an_unknown_column_is_named(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, _ = hive
    with pytest.raises(DataError, match="'income' is not in the data"):
        read_frame(resolve_source("decisions", None, folder=folder), ["income"])


def test_schema_mismatch_names_partition_column_and_both_types(tmp_path: Path) -> None:
    good, bad = _frame(5, 0), _frame(5, 1)
    bad["age"] = bad["age"].astype(str)
    _write_hive(tmp_path / "d", {"2026-07": good, "2026-08": bad})
    source = resolve_source("d", None, folder=tmp_path)
    for call in (lambda: read_frame(source), lambda: schema(source), lambda: list(iter_batches(source, ["age"], 2, partitions=[1]))):
        with pytest.raises(DataError, match=r"schema mismatch: column 'age' is string here but int64 in the first partition") as info:
            call()
        assert info.value.where is not None and "month=2026-08" in info.value.where
        assert info.value.hint
    assert len(read_frame(source, ["sex"])) == 10  # the other columns still read


def test_a_partition_without_a_requested_column(tmp_path: Path) -> None:
    _write_hive(tmp_path / "d", {"2026-07": _frame(5, 0), "2026-08": _frame(5, 1).drop(columns="score")})
    source = resolve_source("d", None, folder=tmp_path)
    batches = iter_batches(source, ["score"], 100)
    assert len(next(batches).frame) == 5  # the first partition is read before the second is met
    with pytest.raises(DataError, match="'score' .* is not in this partition") as info:
        next(batches)
    assert info.value.where is not None and "month=2026-08" in info.value.where


def test_a_column_empty_in_the_first_partition_takes_the_next_ones_type(tmp_path: Path) -> None:
    first = pd.DataFrame({"label": [None, None], "x": [1, 2]})
    second = pd.DataFrame({"label": ["a", "b"], "x": [3, 4]})
    _write_hive(tmp_path / "d", {"1": first, "2": second})
    source = resolve_source("d", None, folder=tmp_path)
    assert schema(source)["label"] == "string"
    assert read_frame(source)["label"].tolist()[2:] == ["a", "b"]


def test_truncated_parquet_partition_is_named(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, _ = hive
    victim = folder / "decisions" / "month=2026-08" / "part-0.parquet"
    victim.write_bytes(victim.read_bytes()[:200])
    source = resolve_source("decisions", None, folder=folder)
    with pytest.raises(DataError, match="cannot read the data file") as info:
        read_frame(source)
    assert info.value.where is not None and "month=2026-08" in info.value.where


def test_hive_default_partition_is_missing(tmp_path: Path) -> None:
    _write_hive(tmp_path / "d", {"a": _frame(2, 0), sources.HIVE_DEFAULT: _frame(3, 1)})
    frame = read_frame(resolve_source("d", None, folder=tmp_path), ["month"])
    assert frame["month"].isna().sum() == 3 and (frame["month"] == "a").sum() == 2


def test_count_rows_from_parquet_footers(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, _ = hive
    assert count_rows(resolve_source("decisions", None, folder=folder)) == 5038


def test_distinct_values_sorted_by_text_with_one_more_than_the_limit(hive: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    folder, _ = hive
    source = resolve_source("decisions", None, folder=folder)
    assert distinct_values(source, "sex", 10) == ["F", "M", "X"]
    assert distinct_values(source, "month", 10) == ["2026-07", "2026-08", "2026-09"]
    assert len(distinct_values(source, "age", 5)) == 6


def test_distinct_values_end_with_one_missing_value(tmp_path: Path) -> None:
    pd.DataFrame({"y": [1.0, np.nan, 0.0, None, 1.0], "s": ["b", None, "a", "b", "b"]}).to_parquet(tmp_path / "x.parquet", index=False)
    source = resolve_source("x.parquet", None, folder=tmp_path)
    values = distinct_values(source, "y", 10)
    assert values[:2] == [0.0, 1.0] and len(values) == 3 and pd.isna(values[2])
    strings = distinct_values(source, "s", 10)
    assert strings[:2] == ["a", "b"] and len(strings) == 3 and pd.isna(strings[2])
    assert distinct_values(source, "s", 1) == ["a", "b"]


# ----------------------------------------------------------------------------------------------
# Reading CSV


def _csv_partitions(folder: Path, parts: dict[str, pd.DataFrame]) -> None:
    for month, frame in parts.items():
        target = folder / "d" / f"month={month}"
        target.mkdir(parents=True)
        with gzip.open(target / "part-0.csv.gz", "wt") as handle:
            frame.to_csv(handle, index=False)


def test_csv_gz_partitions_parse_like_pandas(tmp_path: Path) -> None:
    parts = {"2026-07": _frame(1, 1), "2026-08": _frame(5000, 2)}
    parts["2026-08"].loc[3, "score"] = np.nan
    parts["2026-08"].loc[4, "sex"] = None
    _csv_partitions(tmp_path, parts)
    source = resolve_source("d", None, folder=tmp_path)
    assert (source.format, len(source.partitions)) == ("csv", 2)
    assert count_rows(source) is None
    frame = read_frame(source)
    expected = pd.concat(
        [pd.read_csv(tmp_path / "d" / f"month={m}" / "part-0.csv.gz").assign(month=m) for m in sorted(parts)], ignore_index=True
    )
    assert frame.equals(expected)
    assert (frame.dtypes == expected.dtypes).all()
    assert _concat(source, list(frame.columns), 333).equals(frame)


def test_csv_types_come_from_the_first_partition(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("age,sex\n30,F\n")
    (tmp_path / "d" / "b.csv").write_text("age,sex\n40,M\nforty,F\n")
    source = resolve_source("d", None, folder=tmp_path)
    assert schema(source) == {"age": "int64", "sex": "string"}
    assert read_frame(source, ["sex"])["sex"].tolist() == ["F", "M", "F"]  # projection: age is never parsed
    with pytest.raises(DataError, match=r"column 'age' has the value 'forty' that does not parse as int64") as info:
        read_frame(source)
    assert info.value.where is not None and info.value.where.endswith("b.csv")
    assert "a.csv" in info.value.message


def test_csv_partition_without_a_column(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.tsv").write_text("age\tsex\n30\tF\n")
    (tmp_path / "d" / "b.tsv").write_text("sex\nM\n")
    source = resolve_source("d", None, folder=tmp_path)
    assert read_frame(source, ["sex"])["sex"].tolist() == ["F", "M"]
    with pytest.raises(DataError, match="schema mismatch: column 'age'") as info:
        read_frame(source, ["age"])
    assert info.value.where is not None and info.value.where.endswith("b.tsv")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".csv.bz2", ".csv.xz", ".csv.zip", ".tsv.gz"])
def test_csv_compressions(tmp_path: Path, suffix: str) -> None:
    frame = _frame(50, 0).assign(region=lambda f: f["region"].astype(str))
    (tmp_path / "d" / "p=1").mkdir(parents=True)
    target = tmp_path / "d" / "p=1" / f"part{suffix}"
    options = {"method": "zip", "archive_name": "part.csv"} if suffix.endswith(".zip") else "infer"
    frame.to_csv(target, index=False, sep="\t" if ".tsv" in suffix else ",", compression=options)
    source = resolve_source("d", None, folder=tmp_path)
    assert read_frame(source).equals(frame.assign(p="1"))


def test_an_empty_result_keeps_the_types(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("age,sex\n")
    pd.DataFrame({"age": [1], "sex": ["F"]}).to_parquet(tmp_path / "x.parquet", index=False)
    frame = read_frame(resolve_source(None, "SELECT * FROM 'x.parquet' WHERE age > 5", folder=tmp_path))
    assert len(frame) == 0 and list(frame.columns) == ["age", "sex"] and frame["age"].dtype == np.int64
    header_only = read_frame(resolve_source("d", None, folder=tmp_path))
    assert len(header_only) == 0 and list(header_only.columns) == ["age", "sex"]


def test_truncated_csv_gz_is_named(tmp_path: Path) -> None:
    _csv_partitions(tmp_path, {"1": _frame(3, 0), "2": _frame(3000, 1)})
    victim = tmp_path / "d" / "month=2" / "part-0.csv.gz"
    victim.write_bytes(victim.read_bytes()[:-300])
    with pytest.raises(DataError, match="cannot read the data file") as info:
        read_frame(resolve_source("d", None, folder=tmp_path))
    assert info.value.where is not None and "month=2" in info.value.where


# ----------------------------------------------------------------------------------------------
# Queries


def test_query_over_files_relative_to_the_spec_folder(
    hive: tuple[Path, dict[str, pd.DataFrame]], tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, parts = hive
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    query = "SELECT age, sex, month FROM read_parquet('decisions/*/*.parquet', hive_partitioning = true) WHERE age >= 50 ORDER BY ALL;"
    source = resolve_source(None, query, folder=folder)
    assert (source.kind, source.format, source.partitions) == ("query", "duckdb", ())
    expected = _expected(parts)
    expected = expected[expected["age"] >= 50][["age", "sex", "month"]].sort_values(["age", "sex", "month"]).reset_index(drop=True)
    frame = read_frame(source)
    assert frame.equals(expected)
    batches = list(iter_batches(source, ["sex", "age"], 100))
    assert all(len(b.frame) <= 100 and b.partition == 0 for b in batches)
    assert pd.concat([b.frame for b in batches], ignore_index=True).equals(frame[["sex", "age"]])
    assert count_rows(source) == len(expected)
    assert schema(source) == {"age": "int64", "sex": "string", "month": "string"}


def test_query_against_a_duckdb_database(tmp_path: Path) -> None:
    import duckdb

    with duckdb.connect(str(tmp_path / "audit.duckdb")) as con:
        con.execute("CREATE TABLE decisions (age INTEGER, sex VARCHAR, score DOUBLE, paid DECIMAL(10, 2), kind ENUM('a', 'b'))")
        con.execute("INSERT INTO decisions SELECT i % 70, CASE WHEN i % 3 = 0 THEN 'F' ELSE 'M' END, i / 10, i / 4, 'b' FROM range(2500) t(i)")
    source = resolve_source("audit.duckdb", "SELECT * FROM decisions", folder=tmp_path)
    assert (source.format, source.database) == ("duckdb", tmp_path / "audit.duckdb")
    assert schema(source) == {"age": "int32", "sex": "string", "score": "double", "paid": "double", "kind": "string"}
    frame = read_frame(source)
    assert len(frame) == 2500 == count_rows(source)
    assert _concat(source, list(frame.columns), 999).equals(frame)
    assert frame["kind"].unique().tolist() == ["b"]


def _sqlite_db(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (age INTEGER, sex TEXT, score REAL, code)")
    rows = [(i % 50, "F" if i % 2 else "M", i / 7 if i % 11 else None, i if i % 5 else str(i)) for i in range(40)]
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def test_query_against_a_sqlite_database_is_streamed(tmp_path: Path) -> None:
    _sqlite_db(tmp_path / "audit.sqlite")
    source = resolve_source("audit.sqlite", "SELECT * FROM t WHERE age < 35;", folder=tmp_path)
    assert source.format == "sqlite"
    assert schema(source) == {"age": "int64", "sex": "string", "score": "double", "code": "string"}
    batches = list(iter_batches(source, ["sex", "score", "code"], 3))
    assert [len(b.frame) for b in batches] == [3] * 11 + [2]
    frame = read_frame(source)
    assert pd.concat([b.frame for b in batches], ignore_index=True).equals(frame[["sex", "score", "code"]])
    assert frame["score"].isna().sum() == 4  # rows 0, 11, 22, 33
    assert frame["code"].tolist()[:6] == ["0", "1", "2", "3", "4", "5"]
    assert count_rows(source) == 35
    assert distinct_values(source, "sex", 1) == ["F", "M"]


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        (None, "SELEKT 1", "the query failed"),
        (None, "SELECT * FROM read_parquet('nowhere/*.parquet')", "the query failed"),
        ("notes.txt", "SELECT 1", "not a DuckDB or SQLite database"),
        ("nope.duckdb", "SELECT 1", "not there"),
        ("audit.sqlite", "SELECT * FROM missing_table", "the query failed"),
    ],
)
def test_query_errors(tmp_path: Path, path: str | None, query: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("hello, this is text")
    _sqlite_db(tmp_path / "audit.sqlite")
    with pytest.raises(DataError, match=message):
        read_frame(resolve_source(path, query, folder=tmp_path))


def test_a_database_without_a_query(tmp_path: Path) -> None:
    _sqlite_db(tmp_path / "audit.db")
    with pytest.raises(DataError, match="needs data.query"):
        resolve_source("audit.db", None, folder=tmp_path)


def test_duckdb_is_imported_lazily() -> None:  # (pandas 3 imports pyarrow itself)
    import subprocess
    import sys

    code = "import sys, guardrail.scale.sources, guardrail.scale.pushdown; print('duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
