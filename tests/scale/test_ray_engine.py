"""The Ray engine on a real local cluster (one node on loopback): the streaming engine's answer.

The cluster (``tests/scale/conftest.py``) has one CPU, so its partitions run one after the
other in one Ray worker process; the partials still travel pickled and are merged in partition
order, which is what these tests check against :func:`~guardrail.scale.stream.stream_scan`:
count tables, score tables and the sample, identical (``array_equal``, ``equals``), with a
one-row partition beside a 5,000-row one and a group present in one partition only. A bad
partition is the reader's :class:`DataError`, a worker that dies once is retried to the same
answer, one that always dies is an :class:`EngineError`, and the cluster listens on loopback
only and leaves no process behind.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from guardrail.core.errors import DataError, EngineError
from guardrail.scale.stream import BatchOutcome, Partial, ScanPlan
from tests.network.sockets import TreeSampler, loopback
from tests.scale.conftest import HAS_RAY, RayCluster, cluster_processes, local_cluster, write_folder

pytest.importorskip("pyarrow")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.skipif(not HAS_RAY, reason="ray is not installed")]

PARTITIONS = {"2026-07": 1, "2026-08": 5_000, "2026-09": 999}
"""Rows per month: a one-row partition beside a large one; race "Other" is in September only."""

COLUMNS = ("sex", "race", "y_true", "y_pred", "score", "month")
PLAN = ScanPlan(
    columns=COLUMNS,
    feature_sets=(("sex",), ("race",), ("sex", "race")),
    n_cells=4,
    calibration_bins=(10,),
    strata=("sex", "race"),
    sample_capacity=40,
    seed=7,
    where="decisions",
)
BATCH_ROWS = 700


def decisions(seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    parts = {}
    for month, n in PARTITIONS.items():
        races = ["Black", "White", "Asian"] + (["Other"] if month == "2026-09" else [])
        score = np.round(rng.random(n), 3)
        parts[month] = pd.DataFrame(
            {
                "sex": rng.choice(["Female", "Male"], size=n),
                "race": rng.choice(races, size=n),
                "y_true": (rng.random(n) < score).astype(np.int64),
                "y_pred": (score >= 0.5).astype(np.int64),
                "score": score,
            }
        )
    return parts


def score(frame: pd.DataFrame) -> BatchOutcome:
    """Predictions only: the cell is 2·y_true + y_pred."""
    y_true = frame["y_true"].to_numpy(dtype=np.int64)
    return BatchOutcome(
        cells=2 * y_true + frame["y_pred"].to_numpy(dtype=np.int64), y_true=y_true.astype(bool), y_score=frame["score"].to_numpy()
    )


def dying_score(frame: pd.DataFrame, *, month: str, marker: str | None) -> BatchOutcome:
    """:func:`score`, but the worker process dies on ``month``'s rows: every time (``marker``
    None), or the first time only (then ``marker`` exists)."""
    if (frame["month"] == month).any():
        if marker is None:
            os._exit(1)
        if not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)
    return score(frame)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("ray"), decisions())


def source_of(folder: Path) -> object:
    from guardrail.scale.sources import resolve_source

    return resolve_source("log", None, folder=folder.parent)


def assert_same(ours: Partial, theirs: Partial) -> None:
    assert ours.rows == theirs.rows == sum(PARTITIONS.values())
    assert ours.partitions == theirs.partitions
    counts, expected = ours.counts.tables(), theirs.counts.tables()
    assert counts.keys() == expected.keys()
    for key, (grouping, table) in counts.items():
        other, table2 = expected[key]
        assert (grouping.labels, grouping.feature_values) == (other.labels, other.feature_values)
        assert np.array_equal(grouping.combos, other.combos)
        assert np.array_equal(table, table2)
    assert ours.scores is not None and theirs.scores is not None
    scores, expected_scores = ours.scores.tables(), theirs.scores.tables()
    assert scores.keys() == expected_scores.keys()
    for key, table in scores.items():
        assert np.array_equal(table.scores, expected_scores[key].scores)
        assert np.array_equal(table.counts, expected_scores[key].counts)
        assert table.histogram == expected_scores[key].histogram
    sample, info = ours.sample.draw(300, min_per_stratum=5)
    sample2, info2 = theirs.sample.draw(300, min_per_stratum=5)
    assert sample.equals(sample2)
    assert info == info2


def stream(folder: Path) -> Partial:
    from guardrail.scale.stream import stream_scan

    return stream_scan(source_of(folder), PLAN, score, batch_rows=BATCH_ROWS)  # type: ignore[arg-type]


def ray(folder: Path, cluster: RayCluster, score_batch: object = score, **kwargs: object) -> Partial:
    from guardrail.scale.ray_engine import ray_scan

    return ray_scan(
        source_of(folder),  # type: ignore[arg-type]
        PLAN,
        score_batch,  # type: ignore[arg-type]
        batch_rows=BATCH_ROWS,
        address=cluster.address,
        workers=kwargs.pop("workers", None),  # type: ignore[arg-type]
        progress=kwargs.pop("progress", None),  # type: ignore[arg-type]
    )


def test_ray_scan_equals_the_streaming_scan(folder: Path, ray_cluster: RayCluster) -> None:
    seen = []
    partial = ray(folder, ray_cluster, progress=seen.append)
    assert_same(partial, stream(folder))
    assert "Other" in {label for (grouping, _) in partial.counts.tables().values() for label in grouping.labels}
    assert [p.partitions_done for p in seen] == [1, 2, 3] and seen[-1].rows == partial.rows
    assert {p.partitions for p in seen} == {3} and seen[-1].total_rows == partial.rows


def test_a_partition_that_does_not_match_the_schema_is_the_readers_data_error(tmp_path: Path, ray_cluster: RayCluster) -> None:
    parts = decisions()
    parts["2026-09"] = parts["2026-09"].assign(y_true=parts["2026-09"]["y_true"].astype(str))
    folder = write_folder(tmp_path, parts)
    with pytest.raises(DataError) as streamed:
        stream(folder)
    with pytest.raises(DataError) as ours:
        ray(folder, ray_cluster)
    assert "schema mismatch" in str(ours.value) and "month=2026-09" in str(ours.value)
    assert str(ours.value) == str(streamed.value)
    assert ours.value.exit_code == 3


def test_a_worker_that_dies_once_is_retried_to_the_same_answer(folder: Path, tmp_path: Path, ray_cluster: RayCluster) -> None:
    marker = tmp_path / "died-once"
    partial = ray(folder, ray_cluster, functools.partial(dying_score, month="2026-08", marker=str(marker)))
    assert marker.exists()  # it did die
    assert_same(partial, stream(folder))


def test_a_worker_that_always_dies_is_an_engine_error_naming_its_partition(folder: Path, ray_cluster: RayCluster) -> None:
    from guardrail.scale.ray_engine import MAX_RETRIES, WORKER_DIED

    with pytest.raises(EngineError) as died:
        ray(folder, ray_cluster, functools.partial(dying_score, month="2026-08", marker=None))
    text = str(died.value)
    assert WORKER_DIED in text and "partition 1 " in text and "month=2026-08" in text and f"{MAX_RETRIES + 1} attempts" in text
    assert "month=2026-07" not in text and "month=2026-09" not in text
    assert died.value.exit_code == 2


def test_a_query_is_refused() -> None:
    from guardrail.scale.ray_engine import QUERY_REFUSED, ray_scan
    from guardrail.scale.sources import Source

    query = Source(kind="query", format="duckdb", partitions=(), where="data.query", query="select 1")
    with pytest.raises(DataError, match=QUERY_REFUSED):
        ray_scan(query, PLAN, score, batch_rows=10, address=None, workers=1, progress=None)


def test_the_cluster_listens_on_loopback_and_leaves_no_process(folder: Path) -> None:
    """A cluster of its own (the shared one must outlive this test), sampled while a scan runs
    on it — the driver (this process) too — then stopped as the fixture stops its cluster."""
    driver: set[str] = set()

    def listeners(_: object) -> None:
        for c in psutil.Process().net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                driver.add(c.laddr.ip)

    with local_cluster() as cluster:
        sampler = TreeSampler(cluster.tag)
        with sampler:
            assert_same(ray(folder, cluster, progress=listeners), stream(folder))
        assert sampler.listeners and driver, "no listener seen: the check would be vacuous"
        assert sampler.beyond_loopback() == [], sorted(sampler.listeners, key=str)
        assert all(loopback(ip) for ip in driver), driver
    assert cluster_processes(cluster) == []
    assert not cluster.temp_dir.exists()
