"""Interrupted runs: ``guardrail audit`` killed at random points leaves a report folder that
holds the complete previous report or the complete new one, and a readable history.

The invariant checked after every kill, for a folder ``out`` and its history ``h``:

* ``out/run.json`` passes ``guardrail verify`` (every report it lists matches), so the
  folder is all old or all new;
* ``h`` opens, passes SQLite's integrity check, and its newest run is the one
  ``out/run.json`` holds: the folder never shows a run the history lacks, and a run the
  history holds is the folder's unless a later one replaced it;
* a run that exited normally recorded a new run (one more in ``h``); a killed one recorded
  at most one;
* no staging folder, history under construction or ``.tmp`` file is left behind (after
  SIGTERM at once; after SIGKILL, once the next run has started).

Each audit is a real ``guardrail`` process: forked from a warm interpreter (so that dozens
of kills stay cheap) and running :func:`guardrail.cli.main`, or started as
``python -m guardrail``. Kill times are random, or the moment the staging folder appears.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardrail.core.atomic import TXN_PREFIX
from guardrail.history import HistoryStore
from guardrail.report import load_record
from guardrail.report.verify import verify
from tests.cli.test_exit_codes import _folder
from tests.conftest import REPO

FORKER = r"""
import json, os, signal, sys, warnings
warnings.simplefilter("ignore")
from guardrail.cli import main
import guardrail.core.atomic as atomic

warm = json.loads(sys.argv[1])
protocol = os.fdopen(os.dup(1), "w")
devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(devnull, 1); os.dup2(devnull, 2)
os.chdir(warm["cwd"])
main(warm["argv"])  # imports everything a run imports, once
print("ready", file=protocol, flush=True)


def die_at(name, at):
    real = getattr(atomic if name == "write" else os, "_write_file" if name == "write" else "replace")
    calls = []

    def hook(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    if name == "write":
        atomic._write_file = hook
    else:
        os.replace = hook


for line in sys.stdin:
    job = json.loads(line)
    pids = []
    for argv, log in zip(job["argvs"], job["logs"]):
        pid = os.fork()
        if pid == 0:
            code = 99
            try:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(devnull, 0); os.dup2(fd, 1); os.dup2(fd, 2)
                os.chdir(job["cwd"])
                if job.get("die_at"):
                    die_at(*job["die_at"])
                code = main(argv)
            finally:
                sys.stdout.flush(); sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    print(json.dumps({"pids": pids}), file=protocol, flush=True)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    print(json.dumps({"codes": codes}), file=protocol, flush=True)
"""


class Forker:
    """A warm interpreter that forks ``guardrail`` processes on request (see FORKER)."""

    def __init__(self, folder: Path) -> None:
        warm = folder / "warm"
        warm.mkdir()
        spec = _folder(warm, threshold=0.3)
        argv = ["audit", str(spec), "--quiet", "--history", str(warm / "h.sqlite")]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORKER, json.dumps({"cwd": str(warm), "argv": argv})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=folder, start_new_session=True,
        )
        self.buffer = b""
        assert self._line(timeout=300) == "ready"

    def start(self, argvs: list[list[str]], cwd: Path, logs: list[Path], die_at: tuple[str, int] | None = None) -> list[int]:
        job = {"argvs": argvs, "cwd": str(cwd), "logs": [str(log) for log in logs], "die_at": die_at}
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()
        line = self._line(timeout=120)
        assert line is not None
        return list(json.loads(line)["pids"])

    def finished(self, timeout: float) -> list[int] | None:
        """The exit codes of the last job, or None if it is still running after ``timeout``."""
        line = self._line(timeout=timeout, required=False)
        return None if line is None else list(json.loads(line)["codes"])

    def run(self, argvs: list[list[str]], cwd: Path, logs: list[Path], die_at: tuple[str, int] | None = None) -> list[int]:
        self.start(argvs, cwd, logs, die_at)
        codes = self.finished(timeout=300)
        assert codes is not None
        return codes

    def close(self) -> None:
        """End the forker; if it is stuck (a test failed mid-job), end it and its children."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc.stdout.close()

    def _line(self, *, timeout: float, required: bool = True) -> str | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                if required:
                    raise AssertionError("the forked guardrail process did not answer in time")
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError("the forker exited")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


@pytest.fixture(scope="module")
def forker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forker]:
    server = Forker(tmp_path_factory.mktemp("forker"))
    yield server
    server.close()


def _leftovers(*folders: Path) -> list[str]:
    found = []
    for folder in folders:
        if folder.is_dir():
            found += [
                str(p) for p in folder.iterdir() if p.name.startswith(TXN_PREFIX) or ".creating-" in p.name or p.name.endswith(".tmp")
            ]
    return found


def _check_invariant(out: Path, history: Path) -> str:
    """The invariant of the module docstring; returns the run id the folder holds."""
    record = load_record(out / "run.json")
    bad = [c for c in verify(record, out / "run.json") if c.status != "ok"]
    assert not bad, f"the report folder mixes two runs: {bad}"
    with HistoryStore(history, create=False) as store:
        assert store.integrity() == "ok"
        newest = store.runs(limit=1)[0].run_id
    assert newest == record.run_id, "the folder holds a run other than the history's newest"
    return record.run_id


def _runs(history: Path) -> int:
    with HistoryStore(history, create=False) as store:
        return len(store.runs())


