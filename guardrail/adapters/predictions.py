"""Audit any model through its outputs: predictions stored as columns of the data table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from guardrail.adapters.base import ModelSource, Predictions
from guardrail.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.spec.models import PredictionsModelSpec


class PredictionsAdapter:
    """A model's predicted labels (and, optionally, its scores) read from columns of the data."""

    kind = "predictions"

    def __init__(self, column: str, score_column: str | None = None, *, where: str = "data") -> None:
        self.column = column
        self.score_column = score_column
        self.where = where

    @classmethod
    def from_spec(cls, model: PredictionsModelSpec, source: ModelSource) -> PredictionsAdapter:
        """The spec's ``adapter: predictions`` section; errors name the data file."""
        return cls(model.column, model.score_column, where=source.data_where)

    @property
    def features(self) -> tuple[str, ...]:
        return ()

    def predict(self, data: pd.DataFrame, positive_label: object) -> Predictions:
        import numpy as np

        for role, name in (("model.column", self.column), ("model.score_column", self.score_column)):
            if name is not None and name not in data.columns:
                raise DataError(
                    f"{role} {name!r} is not a column of the data",
                    where=self.where,
                    hint=f"available columns: {_columns(data.columns)}",
                )
        labels = data[self.column]
        if labels.isna().any():
            raise DataError(
                f"prediction column {self.column!r} has {int(labels.isna().sum())} missing value(s)",
                where=self.where,
                hint="every audited row needs a prediction",
            )
        scores = None
        if self.score_column is not None:
            import pandas as pd

            column = data[self.score_column]
            numbers = column.astype(float) if pd.api.types.is_bool_dtype(column) else pd.to_numeric(column, errors="coerce")
            text = (numbers.isna() & column.notna()).to_numpy()
            if text.any():
                first = int(text.argmax())
                raise DataError(
                    f"score column {self.score_column!r} holds {int(text.sum())} value(s) that are not numbers, "
                    f"e.g. {str(column.iloc[first])[:40]!r} in data row {first + 1}",
                    where=self.where,
                    hint="scores are probabilities of the positive class, numbers in [0, 1]",
                )
            scores = numbers.to_numpy(dtype=float)
            if not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any():
                raise DataError(
                    f"score column {self.score_column!r} must hold probabilities in [0, 1] without gaps",
                    where=self.where,
                )
        return Predictions(labels=labels.to_numpy(), scores=scores)


def _columns(names: Iterable[object], shown: int = 30) -> str:
    """The first ``shown`` column names, comma-separated (the error stays one readable line)."""
    listed = [str(name) for name in names]
    more = f", … ({len(listed) - shown} more)" if len(listed) > shown else ""
    return ", ".join(listed[:shown]) + more
