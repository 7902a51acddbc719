"""``federated.json`` (:mod:`guardrail.federation.history`): the writer reproduces a recorded
history byte for byte, the reader reads back what the writer wrote and refuses a foreign kind,
another schema version and a malformed field with messages that name the file and the field,
and the round builders make the entries the ServerApp records. No Flower, no numpy."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from guardrail.core.errors import DataError
from guardrail.federation.history import (
    BAD_HISTORY,
    FEDERATED_FILE,
    FEDERATED_KIND,
    FEDERATED_SCHEMA_VERSION,
    NOT_A_HISTORY,
    STATUSES,
    TRAIN_HINT,
    entry_metrics,
    evaluated,
    history_document,
    history_json,
    hospital_record,
    load_history,
    new_round,
    not_training,
    read_round_metrics,
    trained,
)
from tests.conftest import REPO

SAMPLE = REPO / "tests" / "data" / "federated" / "federated.json"
"""Written by ``guardrail federate`` before the writer moved here (json.dumps, indent 1)."""


def _sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return data


def _rewritten(data: dict[str, Any]) -> str:
    """``data`` written again by the writer, from the parts ``guardrail federate`` hands it."""
    document = history_document(
        provenance=data["provenance"],
        engine=data["engine"],
        strategy=data["strategy"],
        settings=data["settings"],
        hospitals=[
            hospital_record(
                h["name"],
                tuple(h["sites"]),
                h["train_rows"],
                h["test_rows"],
                h["epsilon"],
                {int(r): e for r, e in h["epsilon_by_round"].items()},
                h["history"],
            )
            for h in data["hospitals"]
        ],
        rounds=data["rounds"],
        rounds_done=data["rounds_done"],
        stopped_reason=data["stopped_reason"],
        epsilon_max=data["epsilon_max"],
        delta=data["delta"],
        seconds=data["seconds"],
        simulation_seconds=data["simulation_seconds"],
    )
    return history_json(document)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / FEDERATED_FILE
    path.write_text(text, encoding="utf-8")
    return path


# -- the writer ----------------------------------------------------------------------------
def test_the_writer_reproduces_a_recorded_history_byte_for_byte() -> None:
    assert _rewritten(_sample()) == SAMPLE.read_text(encoding="utf-8")


def test_the_document_has_this_kind_version_and_key_order() -> None:
    written = json.loads(_rewritten(_sample()))
    assert (written["schema_version"], written["kind"]) == (FEDERATED_SCHEMA_VERSION, FEDERATED_KIND) == (1, "guardrail-federated-history")
    assert list(written) == [
        "schema_version", "kind", "provenance", "engine", "strategy", "settings", "hospitals", "rounds",
        "rounds_done", "stopped_reason", "epsilon_max", "delta", "seconds", "simulation_seconds",
    ]
    assert list(written["hospitals"][0]) == ["name", "sites", "train_rows", "test_rows", "epsilon", "epsilon_by_round", "history"]


def test_writer_to_reader_round_trip(tmp_path: Path) -> None:
    original = _sample()
    read = load_history(_write(tmp_path, _rewritten(original)))
    assert read == original
    by_round = read_round_metrics(read, str(tmp_path / FEDERATED_FILE))
    assert list(by_round) == [1, 2] and all(by_round.values())


def test_an_unbounded_epsilon_is_written_and_read_back(tmp_path: Path) -> None:
    """σ = 0 gives ε = ∞: written as JSON's Infinity, read back as inf (the auditor says why)."""
    data = _sample()
    data["hospitals"][0]["epsilon"] = data["epsilon_max"] = math.inf
    read = load_history(_write(tmp_path, _rewritten(data)))
    assert read["epsilon_max"] == math.inf and read["hospitals"][0]["epsilon"] == math.inf


