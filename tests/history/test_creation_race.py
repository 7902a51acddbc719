"""Several processes starting one history at once: every run that was recorded is in it,
the file exists, and none is told that it is "not a guardrail audit history". A run that
fails never deletes a history (another process may have recorded into it).

Outcomes are asserted, never schedules: the processes are released together by a barrier
and may then interleave in any order on a loaded machine."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import random
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from guardrail.core.errors import UsageError
from guardrail.core.types import RunRecord
from guardrail.history import HistoryStore
from guardrail.history.store import APPLICATION_ID
from tests.report.conftest import make_record


def _run(run_id: str) -> RunRecord:
    return dataclasses.replace(make_record(name="credit"), run_id=run_id)


def _record_one(path: str, run_id: str, start: Any, results: Any) -> None:
    start.wait(timeout=120)
    try:
        with HistoryStore(path) as store:
            store.add(_run(run_id), 0)
        results.put((run_id, "ok"))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put((run_id, f"{type(exc).__name__}: {exc}"))


def _trials(tmp_path: Path, trials: int, seed: int) -> None:
    rng = random.Random(seed)
    context = multiprocessing.get_context("fork")  # cheap: dozens of trials stay fast
    for trial in range(trials):
        folder = tmp_path / f"t{trial}" / "new" / "folder"  # the folders do not exist either
        path = str(folder / "h.sqlite")
        n = rng.randint(2, 4)
        start, results = context.Barrier(n), context.Queue()
        ids = [f"t{trial}-p{i}" for i in range(n)]
        procs = [context.Process(target=_record_one, args=(path, run_id, start, results)) for run_id in ids]
        for proc in procs:
            proc.start()
        outcomes = dict(results.get(timeout=300) for _ in procs)
        for proc in procs:
            proc.join(timeout=120)
        assert outcomes == dict.fromkeys(ids, "ok"), f"trial {trial}: {outcomes}"
        with HistoryStore(path, create=False) as store:
            assert store.integrity() == "ok"
            assert sorted(r.run_id for r in store.runs()) == sorted(ids), f"trial {trial}"
        assert sorted(os.listdir(folder)) == ["h.sqlite"], "nothing but the history is left"


def test_processes_creating_one_history_at_once_all_land(tmp_path: Path) -> None:
    _trials(tmp_path, trials=60, seed=2)  # the old three-statement check failed about 1 trial in 12


@pytest.mark.slow
def test_processes_creating_one_history_at_once_all_land_many_times(tmp_path: Path) -> None:
    _trials(tmp_path, trials=300, seed=3)


def test_an_empty_sqlite_file_gets_the_schema_once_under_the_write_lock(tmp_path: Path) -> None:
    """A history file that exists but is empty (``touch``, an older guardrail) is given the
    schema inside a write transaction that checks again, so concurrent openers agree."""
    context = multiprocessing.get_context("fork")
    for trial in range(10):
        path = tmp_path / f"empty{trial}.sqlite"
        path.touch()
        start, results = context.Barrier(3), context.Queue()
        procs = [context.Process(target=_record_one, args=(str(path), f"e{trial}-{i}", start, results)) for i in range(3)]
        for proc in procs:
            proc.start()
        outcomes = dict(results.get(timeout=300) for _ in procs)
        for proc in procs:
            proc.join(timeout=120)
        assert set(outcomes.values()) == {"ok"}, outcomes
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_a_history_that_cannot_be_created_leaves_no_file_and_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import guardrail.history.creation as creation_module

    def full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(creation_module, "create_schema", full)
    with pytest.raises(UsageError, match="cannot create the audit history"):
        HistoryStore(tmp_path / "a" / "b" / "h.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_a_new_history_is_never_seen_half_made(tmp_path: Path) -> None:
    """The path names a complete history from the moment it exists (it is linked into place)."""
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        assert store.runs() == []
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sorted(os.listdir(tmp_path)) == ["h.sqlite"]


def test_recording_can_commit_inside_its_body(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite") as store:
        witness = store.witness("r1")
        with pytest.raises(RuntimeError), store.recording(_run("r1"), 0) as commit:
            assert not witness.committed()
            commit()
            assert witness.committed()
            raise RuntimeError("after the commit: the run stays recorded")
        assert [r.run_id for r in store.runs()] == ["r1"]
        with pytest.raises(RuntimeError), store.recording(_run("r2"), 0):
            raise RuntimeError("before the commit: rolled back")
        assert [r.run_id for r in store.runs()] == ["r1"] and not store.witness("r2").committed()
