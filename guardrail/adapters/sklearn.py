"""scikit-learn models saved with skops, loaded with only trusted types."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.base import ModelSource, Predictions
from guardrail.adapters.safety import refuse_pickle
from guardrail.core.errors import MissingExtraError, ModelError, UnsafeModelError

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.spec.models import SklearnModelSpec


class SklearnAdapter:
    """A fitted scikit-learn estimator (or pipeline) from a ``.skops`` file.

    Types outside skops' default trusted set are refused unless listed in ``trusted_types``.
    """

    kind = "sklearn"

    def __init__(self, estimator: Any, features: Sequence[str]) -> None:
        self.estimator = estimator
        self._features = tuple(features)

    @property
    def features(self) -> tuple[str, ...]:
        return self._features

    @classmethod
    def from_spec(cls, model: SklearnModelSpec, source: ModelSource) -> SklearnAdapter:
        """The spec's ``adapter: sklearn`` section: its ``.skops`` file, read with ``data.features``."""
        assert source.path is not None
        return cls.load(source.path, trusted_types=model.trusted_types, features=source.features)

    @classmethod
    def load(cls, path: Path, *, trusted_types: Sequence[str] = (), features: Sequence[str] | None = None) -> SklearnAdapter:
        refuse_pickle(path)
        try:
            import skops.io as sio
        except ImportError:
            raise MissingExtraError("skops", "fairness") from None
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as exc:  # skops raises assorted errors for non-skops files
            raise ModelError(
                f"{path} is not a readable skops file ({type(exc).__name__}: {exc})",
                hint="save scikit-learn models with `skops.io.dump(model, 'model.skops')`",
            ) from None
        refused = sorted(set(untrusted) - set(trusted_types))
        if refused:
            raise UnsafeModelError(
                f"refusing to load {path}: it contains types that are not trusted by default: {', '.join(refused)}",
                hint="loading a type runs its code; if you trust these types, list them under "
                "`model.trusted_types` in the spec",
            )
        estimator = sio.load(path, trusted=list(untrusted))
        if not hasattr(estimator, "predict"):
            raise ModelError(f"{path} holds a {type(estimator).__name__}, which has no predict()")
        expected = getattr(estimator, "feature_names_in_", None)
        if features is None:
            if expected is None:
                raise ModelError(
                    f"the model in {path} does not record its input columns",
                    hint="list them under `data.features` in the spec",
                )
            features = [str(name) for name in expected]
        elif expected is not None and list(map(str, expected)) != list(features):
            raise ModelError(
                f"data.features {list(features)} differ from the columns the model was fitted on {list(expected)}",
                hint="remove data.features to use the model's own list, or fix its order",
            )
        return cls(estimator, features)

    def predict(self, data: pd.DataFrame, positive_label: object) -> Predictions:
        import numpy as np

        missing = [f for f in self._features if f not in data.columns]
        if missing:
            raise ModelError(
                f"the model needs column(s) {', '.join(map(repr, missing))}, which the data does not have",
                hint="audit the model on data with the columns it was trained on",
            )
        inputs = data.loc[:, list(self._features)]
        classes = [c.item() if hasattr(c, "item") else c for c in getattr(self.estimator, "classes_", [])]
        try:
            with warnings.catch_warnings():
                # "X has feature names, but … was fitted without feature names": the spec's
                # data.features already fixes the columns and their order.
                warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
                labels = np.asarray(self.estimator.predict(inputs))
                scores = None
                if hasattr(self.estimator, "predict_proba") and positive_label in classes and len(classes) == 2:
                    scores = np.asarray(self.estimator.predict_proba(inputs))[:, classes.index(positive_label)]
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(
                f"the model could not predict on the data: {type(exc).__name__}: {exc}",
                hint="check that the data has the same columns and types as the training data",
            ) from None
        if len(labels) != len(data):
            raise ModelError(f"the model returned {len(labels)} predictions for {len(data)} rows")
        return Predictions(labels=labels, scores=scores, classes=tuple(classes))
