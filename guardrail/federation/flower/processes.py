"""Flower's Deployment Engine on this machine: the plan's commands as local processes.

:func:`run_local_deployment` runs the commands of :mod:`~guardrail.federation.flower.deployment`
on this machine (``--insecure``, free ports chosen at run time, every process with its own
``FLWR_HOME`` under ``<work>/deployment``, the environment of
:data:`~guardrail.federation.flower.simulate.HYGIENE`), waits for the ServerApp's ``result.json``
and, whatever happens, stops every process it started: first by process group, then every
process that inherited this run's marker variable (Flower starts its SuperExec and app
processes in sessions of their own).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardrail.core.errors import FederationError, MissingExtraError, UsageError
from guardrail.federation.flower.deployment import (
    APP_DIR,
    CLI_HOME,
    LOCAL_DIR,
    MARKER_ENV,
    NODE_ACTIVATED,
    STOP_GRACE,
    TLSFiles,
    run_argv,
    superlink_argv,
    supernode_argv,
    write_app,
    write_connection,
)
from guardrail.federation.flower.simulate import HYGIENE, last_error, log_lines
from guardrail.federation.job import JOB_FILE, RESULT_FILE, Job

ProgressFn = Callable[[str], None]

# -- a run on this machine -----------------------------------------------------------


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def run_local_deployment(
    job: Job, timeout: float, *, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Run the job on a SuperLink and one SuperNode per hospital on this machine; returns ``result.json``.

    The processes are those of :func:`commands` with ``--insecure`` on ``127.0.0.1`` and
    free ports chosen now; each has its own ``FLWR_HOME`` and log under
    ``<work>/deployment``. ``flwr run`` starts only once every SuperNode has joined (the
    ServerApp learns which node serves which hospital from the nodes present at its start).
    Every process started is stopped on return, on error and on timeout. The result
    carries ``deployment`` timings (seconds to start, seconds of ``flwr run``).

    Raises
    ------
    UsageError
        If the job file is missing.
    MissingExtraError
        If Flower's commands are not installed beside this interpreter or on ``PATH``.
    FederationError
        If a process exits early, no result is written (the ServerApp failed), or ``timeout`` seconds
        pass (the checkpoint of the last finished round is kept).
    """
    say = progress or (lambda _message: None)
    if not (job.work / JOB_FILE).is_file():
        raise UsageError("the job file is missing", where=str(job.work / JOB_FILE), hint="save the job first (Job.save)")
    (job.work / RESULT_FILE).unlink(missing_ok=True)
    started = time.monotonic()
    deadline = started + timeout
    folder = job.work / LOCAL_DIR
    app = write_app(job, folder / APP_DIR)
    nodes = len(job.hospital_names)
    link_port, *node_ports = _free_ports(nodes + 1)
    address = f"127.0.0.1:{link_port}"
    write_connection(folder / CLI_HOME, address, insecure=True)
    argv = _local_argv(app, nodes, link_port, node_ports)
    marker = uuid.uuid4().hex
    env = _environment(marker)
    if shutil.which(argv[0][0], path=env["PATH"]) is None:
        raise MissingExtraError("flwr", "federated")
    processes: list[_Process] = []
    try:
        say(f"starting a SuperLink on {address} and {nodes} SuperNodes (deployment engine, localhost, insecure)")
        link = _start("superlink", argv[0], env, folder, folder / "superlink-home")
        processes.append(link)
        _wait_for_port(link_port, link, deadline, timeout)
        for index in range(nodes):
            processes.append(_start(f"node-{index}", argv[1 + index], env, folder, folder / f"node-{index}-home"))
        _wait_for_nodes(link, nodes, processes, deadline, timeout)
        ready = time.monotonic()
        say(f"{nodes} SuperNodes joined after {ready - started:.1f} s; flwr run")
        runner = _start("flwr-run", argv[-1], env, folder, folder / CLI_HOME)
        processes.append(runner)
        code = _wait_for_exit(runner, processes, deadline, timeout)
        finished = time.monotonic()
        result = job.work / RESULT_FILE
        if not result.is_file():  # flwr run exits 0 even when the ServerApp fails: the result decides
            raise _failure(f"the deployment run wrote no result (flwr run exit code {code})", processes)
    finally:
        _stop(processes, marker)
    document: dict[str, Any] = json.loads(result.read_text())
    document["deployment"] = {
        "startup_seconds": ready - started,
        "run_seconds": finished - ready,
        "superlink": address,
        "supernode_ports": node_ports,
    }
    return document


