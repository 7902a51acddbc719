"""No network: an audit, a ``train`` and a small simulation stay on loopback (issue 20).

The in-process runs (audit, train) go under a socket guard that refuses and records any
connection, listener or name lookup beyond loopback. The simulation's work happens in
processes the guard cannot see (the simulation subprocess, Ray's GCS server, raylet,
agents and ClientApp workers), so their sockets are sampled from outside while it runs:
every listener, every connection's peer, and a connection attempt to every listening port
from this machine's own addresses beyond loopback; where ``strace`` may run, every
connect/bind/sendto/sendmsg syscall of the whole tree is checked too. The same for a plain
local Ray cluster started as :mod:`guardrail.scale.loopback` prescribes (what
scale-out work starts).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.network.sockets import TAG_ENV, NetworkBlocked, SocketGuard, TreeSampler, host_addresses
from tests.network.syscalls import beyond_loopback, calls, strace, traced

HOST_ADDRESSES = host_addresses()


# --- the instruments are not blind ------------------------------------------------------------


def test_the_guard_refuses_and_records_everything_beyond_loopback() -> None:
    original_connect = socket.socket.connect
    with SocketGuard() as guard:
        with socket.socket() as s, pytest.raises(NetworkBlocked):
            s.connect(("192.0.2.1", 9))
        with socket.socket(socket.AF_INET6) as s, pytest.raises(NetworkBlocked):
            s.connect_ex(("2001:db8::1", 9))
        with socket.socket() as s, pytest.raises(NetworkBlocked):
            s.bind(("", 0))  # a listener on every interface
        with socket.socket(type=socket.SOCK_DGRAM) as s, pytest.raises(NetworkBlocked):
            s.sendto(b"x", ("192.0.2.1", 53))
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("example.org", 443)
        # loopback passes
        with socket.socket() as server, socket.socket() as client:
            server.bind(("127.0.0.1", 0))
            server.listen()
            client.connect(server.getsockname())
        socket.getaddrinfo("localhost", 80)
        with socket.socket(socket.AF_UNIX) as s:
            s.bind("\0guardrail-network-test-" + uuid.uuid4().hex)  # abstract AF_UNIX: not IP
    assert [call for call, _ in guard.attempts] == ["connect", "connect_ex", "bind", "sendto", "getaddrinfo"]
    assert socket.socket.connect is original_connect  # restored


def _listen(bind: str, tag: str) -> subprocess.Popen[str]:
    code = f"import socket,sys; s=socket.socket(); s.bind(({bind!r}, 0)); s.listen(); print('up', flush=True); sys.stdin.read()"
    process = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, TAG_ENV: tag}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "up\n"
    return process


@pytest.mark.parametrize("bind", ["0.0.0.0", "127.0.0.1"])
def test_the_sampler_sees_a_listener_beyond_loopback_and_only_that(bind: str) -> None:
    tag = uuid.uuid4().hex
    process = _listen(bind, tag)
    try:
        with TreeSampler(tag) as sampler:
            assert sampler.wait_for(lambda s: bool(s.listeners), timeout=10)
    finally:
        process.communicate("", timeout=10)
    assert len(sampler.listeners) == 1
    found = sampler.beyond_loopback()
    if bind == "127.0.0.1":
        assert found == []
    else:
        assert found[0].startswith("python") and "listens on tcp 0.0.0.0:" in found[0]
        # the listener answers on this machine's own IPv4 addresses (where it has any)
        ipv4 = [address for family, address in HOST_ADDRESSES if family == socket.AF_INET]
        assert found[1:] == [f"python accepted a connection on {address}:{found[0].rsplit(':', 1)[1]}" for address in ipv4]


# --- an audit and a train: in process, under the guard -----------------------------------------

SPEC = """\
schema_version: 1
kind: audit
name: no-network
train:
  data: {dataset: heart_disease, holdout: 0.3}
  target: heart_disease
  features: [age, sex, max_heart_rate, st_depression, exercise_angina]
  model: {kind: mlp, hidden: [8]}
  epochs: 2
  batch_size: 64
  lr: 0.5
  seed: 3
  out: model
  device: cpu
  privacy:
    dp: {noise_multiplier: 1.0, delta: 1.0e-5, max_grad_norm: 1.0, accountant: rdp}
model: {adapter: torch, path: model}
data: {path: model/audit-data.csv.gz, target: heart_disease, sensitive: [sex]}
audits:
  - {id: fairness, use: fairness, params: {bootstrap: 50}}
  - {id: privacy, use: privacy, params: {membership_column: member, attacks: [loss]}}
