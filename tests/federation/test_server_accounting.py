"""The ServerApp's bookkeeping without a simulation: write-ahead spend, settling, node claims."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("flwr")


class FakeGrid:
    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)


class FakeMessage:
    def __init__(self, node_id: int) -> None:
        self.metadata = type("Metadata", (), {"dst_node_id": node_id})()


def _server(tmp_path: Path, **job: Any) -> Any:
    from safetensors.numpy import save_file

    from guardrail.federation.flower.server_app import FederatedServer
    from guardrail.federation.job import INITIAL_MODEL, DPSettings, Job

    (tmp_path / INITIAL_MODEL).mkdir(parents=True)
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(tmp_path / INITIAL_MODEL / "model.safetensors"))
    settings = {"work_dir": str(tmp_path), "hospital_names": ("cleveland", "hungary"), "dp": DPSettings(1.0, 1e-5), **job}
    return FederatedServer(Job(**settings), FakeGrid([11, 12]))


def test_spend_is_checkpointed_before_the_round_and_kept_for_silent_hospitals(tmp_path: Path) -> None:
    from guardrail.federation.job import CHECKPOINT_STATE

    server = _server(tmp_path)
    server.node_hospital = {11: "cleveland", 12: "hungary"}
    server.round_spend = {"cleveland": (1.0, 0.1, 10), "hungary": (1.0, 0.2, 5)}
    pending = server._write_ahead(1, [FakeMessage(11), FakeMessage(12)])
    state = json.loads((tmp_path / "checkpoint" / CHECKPOINT_STATE).read_text())
    assert state["rounds_done"] == 0
    assert state["records"]["cleveland"]["steps"] == [10] and state["records"]["hungary"]["steps"] == [5]
    # cleveland answered (its reply carried the spend); hungary did not: the server counts it anyway
    server.records["cleveland"] = {"round": [1], "noise_multiplier": [1.0], "sample_rate": [0.1], "steps": [10]}
    server._settle(1, pending)
    assert server.records["cleveland"]["round"] == [1]  # not counted twice
    assert server.records["hungary"]["round"] == [1] and server.records["hungary"]["steps"] == [5]


def test_a_second_node_claiming_a_hospital_or_a_bad_index_is_ignored(tmp_path: Path) -> None:
    server = _server(tmp_path)
    assert server._claim(11, {"hospital-index": 0}) == "cleveland"
    assert server._claim(12, {"hospital-index": 0}) is None  # node 11 is live and serves cleveland
    assert server._claim(12, {"hospital-index": -1}) is None
    assert server._claim(12, {"hospital-index": 2}) is None
    assert server._claim(12, {"hospital-index": 1}) == "hungary"


def test_only_a_policy_stop_survives_a_resume(tmp_path: Path) -> None:
    from guardrail.core.atomic import write_all_atomic
    from guardrail.federation.flower.local import save_weights
    from guardrail.federation.job import CHECKPOINT_STATE, CHECKPOINT_WEIGHTS

    server = _server(tmp_path)
    for reason, kept in (("stopped before round 3: every hospital's next round would pass max_epsilon=8", False),
                         ("stopped after round 2: FED-ROUND-EPS failed", True)):
        write_all_atomic(
            {
                tmp_path / "checkpoint" / CHECKPOINT_WEIGHTS: save_weights(server.weights),
                tmp_path / "checkpoint" / CHECKPOINT_STATE: json.dumps(
                    {"rounds_done": 2, "records": server.records, "rounds": [], "stopped_reason": reason}
                ),
            }
        )
        resumed = _server_again(tmp_path)
        assert (resumed.stopped_reason == reason) is kept
        assert resumed.start_round == 3


def _server_again(tmp_path: Path) -> Any:
    from guardrail.federation.flower.server_app import FederatedServer
    from guardrail.federation.job import DPSettings, Job

    job = Job(work_dir=str(tmp_path), hospital_names=("cleveland", "hungary"), dp=DPSettings(1.0, 1e-5), resume=True)
    return FederatedServer(job, FakeGrid([11, 12]))
