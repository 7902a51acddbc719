"""Flower's Deployment Engine, planned: one SuperLink on the server, one SuperNode per hospital.

:func:`write_app` writes the Flower app (a ``pyproject.toml`` that names guardrail's ServerApp
and ClientApp and the job file), :func:`write_connection` the SuperLink connection that
``flwr run`` reads, and :func:`commands` / :func:`plan_steps` list the commands to run on each
machine: TLS by default, SuperNode authentication on request, ``--insecure`` only for trials
on one machine. :mod:`~guardrail.federation.flower.processes` runs those same commands on this
machine; :mod:`guardrail.run.deploy` prepares a spec's job for either.

Under the Deployment Engine each message starts a fresh ClientApp process (imports of torch
and transformers included), so a round costs tens of seconds more than in simulation; the
node's ``context.state``, which holds its privacy history, persists across rounds all the
same. This module imports no Flower code: it drives Flower's command-line tools.
"""
from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from guardrail.core.atomic import write_atomic
from guardrail.core.errors import UsageError
from guardrail.core.version import VERSION
from guardrail.federation.flower.simulate import HYGIENE
from guardrail.federation.job import JOB_FILE, Job

ProgressFn = Callable[[str], None]

APP_NAME = "guardrail-federation"
PUBLISHER = "guardrail"
SERVER_APP = "guardrail.federation.flower.server_app:app"
CLIENT_APP = "guardrail.federation.flower.client_app:app"
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


def write_app(job: Job, folder: str | os.PathLike[str]) -> Path:
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
    job_file = (job.work / JOB_FILE).absolute()
    text = "\n".join(
        [
            "# The Flower app of one guardrail federated job (guardrail.federation.flower.deployment.write_app).",
            "# It ships no code: the ServerApp and ClientApp are guardrail's, installed on every machine",
            "# with `pip install 'guardrail[federated]'`; nothing is installed at run time.",
            "[project]",
            f"name = {_toml_string(APP_NAME)}",
            f"version = {_toml_string(VERSION)}",
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


def superlink_argv(bind: str, port: int, *, insecure: bool, tls: TLSFiles, supernode_auth: bool) -> list[str]:
    argv = ["flower-superlink", "--host", bind, "--port", str(port)]
    if insecure:
        argv.append("--insecure")
    else:
        argv += ["--ssl-ca-certfile", tls.ca_certfile, "--ssl-certfile", tls.certfile, "--ssl-keyfile", tls.keyfile]
    if supernode_auth:
        argv.append("--enable-supernode-auth")
    return [*argv, "--disable-runtime-dependency-installation"]


def supernode_argv(
    superlink: str, port: int, index: int, nodes: int, *, insecure: bool, tls: TLSFiles, auth_key: str | None
) -> list[str]:
    argv = ["flower-supernode", "--superlink", superlink, "--port", str(port)]
    argv += ["--insecure"] if insecure else ["--root-certificates", tls.ca_certfile]
    if auth_key is not None:
        argv += ["--auth-supernode-private-key", auth_key]
    return [*argv, "--node-config", f"partition-id={index} num-partitions={nodes}"]


def run_argv(app: str | os.PathLike[str]) -> list[str]:
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
                superlink_argv(
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
        argv = supernode_argv(superlink, ports[index], index, nodes, insecure=insecure, tls=tls, auth_key=keys.get(name))
        steps.append(Step(f"hospital {name} (partition {index})", _with_env(argv)))
    steps.append(Step(f"{server}, once every SuperNode is connected", _with_env(run_argv(app), FLWR_HOME=home)))
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


__all__ = [
    "CONNECTION",
    "DeploymentPlan",
    "Step",
    "TLSFiles",
    "commands",
    "plan_steps",
    "write_app",
    "write_connection",
]
