"""The audit history database: round trip, references, approvals, tamper and foreign-file
detection, and two writers at once."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from guardrail.core.errors import UsageError
from guardrail.core.types import RunRecord
from guardrail.history import HistoryStore, history_path
from tests.report.conftest import make_record


def _run(run_id: str, name: str = "credit") -> RunRecord:
    return dataclasses.replace(make_record(name=name), run_id=run_id)


def test_a_recorded_run_reads_back_equal_and_is_listed(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite") as store:
        store.add(_run("20240101T000000Z-aaaa"), 1)
        store.add(_run("20240102T000000Z-bbbb", name="other"), 0)
        assert store.get("20240101T000000Z-aaaa") == _run("20240101T000000Z-aaaa")
        runs = store.runs()
        assert [r.run_id for r in runs] == ["20240102T000000Z-bbbb", "20240101T000000Z-aaaa"]  # newest first
        assert [r.run_id for r in store.runs(name="credit")] == ["20240101T000000Z-aaaa"]
        first = runs[1]
        assert first.exit_code == 1 and first.model_sha256 == "c" * 64 and first.data_sha256 == "d" * 64
        assert first.failed_rules == 5  # make_record: two fails, two inconclusive, one error (any severity)
        assert store.integrity() == "ok"


def test_references_by_prefix_latest_and_approved(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite") as store:
        for run_id in ("20240101T000000Z-aaaa", "20240101T000000Z-abbb", "20240102T000000Z-cccc"):
            store.add(_run(run_id), 0)
        assert store.resolve("latest") == "20240102T000000Z-cccc"
        assert store.resolve("20240102") == "20240102T000000Z-cccc"
        with pytest.raises(UsageError, match="ambiguous"):
            store.resolve("20240101T000000Z-a")
        with pytest.raises(UsageError, match="no run '2023'"):
            store.resolve("2023")
        with pytest.raises(UsageError, match="no approved run"):
            store.resolve("approved")
        assert store.approved("credit") is None
        approved = store.approve("20240101T000000Z-ab", by="alice", note="REV-12")
        assert approved.record.run_id == "20240101T000000Z-abbb" and approved.approved_by == "alice"
        store.approve("20240101T000000Z-aaaa", by="bob")
        latest = store.approved("credit")
        assert latest is not None and latest.record.run_id == "20240101T000000Z-aaaa"  # the latest approval wins
        assert store.approved("another-spec") is None
        assert [r.approved for r in store.runs()] == [False, True, True]


def test_approval_needs_a_name(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite") as store:
        store.add(_run("r1"), 0)
        with pytest.raises(UsageError, match="who approves"):
            store.approve("r1", by="  ")


def test_a_failing_body_rolls_the_run_back(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite") as store:
        with pytest.raises(RuntimeError), store.recording(_run("r1"), 0):
            raise RuntimeError("the reports could not be written")
        assert store.runs() == []
        store.add(_run("r1"), 0)  # the id is free again
        with pytest.raises(UsageError, match="already in the history"):
            store.add(_run("r1"), 0)


def test_an_altered_record_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        store.add(_run("r1"), 1)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET record = replace(record, '\"exit_code\"', '\"exit_code\" ') WHERE run_id = 'r1'")
        db.execute("UPDATE runs SET record = replace(record, '0.6', '0.9')")
    with HistoryStore(path, create=False) as store, pytest.raises(UsageError, match="does not match its SHA-256"):
        store.get("r1")


def test_foreign_and_broken_files_are_refused_and_left_alone(tmp_path: Path) -> None:
    foreign = tmp_path / "app.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    before = foreign.read_bytes()
    with pytest.raises(UsageError, match="not a guardrail audit history"):
        HistoryStore(foreign)
    assert foreign.read_bytes() == before
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(UsageError, match="not a readable SQLite database"):
        HistoryStore(junk)
    with pytest.raises(UsageError, match="no audit history here"):
        HistoryStore(tmp_path / "missing.sqlite", create=False)


def test_history_path_accepts_a_folder(tmp_path: Path) -> None:
    assert history_path(tmp_path) == tmp_path / "history.sqlite"
    assert history_path(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"


def _writer(path: str, prefix: str, count: int, start: Any) -> None:
    with HistoryStore(path) as store:
        start.wait(timeout=60)  # both writers are connected; their writes may interleave in any order
        for i in range(count):
            store.add(_run(f"{prefix}-{i:03d}"), i % 3)
            time.sleep(0.002)  # like audits, writers pause between runs: the other one may get a turn


def test_two_concurrent_writers_both_land_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "h.sqlite")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writers = [context.Process(target=_writer, args=(path, prefix, 80, start)) for prefix in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0
    with HistoryStore(path, create=False) as store:
        assert store.integrity() == "ok"
        runs = store.runs()
        assert sorted(r.run_id for r in runs) == sorted(f"{p}-{i:03d}" for p in "ab" for i in range(80))
        for run in runs[::7]:
            assert store.get(run.run_id) == _run(run.run_id)
        with sqlite3.connect(path) as db:
            outcomes = db.execute("SELECT count(*) FROM outcomes").fetchone()[0]
            metrics = db.execute("SELECT count(DISTINCT run_id) FROM metrics").fetchone()[0]
        assert outcomes == 160 * len(_run("x").verdict.outcomes) and metrics == 160
    # Outcomes only, never the schedule: whether the OS interleaved the two writers is its business
    # (on a loaded machine one may finish before the other starts). Every run is whole either way.
