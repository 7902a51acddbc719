"""``guardrail-model.json`` has one owner: what its writer writes, its reader reads back; the
reader refuses another kind or schema version before it looks at a single other key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardrail.adapters.model_folder import (
    MODEL_FILE,
    MODEL_KIND,
    MODEL_SCHEMA_VERSION,
    description_json,
    read_model_description,
)
from guardrail.core.errors import ModelError

MLP = {
    "architecture": "mlp",
    "classes": [0, 1],
    "features": ["x"],
    "weights": "model.safetensors",
    "mlp": {"in_features": 1, "hidden": [2], "n_classes": 2},
    "encoder": {"numeric": ["x"], "means": [0.0], "stds": [1.0], "categorical": []},
}


def test_what_the_writer_writes_the_reader_reads_back(tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE).write_text(description_json(MLP))
    assert read_model_description(tmp_path) == {**MLP, "kind": MODEL_KIND, "schema_version": MODEL_SCHEMA_VERSION}


def test_the_writer_refuses_a_number_json_cannot_hold() -> None:
    with pytest.raises(ValueError):
        description_json({**MLP, "train_accuracy": float("nan")})


@pytest.mark.parametrize("version", [2, 0, "1", 1.0, True, None])
def test_another_schema_version_is_refused(tmp_path: Path, version: object) -> None:
    (tmp_path / MODEL_FILE).write_text(json.dumps({**MLP, "kind": MODEL_KIND, "schema_version": version}))
    with pytest.raises(ModelError, match=f"{MODEL_FILE} has schema_version {version!r}; this guardrail reads schema_version 1"):
        read_model_description(tmp_path)


def test_a_description_without_a_schema_version_is_read_as_version_1(tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE).write_text(json.dumps({**MLP, "kind": MODEL_KIND}))
    assert read_model_description(tmp_path)["architecture"] == "mlp"


def test_another_kind_is_refused_before_its_version(tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE).write_text(json.dumps({**MLP, "kind": "something-else", "schema_version": 7}))
    with pytest.raises(ModelError, match=f"{MODEL_FILE} does not describe a guardrail torch model"):
        read_model_description(tmp_path)


def test_a_missing_description_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=f"not a guardrail torch model folder: {MODEL_FILE} is not there") as info:
        read_model_description(tmp_path)
    assert "guardrail train" in str(info.value)
