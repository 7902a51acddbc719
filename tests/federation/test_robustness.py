"""A hospital that fails mid-round, a resumed federation, a spent budget, a hung backend."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.federation.conftest import write_spec

pytestmark = pytest.mark.timeout(300)


def _history(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "federated.json").read_text()))


@pytest.mark.federated  # three simulations and a deployment collect: ~60 s
def test_crash_keeps_spend_then_resume_continues_ledgers_until_the_budget(tmp_path: Path) -> None:
    from guardrail.federation import ledgers
    from guardrail.run.federate import federate

    # Round 1: hungary fails after its DP steps ran; cleveland's update alone makes the global model.
    spec = write_spec(
        tmp_path,
        rounds=1,
        faults=[{"hospital": "hungary", "round": 1, "stage": "after_training"}],
        reproducible_noise=False,  # the default: a fresh secret seed per round
    )
    first = federate(spec)
    history = _history(first.out)
    round_1 = history["rounds"][0]["hospitals"]
    assert round_1["cleveland"]["status"] == "ok"
    assert round_1["hungary"]["status"] == "failed"
    assert "injected fault" in round_1["hungary"]["reason"] and "spend is recorded" in round_1["hungary"]["reason"]
    spends = {}
    for hospital in history["hospitals"]:
        record = hospital["history"]
        assert record["round"] == [1]  # hungary's crashed round is in its ledger too
        assert hospital["epsilon"] > 0
        spends[hospital["name"]] = (record["noise_multiplier"][0], record["sample_rate"][0], record["steps"][0])

    # Resume for two more rounds with a budget that lets every hospital train exactly one more round
    # (hospitals differ in size, so in sample rate and steps: the budget is the largest two-round ε).
    budget = max(ledgers.epsilon_after([spend], spend, 1e-5) for spend in spends.values()) * (1 + 1e-9)
    spec = write_spec(
        tmp_path,
        rounds=3,
        privacy={"dp": {"noise_multiplier": 1.0, "delta": 1.0e-5}, "max_epsilon": budget},
        reproducible_noise=False,
    )
    second = federate(spec, resume=True)
    history = _history(second.out)
    assert [r["round"] for r in history["rounds"]] == [1, 2]  # round 1 kept from the checkpoint
    assert {h["status"] for h in history["rounds"][1]["hospitals"].values()} == {"ok"}
    assert "max_epsilon" in history["stopped_reason"] and "before round 3" in history["stopped_reason"]
    assert history["rounds_done"] == 2
    for hospital in history["hospitals"]:
        assert hospital["history"]["round"] == [1, 2]  # ε continued from the checkpoint, never restarted
        assert hospital["epsilon"] <= budget
    assert second.epsilon_max is not None and second.epsilon_max <= budget

    # Resuming a finished federation rewrites its outputs without running it, under the engine that ran
    # it (recorded in the job's work folder when the run started; here as a deployment would record it).
    from guardrail.federation.job import JOB_FILE, Job
    from guardrail.run.federate import WORK_DIR, mark_engine

    document = _history(second.out)
    (second.out / "federated.json").unlink()  # the outputs were never written: the case resume is for
    mark_engine(Job.from_json((second.out / WORK_DIR / JOB_FILE).read_text()), "deployment")
    third = federate(spec, resume=True)
    assert _history(third.out)["engine"] == "deployment" and _history(third.out)["rounds"] == document["rounds"]


def test_a_hung_simulation_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    from guardrail.core.errors import FederationError
    from guardrail.run.federate import federate

    spec = write_spec(tmp_path, timeout=2)
    started = time.monotonic()
    with pytest.raises(FederationError, match="time limit of 2 s"):
        federate(spec)
    # The message proves the time limit stopped it (the simulation would otherwise run to its end);
    # the bound only says stopping is bounded, with room for a loaded machine (module timeout: 300 s).
    assert time.monotonic() - started < 240
    assert not (tmp_path / "model" / "federated.json").exists()  # nothing half-written


@pytest.mark.federated  # a full simulation: ~35 s
def test_a_failing_deny_rule_of_the_round_policies_stops_training(tmp_path: Path) -> None:
    from guardrail.run.federate import federate

    policy = tmp_path / "stop.yaml"
    policy.write_text(
        "schema_version: 1\nkind: policy\nname: stop\nrules:\n"
        "  - {id: TINY-EPS, metric: federated.epsilon, op: le, threshold: 0.1, severity: deny, rationale: test}\n"
        "  - {id: ACC, metric: federated.accuracy, op: ge, threshold: 0.99, severity: warn, rationale: test}\n"
    )
    run = federate(write_spec(tmp_path, rounds=3, round_policies=[str(policy)]))
    history = _history(run.out)
    assert history["rounds_done"] == 1 and run.rounds_done == 1
    assert history["stopped_reason"].startswith("stopped after round 1: TINY-EPS failed")
    findings = {(f["rule_id"], f["status"]) for f in history["rounds"][0]["policy"]}
    assert ("TINY-EPS", "fail") in findings and ("ACC", "fail") in findings  # the warn rule is flagged only
