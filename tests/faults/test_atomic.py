"""All-or-nothing writes (guardrail.core.atomic): interrupted at every step, hard-killed at
every rename, out of space, or given text that cannot be encoded, a folder holds the old
files or the complete new set, and nothing else stays behind."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guardrail.core import atomic
from guardrail.core.atomic import TXN_PREFIX, Witness, recover, staged_files, write_all_atomic
from guardrail.core.errors import UsageError

NAMES = ("report.html", "junit.xml", "summary.md", "run.json")


class Stop(BaseException):
    """What the test's SIGTERM handler raises (like guardrail's CLI, a BaseException)."""


@pytest.fixture
def sigterm_raises() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise Stop(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    yield
    signal.signal(signal.SIGTERM, previous)


def _files(folder: Path, tag: str) -> dict[Path, str]:
    return {folder / name: f"{tag} {name}\n" for name in NAMES}


def _state(folder: Path) -> str:
    """'old', 'new', 'absent', or 'mixed: ...' for the report files of ``folder``."""
    if not folder.exists():
        return "absent"
    tags = {(folder / name).read_text().split()[0] if (folder / name).exists() else "none" for name in NAMES}
    return tags.pop() if len(tags) == 1 else f"mixed: {sorted(tags)}"


def _leftovers(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


def test_a_write_replaces_every_file_keeps_modes_and_leaves_nothing_else(tmp_path: Path) -> None:
    write_all_atomic(_files(tmp_path, "old"))
    (tmp_path / "report.html").chmod(0o640)
    (tmp_path / "history.sqlite").write_text("someone else's file")
    written = write_all_atomic(_files(tmp_path, "new"))
    assert written == list(_files(tmp_path, "new"))
    assert _state(tmp_path) == "new" and _leftovers(tmp_path) == []
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "history.sqlite").read_text() == "someone else's file"


@pytest.mark.parametrize("at", range(len(NAMES)))
def test_a_signal_while_staging_changes_nothing_and_removes_what_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigterm_raises: None, at: int
) -> None:
    old = tmp_path / "old"
    write_all_atomic(_files(old, "old"))
    real = atomic._write_file
    calls = []

    def write(path: Path, payload: bytes, mode: int, **kwargs: object) -> None:
        calls.append(path)
        real(path, payload, mode, **kwargs)  # type: ignore[arg-type]
        if len(calls) == at + 1:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(atomic, "_write_file", write)
    fresh = tmp_path / "a" / "b"
    for folder in (old, fresh):
        calls.clear()
        with pytest.raises(Stop):
            write_all_atomic(_files(folder, "new"))
    assert _state(old) == "old" and _leftovers(old) == []
    assert not (tmp_path / "a").exists(), "the folders the write created are removed again"


def test_a_signal_while_committing_waits_until_every_file_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigterm_raises: None
) -> None:
    write_all_atomic(_files(tmp_path, "old"))
    real = os.replace
    calls = []

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(dst)
        if len(calls) == 2:  # after the commit mark, before the first report
            os.kill(os.getpid(), signal.SIGTERM)
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Stop):  # the handler runs, but only after the commit
        write_all_atomic(_files(tmp_path, "new"))
    assert len(calls) == 1 + len(NAMES)
    assert _state(tmp_path) == "new" and _leftovers(tmp_path) == []


def _die_at_rename(folder: str, at: int, witness_db: str | None) -> None:
    """Child process: write the new set, hard-killed (like SIGKILL) at rename number ``at``
    (with a witness also at -2: in its decision before the row; -1: before committing;
    0: right after the row is committed)."""
    real = os.replace
    calls = []

    def replace(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == at:
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst)

    os.replace = replace  # type: ignore[assignment]
    files = _files(Path(folder), "new")
    if witness_db is None:
        write_all_atomic(files)
        return

    def decide() -> None:  # the witness: a row committed in SQLite, like the audit history's
        if at == -2:
            os.kill(os.getpid(), signal.SIGKILL)
        with sqlite3.connect(witness_db) as db:
            db.execute("INSERT INTO runs VALUES ('new')")
        if at == 0:
            os.kill(os.getpid(), signal.SIGKILL)

    with staged_files(files) as staged:
        if at == -1:
            os.kill(os.getpid(), signal.SIGKILL)
        staged.commit(decide=decide, witness=Witness(witness_db, "SELECT 1 FROM runs WHERE id = 'new'"))


@pytest.mark.parametrize("witness", [False, True], ids=["plain", "witness"])
def test_a_hard_kill_at_any_step_is_finished_or_undone_by_the_next_write(tmp_path: Path, witness: bool) -> None:
    """SIGKILL cannot be held back: a write killed between two renames leaves its staged
    files, and the next write into the folder (or recover()) finishes it if it committed and
    discards it if not; the folder then holds one complete set."""
    context = multiprocessing.get_context("fork")
    last = len(NAMES) + 2  # renames: the commit mark, then each file; at ``last`` nothing is killed
    outcomes = {}
    for at in range(-2 if witness else 1, last + 1):
        folder = tmp_path / f"k{at}"
        write_all_atomic(_files(folder, "old"))
        db = None
        if witness:
            db = str(tmp_path / f"w{at}.sqlite")
            with sqlite3.connect(db) as con:
                con.execute("CREATE TABLE runs (id TEXT)")
        child = context.Process(target=_die_at_rename, args=(str(folder), at, db))
        child.start()
        child.join(timeout=120)
        assert child.exitcode == (0 if at == last else -signal.SIGKILL), (at, child.exitcode)
        if at >= 2 and at < last:
            assert _state(folder).startswith("mixed") or _state(folder) == "old"  # what recovery is for
        recover(folder)
        outcomes[at] = _state(folder)
        assert _leftovers(folder) == []
    # killed before the commit: the old set; from the commit on: the new set
    first_new = 0 if witness else 2
    assert outcomes == {at: "new" if at >= first_new else "old" for at in outcomes}


def test_stale_staging_is_discarded_and_a_committed_one_finished_before_the_next_write(tmp_path: Path) -> None:
    write_all_atomic(_files(tmp_path, "old"))
    half = tmp_path / f"{TXN_PREFIX}dead0001"  # killed while staging: no manifest
    half.mkdir()
    (half / "0").write_text("half a report")
    (tmp_path / ".report.html.a1b2c3d4.tmp").write_text("left by an older guardrail")
    (tmp_path / ".notes.tmp").write_text("not ours")
    recover(tmp_path)
    assert not half.exists() and _state(tmp_path) == "old"
    write_all_atomic(_files(tmp_path, "new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*NAMES, ".notes.tmp"])


def test_an_undecidable_interrupted_write_stops_the_next_one(tmp_path: Path) -> None:
    write_all_atomic(_files(tmp_path, "old"))
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 200)
    pending = tmp_path / f"{TXN_PREFIX}dead0002"
    pending.mkdir()
    (pending / "0").write_text("new report.html\n")
    witness = {"database": str(junk), "query": "SELECT 1 FROM runs", "args": []}
    (pending / atomic.PENDING).write_text(json.dumps({"targets": ["report.html"], "witness": witness}))
    with pytest.raises(UsageError, match="cannot tell whether an interrupted write committed"):
        write_all_atomic(_files(tmp_path, "new"))
    assert _state(tmp_path) == "old" and pending.exists()


@pytest.mark.parametrize("fail_at", [1, 3])
def test_a_full_disk_leaves_no_file_and_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    real = atomic._write_file
    calls = []

    def write(path: Path, payload: bytes, mode: int, **kwargs: object) -> None:
        calls.append(path)
        if len(calls) == fail_at:
            path.write_bytes(payload[:1])  # what a full disk leaves: part of a file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, payload, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic, "_write_file", write)
    with pytest.raises(UsageError, match="No space left on device"):
        write_all_atomic(_files(tmp_path / "out" / "deep", "new"))
    assert list(tmp_path.iterdir()) == []


def test_text_that_cannot_be_encoded_is_a_usage_error_before_anything_is_created(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot be encoded"):
        write_all_atomic({tmp_path / "out" / "run.json": "half a character: \udc80"})
    assert list(tmp_path.iterdir()) == []


def test_two_writers_into_one_folder_take_turns(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    children = [context.Process(target=_write_many, args=(str(tmp_path), tag, start)) for tag in "abcd"]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    assert _state(tmp_path) in set("abcd") and _leftovers(tmp_path) == []  # one writer's whole set


def _write_many(folder: str, tag: str, start: Any) -> None:
    start.wait(timeout=60)
    for _ in range(20):
        write_all_atomic(_files(Path(folder), tag))
