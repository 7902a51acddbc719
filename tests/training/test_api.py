"""End to end: train on Heart Disease / texts, write the folder, read it back with the torch adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardrail.adapters.torch import TorchAdapter
from guardrail.core.errors import UnsafeModelError
from guardrail.privacy.ledger import load_ledger
from guardrail.training import (
    DPConfig,
    TrainConfig,
    train_from_spec,
    train_tabular,
    train_text,
)
from tests.training.conftest import HEART_FEATURES


@pytest.fixture(scope="module")
def heart():  # type: ignore[no-untyped-def]
    from guardrail.datasets import load_heart_disease

    return load_heart_disease()


def test_dp_mlp_on_heart_disease_learns_and_audits(heart, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = TrainConfig(
        epochs=15, batch_size=64, lr=0.5, dp=DPConfig(delta=1e-3, noise_multiplier=1.0)
    )
    result = train_tabular(
        heart, "heart_disease", HEART_FEATURES, tmp_path / "m", config
    )
    assert result.private and result.train_accuracy > 0.7
    assert result.epsilon_rdp is not None and 0 < result.epsilon_rdp < 10
    names = {p.relative_to(tmp_path / "m").as_posix() for p in result.files}
    assert {
        "model.safetensors",
        "guardrail-model.json",
        "ledger.json",
        "history.json",
        "checkpoint/state.json",
    } <= names
    ledger = load_ledger(tmp_path / "m" / "ledger.json")
    assert ledger == result.ledger
    assert ledger.history == ((1.0, 64 / len(heart), result.steps_done),)
    adapter = TorchAdapter.load(tmp_path / "m")
    proba = adapter.predict_proba(heart)
    predictions = adapter.predict(heart, positive_label=1)
    assert proba.shape == (len(heart), 2) and predictions.scores is not None
    assert (
        predictions.labels == heart["heart_disease"].to_numpy()
    ).mean() == pytest.approx(result.train_accuracy)
    losses = adapter.loss(heart, heart["heart_disease"].tolist())
    assert losses.shape == (len(heart),) and (losses >= 0).all()


def test_pickled_weights_are_refused(tmp_path: Path) -> None:
    import pickle

    (tmp_path / "guardrail-model.json").write_text(
        json.dumps({"kind": "guardrail-torch-model"})
    )
    (tmp_path / "model.pt").write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(UnsafeModelError, match="pickle"):
        TorchAdapter.load(tmp_path)


def test_tiny_bert_dp_training_runs_and_loads(tmp_path: Path) -> None:
    import pandas as pd

    texts = [
        "chest pain at rest",
        "no complaints",
        "short of breath",
        "feels fine today",
    ] * 16
    frame = pd.DataFrame({"note": texts, "sick": [1, 0, 1, 0] * 16})
    config = TrainConfig(
        epochs=1,
        batch_size=16,
        lr=1e-3,
        optimizer="adam",
        dp=DPConfig(delta=1e-3, noise_multiplier=1.0),
    )
    from guardrail.training.models import TinyBertConfig

    tiny = TinyBertConfig(
        vocab_size=80,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=16,
    )
    result = train_text(
        frame, "sick", "note", tmp_path / "bert", config, max_length=16, tiny=tiny
    )
    assert result.steps_done == 4 and result.ledger is not None
    assert (tmp_path / "bert" / "tokenizer.json").exists() and (
        tmp_path / "bert" / "model.safetensors"
    ).exists()
    adapter = TorchAdapter.load(tmp_path / "bert")
    assert adapter.predict_proba(frame.head(5)).shape == (5, 2)


def test_train_from_spec(heart, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from guardrail.spec.training import TrainSpec

    spec = TrainSpec.model_validate(
        {
            "target": "heart_disease",
            "features": list(HEART_FEATURES),
            "model": {"kind": "mlp", "hidden": [16]},
            "epochs": 2,
            "lr": 0.5,
            "out": "models/heart",
            "privacy": {
                "dp": {"target_epsilon": 3.0, "delta": 1e-3, "max_epsilon": 5.0}
            },
        }
    )
    result = train_from_spec(spec, heart, tmp_path)
    assert result.out == tmp_path / "models" / "heart"
    assert result.epsilon == pytest.approx(3.0, abs=0.05)


def test_a_folder_without_a_model_description_is_a_model_error(tmp_path: Path) -> None:
    from guardrail.core.errors import ModelError

    (tmp_path / "model.safetensors").write_bytes(b"{}")
    with pytest.raises(ModelError, match="guardrail-model.json") as info:
        TorchAdapter.load(tmp_path)
    assert "guardrail train" in str(info.value)