def _kill_trials(forker: Forker, folder: Path, trials: int, seed: int) -> Counter[str]:
    """Audit, kill with SIGTERM at a random point or as the staging folder appears, check."""
    rng = random.Random(seed)
    spec = _folder(folder, threshold=0.3)
    out, history = folder / "out", folder / "out" / "history.sqlite"
    argv = ["audit", str(spec), "--quiet"]
    log = folder / "log.txt"
    assert forker.run([argv], folder, [log]) == [0], log.read_text()
    held = _check_invariant(out, history)
    started = time.monotonic()
    assert forker.run([argv], folder, [log]) == [0]
    duration = time.monotonic() - started
    held = _check_invariant(out, history)
    outcomes: Counter[str] = Counter()
    for trial in range(trials):
        runs_before = _runs(history)
        (pid,) = forker.start([argv], folder, [log])
        codes = None
        if trial % 2:  # while the reports are written: as soon as the staging folder exists
            while codes is None and not any(out.glob(TXN_PREFIX + "*")):
                codes = forker.finished(timeout=0.0002)
        else:
            codes = forker.finished(timeout=rng.uniform(0, 1.2 * duration))
        if codes is None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            codes = forker.finished(timeout=300)
        assert codes is not None
        (code,) = codes
        stderr = log.read_text()
        assert code in (0, 143, -signal.SIGTERM), (code, stderr)
        if code == 143:
            assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "interrupted (SIGTERM)", stderr
        assert _leftovers(out, folder) == [], "a SIGTERM leaves nothing behind"
        now = _check_invariant(out, history)
        added = _runs(history) - runs_before
        assert added == 1 if code == 0 else added in (0, 1)
        assert (now != held) == (added == 1), "a new report comes with a new history entry, and only then"
        kind = "exit 0" if code == 0 else ("killed before the handler" if code < 0 else "interrupted")
        outcomes[f"{kind}: {'new' if now != held else 'old'} report"] += 1
        held = now
    return outcomes


def test_sigterm_at_random_points_leaves_old_or_new_reports(forker: Forker, tmp_path: Path) -> None:
    outcomes = _kill_trials(forker, tmp_path, trials=24, seed=20)
    print(dict(outcomes))
    assert sum(outcomes.values()) == 24  # half of them as the staging folder appears


@pytest.mark.slow
def test_sigterm_at_many_random_points_leaves_old_or_new_reports(forker: Forker, tmp_path: Path) -> None:
    outcomes = _kill_trials(forker, tmp_path, trials=200, seed=21)
    print(dict(outcomes))
    interrupted = sum(n for kind, n in outcomes.items() if not kind.startswith("exit 0"))
    assert interrupted >= 20, outcomes


@pytest.mark.parametrize(
    "die_at",
    [("write", 1), ("write", 3), ("replace", 1), ("replace", 2), ("replace", 4), ("replace", 5)],
    ids=lambda d: f"{d[0]}-{d[1]}",
)
def test_sigkill_in_the_write_phase_is_finished_or_undone_by_the_next_run(
    forker: Forker, tmp_path: Path, die_at: tuple[str, int]
) -> None:
    """SIGKILL at a staged write or at a rename (the first rename marks the commit, after
    the history's): the next run puts the folder back in line with the history."""
    spec = _folder(tmp_path, threshold=0.3)
    out, history = tmp_path / "out", tmp_path / "out" / "history.sqlite"
    argv = ["audit", str(spec), "--quiet"]
    log = tmp_path / "log.txt"
    assert forker.run([argv], tmp_path, [log]) == [0]
    old = _check_invariant(out, history)
    assert forker.run([argv], tmp_path, [log], die_at=die_at) == [-signal.SIGKILL]
    committed = die_at[0] == "replace"  # the history committed just before the first rename
    assert _runs(history) == (2 if committed else 1)
    assert load_record(out / "run.json").run_id == old, "run.json is renamed last"
    assert forker.run([argv], tmp_path, [log]) == [0]  # the next run finishes or discards the killed one
    assert _leftovers(out) == []
    with HistoryStore(history, create=False) as store:
        assert store.integrity() == "ok" and len(store.runs()) == (3 if committed else 2)
    _check_invariant(out, history)


SLEEPER = '''
import sys, time
from guardrail.auditors.base import AuditorParams


class SleepingAuditor:
    name = "sleeper"
    extra = "none"
    Params = AuditorParams

    def __init__(self, params):
        self.params = params

    def run(self, ctx):
        print("sleeper: started", file=sys.stderr, flush=True)
        time.sleep(600)
'''


def test_sigterm_to_the_real_command_exits_143_with_one_line_and_keeps_the_old_report(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    (plugins / "sleep_plugin-1.0.dist-info").mkdir(parents=True)
    (plugins / "sleep_plugin.py").write_text(SLEEPER)
    (plugins / "sleep_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: sleep-plugin\nVersion: 1.0\n")
    (plugins / "sleep_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[guardrail.auditors]\nsleeper = sleep_plugin:SleepingAuditor\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{plugins}:{REPO}"}
    spec = _folder(tmp_path, threshold=0.3)
    first = subprocess.run([sys.executable, "-m", "guardrail", "audit", str(spec), "--quiet"], env=env, timeout=300, check=False)
    assert first.returncode == 0
    old = (tmp_path / "out" / "run.json").read_bytes()
    spec = tmp_path / "nap.yaml"  # the first spec stays as run.json records it
    spec.write_text((tmp_path / "spec.yaml").read_text().replace("policies:", "  - {id: nap, use: sleeper}\npolicies:"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardrail", "audit", str(spec)], env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # wait for the auditor to be running: no timing assumption
            lines.append(line)
            if line.startswith("sleeper: started"):
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143
    stderr = "".join(lines) + rest
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "interrupted (SIGTERM)", stderr
    assert (tmp_path / "out" / "run.json").read_bytes() == old
    assert _leftovers(tmp_path / "out") == []
    _check_invariant(tmp_path / "out", tmp_path / "out" / "history.sqlite")
