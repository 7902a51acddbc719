"""Ray is configured to listen on loopback only (issue 20, defect 1): the default-suite guard.

The simulation test in ``tests/network`` watches the sockets of a real run (``-m
federated``); these check, in a few seconds, the configuration that makes it so: the
arguments for ``ray.init``, the environment of the simulation subprocess, and that the
installed Ray keeps the node address ``127.0.0.1`` under that environment — without it,
Ray replaces ``127.0.0.1`` by the host's routable address and every server listens on all
interfaces (measured with Ray 2.55.1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guardrail.federation.flower.simulate import backend_config, client_resources, environment
from guardrail.federation.job import Job
from guardrail.scale.loopback import LOOPBACK, OFF_LOOPBACK, RAY_ENV, ray_init_args, ray_start_head_argv
from tests.network.sockets import host_addresses

BIND_OPTIONS = {"_node_ip_address": "127.0.0.1", "dashboard_host": "127.0.0.1"}


def test_every_bind_option_of_the_simulation_is_loopback() -> None:
    init_args = backend_config(4, client_resources(4, cuda_devices=0), cpus=2)["init_args"]
    assert {k: init_args[k] for k in BIND_OPTIONS} == BIND_OPTIONS
    assert init_args["include_dashboard"] is False
    assert ray_init_args() == {**BIND_OPTIONS, "include_dashboard": False}
    argv = ray_start_head_argv()
    assert {"--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1", "--include-dashboard=false"} <= set(argv)


def test_the_simulation_subprocess_runs_with_ray_multi_node_mode_off_and_http_sunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "1")  # a user's settings do not win
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    env = environment(Job(work_dir=str(tmp_path), hospital_names=("a", "b")), "/tmp/rt")
    assert {k: env[k] for k in RAY_ENV} == RAY_ENV
    assert RAY_ENV["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0" and RAY_ENV["HTTPS_PROXY"] == "http://127.0.0.1:1"


CHECK = """
from ray._private.services import resolve_ip_for_localhost
from guardrail.scale.loopback import check_ray_stays_on_loopback
print(resolve_ip_for_localhost("127.0.0.1"))
check_ray_stays_on_loopback()
"""


def _resolve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_ray_keeps_the_loopback_node_address_under_that_environment() -> None:
    pytest.importorskip("ray")
    base = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    kept = _resolve({**base, **RAY_ENV})
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.splitlines()[0] == LOOPBACK
    if not host_addresses():
        pytest.skip("no address beyond loopback here: Ray's default cannot show the trap")
    moved = _resolve(base)  # Ray's default on Linux: the node address leaves loopback, and the check refuses
    assert moved.stdout.splitlines()[0] != LOOPBACK
    assert moved.returncode != 0 and OFF_LOOPBACK in moved.stderr


PROBE = """
import json
from ray._common.usage.usage_lib import get_cloud_from_metadata_requests
from tests.network.sockets import SocketGuard

with SocketGuard() as guard:
    cloud = get_cloud_from_metadata_requests()  # what Ray's head runs at start, usage stats on or off
print(json.dumps({"cloud": cloud, "attempts": guard.attempts}))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    import json

    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_ray_cloud_metadata_probes_go_to_the_loopback_sinkhole() -> None:
    pytest.importorskip("ray")
    pytest.importorskip("requests")
    repo = str(Path(__file__).resolve().parents[2])
    proxies = {k for k in RAY_ENV if "proxy" in k.lower()}
    base = {k: v for k, v in os.environ.items() if k not in proxies} | {"PYTHONPATH": repo}
    # without the sinkhole the probes leave loopback (the guard refuses them here)
    bare = _probe(base)
    assert bare["cloud"] == "unknown"
    assert ["getaddrinfo", "169.254.169.254"] in bare["attempts"]  # type: ignore[operator]
    assert ["getaddrinfo", "metadata.google.internal"] in bare["attempts"]  # type: ignore[operator]
    # with it every probe is refused by the proxy on loopback: nothing else is even tried
    sunk = _probe({**base, **RAY_ENV})
    assert sunk == {"cloud": "unknown", "attempts": []}
