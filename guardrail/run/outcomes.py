"""Turn a target column and a model's outputs into what auditors read, for each task.

* binary: booleans "is the positive class" (declared, or 1/True for a 0/1 target);
* multiclass: indices into the sorted class labels of the target and the predictions;
* regression: floats.

Predicted labels the target's label space does not know mean the model does not match
its data, and are an error (exit 3) rather than silently counted as negatives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.errors import DataError, ModelError

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.adapters.base import Predictions

Predict = Callable[[Any], "Predictions"]


@dataclass(frozen=True)
class Outcomes:
    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None = None
    positive_label: Any = None
    class_labels: tuple[Any, ...] = ()
    y_pred_baseline: np.ndarray | None = None


def prepare_outcomes(
    task: str,
    target: pd.Series,
    predict: Predict,
    predict_baseline: Predict | None,
    *,
    declared_positive: Any,
    where: str,
    labels: Sequence[Any] | None = None,
) -> Outcomes:
    """Labels and predictions in the form the auditors expect for ``task``.

    ``labels`` are the target's distinct values over every row when ``target`` holds only
    some of them (a batch of a streamed pass): the positive class, the label space and the
    class order then come from them, so every batch is coded alike."""
    _no_missing(target, where)
    values = _values(target, labels)
    if task == "regression":
        return _regression(target, predict, predict_baseline, where)
    if task == "multiclass":
        return _multiclass(target, predict, predict_baseline, where, values)
    return _binary(target, predict, predict_baseline, declared_positive, where, values)


def _values(target: pd.Series, labels: Sequence[Any] | None) -> pd.Series:
    """The target's distinct values: ``labels`` when given, else those of ``target``."""
    import pandas as pd

    if labels is None:
        return target
    return pd.Series(list(labels), name=target.name, dtype=target.dtype if len(labels) else None)


def label_outcomes(
    task: str, target: pd.Series, *, declared_positive: Any, where: str, labels: Sequence[Any] | None = None
) -> Outcomes:
    """The labels alone, for audits of the data without a model: ``y_pred`` is empty."""
    _no_missing(target, where)
    empty = np.zeros(0, dtype=bool)
    values = _values(target, labels)
    if task == "regression":
        return Outcomes(y_true=target.to_numpy(), y_pred=empty)
    if task == "multiclass":
        labels = tuple(sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v)))
        index = {label: i for i, label in enumerate(labels)}
        codes = np.fromiter((index[v] for v in target.tolist()), dtype=np.int64, count=len(target))
        return Outcomes(y_true=codes, y_pred=empty, class_labels=labels)
    positive = positive_label_of(values, declared_positive, where=where)
    return Outcomes(y_true=(target == positive).to_numpy(dtype=bool), y_pred=empty, positive_label=positive)


def _binary(
    target: pd.Series, predict: Predict, predict_baseline: Predict | None, declared: Any, where: str, values: pd.Series
) -> Outcomes:
    positive = positive_label_of(values, declared, where=where)
    predictions = predict(positive)
    _check_classes(predictions.classes, values, where=where)
    if predictions.classes and positive not in set(predictions.classes):
        raise ModelError(
            f"the positive label {positive!r} is not among the model's classes {list(predictions.classes)}: "
            "the model does not match its data",
            where=where,
            hint="name the model's outputs with the target's labels (model.classes for a torch model), or set data.positive_label",
        )
    label_space = {*values.unique().tolist(), positive, *predictions.classes}
    if declared is None:
        label_space |= {0, 1} if not isinstance(positive, bool) else {False, True}
    baseline = None
    if predict_baseline is not None:
        baseline_predictions = predict_baseline(positive)
        baseline = _as_positive(baseline_predictions.labels, label_space | set(baseline_predictions.classes), positive, where=where)
    return Outcomes(
        y_true=(target == positive).to_numpy(dtype=bool),
        y_pred=_as_positive(predictions.labels, label_space, positive, where=where),
        y_score=None if predictions.scores is None else np.asarray(predictions.scores, dtype=float),
        positive_label=positive,
        y_pred_baseline=baseline,
    )


