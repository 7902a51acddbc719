"""Audits recording into one new history at once (issue 20, defect 2): every audit that says
it recorded its run has it in the history, the file exists, no audit is told the file is
"not a guardrail audit history", and an audit that fails never deletes the history."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import guardrail.history as history_package
from guardrail.core.errors import UsageError
from guardrail.history import HistoryStore
from guardrail.report import load_record
from guardrail.run.audit import run
from tests.cli.test_exit_codes import _folder
from tests.faults.test_interrupts import Forker, _leftovers


@pytest.fixture(scope="module")
def forker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forker]:
    server = Forker(tmp_path_factory.mktemp("forker"))
    yield server
    server.close()


@pytest.mark.parametrize("failure", ["reports", "history"])
def test_a_failing_audit_never_deletes_a_history_another_one_recorded_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """The deterministic form of the race: audit A finds no history, audit B creates it and
    records its run, then A fails (writing its reports, or recording). B's run must stay."""
    spec = _folder(tmp_path, threshold=0.3)
    history = tmp_path / "h.sqlite"
    other = run(spec, out=tmp_path / "b", history=history)
    failing = run(spec, out=tmp_path / "a", history=history)
    if failure == "history":  # A's run cannot be recorded: B's has its id
        failing = dataclasses.replace(failing, record=dataclasses.replace(failing.record, run_id=other.record.run_id))
    real = HistoryStore
    opened: list[bool] = []

    def history_store(*args: object, **kwargs: object) -> HistoryStore:
        if not opened:  # B records in the instant between A's start and A's own use of the history
            opened.append(True)
            other.publish(("html", "json"))
            if failure == "reports":  # and a folder is now in the way of A's report
                (tmp_path / "a" / "report.html").mkdir(parents=True)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(history_package, "HistoryStore", history_store)
    assert not history.exists()
    with pytest.raises(UsageError, match="a folder is in the way" if failure == "reports" else "already in the history"):
        failing.publish(("html", "json"))
    assert opened
    with real(history, create=False) as store:
        assert [r.run_id for r in store.runs()] == [other.record.run_id], "B's run survives A's failure"
    assert load_record(tmp_path / "b" / "run.json").run_id == other.record.run_id
    assert not (tmp_path / "a" / "run.json").exists(), "A wrote no report"


def _race(forker: Forker, folder: Path, trials: int, seed: int, *, failing: bool = False) -> None:
    rng = random.Random(seed)
    folder.mkdir(exist_ok=True)
    spec = _folder(folder, threshold=0.3)
    for trial in range(trials):
        history = folder / f"t{trial}" / "h.sqlite"
        n = rng.randint(2, 4)
        outs = [folder / f"t{trial}" / f"out{i}" for i in range(n)]
        history.parent.mkdir()
        if failing:  # the first audit cannot write its reports and fails (exit 3)
            (outs[0] / "report.html").mkdir(parents=True)
        argvs = [["audit", str(spec), "--out", str(out), "--history", str(history)] for out in outs]
        logs = [folder / f"t{trial}" / f"log{i}.txt" for i in range(n)]
        codes = forker.run(argvs, folder, logs)
        texts = [log.read_text() for log in logs]
        assert all("not a guardrail audit history" not in text for text in texts), texts
        expected = [3 if failing and i == 0 else 0 for i in range(n)]
        assert codes == expected, (trial, codes, texts)
        recorded = {load_record(out / "run.json").run_id for out, code in zip(outs, codes, strict=True) if code == 0}
        assert all("history: run recorded in" in text for text, code in zip(texts, codes, strict=True) if code == 0)
        assert history.is_file(), f"trial {trial}: the history is gone"
        with HistoryStore(history, create=False) as store:
            assert store.integrity() == "ok"
            assert {r.run_id for r in store.runs()} == recorded, trial
        assert _leftovers(history.parent, *outs) == []


def test_audits_starting_one_history_at_once_all_record(forker: Forker, tmp_path: Path) -> None:
    _race(forker, tmp_path, trials=8, seed=7)


def test_an_audit_failing_beside_others_on_a_new_history_deletes_nothing(forker: Forker, tmp_path: Path) -> None:
    _race(forker, tmp_path, trials=4, seed=8, failing=True)


@pytest.mark.slow
def test_audits_starting_one_history_at_once_all_record_many_times(forker: Forker, tmp_path: Path) -> None:
    _race(forker, tmp_path / "ok", trials=40, seed=9)
    _race(forker, tmp_path / "failing", trials=20, seed=10, failing=True)
