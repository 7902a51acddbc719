"""The federated auditor on a real ``guardrail federate`` history (2 hospitals × 2 rounds,
tests/data/federated/federated.json) and hand-made variants of it: a failed round, a
hospital refused for its ε budget, a run stopped early, tampered records, missing or
foreign files. ε is checked against Opacus' own accountants, accuracy intervals against
scipy's Wilson interval. No Flower and no model: the auditor reads plain JSON."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from guardrail.auditors.base import AuditContext
from guardrail.auditors.federated import NO_HISTORY, NO_MODEL_FOLDER, FederatedAuditor, FederatedParams
from guardrail.auditors.federated_privacy import NO_DP
from guardrail.auditors.registry import default_registry
from guardrail.core.errors import AuditError, DataError
from guardrail.core.types import AuditResult, AuditStatus, MetricResult
from guardrail.federation.history import BAD_HISTORY, NOT_A_HISTORY, TRAIN_HINT
from tests.conftest import REPO

SAMPLE = REPO / "tests" / "data" / "federated" / "federated.json"
HOSPITALS = ("cleveland", "hungary")


def sample() -> dict[str, Any]:
    """A fresh copy of the recorded history, to edit into a variant."""
    data: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return data


def model_folder(tmp_path: Path, history: dict[str, Any] | None = None, name: str = "model") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "federated.json").write_text(json.dumps(history if history is not None else sample()), encoding="utf-8")
    return folder


def run(folder: Path | None, **params: Any) -> AuditResult:
    ctx = AuditContext(
        audit_id="federated",
        data=pd.DataFrame(),
        y_true=np.empty(0, dtype=bool),
        y_pred=np.empty(0, dtype=bool),
        y_score=None,
        sensitive=(),
        missing_sensitive="error",
        positive_label=1,
        seed=0,
        where="audit.csv",
        model_path=folder,
    )
    return FederatedAuditor(FederatedParams(**params)).run(ctx)


def metric(result: AuditResult, key: str, scope: str | None = None) -> MetricResult:
    (found,) = [m for m in result.metrics if m.key == key and m.scope == scope]
    return found


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    return run(model_folder(tmp_path_factory.mktemp("federated")))


# -- the recorded run -----------------------------------------------------------------------
def test_the_auditor_is_registered() -> None:
    assert default_registry().resolve("federated") is FederatedAuditor


def test_progress_privacy_accuracy_and_status_metrics(recorded: AuditResult) -> None:
    assert recorded.status is AuditStatus.OK
    assert metric(recorded, "federated.rounds_completed").value == 2.0
    assert metric(recorded, "federated.rounds_completed").details == {"rounds_planned": 2, "stopped_reason": None}
    stopped = metric(recorded, "federated.stopped_early")
    assert stopped.value == 0.0 and stopped.details["reason"] is None and stopped.higher_is_better is False
    history = sample()
    for hospital in history["hospitals"]:
        epsilon = metric(recorded, "federated.epsilon", f"hospital={hospital['name']}")
        assert epsilon.higher_is_better is False
        assert epsilon.details["recorded_agrees"] is True
        assert epsilon.value == pytest.approx(hospital["epsilon"], rel=1e-9)
    epsilon_max = metric(recorded, "federated.epsilon_max")
    assert epsilon_max.value == max(metric(recorded, "federated.epsilon", f"hospital={h}").value for h in HOSPITALS)  # type: ignore[type-var]
    assert epsilon_max.details == {
        "delta": 1e-5, "accountant": "rdp", "max_epsilon": None, "hospital": "cleveland",
        "recorded": history["epsilon_max"], "recorded_agrees": True,
    }
    last = history["rounds"][-1]["hospitals"]
    for name in HOSPITALS:
        accuracy = metric(recorded, "federated.accuracy", f"hospital={name}")
        assert accuracy.value == last[name]["accuracy"] and accuracy.n == last[name]["test_examples"]
        assert accuracy.ci is not None and accuracy.ci.method.startswith("Clopper") and accuracy.ci.level == 0.95
        assert accuracy.ci.low < accuracy.value < accuracy.ci.high  # type: ignore[operator]
        assert accuracy.details["round"] == 2
    assert metric(recorded, "federated.failures").value == 0.0
    assert metric(recorded, "federated.refused_budget").value == 0.0


def test_the_last_rounds_fairness_is_rekeyed_and_small_groups_stay_undefined(recorded: AuditResult) -> None:
    from guardrail.core.serialize import from_jsonable

    last = [from_jsonable(MetricResult, m) for m in sample()["rounds"][-1]["metrics"]]
    fairness = [m for m in last if m.key.startswith("fairness.")]
    rekeyed = [m for m in recorded.metrics if m.key.startswith("federated.fairness.")]
    assert len(rekeyed) == len(fairness) > 0
    for before, after in zip(fairness, rekeyed, strict=True):
        assert after.key == "federated." + before.key
        assert (after.scope, after.value, after.reason, after.ci, after.by_group, after.n) == (
            before.scope, before.value, before.reason, before.ci, before.by_group, before.n
        )
        assert after.details == {**before.details, "round": 2}
    scopes = {m.scope for m in rekeyed}
    assert scopes == {f"hospital={h}/{a}" for h in HOSPITALS for a in ("sex", "age")} | {"federation/sex", "federation/age"}
    small = metric(recorded, "federated.fairness.equalized_odds_difference", "hospital=cleveland/sex")
    assert small.value is None and small.reason is not None and small.reason.startswith("small_group")
    assert recorded.artifacts["fairness_round"] == 2


def test_artifacts_for_the_report(recorded: AuditResult) -> None:
    artifacts = recorded.artifacts
    assert artifacts["provenance"].startswith("The notes are generated from real records")
    assert set(artifacts) >= {
        "provenance", "run", "settings", "privacy", "hospitals", "series", "fairness_gap", "rounds", "policy", "ledgers",
        "stopped_reason", "notes",
    }
    assert json.loads(json.dumps(artifacts, allow_nan=False)) == artifacts  # strict JSON, string keys only
    series = artifacts["series"]["cleveland"]
    assert series["round"] == [1, 2] and series["status"] == ["ok", "ok"]
    assert series["epsilon"] == pytest.approx(list(sample()["hospitals"][0]["epsilon_by_round"].values()), rel=1e-9)
    assert series["fairness_gap"] == [None, None]  # 24 women: inconclusive, never 0
    assert all(reason.startswith("small_group") for reason in series["fairness_gap_reason"])
    assert artifacts["fairness_gap"]["metric"] == "equalized_odds_difference" and artifacts["fairness_gap"]["attribute"] == "sex"
    assert [row["round"] for row in artifacts["rounds"]] == [1, 2]
    assert artifacts["rounds"][0]["hospitals"]["hungary"]["status"] == "ok"
    entries = artifacts["ledgers"]["hungary"]["entries"]
    assert [(e["round"], e["steps"]) for e in entries] == [(1, 6), (2, 6)]
    assert artifacts["ledgers"]["hungary"]["file"] is None  # the sample has no ledgers/ folder
    assert artifacts["notes"] == [] and artifacts["policy"] == []


# -- independent oracles ---------------------------------------------------------------------
def _history(hospital: dict[str, Any]) -> list[tuple[float, float, int]]:
    record = hospital["history"]
    return list(zip(record["noise_multiplier"], record["sample_rate"], record["steps"], strict=True))


def test_epsilon_equals_opacus_rdp_accountant(recorded: AuditResult) -> None:
    from opacus.accountants import RDPAccountant

    for hospital in sample()["hospitals"]:
        accountant = RDPAccountant()
        accountant.history = _history(hospital)
        oracle = accountant.get_epsilon(delta=1e-5)
        assert metric(recorded, "federated.epsilon", f"hospital={hospital['name']}").value == pytest.approx(oracle, rel=1e-9)
        per_round = []
        for position in range(len(accountant.history)):
            partial = RDPAccountant()
            partial.history = _history(hospital)[: position + 1]
            per_round.append(partial.get_epsilon(delta=1e-5))
        assert recorded.artifacts["series"][hospital["name"]]["epsilon"] == pytest.approx(per_round, rel=1e-9)
        assert [e["epsilon"] for e in recorded.artifacts["ledgers"][hospital["name"]]["entries"]] == pytest.approx(per_round, rel=1e-9)


def test_epsilon_by_prv_equals_opacus_and_the_recorded_rdp_copy_is_flagged(tmp_path: Path) -> None:
    from opacus.accountants import PRVAccountant

    history = sample()
    history["settings"]["dp"]["accountant"] = "prv"  # the file's ε are RDP: they no longer agree
    result = run(model_folder(tmp_path, history))
    for hospital in history["hospitals"]:
        accountant = PRVAccountant()
        accountant.history = _history(hospital)
        found = metric(result, "federated.epsilon", f"hospital={hospital['name']}")
        assert found.value == pytest.approx(accountant.get_epsilon(delta=1e-5, eps_error=0.01), rel=1e-6)
        assert found.details["accountant"] == "prv" and found.details["recorded_agrees"] is False
    assert any("cleveland" in note and "the audit uses the history's" in note for note in result.artifacts["notes"])


def test_a_tampered_epsilon_is_never_trusted(tmp_path: Path) -> None:
    history = sample()
    honest = history["hospitals"][0]["epsilon"]
    history["hospitals"][0]["epsilon"] = 0.5
    history["epsilon_max"] = 0.5
    result = run(model_folder(tmp_path, history))
    cleveland = metric(result, "federated.epsilon", "hospital=cleveland")
    assert cleveland.value == pytest.approx(honest, rel=1e-9)
    assert cleveland.details["recorded"] == 0.5 and cleveland.details["recorded_agrees"] is False
    assert metric(result, "federated.epsilon_max").value == pytest.approx(honest, rel=1e-9)
    assert len(result.artifacts["notes"]) == 2


def test_accuracy_interval_is_the_exact_binomial_one_every_rate_gets(recorded: AuditResult) -> None:
    """One construction per rate: the federated accuracy's interval is scipy's exact
    (Clopper–Pearson) interval, as for every fairness rate."""
    stats = pytest.importorskip("scipy.stats")
    for name in HOSPITALS:
        accuracy = metric(recorded, "federated.accuracy", f"hospital={name}")
        assert accuracy.value is not None and accuracy.n is not None and accuracy.ci is not None
        correct = round(accuracy.value * accuracy.n)
        assert correct / accuracy.n == accuracy.value
        oracle = stats.binomtest(correct, accuracy.n).proportion_ci(confidence_level=0.95, method="exact")
        assert (accuracy.ci.low, accuracy.ci.high) == pytest.approx((oracle.low, oracle.high), abs=1e-9)
        assert accuracy.ci.low <= accuracy.value <= accuracy.ci.high


# -- variants ------------------------------------------------------------------------------
def test_a_failed_round_is_counted_and_accuracy_falls_back(tmp_path: Path) -> None:
    history = sample()
    history["rounds"][1]["hospitals"]["cleveland"] = {"status": "failed", "reason": "CUDA out of memory in local training"}
    result = run(model_folder(tmp_path, history))
    failures = metric(result, "federated.failures")
    assert failures.value == 1.0 and failures.n == 4
    assert failures.details["failed"] == [{"round": 2, "hospital": "cleveland", "reason": "CUDA out of memory in local training"}]
    accuracy = metric(result, "federated.accuracy", "hospital=cleveland")
    assert accuracy.details["round"] == 1 and accuracy.value == history["rounds"][0]["hospitals"]["cleveland"]["accuracy"]
    row = result.artifacts["rounds"][1]["hospitals"]["cleveland"]
    assert row == {"status": "failed", "reason": "CUDA out of memory in local training"}
    assert result.artifacts["series"]["cleveland"]["accuracy"][1] is None
    summary = next(h for h in result.artifacts["hospitals"] if h["name"] == "cleveland")
    assert (summary["failed"], summary["rounds_ok"], summary["accuracy_round"]) == (1, 1, 1)


def _refused(history: dict[str, Any], max_epsilon: float) -> dict[str, Any]:
    """Hungary refused round 2 for its budget: it spent nothing in round 2."""
    history["settings"]["max_epsilon"] = max_epsilon
    hungary = history["hospitals"][1]
    hungary["history"] = {key: values[:1] for key, values in hungary["history"].items()}
    hungary["epsilon_by_round"] = {"1": hungary["epsilon_by_round"]["1"]}
    hungary["epsilon"] = hungary["epsilon_by_round"]["1"]
    history["rounds"][1]["hospitals"]["hungary"] = {
        "status": "refused-budget",
        "reason": f"the round would take its ε above max_epsilon={max_epsilon}",
        "accuracy": 0.6438356164383562,
        "test_examples": 73,
        "epsilon": hungary["epsilon"],
    }
    return history


def test_a_hospital_refused_for_its_budget(tmp_path: Path) -> None:
    history = _refused(sample(), 4.5)
    result = run(model_folder(tmp_path, history))
    refused = metric(result, "federated.refused_budget")
    assert refused.value == 1.0 and refused.details["refused"][0]["hospital"] == "hungary"
    hungary = metric(result, "federated.epsilon", "hospital=hungary")
    assert hungary.value == pytest.approx(history["hospitals"][1]["epsilon"], rel=1e-9)
    assert hungary.details["recorded_agrees"] is True and hungary.details["rounds_with_spend"] == [1]
    assert metric(result, "federated.epsilon_max").details["max_epsilon"] == 4.5
    epsilon = result.artifacts["series"]["hungary"]["epsilon"]
    assert epsilon[0] == epsilon[1]  # no spend in round 2: ε stays where it was
    assert result.artifacts["series"]["hungary"]["status"] == ["ok", "refused-budget"]
    assert metric(result, "federated.failures").value == 0.0


def test_a_run_stopped_early(tmp_path: Path) -> None:
    history = _refused(sample(), 4.5)
    reason = "stopped before round 3: every hospital's next round would pass max_epsilon=4.5"
    history["settings"]["rounds"] = 3
    history["stopped_reason"] = reason
    result = run(model_folder(tmp_path, history))
    completed = metric(result, "federated.rounds_completed")
    assert completed.value == 2.0 and completed.details == {"rounds_planned": 3, "stopped_reason": reason}
    stopped = metric(result, "federated.stopped_early")
    assert stopped.value == 1.0 and stopped.details["reason"] == reason
    assert result.artifacts["stopped_reason"] == reason and result.artifacts["run"]["rounds_planned"] == 3


def test_fewer_rounds_than_planned_is_stopped_early_even_without_a_reason(tmp_path: Path) -> None:
    history = sample()
    history["settings"]["rounds"] = 5
    stopped = metric(run(model_folder(tmp_path, history)), "federated.stopped_early")
    assert stopped.value == 1.0 and stopped.details["reason"] == "2 of 5 planned rounds ran"


def test_without_dp_there_is_no_epsilon(tmp_path: Path) -> None:
    history = sample()
    history["settings"]["dp"] = None
    history["delta"] = history["epsilon_max"] = None
    for hospital in history["hospitals"]:
        hospital["epsilon"] = None
        hospital["epsilon_by_round"] = {}
        hospital["history"] = {"round": [], "noise_multiplier": [], "sample_rate": [], "steps": []}
    result = run(model_folder(tmp_path, history))
    for name in HOSPITALS:
        epsilon = metric(result, "federated.epsilon", f"hospital={name}")
        assert (epsilon.value, epsilon.reason, epsilon.details["recorded_agrees"]) == (None, NO_DP, True)
    assert metric(result, "federated.epsilon_max").reason == NO_DP
    assert result.artifacts["series"]["hungary"]["epsilon"] == [None, None]
    assert result.artifacts["privacy"] == {"delta": None, "accountant": None, "max_epsilon": None}


def test_fairness_of_another_round(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    first = run(folder, fairness_round=1)
    assert first.artifacts["fairness_round"] == 1
    assert metric(first, "federated.fairness.accuracy", "federation/sex").details["round"] == 1
    with pytest.raises(AuditError, match="round 7 recorded no fairness metrics") as caught:
        run(folder, fairness_round=7)
    assert caught.value.hint is not None and "rounds with fairness metrics: 1, 2" in caught.value.hint


def test_params_refuse_unknown_keys_and_bad_rounds() -> None:
    with pytest.raises(ValidationError, match="extra"):
        FederatedParams(fairness_rounds="last")  # type: ignore[call-arg]
    for bad in (0, "first"):
        with pytest.raises(ValidationError):
            FederatedParams(fairness_round=bad)  # type: ignore[arg-type]
    assert FederatedParams().fairness_round == "last"


# -- ledgers --------------------------------------------------------------------------------
def _write_ledgers(folder: Path, history: dict[str, Any]) -> None:
    from guardrail.federation.ledgers import hospital_ledger

    (folder / "ledgers").mkdir()
    for hospital in history["hospitals"]:
        ledger = hospital_ledger(
            hospital["history"], delta=1e-5, max_grad_norm=1.0, data_sha256="0" * 64, hospital=hospital["name"]
        )
        ledger.save(folder / "ledgers" / f"{hospital['name']}.json")


def test_ledger_files_are_compared_with_the_history(tmp_path: Path) -> None:
    history = sample()
    folder = model_folder(tmp_path, history)
    _write_ledgers(folder, history)
    result = run(folder)
    summary = result.artifacts["ledgers"]["cleveland"]
    assert (summary["file"], summary["matches"], summary["max_grad_norm"], summary["sampling"]) == (
        "ledgers/cleveland.json", True, 1.0, "poisson"
    )
    assert result.artifacts["notes"] == []

    tampered = copy.deepcopy(history)
    tampered["hospitals"][0]["history"]["steps"] = [1, 1]  # federated.json now claims less spend than the ledger holds
    (folder / "federated.json").write_text(json.dumps(tampered), encoding="utf-8")
    result = run(folder)
    assert result.artifacts["ledgers"]["cleveland"]["matches"] is False
    assert any("ledgers/cleveland.json does not hold" in note for note in result.artifacts["notes"])


def test_a_hospital_name_cannot_reach_outside_the_ledgers_folder(tmp_path: Path) -> None:
    history = sample()
    history["hospitals"][0]["name"] = "../../secret"
    for entry in history["rounds"]:
        entry["hospitals"]["../../secret"] = entry["hospitals"].pop("cleveland")
    folder = model_folder(tmp_path, history)
    (tmp_path / "secret.json").write_text("not a ledger")
    result = run(folder)
    assert result.artifacts["ledgers"]["../../secret"]["file"] is None


# -- errors ---------------------------------------------------------------------------------
def test_a_folder_without_history_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(AuditError) as caught:
        run(tmp_path / "model")
    assert (caught.value.message, caught.value.hint) == (NO_HISTORY, TRAIN_HINT)
    assert "guardrail federate SPEC" in str(caught.value)
    (tmp_path / "model.skops").write_bytes(b"")
    for path in (tmp_path / "model.skops", None):
        with pytest.raises(AuditError) as caught:
            run(path)
        assert caught.value.message == NO_MODEL_FOLDER and caught.value.hint == TRAIN_HINT


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.update(kind="guardrail-privacy-ledger"), NOT_A_HISTORY),
        (lambda h: h.update(schema_version=2), "unsupported federated.json schema_version 2"),
        (lambda h: h.pop("rounds_done"), f"{BAD_HISTORY}: $ lacks 'rounds_done'"),
        (lambda h: h["hospitals"][0]["history"]["steps"].pop(), f"{BAD_HISTORY}: hospitals[0].history's lists differ in length"),
        (lambda h: h["hospitals"][1]["history"]["sample_rate"].__setitem__(0, 2.0), "sample_rate must be in (0, 1]"),
        (lambda h: h["rounds"][0]["hospitals"]["cleveland"].update(status="exploded"), "status must be one of"),
        (lambda h: h["rounds"][0]["hospitals"]["cleveland"].update(accuracy=1.5), "accuracy must be in [0, 1]"),
        (lambda h: h["rounds"][1]["metrics"][0].update(value="high"), f"{BAD_HISTORY}: rounds[round 2].metrics[0]"),
    ],
)
def test_a_foreign_or_broken_file_is_a_data_error_naming_it(tmp_path: Path, edit: Any, message: str) -> None:
    history = sample()
    edit(history)
    folder = model_folder(tmp_path, history)
    with pytest.raises(DataError, match=None) as caught:
        run(folder)
    assert message in caught.value.message
    assert caught.value.where == str(folder / "federated.json") and caught.value.hint is not None


def test_invalid_json_is_a_data_error(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "federated.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        run(folder)


def test_reading_the_history_loads_no_flower_ray_or_torch_before_accounting() -> None:
    """The auditor is plain JSON: importing it loads no heavy library, and running it loads
    only what Opacus' accountant needs (Opacus imports torch), never Flower or Ray."""
    probe = (
        "import sys, json\n"
        "import guardrail.auditors.federated as f\n"
        "heavy = ('torch', 'flwr', 'ray', 'opacus', 'transformers', 'numpy')\n"
        "before = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        f"data = f.load_history(__import__('pathlib').Path({str(SAMPLE)!r}))\n"
        f"f.audit_history(data, __import__('pathlib').Path({str(SAMPLE.parent)!r}))\n"
        "after = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy})\n"
        "print(json.dumps([before, after]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    before, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert before == []
    assert "flwr" not in after and "ray" not in after and "transformers" not in after
