"""The ``train:`` spec section validates strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from guardrail.spec.training import TrainSpec

BASE = {"target": "y", "features": ["a"], "model": {"kind": "mlp"}, "out": "m"}


def test_minimal_and_defaults() -> None:
    spec = TrainSpec.model_validate(BASE)
    assert (
        spec.privacy.dp is None and spec.model.kind == "mlp" and spec.batch_size == 64
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"privacy": {"dp": {"delta": 1e-5}}},
            "exactly one of target_epsilon and noise_multiplier",
        ),
        (
            {
                "privacy": {
                    "dp": {"delta": 1e-5, "noise_multiplier": 1, "target_epsilon": 1}
                }
            },
            "exactly one",
        ),
        ({"privacy": {"dp": {"delta": 1.5, "noise_multiplier": 1}}}, "less than 1"),
        (
            {
                "privacy": {
                    "dp": {"delta": 1e-5, "noise_multiplier": 1, "accountant": "gdp"}
                }
            },
            "'prv' or 'rdp'",
        ),
        (
            {
                "privacy": {
                    "dp": {
                        "delta": 1e-5,
                        "noise_multiplier": 1,
                        "grad_sample_mode": "fast",
                    }
                }
            },
            "hooks",
        ),
        (
            {"privacy": {"dp": {"delta": 1e-5, "target_epsilon": 3, "max_epsilon": 2}}},
            "max_epsilon is below",
        ),
        ({"epochs": 0}, "greater than or equal to 1"),
        ({"model": {"kind": "bert-tiny"}}, "needs `text_column`"),
        ({"features": None}, "needs `features`"),
        ({"features": ["y"]}, "also listed as a feature"),
        ({"modle": {}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainSpec.model_validate({**BASE, **change})


def test_text_model() -> None:
    spec = TrainSpec.model_validate(
        {
            "target": "y",
            "text_column": "t",
            "model": {"kind": "pretrained", "path": "minilm"},
            "out": "m",
        }
    )
    assert spec.model.kind == "pretrained"


def test_a_pretrained_head_of_another_size_is_a_clear_model_error(tmp_path: Path) -> None:
    from guardrail.core.errors import ModelError
    from guardrail.training.models import TinyBertConfig, build_tiny_bert, load_pretrained

    config = TinyBertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_length=16)
    model, tokenizer = build_tiny_bert(["a b c", "d e f"] * 10, 2, config)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert load_pretrained(tmp_path, 2)[0].config.num_labels == 2
    with pytest.raises(ModelError, match="cannot load the pretrained model") as caught:
        load_pretrained(tmp_path, 3)
    assert caught.value.hint and "number of classes" in caught.value.hint