# -- the reader ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.update(kind="guardrail-privacy-ledger"), NOT_A_HISTORY),
        (lambda h: h.update(schema_version=2), "unsupported federated.json schema_version 2 (this guardrail reads 1)"),
        (lambda h: h.pop("rounds_done"), f"{BAD_HISTORY}: $ lacks 'rounds_done'"),
        (lambda h: h.update(rounds_done="2"), f"{BAD_HISTORY}: $.rounds_done has the wrong type or value ('2')"),
        (lambda h: h["settings"]["dp"].update(delta=1.5), f"{BAD_HISTORY}: settings.dp.delta must be in (0, 1), got 1.5"),
        (lambda h: h["hospitals"][0]["history"]["steps"].pop(), f"{BAD_HISTORY}: hospitals[0].history's lists differ in length"),
        (lambda h: h["hospitals"][1].update(name="cleveland"), f"{BAD_HISTORY}: two hospitals share a name"),
        (
            lambda h: h["rounds"][0]["hospitals"]["cleveland"].update(status="exploded"),
            f"{BAD_HISTORY}: rounds[0].hospitals['cleveland'].status must be one of ok, failed, refused-budget, not-sampled, no-reply",
        ),
        (
            lambda h: h["rounds"][0]["hospitals"]["cleveland"].update(accuracy=1.5),
            f"{BAD_HISTORY}: rounds[0].hospitals['cleveland'].accuracy must be in [0, 1], got 1.5",
        ),
    ],
)
def test_the_reader_refuses_a_foreign_or_malformed_history(tmp_path: Path, edit: Any, message: str) -> None:
    data = _sample()
    edit(data)
    path = _write(tmp_path, json.dumps(data))
    with pytest.raises(DataError) as caught:
        load_history(path)
    assert caught.value.message == message
    assert caught.value.where == str(path) and caught.value.hint is not None


def test_a_round_metric_that_is_not_a_metric_names_its_round(tmp_path: Path) -> None:
    data = _sample()
    data["rounds"][1]["metrics"][0]["value"] = "high"
    path = _write(tmp_path, json.dumps(data))
    with pytest.raises(DataError) as caught:
        read_round_metrics(load_history(path), str(path))
    assert caught.value.message.startswith(f"{BAD_HISTORY}: rounds[round 2].metrics[0]: ")
    assert (caught.value.where, caught.value.hint) == (str(path), TRAIN_HINT)


def test_unreadable_text_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not valid JSON \(line 1"):
        load_history(_write(tmp_path, "{not json"))
    with pytest.raises(DataError, match=NOT_A_HISTORY.replace("(", r"\(").replace(")", r"\)")):
        load_history(_write(tmp_path, "[]"))


# -- the round record ----------------------------------------------------------------------
def test_the_round_builders_make_the_entries_the_server_recorded() -> None:
    recorded = _sample()["rounds"][0]
    entry = new_round(1, ["cleveland", "hungary", "switzerland"])
    assert entry == {"round": 1, "hospitals": {name: {"status": "not-sampled"} for name in ("cleveland", "hungary", "switzerland")}}
    for name in ("cleveland", "hungary"):
        mine = recorded["hospitals"][name]
        entry["hospitals"][name] = trained(mine["num_examples"], mine["train_loss"], mine["steps"], mine["compute_seconds"])
        evaluated(
            entry, name, accuracy=mine["accuracy"], eval_loss=mine["eval_loss"],
            test_examples=mine["test_examples"], eval_seconds=mine["eval_seconds"],
        )
        entry["hospitals"][name]["epsilon"] = mine["epsilon"]
        assert json.dumps(entry["hospitals"][name]) == json.dumps(mine)  # same keys, same order
    entry["hospitals"]["switzerland"] = not_training("no-reply", "no reply within 120 s")
    evaluated(entry, "basel", accuracy=0.5, eval_loss=float("nan"), test_examples=10, eval_seconds=1.0)
    assert entry["hospitals"]["basel"] == {
        "status": "not-sampled", "accuracy": 0.5, "eval_loss": None, "test_examples": 10, "eval_seconds": 1.0
    }
    assert trained(5, float("inf"), 1, 0.1)["train_loss"] is None
    assert set(STATUSES) == {"ok", "failed", "refused-budget", "not-sampled", "no-reply"}


def test_entry_metrics_are_each_hospitals_epsilon_and_accuracy_in_its_escaped_scope() -> None:
    entry = new_round(3, ["a/b", "c"])
    entry["hospitals"]["a/b"] = {"status": "ok", "accuracy": 0.75, "test_examples": 8, "epsilon": 1.5}
    entry["epsilon_max"] = 1.5
    metrics = entry_metrics(entry)
    assert [(m.key, m.scope, m.value, m.n) for m in metrics] == [
        ("federated.epsilon", "hospital=a%2Fb", 1.5, None),
        ("federated.accuracy", "hospital=a%2Fb", 0.75, 8),
        ("federated.epsilon_max", None, 1.5, None),
    ]
    assert [m.higher_is_better for m in metrics] == [False, True, False]


def test_the_history_module_loads_no_flower_numpy_or_torch() -> None:
    probe = (
        "import sys, json\n"
        "import guardrail.federation.history\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'flwr', 'ray', 'numpy', 'torch', 'pandas'})))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
