"""Flower's Deployment Engine: one SuperLink on the server, one SuperNode per hospital.

Real machines
    :func:`deployment_plan` prepares the job as ``guardrail federate`` does (job file and
    initial model in ``<out>/federation``), writes the Flower app (:func:`write_app`: a
    ``pyproject.toml`` that names guardrail's ServerApp and ClientApp and the job file) and
    the SuperLink connection that ``flwr run`` reads (:func:`write_connection`), and lists the
    commands to run on each machine (:func:`commands`): TLS by default, SuperNode
    authentication on request, ``--insecure`` only for trials on one machine.
Localhost
    :func:`run_local_deployment` runs those same commands on this machine (``--insecure``,
    free ports chosen at run time, every process with its own ``FLWR_HOME`` under
    ``<work>/deployment``, the environment of :data:`~guardrail.federation.simulate.HYGIENE`),
    waits for the ServerApp's ``result.json`` and, whatever happens, stops every process it
    started: first by process group, then every process that inherited this run's marker
    variable (Flower starts its SuperExec and app processes in sessions of their own).
    :func:`federate_deployment` is ``guardrail federate`` on this engine.

Under the Deployment Engine each message starts a fresh ClientApp process (imports of torch
and transformers included), so a round costs tens of seconds more than in simulation; the
node's ``context.state``, which holds its privacy history, persists across rounds all the
same. This module imports no Flower code: it drives Flower's command-line tools.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
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
from typing import TYPE_CHECKING, Any

from guardrail.core.atomic import write_atomic
from guardrail.errors import FederationError, MissingExtraError, UsageError
from guardrail.federation.job import JOB_FILE, RESULT_FILE, Job
from guardrail.federation.simulate import HYGIENE, last_error, log_lines

if TYPE_CHECKING:
    from guardrail.federate_runner import FederateRun, PreparedFederation

ProgressFn = Callable[[str], None]

APP_NAME = "guardrail-federation"
PUBLISHER = "guardrail"
SERVER_APP = "guardrail.federation.server_app:app"
CLIENT_APP = "guardrail.federation.client_app:app"
CONNECTION = "guardrail"
"""Name of the SuperLink connection in ``$FLWR_HOME/config.toml`` that ``flwr run`` uses."""
SUPERLINK_PORT = 8000
"""Flower's default port of the SuperLink (Fleet, Control and Runtime APIs share it)."""
SUPERNODE_PORT = 9094
"""Flower's default port of a SuperNode's own Runtime API (its ClientApp processes connect to it)."""
APP_DIR = "app"
CLI_HOME = "flwr-home"
LOCAL_DIR = "deployment"
"""Folder in the job's work folder for a localhost run: app, ``FLWR_HOME`` of every process, logs."""
FLOWER_ENV = {name: value for name, value in HYGIENE.items() if not name.startswith("RAY_")}
"""Environment of every Flower process: no telemetry, no update check, no runtime installs, no hub."""
MARKER_ENV = "GUARDRAIL_DEPLOYMENT_ID"
"""Set (to a fresh id) in the environment of every process a localhost run starts; descendants inherit it."""
NODE_ACTIVATED = "Activated node_id="
"""What the SuperLink logs when a SuperNode joins."""
STOP_GRACE = 10.0


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for TLS, as paths on the machine that reads them.

    ``certfile`` and ``keyfile`` are the SuperLink's certificate and key; the certificate
    must name the server (its DNS name or IP) and ``127.0.0.1``/``localhost`` among its
    subject alternative names, because the SuperLink's own ServerApp process connects back
    to it on the loopback address. ``ca_certfile`` is the CA that signed it: the SuperLink
    gets it as ``--ssl-ca-certfile``, each SuperNode as ``--root-certificates``, and the
    ``flwr`` connection as ``root-certificates``.
    """

    ca_certfile: str = "certificates/ca.crt"
    certfile: str = "certificates/server.pem"
    keyfile: str = "certificates/server.key"


@dataclass(frozen=True)
class Step:
    """One command and the machine it runs on."""

    machine: str
    command: str


@dataclass(frozen=True)
class DeploymentPlan:
    """What to run where for a federation across machines (see :func:`deployment_plan`)."""

    app: Path
    """The Flower app folder (only a ``pyproject.toml``); ``flwr run`` builds it into a bundle."""
    flwr_home: Path
    """``FLWR_HOME`` for ``flwr run``: its ``config.toml`` holds the ``guardrail`` connection."""
    job_folder: Path
    """``<out>/federation``: copy it to the same path on the server and on every hospital machine."""
    out: Path
    hospitals: tuple[str, ...]
    superlink: str
    """``host:port`` the SuperNodes and ``flwr run`` connect to."""
    steps: tuple[Step, ...]

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(step.command for step in self.steps)

    def text(self) -> str:
        """The steps as a shell-commented script, machine by machine."""
        lines = [
            f"# Federation of {len(self.hospitals)} hospitals over {self.superlink}.",
            f"# Copy {self.job_folder} to the same path on the server and on every hospital machine,",
            "# each with guardrail installed: pip install 'guardrail[federated]'.",
        ]
        for step in self.steps:
            lines += ["", f"# on {step.machine}", step.command]
        return "\n".join(lines) + "\n"


# -- the app and the connection ------------------------------------------------------


def write_app(prepared_or_job: PreparedFederation | Job, folder: str | os.PathLike[str]) -> Path:
    """Write the Flower app of a job into ``folder`` (created); returns the folder.

    The app is one ``pyproject.toml`` written by hand (``flwr new`` needs the network): its
    components are guardrail's ServerApp and ClientApp, installed on every machine, its run
    config ``job`` the absolute path of the job file, and it declares no dependencies —
    nothing is installed at run time (every Flower process runs with
    ``FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1``).

    >>> import tempfile, tomllib
    >>> job = Job(work_dir="/srv/guardrail/model/federation", hospital_names=("cleveland", "hungary"))
    >>> app = write_app(job, Path(tempfile.mkdtemp()) / "app")
    >>> config = tomllib.loads((app / "pyproject.toml").read_text())
    >>> config["tool"]["flwr"]["app"]["config"]["job"]
    '/srv/guardrail/model/federation/job.json'
    """
    from guardrail import __version__

    job = prepared_or_job if isinstance(prepared_or_job, Job) else prepared_or_job.job
    job_file = (job.work / JOB_FILE).absolute()
    text = "\n".join(
        [
            "# The Flower app of one guardrail federated job (guardrail.federation.deployment.write_app).",
            "# It ships no code: the ServerApp and ClientApp are guardrail's, installed on every machine",
            "# with `pip install 'guardrail[federated]'`; nothing is installed at run time.",
            "[project]",
            f"name = {_toml_string(APP_NAME)}",
            f"version = {_toml_string(__version__)}",
            f"description = {_toml_string('guardrail federated training: DP-SGD at every hospital, FedAvg/FedProx')}",
            'license = "Apache-2.0"',
            "dependencies = []",
            "",
            "[tool.flwr.app]",
            f"publisher = {_toml_string(PUBLISHER)}",
            "",
            "[tool.flwr.app.components]",
            f"serverapp = {_toml_string(SERVER_APP)}",
            f"clientapp = {_toml_string(CLIENT_APP)}",
            "",
            "[tool.flwr.app.config]",
            f"job = {_toml_string(str(job_file))}",
            "",
        ]
    )
    app = Path(folder)
    write_atomic(app / "pyproject.toml", text)
    return app


def write_connection(
    flwr_home: str | os.PathLike[str], address: str, *, insecure: bool = False, root_certificates: str | None = None
) -> Path:
    """Write ``$FLWR_HOME/config.toml`` with the ``guardrail`` SuperLink connection (the default); returns the file.

    ``flwr run APP guardrail`` reads the SuperLink's address from it. Flower 1.42 no longer
    reads ``[tool.flwr.federations]`` from the app's ``pyproject.toml`` (it migrates such a
    section into this file and comments it out of the app), so the app carries none.
    """
    lines = [
        "[superlink]",
        f"default = {_toml_string(CONNECTION)}",
        "",
        f"[superlink.{CONNECTION}]",
        f"address = {_toml_string(address)}",
    ]
    if insecure:
        lines.append("insecure = true")
    elif root_certificates is not None:
        lines.append(f"root-certificates = {_toml_string(root_certificates)}")
    return write_atomic(Path(flwr_home) / "config.toml", "\n".join(lines) + "\n")


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL is the one character JSON leaves raw)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


# -- the commands ----------------------------------------------------------------------


def _superlink_argv(bind: str, port: int, *, insecure: bool, tls: TLSFiles, supernode_auth: bool) -> list[str]:
    argv = ["flower-superlink", "--host", bind, "--port", str(port)]
    if insecure:
        argv.append("--insecure")
    else:
        argv += ["--ssl-ca-certfile", tls.ca_certfile, "--ssl-certfile", tls.certfile, "--ssl-keyfile", tls.keyfile]
    if supernode_auth:
        argv.append("--enable-supernode-auth")
    return [*argv, "--disable-runtime-dependency-installation"]


def _supernode_argv(
    superlink: str, port: int, index: int, nodes: int, *, insecure: bool, tls: TLSFiles, auth_key: str | None
) -> list[str]:
    argv = ["flower-supernode", "--superlink", superlink, "--port", str(port)]
    argv += ["--insecure"] if insecure else ["--root-certificates", tls.ca_certfile]
    if auth_key is not None:
        argv += ["--auth-supernode-private-key", auth_key]
    return [*argv, "--node-config", f"partition-id={index} num-partitions={nodes}"]


def _run_argv(app: str | os.PathLike[str]) -> list[str]:
    return ["flwr", "run", str(app), CONNECTION, "--stream"]


def _with_env(argv: Sequence[str], **extra: str) -> str:
    return shlex.join(["env", *(f"{k}={v}" for k, v in {**FLOWER_ENV, **extra}.items()), *argv])


def plan_steps(
    app: str | os.PathLike[str],
    hospitals: Sequence[str],
    *,
    host: str,
    port: int = SUPERLINK_PORT,
    flwr_home: str | os.PathLike[str] = f"~/.flwr-{CONNECTION}",
    insecure: bool = False,
    tls: TLSFiles | None = None,
    supernode_auth: bool = False,
    bind: str | None = None,
    node_ports: Sequence[int] | None = None,
) -> list[Step]:
    """:func:`commands` with the machine each command runs on."""
    if insecure and supernode_auth:
        raise UsageError(
            "SuperNode authentication needs TLS", hint="drop --insecure and give the certificates, or drop supernode_auth"
        )
    tls = tls or TLSFiles()
    nodes = len(hospitals)
    ports = list(node_ports) if node_ports is not None else [SUPERNODE_PORT] * nodes
    if len(ports) != nodes:
        raise UsageError(f"{len(ports)} node port(s) for {nodes} hospitals", hint="give one port per hospital")
    superlink = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    server = f"the server ({host})"
    home = str(flwr_home)
    steps = [
        Step(
            server,
            _with_env(
                _superlink_argv(
                    bind or ("127.0.0.1" if insecure else "0.0.0.0"), port, insecure=insecure, tls=tls, supernode_auth=supernode_auth
                )
            ),
        )
    ]
    keys = {name: f"keys/{name}" for name in hospitals} if supernode_auth else {}
    for name, key in keys.items():
        steps.append(Step(f"hospital {name}", shlex.join(["ssh-keygen", "-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", key])))
    for name, key in keys.items():
        steps.append(
            Step(
                f"{server}, after copying {key}.pub from hospital {name}",
                _with_env(["flwr", "supernode", "register", f"{key}.pub", CONNECTION], FLWR_HOME=home),
            )
        )
    for index, name in enumerate(hospitals):
        argv = _supernode_argv(superlink, ports[index], index, nodes, insecure=insecure, tls=tls, auth_key=keys.get(name))
        steps.append(Step(f"hospital {name} (partition {index})", _with_env(argv)))
    steps.append(Step(f"{server}, once every SuperNode is connected", _with_env(_run_argv(app), FLWR_HOME=home)))
    return steps


def commands(
    app: str | os.PathLike[str],
    hospitals: Sequence[str],
    *,
    host: str,
    port: int = SUPERLINK_PORT,
    flwr_home: str | os.PathLike[str] = f"~/.flwr-{CONNECTION}",
    insecure: bool = False,
    tls: TLSFiles | None = None,
    supernode_auth: bool = False,
    bind: str | None = None,
    node_ports: Sequence[int] | None = None,
) -> list[str]:
    """The shell commands that run a federation on real machines, in order.

    1. on the server: ``flower-superlink`` listening on ``bind:port`` (``0.0.0.0``, or
       ``127.0.0.1`` with ``insecure``) with the TLS files of ``tls`` and, with
       ``supernode_auth``, ``--enable-supernode-auth``;
    2. with ``supernode_auth`` only: an EC key pair made at each hospital (``ssh-keygen``)
       and its public key registered at the SuperLink (``flwr supernode register``);
    3. at each hospital (partition ``i`` serves ``hospitals[i]``): ``flower-supernode``
       connecting to ``host:port``, trusting ``tls.ca_certfile``;
    4. ``flwr run APP guardrail --stream`` with ``FLWR_HOME=flwr_home``, whose
       ``config.toml`` (:func:`write_connection`) names the SuperLink.

    Every Flower process runs under ``env`` with :data:`FLOWER_ENV`. ``insecure``
    (``--insecure``: plain HTTP, no TLS) is for trials on one machine only.

    >>> for line in commands("/srv/app", ["cleveland", "hungary"], host="127.0.0.1", port=9093,
    ...                      insecure=True, node_ports=[9101, 9102]):
    ...     print(line.split(" flower-")[-1].split(" flwr ")[-1])
    superlink --host 127.0.0.1 --port 9093 --insecure --disable-runtime-dependency-installation
    supernode --superlink 127.0.0.1:9093 --port 9101 --insecure --node-config 'partition-id=0 num-partitions=2'
    supernode --superlink 127.0.0.1:9093 --port 9102 --insecure --node-config 'partition-id=1 num-partitions=2'
    run /srv/app guardrail --stream
    """
    return [
        step.command
        for step in plan_steps(
            app,
            hospitals,
            host=host,
            port=port,
            flwr_home=flwr_home,
            insecure=insecure,
            tls=tls,
            supernode_auth=supernode_auth,
            bind=bind,
            node_ports=node_ports,
        )
    ]


def deployment_plan(
    spec_path: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    host: str | None = None,
    port: int = SUPERLINK_PORT,
    tls: TLSFiles | None = None,
    supernode_auth: bool = False,
    insecure: bool = False,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> DeploymentPlan:
    """Prepare the spec's federation for real machines: job, app, connection and commands.

    ``folder`` receives the app (``folder/app``) and the ``FLWR_HOME`` of ``flwr run``
    (``folder/flwr-home``, whose ``config.toml`` points at ``host:port``, trusting
    ``tls.ca_certfile`` made absolute). ``host`` is the name or address the hospitals
    reach the server by (default: this machine's fully qualified name, ``127.0.0.1`` with
    ``insecure``). Nothing is started.

    Raises
    ------
    SpecError, UsageError
        As :func:`guardrail.federate_runner.prepare`.
    """
    from guardrail.federate_runner import prepare

    prepared = prepare(Path(spec_path), resume=resume, progress=progress)
    job = prepared.job
    (job.work / RESULT_FILE).unlink(missing_ok=True)  # collect_deployment must read this run's result
    base = Path(folder).absolute()
    app = write_app(prepared, base / APP_DIR)
    tls = tls or TLSFiles()
    host = host or ("127.0.0.1" if insecure else socket.getfqdn())
    superlink = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    flwr_home = base / CLI_HOME
    write_connection(
        flwr_home, superlink, insecure=insecure, root_certificates=None if insecure else str(Path(tls.ca_certfile).absolute())
    )
    steps = plan_steps(
        app, job.hospital_names, host=host, port=port, flwr_home=flwr_home, insecure=insecure, tls=tls, supernode_auth=supernode_auth
    )
    return DeploymentPlan(app, flwr_home, job.work, prepared.out, job.hospital_names, superlink, tuple(steps))


# -- a run on this machine -----------------------------------------------------------


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def run_local_deployment(
    prepared: PreparedFederation | Job, timeout: float, *, progress: ProgressFn | None = None
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
    job = prepared if isinstance(prepared, Job) else prepared.job
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
        _superlink_argv("127.0.0.1", link_port, insecure=True, tls=tls, supernode_auth=False),
        *(
            _supernode_argv(address, node_ports[i], i, nodes, insecure=True, tls=tls, auth_key=None)
            for i in range(nodes)
        ),
        _run_argv(app),
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


# -- guardrail federate on this engine -----------------------------------------------


def federate_deployment(
    spec_path: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: ProgressFn | None = None,
    timeout: float | None = None,
) -> FederateRun:
    """``guardrail federate`` on Flower's Deployment Engine, every process on this machine.

    Prepares the job, runs it with :func:`run_local_deployment` (``timeout`` seconds, by
    default the spec's ``federate.timeout``) and writes the output folder with
    ``engine: deployment`` in ``federated.json``.

    Raises
    ------
    SpecError, UsageError
        As :func:`guardrail.federate_runner.prepare`.
    FederationError
        If the deployment fails or runs past its time limit.
    """
    from guardrail.federate_runner import finish, mark_engine, prepare

    say = progress or (lambda _message: None)
    prepared = prepare(Path(spec_path), resume=resume, progress=say)
    job = prepared.job
    mark_engine(job, "deployment")
    say(
        f"federated training on Flower's deployment engine: {len(job.hospital_names)} hospitals "
        f"({', '.join(job.hospital_names)}), {job.rounds} round(s)"
    )
    result = run_local_deployment(prepared, prepared.section.timeout if timeout is None else timeout, progress=say)
    say("writing the global model, ledgers and history")
    return finish(prepared, result, engine="deployment")


def collect_deployment(spec_path: str | os.PathLike[str], *, progress: ProgressFn | None = None) -> FederateRun:
    """Write the output folder of a run on real machines from the ServerApp's ``result.json``; run it on the server.

    After :func:`deployment_plan`'s commands have run, ``<out>/federation/result.json``
    holds the result; this turns it into the output folder (``engine: deployment``) as
    ``guardrail federate`` does. The job is reloaded with ``resume`` so that the initial
    model and the checkpoint are kept, and must be the spec's (else :class:`UsageError`).

    Raises
    ------
    FederationError
        If there is no result (the run has not finished, or its ServerApp failed).
    """
    from guardrail.federate_runner import finish, mark_engine, prepare

    say = progress or (lambda _message: None)
    prepared = prepare(Path(spec_path), resume=True, progress=say)
    result = prepared.job.work / RESULT_FILE
    if not result.is_file():
        raise FederationError(
            "there is no result of a deployment run to collect",
            where=str(result),
            hint="run the plan's commands first; the ServerApp writes the result when its last round ends",
        )
    say("writing the global model, ledgers and history")
    mark_engine(prepared.job, "deployment")
    return finish(prepared, json.loads(result.read_text()), engine="deployment")


__all__ = [
    "CONNECTION",
    "DeploymentPlan",
    "Step",
    "TLSFiles",
    "collect_deployment",
    "commands",
    "deployment_plan",
    "federate_deployment",
    "plan_steps",
    "run_local_deployment",
    "write_app",
    "write_connection",
]