def _multiclass(target: pd.Series, predict: Predict, predict_baseline: Predict | None, where: str, values: pd.Series) -> Outcomes:
    if predict_baseline is not None:
        raise DataError("a baseline model is supported for binary targets only", where=where, hint="remove `baseline`")
    predictions = predict(None)
    _check_classes(predictions.classes, values, where=where)
    truth = target.to_numpy()
    known = set(values.unique().tolist()) | set(predictions.classes)
    foreign = set(np.unique(predictions.labels).tolist()) - known
    if foreign:
        raise ModelError(
            f"the model predicts class(es) {sorted(map(str, foreign))} the target never takes: the model does not match its data",
            where=where,
        )
    labels = tuple(sorted(known, key=lambda v: (str(type(v)), v)))
    index = {label: i for i, label in enumerate(labels)}
    return Outcomes(
        y_true=np.fromiter((index[v] for v in truth.tolist()), dtype=np.int64, count=len(truth)),
        y_pred=np.fromiter((index[v] for v in np.asarray(predictions.labels).tolist()), dtype=np.int64, count=len(truth)),
        class_labels=labels,
    )


def _regression(target: pd.Series, predict: Predict, predict_baseline: Predict | None, where: str) -> Outcomes:
    import pandas as pd

    if predict_baseline is not None:
        raise DataError("a baseline model is supported for binary targets only", where=where, hint="remove `baseline`")
    if not pd.api.types.is_numeric_dtype(target.dtype) or pd.api.types.is_bool_dtype(target.dtype):
        raise DataError(
            f"target column {target.name!r} is not numeric; a regression audit needs numbers",
            where=where,
            hint="set data.task to binary or multiclass for labels",
        )
    predicted = np.asarray(predict(None).labels)
    try:
        values = predicted.astype(float)
    except (TypeError, ValueError):
        raise ModelError("the model's predictions are not numbers: the model does not match a regression target", where=where) from None
    if not np.isfinite(values).all():
        raise ModelError("the model's predictions contain missing or infinite values", where=where)
    return Outcomes(y_true=target.to_numpy(dtype=float), y_pred=values)


def _no_missing(target: pd.Series, where: str) -> None:
    if target.isna().any():
        raise DataError(
            f"target column {target.name!r} has {int(target.isna().sum())} missing value(s)",
            where=where,
            hint="drop rows without a label before auditing",
        )


def positive_label_of(target: pd.Series, declared: Any, *, where: str) -> Any:
    """The positive class of a binary target: declared, or 1/True when the target is 0/1."""
    _no_missing(target, where)
    values = sorted(target.unique().tolist(), key=str)
    if len(values) > 2:
        shown = ", ".join(map(repr, values[:6])) + (", …" if len(values) > 6 else "")
        raise DataError(
            f"target column {target.name!r} has {len(values)} classes ({shown}); the fairness audit needs a binary target",
            where=where,
            hint="set data.task: multiclass (one-vs-rest per class), or binarise the target",
        )
    if declared is not None:
        if declared not in values and len(values) > 1:
            hint = None
            if isinstance(declared, bool) and any(isinstance(v, str) for v in values):
                hint = f"YAML reads yes/no/on/off as booleans; quote the label: positive_label: \"{values[-1]}\""
            raise DataError(
                f"data.positive_label {declared!r} does not occur in target column {target.name!r} (values: {values})",
                where=where,
                hint=hint,
            )
        return declared
    if set(values) <= {0, 1}:
        return True if target.dtype == bool else 1
    raise DataError(
        f"cannot tell the positive class of target {target.name!r} (values: {values})",
        where=where,
        hint="set data.positive_label in the spec",
    )


def _check_classes(classes: Sequence[Any], target: pd.Series, *, where: str) -> None:
    """A model that names its classes must share at least one with the target column."""
    values = set(target.unique().tolist())
    if classes and not values & set(classes):
        raise ModelError(
            f"none of the model's classes {sorted(map(str, classes))} occurs in the target column "
            f"({sorted(map(str, values))[:10]}): the model does not match its data",
            where=where,
            hint="name the model's outputs with the target's labels (model.classes for a torch model)",
        )


def _as_positive(labels: np.ndarray, label_space: set[Any], positive: Any, *, where: str) -> np.ndarray:
    """Predicted labels as booleans (is it the positive class); foreign labels are an error."""
    seen = set(np.unique(labels).tolist())
    foreign = seen - label_space
    if foreign:
        raise ModelError(
            f"the model predicts label(s) {sorted(map(str, foreign))} outside the target's labels "
            f"({sorted(map(str, label_space))}): the model does not match its data",
            where=where,
            hint="check the target column and data.positive_label, or audit the model on its own kind of data",
        )
    return np.asarray(labels == positive, dtype=bool)


