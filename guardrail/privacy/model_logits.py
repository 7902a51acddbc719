"""A binary model read on the log scale, in float64, for the membership attacks.

Both attacks read the model on the log scale whenever the model allows it
(:func:`model_logits`): a torch model's logits; a scikit-learn model's ``decision_function``
when it is the log-odds of its ``predict_proba`` (logistic regression, gradient boosting),
else its ``predict_log_proba`` when that keeps digits the probabilities lost (naive Bayes).
Other models (a forest, whose probabilities are vote shares; a predictions table) are read
through the positive-class probability, whose ``1 − p`` underflows on confident predictions
(float32 softmax: beyond a log-odds of ≈ 16.6); see :mod:`guardrail.privacy.outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from guardrail.core.errors import DataError
from guardrail.privacy.outputs import Logits

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ReadLogits", "model_logits", "reference_output"]


@dataclass(frozen=True)
class ReadLogits:
    """A binary model's float64 outputs on the log scale, columns ``(not positive, positive)``,
    and a phrase saying where they came from (for the metrics' details)."""

    logits: Logits
    source: str


def model_logits(model: Any, data: pd.DataFrame, positive_label: Any) -> ReadLogits | None:
    """Read a binary model on the log scale in float64, or ``None`` when it offers only probabilities.

    * torch (:class:`~guardrail.adapters.torch.TorchAdapter`): its logits, cast to float64
      before any softmax;
    * scikit-learn: ``decision_function`` when ``expit`` of it reproduces ``predict_proba``
      on these rows (it is then the exact log-odds: logistic regression, gradient boosting);
      otherwise ``predict_log_proba`` when it is finite where ``predict_proba`` rounds to 0
      (it then carries digits the probabilities lost, e.g. naive Bayes); otherwise ``None``:
      the probabilities are all there is (a forest's ``predict_log_proba`` is the log of
      its vote shares, and reading it instead would only change ties in the last bit);
    * anything else (a predictions table): ``None``.

    Columns are ordered (not positive, positive), matching labels ``y_true`` as 0/1.
    """
    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.adapters.torch import TorchAdapter

    if isinstance(model, TorchAdapter):
        classes = list(model.classes)
        if len(classes) != 2 or positive_label not in classes:
            return None
        values = model.logits(data)
        positive = classes.index(positive_label)
        return ReadLogits(Logits(values[:, [1 - positive, positive]]), "float64 logits of the torch model")
    if isinstance(model, SklearnAdapter):
        return _sklearn_logits(model, data, positive_label)
    return None


def _sklearn_logits(model: Any, data: pd.DataFrame, positive_label: Any) -> ReadLogits | None:
    import warnings

    from scipy.special import expit

    estimator = model.estimator
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(estimator, "classes_", [])]
    if len(classes) != 2 or positive_label not in classes:
        return None
    positive = classes.index(positive_label)
    inputs = data.loc[:, list(model.features)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
        proba = np.asarray(estimator.predict_proba(inputs), dtype=np.float64) if hasattr(estimator, "predict_proba") else None
        if proba is not None and hasattr(estimator, "decision_function"):
            decision = np.asarray(estimator.decision_function(inputs), dtype=np.float64)
            if decision.ndim == 1 and np.allclose(expit(decision), proba[:, 1], rtol=1e-9, atol=1e-12):
                log_odds = decision if positive == 1 else -decision
                return ReadLogits(Logits(log_odds), "decision_function (the exact log-odds of predict_proba)")
        if proba is not None and hasattr(estimator, "predict_log_proba"):
            with np.errstate(divide="ignore"):
                log_proba = np.asarray(estimator.predict_log_proba(inputs), dtype=np.float64)
            if np.any((proba == 0) & np.isfinite(log_proba)):
                return ReadLogits(
                    Logits(log_proba[:, [1 - positive, positive]]),
                    "predict_log_proba (finite where predict_proba rounds to 0)",
                )
    return None


def reference_output(model: Any, data: pd.DataFrame, positive_label: Any) -> Logits | npt.NDArray[np.float64]:
    """What a retrained reference model should hand LiRA: :class:`~guardrail.privacy.outputs.Logits`
    read by :func:`model_logits` when the model allows it, else its positive-class probability.

    For the runner's ``retrain`` (``AuditContext.retrain``): ``predict(frame)`` returning this
    keeps LiRA's reference confidences as precise as the target's.
    """
    read = model_logits(model, data, positive_label)
    if read is not None:
        return read.logits
    scores = model.predict(data, positive_label).scores
    if scores is None:
        raise DataError("the retrained model gives no probability for the positive class")
    return np.asarray(scores, dtype=np.float64)