report: {out: out, history: false}
"""


@pytest.mark.filterwarnings("ignore::UserWarning:opacus.*")
def test_an_audit_and_a_train_make_no_connection_beyond_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("opacus")
    import guardrail

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    tag = uuid.uuid4().hex
    monkeypatch.setenv(TAG_ENV, tag)  # any process they start carries it
    with TreeSampler(tag) as sampler, SocketGuard() as guard:
        run = guardrail.train(spec)
        record = guardrail.audit(spec, gate=False)
    assert run.result.private and (tmp_path / "out" / "run.json").is_file()
    assert {r.status for r in record.results} == {"ok"}  # nothing failed for want of the network
    assert guard.attempts == []
    assert sampler.beyond_loopback() == []


# --- a simulation and a local Ray cluster: seen from outside -----------------------------------
#
# Three instruments: the in-process guard (this process), the sampler (listeners, peers, and
# a connection attempt to every listening port from this machine's other addresses), and,
# where strace may run, every connect/bind/sendto/sendmsg syscall of the whole tree, which
# also catches sockets too short-lived to be sampled (Ray's cloud-metadata probes were).

RAY_SERVERS = {"gcs_server", "raylet"}


def _saw_ray(sampler: TreeSampler) -> bool:
    """Every kind of Ray process listening: the GCS server, the raylet and a worker (ray::…)."""
    names = {listener.process for listener in sampler.listeners}
    return RAY_SERVERS <= names and any(name.startswith("ray::") for name in names)


def _syscalls_beyond_loopback(log: Path) -> list[str]:
    if strace() is None:
        return []  # strace missing or not allowed here: the sampler's evidence stands alone
    assert calls(log), "strace recorded no IP socket call: the trace did not cover the run"
    return beyond_loopback(log)


@pytest.mark.federated
@pytest.mark.timeout(600)
def test_a_simulation_listens_and_connects_on_loopback_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from guardrail.run.federate import federate
    from tests.federation.conftest import write_spec

    tag = uuid.uuid4().hex
    monkeypatch.setenv(TAG_ENV, tag)
    log = tmp_path / "strace.log"
    if strace() is not None:  # trace the simulation subprocess and everything it starts
        popen = subprocess.Popen

        def traced_popen(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
            simulation = argv[1:3] == ["-m", "guardrail.federation.flower.simulate"]
            return popen(traced(argv, log) if simulation else argv, **kwargs)  # type: ignore[call-overload,no-any-return]

        monkeypatch.setattr(subprocess, "Popen", traced_popen)
    sampler = TreeSampler(tag)
    try:
        with SocketGuard() as guard, sampler:
            run = federate(write_spec(tmp_path, rounds=1))
    finally:
        left = sampler.members.kill()
    assert left == []  # the run stopped every process it started
    assert run.rounds_done == 1
    assert guard.attempts == []
    assert _saw_ray(sampler), sorted(sampler.listeners, key=str)  # not vacuous: the whole tree was seen
    assert sampler.beyond_loopback() == []
    assert _syscalls_beyond_loopback(log) == []


def _ray_env(tag: str, temp: str) -> dict[str, str]:
    from guardrail.federation.flower.simulate import HYGIENE
    from guardrail.scale.loopback import RAY_ENV

    return {**os.environ, **HYGIENE, **RAY_ENV, TAG_ENV: tag, "RAY_TMPDIR": temp}


DRIVER = textwrap.dedent(
    """
    import sys
    import ray
    from guardrail.scale.loopback import check_ray_stays_on_loopback, ray_init_args

    check_ray_stays_on_loopback()
    if sys.argv[1] == "init":
        ray.init(num_cpus=1, **ray_init_args())
    else:
        ray.init(address=sys.argv[1], _node_ip_address="127.0.0.1")

    @ray.remote
    class Worker:
        def ping(self):
            return "pong"

    worker = Worker.remote()
    assert ray.get(worker.ping.remote()) == "pong"
    print("up", flush=True)
    sys.stdin.read()  # until the test has seen the cluster
    ray.shutdown()
    """
)


def _start(argv: list[str], env: dict[str, str], log: Path, **kwargs: object) -> subprocess.Popen[str]:
    command = traced(argv, log) if strace() is not None else argv
    return subprocess.Popen(command, env=env, text=True, start_new_session=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("start", ["ray.init", "ray start --head"])
def test_a_local_ray_cluster_listens_and_connects_on_loopback_only(start: str, tmp_path: Path) -> None:
    """A one-node cluster started as :mod:`guardrail.scale.loopback` prescribes (for scale-out work)."""
    from guardrail.scale.loopback import ray_start_head_argv

    tag = uuid.uuid4().hex
    temp = tempfile.mkdtemp(dir="/tmp", prefix="rn")  # Ray's AF_UNIX paths stay short
    env = _ray_env(tag, temp)
    logs = [tmp_path / "head.strace", tmp_path / "driver.strace"]
    head = None
    sampler = TreeSampler(tag)
    try:
        with sampler:
            if start == "ray.init":
                address = "init"
            else:
                port = _free_port()
                argv = ray_start_head_argv()
                argv[0] = str(Path(sys.executable).with_name("ray"))
                head = _start([*argv, f"--port={port}", "--num-cpus=1", "--block"], env, logs[0])
                address = f"127.0.0.1:{port}"
            driver = _start([sys.executable, "-c", DRIVER, address], env, logs[1], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert driver.stdout is not None and driver.stdout.readline() == "up\n"
            seen = sampler.wait_for(_saw_ray, timeout=60)
            driver.communicate("", timeout=60)
    finally:
        sampler.members.kill()  # `ray start --block` leaves its cluster to whoever stops it
        if head is not None:
            head.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)
    assert seen, (sorted(sampler.listeners, key=str), sorted(sampler.processes))
    assert sampler.beyond_loopback() == []
    assert [line for log in logs if log.exists() for line in _syscalls_beyond_loopback(log)] == []
