"""``guardrail federate`` on Flower's Deployment Engine: a plan for real machines, the same on
localhost, and collecting a run's output folder from its result.

:func:`deployment_plan` prepares the job as ``guardrail federate`` does (job file and initial
model in ``<out>/federation``) and writes the app, the connection and the commands
(:mod:`guardrail.federation.flower.deployment`); :func:`federate_deployment` runs them on this
machine (:mod:`guardrail.federation.flower.processes`); :func:`collect_deployment` writes the
output folder of a run on real machines.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

from guardrail.core.errors import FederationError
from guardrail.federation.flower.deployment import (
    APP_DIR,
    CLI_HOME,
    SUPERLINK_PORT,
    DeploymentPlan,
    TLSFiles,
    plan_steps,
    write_app,
    write_connection,
)
from guardrail.federation.flower.processes import run_local_deployment
from guardrail.federation.job import RESULT_FILE
from guardrail.run.federate import FederateRun, finish, mark_engine, prepare

ProgressFn = Callable[[str], None]


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
        As :func:`guardrail.run.federate.prepare`.
    """
    prepared = prepare(Path(spec_path), resume=resume, progress=progress)
    job = prepared.job
    (job.work / RESULT_FILE).unlink(missing_ok=True)  # collect_deployment must read this run's result
    base = Path(folder).absolute()
    app = write_app(job, base / APP_DIR)
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
        As :func:`guardrail.run.federate.prepare`.
    FederationError
        If the deployment fails or runs past its time limit.
    """
    say = progress or (lambda _message: None)
    prepared = prepare(Path(spec_path), resume=resume, progress=say)
    job = prepared.job
    mark_engine(job, "deployment")
    say(
        f"federated training on Flower's deployment engine: {len(job.hospital_names)} hospitals "
        f"({', '.join(job.hospital_names)}), {job.rounds} round(s)"
    )
    result = run_local_deployment(job, prepared.section.timeout if timeout is None else timeout, progress=say)
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


__all__ = ["collect_deployment", "deployment_plan", "federate_deployment"]
