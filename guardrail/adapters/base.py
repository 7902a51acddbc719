"""The model adapter protocol and the predictions it yields."""

from __future__ import annotations

from dataclasses import dataclass
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
