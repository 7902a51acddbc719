"""grouped_counts: one GROUP BY where the data lives equals pandas' groupby on read_frame."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.scale.pushdown import grouped_counts
from guardrail.scale.sources import HIVE_DEFAULT, Source, read_frame, resolve_source

pytest.importorskip("pyarrow")
pytest.importorskip("duckdb")


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], rows),
            "race": pd.Categorical(rng.choice(["a", "b", "c"], rows)),
            "label": rng.integers(0, 2, rows),
            "pred": rng.random(rows) < 0.4,
            "band": rng.choice([1.0, 2.5], rows),
        }
    )
    if rows > 10:
        frame.loc[::7, "sex"] = None  # missing sensitive values
        frame.loc[::5, "band"] = np.nan
        frame["pred"] = frame["pred"].astype(object)
        frame.loc[::11, "pred"] = None  # booleans with a missing value: object dtype
    return frame


def _parts() -> dict[str, pd.DataFrame]:
    parts = {"2026-07": _frame(1, 1), "2026-08": _frame(5000, 2), "2026-09": _frame(40, 3)}
    parts["2026-09"]["sex"] = "X"  # a group present in one partition only
    return parts


def _parquet(root: Path, parts: dict[str, pd.DataFrame]) -> None:
    for month, frame in parts.items():
        (root / f"month={month}").mkdir(parents=True)
        frame.to_parquet(root / f"month={month}" / "part-0.parquet", index=False)


def _csv(root: Path, parts: dict[str, pd.DataFrame]) -> None:
    for month, frame in parts.items():
        (root / f"month={month}").mkdir(parents=True)
        with gzip.open(root / f"month={month}" / "part-0.csv.gz", "wt") as handle:
            frame.to_csv(handle, index=False)


def _check(source: Source, keys: list[str]) -> pd.DataFrame:
    counts = grouped_counts(source, keys)
    frame = read_frame(source, keys)
    expected = frame.groupby(keys, dropna=False).size()
    assert list(counts.columns) == [*keys, "n"]
    assert counts["n"].dtype == np.int64
    for key in keys:
        assert counts[key].dtype == frame[key].dtype, key
    # pandas cannot sort some object keys (booleans with a missing value): compare in one order
    expected = expected.reset_index(name="n").sort_values(keys, na_position="last", kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(counts, expected)
    assert int(counts["n"].sum()) == len(frame)
    return counts


KEYS = [["sex"], ["month"], ["sex", "month"], ["sex", "race", "label", "pred"], ["month", "band", "pred"]]


@pytest.mark.parametrize("keys", KEYS)
def test_parquet_partitions(tmp_path: Path, keys: list[str]) -> None:
    _parquet(tmp_path / "d", _parts())
    counts = _check(resolve_source("d", None, folder=tmp_path), keys)
    if keys == ["sex", "month"]:
        assert counts[counts["sex"] == "X"]["month"].tolist() == ["2026-09"]


@pytest.mark.parametrize("keys", KEYS)
def test_csv_gz_partitions(tmp_path: Path, keys: list[str]) -> None:
    _csv(tmp_path / "d", _parts())
    _check(resolve_source("d", None, folder=tmp_path), keys)


def test_hive_default_partition_is_a_missing_key(tmp_path: Path) -> None:
    _parquet(tmp_path / "d", {"2026-07": _frame(20, 1), HIVE_DEFAULT: _frame(30, 2)})
    counts = _check(resolve_source("d", None, folder=tmp_path), ["month"])
    assert counts["month"].isna().tolist() == [False, True]
    assert counts["n"].tolist() == [20, 30]


def test_query_over_files(tmp_path: Path) -> None:
    _parquet(tmp_path / "d", _parts())
    query = "SELECT sex, label, pred, band FROM read_parquet('d/*/*.parquet') WHERE label = 1"
    _check(resolve_source(None, query, folder=tmp_path), ["sex", "label", "pred", "band"])


def test_duckdb_database(tmp_path: Path) -> None:
    import duckdb

    frame = _frame(3000, 4)
    with duckdb.connect(str(tmp_path / "a.duckdb")) as con:
        con.register("source", frame)
        con.execute("CREATE TABLE t AS SELECT * FROM source")
    _check(resolve_source("a.duckdb", "SELECT * FROM t", folder=tmp_path), ["sex", "race", "band", "pred"])


def test_sqlite_database(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "a.sqlite")
    con.execute("CREATE TABLE t (sex TEXT, label INTEGER, score REAL, code)")
    rng = np.random.default_rng(5)
    rows = [(None if i % 9 == 0 else str(rng.choice(["F", "M"])), int(rng.integers(0, 2)), None if i % 4 else 0.5, 1 if i % 2 else "1") for i in range(500)]
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    source = resolve_source("a.sqlite", "SELECT * FROM t", folder=tmp_path)
    _check(source, ["sex", "label", "score"])
    counts = _check(source, ["code"])  # SQLite parts 1 from '1'; as text they are one value
    assert counts["n"].tolist() == [500]


def test_schema_mismatch_is_the_streaming_error(tmp_path: Path) -> None:
    parts = _parts()
    parts["2026-09"]["label"] = parts["2026-09"]["label"].astype(float)
    _parquet(tmp_path / "d", parts)
    with pytest.raises(DataError, match="schema mismatch: column 'label' is double here but int64") as info:
        grouped_counts(resolve_source("d", None, folder=tmp_path), ["label"])
    assert info.value.where is not None and "month=2026-09" in info.value.where


def test_csv_parse_error_is_the_streaming_error(tmp_path: Path) -> None:
    parts = _parts()
    _csv(tmp_path / "d", parts)
    with gzip.open(tmp_path / "d" / "month=2026-09" / "part-0.csv.gz", "wt") as handle:
        handle.write("sex,race,label,pred,band\nF,a,maybe,True,1.0\n")
    with pytest.raises(DataError, match="'label' has the value 'maybe'") as info:
        grouped_counts(resolve_source("d", None, folder=tmp_path), ["label"])
    assert info.value.where is not None and "month=2026-09" in info.value.where


def test_a_key_named_like_the_count_column(tmp_path: Path) -> None:
    pd.DataFrame({"n": [1, 2]}).to_parquet(tmp_path / "x.parquet", index=False)
    with pytest.raises(DataError, match="named 'n'"):
        grouped_counts(resolve_source("x.parquet", None, folder=tmp_path), ["n"])
