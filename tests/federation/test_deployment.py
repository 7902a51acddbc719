"""Flower's Deployment Engine: the app and commands (fast), and real runs on localhost (marked federated).

The federated tests start a SuperLink and two SuperNodes on this machine. Each message
starts a fresh ClientApp process there (≈ 5 s of imports), so 2 hospitals × 2 rounds take
≈ 100 s on 2 cores; the simulation engine trains the same spec as the oracle for ε.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from guardrail.core.errors import FederationError, UsageError
from guardrail.federation.flower.deployment import (
    CLIENT_APP,
    CONNECTION,
    MARKER_ENV,
    SERVER_APP,
    TLSFiles,
    commands,
    plan_steps,
    write_app,
    write_connection,
)
from guardrail.federation.flower.processes import _marked, _Process, _stop
from guardrail.federation.job import JOB_FILE, Job
from tests.federation.conftest import write_spec

HOSPITALS = ("cleveland", "hungary")
FLOWER_PROGRAMS = ("flower-superlink", "flower-supernode", "flower-superexec", "flwr-serverapp", "flwr-clientapp")


def _job(tmp_path: Path) -> Job:
    return Job(work_dir=str(tmp_path / "model" / "federation"), hospital_names=HOSPITALS)


# -- the app, the connection and the commands (no Flower process) ------------------------


def test_write_app_names_our_components_and_the_job(tmp_path: Path) -> None:
    job = _job(tmp_path)
    app = write_app(job, tmp_path / "app")
    config = tomllib.loads((app / "pyproject.toml").read_text())
    flwr_app = config["tool"]["flwr"]["app"]
    assert flwr_app["components"] == {"serverapp": SERVER_APP, "clientapp": CLIENT_APP}
    assert flwr_app["config"] == {"job": str(tmp_path / "model" / "federation" / JOB_FILE)}
    assert Path(flwr_app["config"]["job"]).is_absolute()
    assert config["project"]["dependencies"] == []  # nothing to install at run time
    assert "federations" not in config["tool"]["flwr"]  # flwr 1.42 would migrate it out of the app
    assert [p.name for p in app.iterdir()] == ["pyproject.toml"]  # the bundle ships no code


def test_write_app_passes_flowers_own_validation(tmp_path: Path) -> None:
    config_utils = pytest.importorskip("flwr.cli.config_utils")
    app = write_app(_job(tmp_path), tmp_path / "app")
    config, warnings = config_utils.load_and_validate(app / "pyproject.toml")  # checks the modules exist too
    assert warnings == []
    assert config["tool"]["flwr"]["app"]["publisher"] == "guardrail"


def test_write_app_escapes_the_job_path(tmp_path: Path) -> None:
    odd = tmp_path / 'a "quoted" \\ folder'
    app = write_app(Job(work_dir=str(odd), hospital_names=HOSPITALS), tmp_path / "app")
    assert tomllib.loads((app / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]["job"] == str(odd / JOB_FILE)


def test_connection_is_what_flwr_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flower_config = pytest.importorskip("flwr.cli.flower_config")
    home = tmp_path / "flwr-home"
    write_connection(home, "superlink.example.org:8000", root_certificates="/etc/guardrail/ca.crt")
    monkeypatch.setenv("FLWR_HOME", str(home))
    connection = flower_config.read_superlink_connection(None)  # the default one
    assert connection.name == CONNECTION
    assert connection.address == "superlink.example.org:8000"
    assert connection.root_certificates == "/etc/guardrail/ca.crt" and connection.insecure is False
    write_connection(home, "127.0.0.1:9093", insecure=True)
    assert flower_config.read_superlink_connection(CONNECTION).insecure is True


def test_commands_name_ports_partitions_and_tls(tmp_path: Path) -> None:
    lines = commands(tmp_path / "app", HOSPITALS, host="fl.example.org", port=9443, flwr_home="/srv/flwr-home")
    superlink, *nodes, run = lines
    assert "flower-superlink --host 0.0.0.0 --port 9443" in superlink
    assert "--ssl-ca-certfile certificates/ca.crt --ssl-certfile certificates/server.pem --ssl-keyfile certificates/server.key" in superlink
    assert "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1" in superlink and "--disable-runtime-dependency-installation" in superlink
    assert len(nodes) == 2
    for index, line in enumerate(nodes):
        assert "flower-supernode --superlink fl.example.org:9443" in line
        assert "--root-certificates certificates/ca.crt" in line
        assert f"'partition-id={index} num-partitions=2'" in line
        assert "FLWR_TELEMETRY_ENABLED=0" in line
    assert run.endswith(f"FLWR_HOME=/srv/flwr-home flwr run {tmp_path / 'app'} {CONNECTION} --stream")
    assert not any("--insecure" in line for line in lines)


def test_insecure_commands_are_for_one_machine(tmp_path: Path) -> None:
    lines = commands(tmp_path / "app", HOSPITALS, host="127.0.0.1", port=9093, insecure=True, node_ports=[9101, 9102])
    assert "--host 127.0.0.1 --port 9093 --insecure" in lines[0]
    assert "--port 9101 --insecure" in lines[1] and "--port 9102 --insecure" in lines[2]
    assert not any("--ssl-" in line or "--root-certificates" in line for line in lines)
    with pytest.raises(UsageError, match="needs TLS"):
        commands(tmp_path / "app", HOSPITALS, host="127.0.0.1", insecure=True, supernode_auth=True)
    with pytest.raises(UsageError, match="node port"):
        commands(tmp_path / "app", HOSPITALS, host="127.0.0.1", node_ports=[9101])


def test_supernode_auth_registers_every_hospital_key(tmp_path: Path) -> None:
    tls = TLSFiles(ca_certfile="/pki/ca.crt", certfile="/pki/link.pem", keyfile="/pki/link.key")
    steps = plan_steps(tmp_path / "app", HOSPITALS, host="fl.example.org", tls=tls, supernode_auth=True)
    text = [step.command for step in steps]
    assert "--enable-supernode-auth" in text[0] and "--ssl-certfile /pki/link.pem" in text[0]
    for name in HOSPITALS:
        assert any(f"ssh-keygen -q -t ecdsa -b 384 -N '' -f keys/{name}" == line for line in text)
        assert any(f"flwr supernode register keys/{name}.pub {CONNECTION}" in line for line in text)
        (node,) = [s.command for s in steps if s.machine.startswith(f"hospital {name} (partition")]
        assert f"--auth-supernode-private-key keys/{name}" in node and "--root-certificates /pki/ca.crt" in node
    # keys are made and registered before any SuperNode starts
    first_node = next(i for i, s in enumerate(steps) if "flower-supernode" in s.command)
    assert all("flower-supernode" not in s.command for s in steps[:first_node]) and "register" in text[first_node - 1]


def test_stop_ends_descendants_in_other_sessions(tmp_path: Path) -> None:
    """A child in a session of its own (as Flower starts its SuperExec) is found by the marker and ended."""
    marker = f"test-{os.getpid()}-{time.monotonic_ns()}"
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    log = tmp_path / "parent.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-c", script], env={**os.environ, MARKER_ENV: marker}, start_new_session=True, stdout=out
        )
    for _ in range(100):
        if pid_file.is_file() and pid_file.read_text():
            break
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    assert set(_marked(marker)) == {popen.pid, grandchild}
    _stop([_Process("parent", popen, log)], marker)
    assert popen.poll() is not None
    assert list(_marked(marker)) == []
    assert _state(grandchild) in ("Z", "gone")  # dead; init reaps the orphan


def _state(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


# -- real runs on localhost -----------------------------------------------------------


def _flower_processes_under(folder: Path) -> list[str]:
    """Live Flower processes whose FLWR_HOME lies in ``folder`` (other people's runs on this machine are left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        homes = [e.split(b"=", 1)[1].decode(errors="replace") for e in environ if e.startswith(b"FLWR_HOME=")]
        if any(p in command for p in FLOWER_PROGRAMS) and any(h.startswith(str(folder)) for h in homes):
            found.append(f"{entry.name}: {command}")
    return found


def _nothing_listens_on(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same spec trained on the deployment engine (2 hospitals × 2 rounds) and on the simulation engine."""
    from guardrail.run.deploy import federate_deployment
    from guardrail.run.federate import federate

    messages: list[str] = []
    spec = write_spec(tmp_path_factory.mktemp("deployment"))
    run = federate_deployment(spec, progress=messages.append)
    simulation = federate(write_spec(tmp_path_factory.mktemp("simulation")))
    return {"run": run, "simulation": simulation, "spec": spec, "messages": messages}


def _history(run: Any) -> dict[str, Any]:
    return dict(json.loads(run.federated_file.read_text()))


@pytest.mark.federated
@pytest.mark.timeout(600)
def test_deployment_trains_every_hospital_every_round(deployed: dict[str, Any]) -> None:
    history = _history(deployed["run"])
    assert history["engine"] == "deployment"
    assert history["rounds_done"] == 2 and history["stopped_reason"] is None
    for entry in history["rounds"]:
        assert entry["aggregated"] is True
        for name in HOSPITALS:
            assert entry["hospitals"][name]["status"] == "ok", entry["hospitals"][name]
    assert {h.name: h.status for h in deployed["run"].hospitals} == dict.fromkeys(HOSPITALS, "ok")
    assert any("SuperNodes joined" in m for m in deployed["messages"])


@pytest.mark.federated
@pytest.mark.timeout(600)
def test_node_state_keeps_the_privacy_history_across_rounds(deployed: dict[str, Any]) -> None:
    """Each round's ClientApp is a new process; the spend history lives in the node's context.state."""
    history = _history(deployed["run"])
    for hospital in history["hospitals"]:
        record = hospital["history"]
        assert record["round"] == [1, 2]  # one spend per round, none lost, none repeated
        assert len(record["noise_multiplier"]) == len(record["sample_rate"]) == len(record["steps"]) == 2
        by_round = [hospital["epsilon_by_round"][r] for r in ("1", "2")]
        assert 0 < by_round[0] < by_round[1]


@pytest.mark.federated
@pytest.mark.timeout(600)
def test_epsilon_equals_the_simulation_engines(deployed: dict[str, Any]) -> None:
    from guardrail.federation.ledgers import epsilon_by_round

    deployment, simulation = _history(deployed["run"]), _history(deployed["simulation"])
    simulated = {h["name"]: h for h in simulation["hospitals"]}
    for hospital in deployment["hospitals"]:
        other = simulated[hospital["name"]]
        assert hospital["history"] == other["history"]  # the same (σ, q, steps) in every round
        mine = epsilon_by_round(hospital["history"], deployment["delta"])
        assert mine == epsilon_by_round(other["history"], simulation["delta"])
        assert {str(r): e for r, e in mine.items()} == hospital["epsilon_by_round"] == other["epsilon_by_round"]
    assert deployment["epsilon_max"] == simulation["epsilon_max"]


@pytest.mark.federated
@pytest.mark.timeout(600)
def test_no_flower_process_is_left(deployed: dict[str, Any]) -> None:
    folder = deployed["run"].out / "federation" / "deployment"
    assert _flower_processes_under(folder) == []
    log = (folder / "superlink.log").read_text(errors="replace")
    (port,) = {int(p) for p in re.findall(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log)}
    assert _nothing_listens_on(port)


@pytest.mark.federated
@pytest.mark.timeout(600)
def test_collect_rewrites_the_output_from_the_result(deployed: dict[str, Any]) -> None:
    """What a run on real machines ends with: the output folder from the server's result.json."""
    from guardrail.run.deploy import collect_deployment

    before = _history(deployed["run"])
    collected = collect_deployment(deployed["spec"])
    after = _history(collected)
    assert after["engine"] == "deployment"
    for key in ("rounds", "rounds_done", "hospitals", "epsilon_max"):
        assert after[key] == before[key], key


@pytest.fixture(scope="module")
def small_job(tmp_path_factory: pytest.TempPathFactory) -> Job:
    from guardrail.run.federate import prepare

    return prepare(write_spec(tmp_path_factory.mktemp("small"), rounds=1)).job


@pytest.mark.federated
@pytest.mark.timeout(300)
def test_a_failing_server_app_is_a_federation_error(small_job: Job, tmp_path: Path) -> None:
    from guardrail.federation.flower.processes import run_local_deployment

    broken = dataclasses.replace(small_job, work_dir=str(tmp_path / "work"))  # no initial model there
    broken.save()
    started = time.perf_counter()
    with pytest.raises(FederationError, match="FileNotFoundError"):
        run_local_deployment(broken, 240)
    # flwr run returns when the ServerApp fails: before its own time limit of 240 s would have stopped it
    # (a bound tied to that limit, not to how fast this machine is today)
    assert time.perf_counter() - started < 240
    assert _flower_processes_under(tmp_path / "work") == []


@pytest.mark.federated
@pytest.mark.timeout(300)
def test_the_hard_timeout_stops_every_process(small_job: Job) -> None:
    from guardrail.federation.flower.processes import run_local_deployment

    started = time.perf_counter()
    with pytest.raises(FederationError, match="time limit of 15 s"):
        run_local_deployment(small_job, 15)  # ends inside round 1
    assert time.perf_counter() - started < 15 + 150  # stopping is bounded too, with room for a loaded machine
    assert _flower_processes_under(small_job.work) == []
    assert not (small_job.work / "result.json").exists()


@pytest.mark.parametrize("old", ["guardrail.federation.server_app:app", "guardrail.federation.client_app:app"])
def test_the_app_import_strings_of_written_deployments_still_load(old: str) -> None:
    """A deployment written by guardrail 0.1 names the apps by their old import strings in its
    pyproject.toml; Flower loads them as ``module:attribute``, and they are the current apps."""
    import importlib

    module, _, attribute = old.partition(":")
    current = SERVER_APP if "server" in old else CLIENT_APP
    new_module, _, new_attribute = current.partition(":")
    assert getattr(importlib.import_module(module), attribute) is getattr(importlib.import_module(new_module), new_attribute)