def _local_argv(app: Path, nodes: int, link_port: int, node_ports: Sequence[int]) -> list[list[str]]:
    """The argument vectors of a localhost run: SuperLink, each SuperNode, ``flwr run`` (those of :func:`commands`)."""
    address = f"127.0.0.1:{link_port}"
    tls = TLSFiles()
    return [
        superlink_argv("127.0.0.1", link_port, insecure=True, tls=tls, supernode_auth=False),
        *(
            supernode_argv(address, node_ports[i], i, nodes, insecure=True, tls=tls, auth_key=None)
            for i in range(nodes)
        ),
        run_argv(app),
    ]


def _environment(marker: str) -> dict[str, str]:
    """This process's environment with the hygiene, the marker, and this interpreter's scripts first on PATH.

    Flower starts ``flower-superexec``, ``flwr-serverapp`` and ``flwr-clientapp`` by name, so the
    folder of this interpreter's console scripts must come first on ``PATH``.
    """
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {**os.environ, **HYGIENE, MARKER_ENV: marker, "PATH": f"{scripts}{os.pathsep}{path}" if path else scripts}


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on the loopback address (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _start(name: str, argv: list[str], env: dict[str, str], folder: Path, home: Path) -> _Process:
    home.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            argv,
            env={**env, "FLWR_HOME": str(home)},
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return _Process(name, popen, log_path)


def _check_alive(processes: Sequence[_Process]) -> None:
    for process in processes:
        code = process.popen.poll()
        if code is not None and process.name != "flwr-run":
            raise _failure(f"the {process.name} process exited early (exit code {code})", processes, first=process)


def _timed_out(timeout: float, processes: Sequence[_Process]) -> FederationError:
    return _failure(
        f"the federated deployment ran past its time limit of {timeout:g} s and was stopped",
        processes,
        hint="raise federate.timeout, or train fewer rounds; the checkpoint of the last finished round is kept "
        "(rerun with --resume)",
    )


def _wait_for_port(port: int, link: _Process, deadline: float, timeout: float) -> None:
    while time.monotonic() < deadline:
        _check_alive([link])
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise _timed_out(timeout, [link])


def _wait_for_nodes(link: _Process, nodes: int, processes: Sequence[_Process], deadline: float, timeout: float) -> None:
    while time.monotonic() < deadline:
        _check_alive(processes)
        if link.log.read_text(errors="replace").count(NODE_ACTIVATED) >= nodes:
            return
        time.sleep(0.2)
    raise _timed_out(timeout, processes)


def _wait_for_exit(runner: _Process, processes: Sequence[_Process], deadline: float, timeout: float) -> int:
    while True:
        code = runner.popen.poll()
        if code is not None:
            return code
        _check_alive(processes)
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, processes)
        time.sleep(0.5)


def _stop(processes: Sequence[_Process], marker: str) -> None:
    """Stop every process started (by process group), then every descendant carrying ``marker``."""
    for process in reversed(processes):
        _signal_group(process.popen, signal.SIGTERM)
    until = time.monotonic() + STOP_GRACE
    for process in reversed(processes):
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=max(0.1, until - time.monotonic()))
        if process.popen.poll() is None:
            _signal_group(process.popen, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=5)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = list(_marked(marker))
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        until = time.monotonic() + 5
        while left and time.monotonic() < until:
            time.sleep(0.1)
            left = list(_marked(marker))
        if not left:
            return


def _signal_group(popen: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


def _marked(marker: str) -> Iterator[int]:
    """Live processes whose environment carries ``MARKER_ENV=marker`` (Linux ``/proc``; nothing elsewhere)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                yield int(entry.name)
        except OSError:
            continue


def _failure(
    message: str, processes: Sequence[_Process], *, first: _Process | None = None, hint: str | None = None
) -> FederationError:
    ordered = [first] if first is not None else []
    ordered += [p for p in reversed(processes) if p is not first]
    tail, where = "", None
    for process in ordered:
        lines = log_lines(process.log)
        error = last_error(lines)
        if error or (first is not None and process is first and lines):
            tail, where = (error or lines[-1])[:300], str(process.log)
            break
    if where is None and ordered:
        where = str(ordered[0].log.parent)
    return FederationError(
        message + (f"; last error: {tail}" if tail else ""),
        where=where,
        hint=hint or "see the logs in the deployment folder; the checkpoint of the last finished round is kept "
        "(rerun with --resume)",
    )
