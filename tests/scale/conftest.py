"""A real local Ray cluster for the Ray engine's tests: one node on loopback, one CPU.

Started as :mod:`guardrail.scale.loopback` prescribes (``ray start --head`` with
:data:`~guardrail.scale.loopback.RAY_ENV`), in its own short temp dir (Ray's AF_UNIX socket paths
must stay under 107 bytes), once per session. At teardown every process of the cluster is
stopped by id — those that carry the session's tag in their environment, their descendants, and
any process whose command line names the cluster's temp dir — never by name (``ray stop`` would
stop every Ray cluster of this user on the machine).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.network.sockets import TAG_ENV, Members

# Ray reads its multi-node switch once, when first imported: the Ray engine's driver runs in this
# process (it sets the rest of RAY_ENV itself, and refuses to start if Ray came first without it).
if "ray" not in sys.modules:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

HAS_RAY = importlib.util.find_spec("ray") is not None

START_TIMEOUT = 180
"""Seconds ``ray start`` may take on a loaded machine."""


@dataclass(frozen=True)
class RayCluster:
    address: str
    """``127.0.0.1:port`` of the head."""
    temp_dir: Path
    tag: str
    """The value of ``TAG_ENV`` in the environment of every process of the cluster."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cluster_processes(cluster: RayCluster, members: Members | None = None) -> list[psutil.Process]:
    """The live processes of ``cluster``: tagged ones and their descendants, and any naming its temp dir."""
    found = {p.pid: p for p in (members or Members(cluster.tag)).alive()}
    marker = str(cluster.temp_dir)
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and any(marker in part for part in process.cmdline()):
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.setdefault(process.pid, process)
        except (psutil.Error, OSError):
            continue
    return list(found.values())


def stop_cluster(cluster: RayCluster, members: Members) -> None:
    """SIGTERM, then SIGKILL, each process of ``cluster`` by id until none is left."""
    for attempt in range(20):
        alive = cluster_processes(cluster, members)
        if not alive:
            return
        for process in alive:
            try:
                process.terminate() if attempt == 0 else process.kill()
            except psutil.Error:
                continue
        psutil.wait_procs(alive, timeout=5 if attempt == 0 else 2)


@contextmanager
def local_cluster() -> Iterator[RayCluster]:
    """Start a one-node, one-CPU Ray cluster on loopback; stop every process of it at the end."""
    from guardrail.scale.loopback import RAY_ENV, ray_start_head_argv

    temp = Path(tempfile.mkdtemp(dir="/tmp", prefix="grs"))
    cluster = RayCluster(address=f"127.0.0.1:{free_port()}", temp_dir=temp, tag=uuid.uuid4().hex)
    members = Members(cluster.tag)
    argv = ray_start_head_argv()
    argv[0] = str(Path(sys.executable).with_name("ray"))
    argv += [f"--port={cluster.address.rsplit(':', 1)[1]}", "--num-cpus=1", f"--temp-dir={temp}"]
    env = {**os.environ, **RAY_ENV, "RAY_DISABLE_USAGE_STATS": "1", TAG_ENV: cluster.tag}
    try:
        started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
        members.alive()  # remember the cluster's processes
        assert started.returncode == 0, started.stdout + started.stderr
        yield cluster
    finally:
        stop_cluster(cluster, members)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A local cluster shared by the session's Ray tests."""
    if not HAS_RAY:
        pytest.skip("ray is not installed")
    with local_cluster() as cluster:
        yield cluster


def write_folder(root: Path, parts: dict[str, pd.DataFrame]) -> Path:
    """``parts`` (month → rows) as a hive-partitioned Parquet folder ``root/log/month=…/part-0.parquet``."""
    folder = root / "log"
    for month, frame in parts.items():
        (folder / f"month={month}").mkdir(parents=True)
        frame.to_parquet(folder / f"month={month}" / "part-0.parquet", index=False)
    return folder
