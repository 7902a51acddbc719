"""A small federation (2 hospitals, tiny reader) that the simulation tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

SMALL_MODEL = {
    "kind": "bert-tiny",
    "max_length": 64,
    "hidden_size": 32,
    "layers": 1,
    "attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 400,
}


def write_spec(folder: Path, **federate: Any) -> Path:
    """An audit spec whose ``federate:`` section trains cleveland and hungary for ``rounds`` rounds."""
    section: dict[str, Any] = {
        "hospitals": {"only": ["cleveland", "hungary"]},
        "model": SMALL_MODEL,
        "pretrain": {"notes": 300, "epochs": 1},
        "rounds": 2,
        "local_epochs": 1,
        "batch_size": 32,
        "lr": 0.003,
        "privacy": {"dp": {"noise_multiplier": 1.0, "delta": 1.0e-5}},
        "fairness": {"min_group_size": 10, "bootstrap": 50},
        "round_timeout": 120,
        "timeout": 300,
        "out": "model",
        "reproducible_noise": True,  # the plain-loop comparison re-runs the same noise
        **federate,
    }
    spec = {
        "schema_version": 1,
        "kind": "audit",
        "name": "federation-test",
        "federate": section,
        "model": {"adapter": "torch", "path": "model"},
        "data": {"path": "model/audit-data.csv.gz", "target": "heart_disease", "sensitive": ["sex"]},
        "audits": [{"id": "fairness", "use": "fairness"}],
        "report": {"out": "report"},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def federated_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One Flower simulation: 2 hospitals × 2 rounds with DP-SGD (≈ 20 s on 2 cores)."""
    from guardrail.run.federate import federate

    folder = tmp_path_factory.mktemp("federation")
    return federate(write_spec(folder))
