"""One entry point loads every kind of model a spec can name (guardrail.adapters.loading)."""

from __future__ import annotations

import typing
from pathlib import Path

import pandas as pd

from guardrail.adapters.base import ModelSource
from guardrail.adapters.loading import LOADERS, load_model
from guardrail.adapters.predictions import PredictionsAdapter
from guardrail.spec.models import ModelSpec, PredictionsModelSpec


def _spec_kinds() -> set[str]:
    union, *_ = typing.get_args(ModelSpec)
    return {typing.get_args(section.model_fields["adapter"].annotation)[0] for section in typing.get_args(union)}


def test_every_adapter_kind_of_the_spec_has_a_loader() -> None:
    assert _spec_kinds() == set(LOADERS) == {"sklearn", "torch", "predictions"}


def test_a_predictions_section_loads_as_its_columns(tmp_path: Path) -> None:
    section = PredictionsModelSpec(adapter="predictions", column="pred", score_column="score")
    source = ModelSource(path=None, features=None, spec_folder=tmp_path, data_where="audit.csv")
    adapter = load_model(section, source)
    assert isinstance(adapter, PredictionsAdapter)
    assert (adapter.column, adapter.score_column, adapter.where) == ("pred", "score", "audit.csv")
    frame = pd.DataFrame({"pred": [1, 0], "score": [0.9, 0.2]})
    assert adapter.predict(frame, 1).labels.tolist() == [1, 0]
