"""Federated training on Flower's simulation engine, checked against independent oracles.

One simulation (2 hospitals × 2 rounds, DP-SGD) is shared by the tests of this module;
the oracles are Opacus' own accountant, the same training in a plain sequential loop, and
fairlearn's MetricFrame on the saved global model's raw predictions.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(300)


def _history(run: Any) -> dict[str, Any]:
    return dict(json.loads(run.federated_file.read_text()))


def test_every_round_trains_every_hospital(federated_run: Any) -> None:
    history = _history(federated_run)
    assert history["rounds_done"] == 2 and history["stopped_reason"] is None
    assert [r["round"] for r in history["rounds"]] == [1, 2]
    for entry in history["rounds"]:
        assert entry["aggregated"] is True
        for name in ("cleveland", "hungary"):
            hospital = entry["hospitals"][name]
            assert hospital["status"] == "ok", hospital
            assert hospital["num_examples"] > 0 and hospital["test_examples"] > 0
            assert 0.0 <= hospital["accuracy"] <= 1.0
    assert "generated from real records" in history["provenance"]


def test_epsilon_per_round_matches_opacus_and_grows(federated_run: Any) -> None:
    from opacus.accountants import RDPAccountant

    history = _history(federated_run)
    for hospital in history["hospitals"]:
        record = hospital["history"]
        assert record["round"] == [1, 2]
        accountant = RDPAccountant()
        expected = []
        for sigma, rate, steps in zip(record["noise_multiplier"], record["sample_rate"], record["steps"], strict=True):
            accountant.history.append((sigma, rate, steps))
            expected.append(accountant.get_epsilon(delta=history["delta"]))
        by_round = [hospital["epsilon_by_round"][str(r)] for r in (1, 2)]
        assert by_round == expected  # the same accountant on the same history: bit-identical
        assert by_round[0] < by_round[1]
        assert hospital["epsilon"] == by_round[-1]
        # the round reports carry the same ε after each round
        for server_round, epsilon in zip((1, 2), by_round, strict=True):
            assert history["rounds"][server_round - 1]["hospitals"][hospital["name"]]["epsilon"] == epsilon
    assert history["epsilon_max"] == max(h["epsilon"] for h in history["hospitals"])


def test_recorded_spend_is_the_steps_each_hospital_took(federated_run: Any) -> None:
    """The spend recorded before training (planned) equals the DP steps the trainer then ran."""
    history = _history(federated_run)
    for hospital in history["hospitals"]:
        taken = [entry["hospitals"][hospital["name"]]["steps"] for entry in history["rounds"]]
        assert hospital["history"]["steps"] == taken
    assert history["settings"]["reproducible_noise"] is True


def test_flower_equals_the_plain_sequential_loop(federated_run: Any) -> None:
    """Per-client ε after each round bit-identical; the global model equal up to float summation order."""
    import torch

    from guardrail.federation.flower.local import load_weights, plain_loop
    from guardrail.federation.job import INITIAL_MODEL, JOB_FILE, Job
    from guardrail.federation.ledgers import epsilon_by_round

    work = federated_run.out / "federation"
    job = Job.from_json((work / JOB_FILE).read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in Ray's one-CPU actors: the same float reduction order
    try:
        plain = plain_loop(job, load_weights(work / INITIAL_MODEL / "model.safetensors"))
    finally:
        torch.set_num_threads(threads)
    history = _history(federated_run)
    for hospital in history["hospitals"]:
        assert plain.records[hospital["name"]] == hospital["history"]
        plain_epsilon = epsilon_by_round(plain.records[hospital["name"]], history["delta"])
        assert {str(r): e for r, e in plain_epsilon.items()} == hospital["epsilon_by_round"]
    # equal up to the order in which Flower sums the hospitals' updates (reply order)
    flower = load_weights(federated_run.out / "model.safetensors")
    assert set(flower) == set(plain.weights)
    for name, value in plain.weights.items():
        np.testing.assert_allclose(flower[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_per_hospital_fairness_equals_fairlearn_on_raw_predictions(federated_run: Any) -> None:
    import pandas as pd
    from fairlearn.metrics import MetricFrame, true_positive_rate

    from guardrail.adapters.torch import TorchAdapter
    from guardrail.core.serialize import from_jsonable
    from guardrail.core.types import MetricResult

    model = TorchAdapter.load(federated_run.out)
    table = pd.read_csv(federated_run.audit_table)
    last = _history(federated_run)["rounds"][-1]
    metrics = [from_jsonable(MetricResult, m) for m in last["metrics"]]
    for name in ("cleveland", "hungary"):
        held_out = table[(table["hospital"] == name) & ~table["member"]].reset_index(drop=True)
        predicted = model.predict(held_out, model.classes[-1]).labels
        assert last["hospitals"][name]["accuracy"] == pytest.approx(float((predicted == held_out["heart_disease"]).mean()))
        oracle = MetricFrame(
            metrics=true_positive_rate,
            y_true=held_out["heart_disease"],
            y_pred=predicted,
            sensitive_features=held_out["sex"],
        ).by_group
        (tpr,) = [m for m in metrics if m.key == "fairness.tpr" and m.scope == f"hospital={name}/sex"]
        for group in tpr.by_group:
            value = group.value if group.value is not None else tpr.details.get("estimates", {}).get(group.group)
            if group.value is None:
                assert group.small  # a small group is inconclusive, never a score
                continue
            assert value == pytest.approx(float(oracle[group.group]), abs=1e-12), (name, group.group)


def test_output_folder_is_an_auditable_model(federated_run: Any) -> None:
    from guardrail.privacy.ledger import load_ledger

    out = federated_run.out
    for name in ("cleveland", "hungary"):
        ledger = load_ledger(out / "ledgers" / f"{name}.json")
        assert ledger.extra["federated"]["hospital"] == name
        assert ledger.extra["federated"]["round"] == [1, 2]
    worst = max(federated_run.hospitals, key=lambda h: h.epsilon)
    combined = load_ledger(out / "ledger.json")
    assert combined.epsilon(accountant="rdp") == pytest.approx(worst.epsilon, rel=1e-12)
    assert any("largest ε" in note for note in combined.notes)
    description = json.loads((out / "guardrail-model.json").read_text())
    assert description["federated"] is True and description["text_column"] == "note"
    assert (out / "federation" / "checkpoint" / "global.safetensors").is_file()  # what --resume continues from
