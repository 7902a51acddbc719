"""Run a federated job on Flower's simulation engine (Ray), in a subprocess with a hard timeout.

A backend crash can leave Flower's ServerApp thread blocked for ever, so the simulation
never runs in the caller's process: :func:`run_simulation` starts ``python -m
guardrail.federation.flower.simulate JOB`` in its own session and kills the whole process group
(Ray's workers included) when the job's ``timeout`` passes.

Hygiene is set here, not left to the user: Flower telemetry and update checks off, Ray's
usage stats and dashboard off, no runtime dependency installation, and a short
``RAY_TMPDIR`` (Ray's AF_UNIX socket paths must stay under 107 bytes). Every process of
the run listens on ``127.0.0.1`` only, and the HTTP(S) requests Ray makes regardless (cloud
metadata probes) go to a proxy on loopback that refuses them
(:mod:`guardrail.scale.loopback`, checked before Ray starts).
Each client gets one CPU and, when CUDA is present, an equal share of the GPUs
(``num_gpus`` = GPUs / nodes, at most 1); asking Ray for a GPU on a host without one leaves
an empty actor pool and a hang, so ``num_gpus`` is 0 there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from guardrail.core.errors import FederationError, UsageError
from guardrail.federation.job import JOB_ENV, JOB_FILE, RESULT_FILE, Job
from guardrail.scale.loopback import RAY_ENV, check_ray_stays_on_loopback, ray_init_args

LOG_FILE = "simulation.log"
HYGIENE = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "RAY_DISABLE_USAGE_STATS": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
"""Environment every federated process runs with: nothing phones home."""


@dataclass(frozen=True)
class Resources:
    num_cpus: float
    num_gpus: float
    gpus_available: int


def client_resources(nodes: int, *, cuda_devices: int | None = None) -> Resources:
    """One CPU per client; a GPU share per client only when CUDA is present.

    >>> client_resources(4, cuda_devices=0)
    Resources(num_cpus=1.0, num_gpus=0.0, gpus_available=0)
    >>> client_resources(4, cuda_devices=1)
    Resources(num_cpus=1.0, num_gpus=0.25, gpus_available=1)
    """
    if cuda_devices is None:
        import torch

        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    share = min(1.0, cuda_devices / nodes) if cuda_devices else 0.0
    return Resources(1.0, share, cuda_devices)


def environment(job: Job, ray_tmp: str) -> dict[str, str]:
    env = {**os.environ, **HYGIENE, **RAY_ENV, JOB_ENV: str(job.work / JOB_FILE), "RAY_TMPDIR": ray_tmp}
    env["FLWR_HOME"] = str(job.work / "flwr-home")
    return env


def run_simulation(job: Job, timeout: float) -> Path:
    """Run the job's simulation to its end; returns the result file. Raises :class:`FederationError`."""
    if not (job.work / JOB_FILE).is_file():
        raise UsageError("the job file is missing", where=str(job.work / JOB_FILE), hint="save the job first (Job.save)")
    (job.work / RESULT_FILE).unlink(missing_ok=True)
    ray_tmp = tempfile.mkdtemp(dir="/tmp", prefix="gr")
    log_path = job.work / LOG_FILE
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "guardrail.federation.flower.simulate", str(job.work / JOB_FILE)],
                env=environment(job, ray_tmp),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise _error(
                    f"the federated simulation ran past its time limit of {timeout:g} s and was stopped",
                    log_path,
                    "raise federate.timeout, or train fewer rounds; the checkpoint of the last finished round is kept "
                    "(rerun with --resume)",
                ) from None
            _kill_group(process)  # Ray leaves helpers behind on some failures
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    result = job.work / RESULT_FILE
    if code != 0 or not result.is_file():
        raise _error(
            f"the federated simulation failed (exit code {code})",
            log_path,
            "see the log; the checkpoint of the last finished round is kept (rerun with --resume)",
        )
    return result


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue


ANSI = re.compile(r"\x1b\[[0-9;]*m")
PYTHON_ERROR = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b:")
"""A Python traceback's last line (``FileNotFoundError: ...``), the most telling line of a log."""
FLOWER_ERROR = re.compile(r"^(ERROR|CRITICAL)\b|\b(ERROR|CRITICAL)\s*:")
"""A Flower log line at level ERROR (not uvicorn's ``[uvicorn.error] INFO`` lines)."""


def log_lines(path: Path) -> list[str]:
    """The non-empty lines of a Flower/Ray log, colour codes removed (none when the log is missing)."""
    if not path.is_file():
        return []
    lines = (ANSI.sub("", line).strip() for line in path.read_text(errors="replace").splitlines())
    return [line for line in lines if line]


def last_error(lines: list[str]) -> str | None:
    """The last Python exception line of a log, else its last Flower ERROR line."""
    errors = [line for line in lines if PYTHON_ERROR.match(line)] or [line for line in lines if FLOWER_ERROR.search(line)]
    return errors[-1] if errors else None


def _error(message: str, log_path: Path, hint: str) -> FederationError:
    lines = log_lines(log_path)
    tail = (last_error(lines) or (lines[-1] if lines else ""))[:300]
    return FederationError(message + (f"; last error: {tail}" if tail else ""), where=str(log_path), hint=hint)


BackendConfig = dict[str, dict[str, float | int | str | bool]]


def backend_config(nodes: int, resources: Resources, *, cpus: int | None = None) -> BackendConfig:
    """Flower's backend config for ``nodes`` clients: what each client gets and ``ray.init``'s arguments.

    >>> config = backend_config(2, client_resources(2, cuda_devices=0), cpus=2)
    >>> config["client_resources"]
    {'num_cpus': 1.0, 'num_gpus': 0.0}
    >>> {k: v for k, v in config["init_args"].items() if "ip" in k or "dashboard" in k}
    {'_node_ip_address': '127.0.0.1', 'include_dashboard': False, 'dashboard_host': '127.0.0.1'}
    """
    import logging

    return {
        "client_resources": {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus},
        "init_args": {
            **ray_init_args(),
            "num_cpus": max(1, min(nodes, cpus or os.cpu_count() or 1)),
            "num_gpus": resources.gpus_available,
            "logging_level": logging.WARNING,
            "log_to_driver": True,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Subprocess entry: run the job in ``argv[0]`` on the simulation engine."""
    args = sys.argv[1:] if argv is None else argv
    job = Job.from_json(Path(args[0]).read_text())
    for name, value in HYGIENE.items():
        os.environ.setdefault(name, value)
    os.environ.update(RAY_ENV)  # before ray is imported: it reads the switch once
    os.environ[JOB_ENV] = args[0]
    check_ray_stays_on_loopback()

    from flwr.simulation import run_simulation as flower_simulation

    from guardrail.federation.flower.client_app import app as client_app
    from guardrail.federation.flower.server_app import app as server_app

    nodes = len(job.hospital_names)
    flower_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=nodes,
        backend_config=backend_config(nodes, client_resources(nodes)),  # type: ignore[arg-type]
    )
    return 0 if (job.work / RESULT_FILE).is_file() else 1


if __name__ == "__main__":
    raise SystemExit(main())
