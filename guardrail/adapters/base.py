"""The model adapter protocol, the predictions it yields, and where a spec's model is found."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class Predictions:
    """A model's decisions on the audit data: labels as in the target column, and the
    probability of the positive class when the model gives one."""

    labels: np.ndarray
    scores: np.ndarray | None
    classes: tuple[object, ...] = ()
    """Every label the model can output, when it declares them (scikit-learn's ``classes_``)."""


class ModelAdapter(Protocol):
    """Produces predictions for a data table; ``features`` are the columns it reads."""

    kind: str

    @property
    def features(self) -> tuple[str, ...]: ...

    def predict(self, data: pd.DataFrame, positive_label: object) -> Predictions: ...


@dataclass(frozen=True)
class ModelSource:
    """Where a spec's model section points, as the spec loader resolved it: what an adapter's
    ``from_spec`` needs besides the section itself (:mod:`guardrail.adapters.loading`)."""

    path: Path | None
    """The model file or folder (a torch module's weights), resolved; ``None`` for predictions."""
    features: tuple[str, ...] | None
    """``data.features``: the columns the model reads, in order, when the spec lists them."""
    spec_folder: Path
    """The spec's folder, where a torch module's ``.py`` file is looked for first."""
    data_where: str
    """How errors name the audit data file."""
