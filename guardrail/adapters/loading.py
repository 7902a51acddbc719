"""One entry point from a spec's model section to a loaded adapter.

Each adapter kind (the section's ``adapter:`` key) has one row in :data:`LOADERS`: the
``from_spec`` of the adapter class that reads that section. Adding an adapter is adding its
module, with a class that has ``from_spec(model, source)``, and its row here. The adapter
modules import their heavy libraries (skops, torch, transformers) only when a model loads,
so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from guardrail.adapters.base import ModelAdapter, ModelSource
from guardrail.adapters.predictions import PredictionsAdapter
from guardrail.adapters.sklearn import SklearnAdapter
from guardrail.adapters.torch import TorchAdapter

if TYPE_CHECKING:
    from guardrail.spec.models import PredictionsModelSpec, SklearnModelSpec, TorchModelSpec

Loader = Callable[[Any, ModelSource], ModelAdapter]
"""``from_spec(model_section, source) -> adapter``."""

LOADERS: Mapping[str, Loader] = MappingProxyType(
    {
        "sklearn": SklearnAdapter.from_spec,
        "torch": TorchAdapter.from_spec,
        "predictions": PredictionsAdapter.from_spec,
    }
)
"""The loader of each ``model.adapter`` kind the spec schema allows."""


def load_model(model: SklearnModelSpec | TorchModelSpec | PredictionsModelSpec, source: ModelSource) -> ModelAdapter:
    """The adapter for the spec's ``model`` (or ``baseline``) section, loaded from ``source``.

    Raises
    ------
    ModelError, UnsafeModelError, MissingExtraError, DataError
        As the adapter's ``from_spec`` does: an unreadable or unsafe model file, a missing
        optional dependency, a model that does not fit its data.
    """
    return LOADERS[model.adapter](model, source)
