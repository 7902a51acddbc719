"""A numeric view of a data table for explanation methods, and the model as a function on it.

Every tabular explainer works on one matrix of *codes*: numeric features as floats (missing
values filled with the column median), categorical features as integer indices into their
levels (a missing value is a level of its own). :meth:`TabularView.to_frame` turns codes
back into the columns the model reads, so perturbation methods (LIME, feature ablation,
Shapley sampling) perturb the *raw* features and call the model through ``predict_proba``.

Gradient methods need a differentiable model: :class:`GradientModel` holds a torch MLP from
``guardrail train`` with its one-hot encoding, and the map from encoded columns back to
source features (attributions of a feature's one-hot columns are summed).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.errors import AuditError

if TYPE_CHECKING:
    import pandas as pd
    import torch

ProbaFn = Callable[[np.ndarray], np.ndarray]
"""Codes ``(n, d)`` → probability of the positive class ``(n,)``."""


@dataclass(frozen=True)
class TabularView:
    """The audited rows as codes, with what it takes to decode them.

    ``levels`` maps the index of each categorical feature to its values (``None`` stands for
    a missing value); ``baseline`` is the reference row: the median of each numeric feature
    and the most frequent level of each categorical one.
    """

    features: tuple[str, ...]
    levels: dict[int, tuple[Any, ...]]
    codes: np.ndarray
    baseline: np.ndarray

    @property
    def categorical(self) -> tuple[int, ...]:
        return tuple(sorted(self.levels))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, features: tuple[str, ...]) -> TabularView:
        import pandas as pd

        columns, levels, baseline = [], {}, []
        for j, name in enumerate(features):
            column = frame[name]
            if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
                values = pd.to_numeric(column, errors="coerce").astype("float64")
                median = float(values.median()) if values.notna().any() else 0.0
                columns.append(values.fillna(median).to_numpy())
                baseline.append(median)
            else:
                present = sorted({v for v in column.dropna()}, key=str)
                found: tuple[Any, ...] = (*present, None) if column.isna().any() else tuple(present)
                index = {v: i for i, v in enumerate(found)}
                codes = column.map(lambda v: index[None] if pd.isna(v) else index[v]).to_numpy(dtype=np.float64)
                levels[j] = found
                columns.append(codes)
                baseline.append(float(np.bincount(codes.astype(np.int64), minlength=len(found)).argmax()))
        matrix = np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))
        return cls(tuple(features), levels, matrix, np.asarray(baseline, dtype=np.float64))

    def to_frame(self, codes: np.ndarray) -> pd.DataFrame:
        """Codes back to a table with the model's columns (categorical codes are rounded)."""
        import pandas as pd

        data: dict[str, Any] = {}
        for j, name in enumerate(self.features):
            if j in self.levels:
                values = np.asarray([np.nan if v is None else v for v in self.levels[j]], dtype=object)
                index = np.clip(np.rint(codes[:, j]).astype(np.int64), 0, len(values) - 1)
                data[name] = values[index]
            else:
                data[name] = codes[:, j]
        return pd.DataFrame(data, columns=list(self.features))

    def describe(self, row: np.ndarray) -> dict[str, str]:
        """One row of codes as readable values (for local explanations)."""
        out = {}
        for j, name in enumerate(self.features):
            if j in self.levels:
                value = self.levels[j][int(round(row[j]))]
                out[name] = "(missing)" if value is None else str(value)
            else:
                out[name] = f"{row[j]:.4g}"
        return out


def direct_encoder(encoder: dict[str, Any], view: TabularView) -> Callable[[np.ndarray], np.ndarray] | None:
    """Codes → the torch adapter's encoding (:func:`~guardrail.adapters.mlp.encode_table`) without a table.

    The same float32 matrix as ``encode_table(encoder, view.to_frame(codes))`` (a test checks
    it), built with array indexing instead of one string comparison per level and row; None
    when the encoder and the view disagree on a feature's kind (then use the table path).
    """
    position = {name: j for j, name in enumerate(view.features)}
    numeric: list[tuple[int, float, float]] = []
    for name, mean, std in zip(encoder["numeric"], encoder["means"], encoder["stds"], strict=True):
        j = position.get(name)
        if j is None or j in view.levels:
            return None
        numeric.append((j, float(mean), float(std)))
    categorical: list[tuple[int, np.ndarray]] = []
    offset = len(numeric)
    for name, levels in encoder["categorical"]:
        j = position.get(name)
        if j is None or j not in view.levels:
            return None
        index = {str(level): offset + i for i, level in enumerate(levels)}
        categorical.append((j, np.asarray([-1 if v is None else index.get(str(v), -1) for v in view.levels[j]])))
        offset += len(levels)
    width = offset

    def encode(codes: np.ndarray) -> np.ndarray:
        out = np.zeros((len(codes), width), dtype=np.float32)
        for k, (j, mean, std) in enumerate(numeric):
            out[:, k] = np.nan_to_num((codes[:, j] - mean) / std, nan=0.0)
        for j, lookup in categorical:
            columns = lookup[np.clip(np.rint(codes[:, j]).astype(np.int64), 0, len(lookup) - 1)]
            hit = np.flatnonzero(columns >= 0)
            out[hit, columns[hit]] = 1.0
        return out

    return encode


def batched(fn: ProbaFn, batch_size: int) -> ProbaFn:
    """``fn`` applied in chunks of at most ``batch_size`` rows."""

    def apply(codes: np.ndarray) -> np.ndarray:
        if len(codes) <= batch_size:
            return fn(codes)
        return np.concatenate([fn(codes[i : i + batch_size]) for i in range(0, len(codes), batch_size)])

    return apply


def proba_function(model: Any, view: TabularView, positive_label: Any, batch_size: int) -> ProbaFn:
    """``P(positive)`` of a guardrail model adapter (sklearn or torch) on codes."""
    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.adapters.torch import TorchAdapter

    if isinstance(model, SklearnAdapter):
        estimator = model.estimator
        classes = [c.item() if hasattr(c, "item") else c for c in getattr(estimator, "classes_", [])]
        if not hasattr(estimator, "predict_proba") or positive_label not in classes:
            raise AuditError(
                "explanations need the model's probability of the positive class, and this model gives none",
                hint="use a classifier with predict_proba",
            )
        column = classes.index(positive_label)

        def sklearn_proba(codes: np.ndarray) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
                proba = estimator.predict_proba(view.to_frame(codes))
            return np.asarray(proba, dtype=np.float64)[:, column]

        return batched(sklearn_proba, batch_size)
    if isinstance(model, TorchAdapter) and model.tokenizer is None:
        if positive_label not in model.classes:
            raise AuditError(f"the positive label {positive_label!r} is not among the model's classes {list(model.classes)}")
        column = model.classes.index(positive_label)
        encode = direct_encoder(model.description["encoder"], view)
        if encode is None:

            def torch_proba(codes: np.ndarray) -> np.ndarray:
                return model.predict_proba(view.to_frame(codes), batch_size=batch_size)[:, column]

            return batched(torch_proba, batch_size)
        import torch

        network, device = model.model, model.device

        def direct_proba(codes: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                logits = network(torch.from_numpy(encode(codes)).to(device))
            return np.asarray(logits.softmax(-1)[:, column].cpu().numpy(), dtype=np.float64)

        return batched(direct_proba, batch_size)
    kind = getattr(model, "kind", type(model).__name__)
    raise AuditError(
        f"tabular explanations need a model that can score new rows; this one is a {kind!r} model",
        hint="use the sklearn adapter or a tabular MLP from `guardrail train` (a predictions table cannot be re-scored)",
    )


@dataclass(frozen=True)
class GradientModel:
    """A differentiable model on encoded inputs, with the map back to source features.

    ``groups`` is ``(width, d)``: column ``j`` is 1 on the encoded columns of feature ``j``,
    so ``attributions @ groups`` sums one-hot attributions to their feature.
    """

    forward: Callable[[torch.Tensor], torch.Tensor]
    encode: Callable[[np.ndarray], torch.Tensor]
    groups: np.ndarray

    def to_features(self, encoded: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(encoded, dtype=np.float64) @ self.groups)


def gradient_model(model: Any, view: TabularView, positive_label: Any) -> GradientModel:
    """The torch MLP of a :class:`~guardrail.adapters.torch.TorchAdapter` as a :class:`GradientModel`."""
    from guardrail.adapters.mlp import encode_table
    from guardrail.adapters.torch import TorchAdapter

    if not isinstance(model, TorchAdapter) or model.tokenizer is not None:
        kind = getattr(model, "kind", type(model).__name__)
        raise AuditError(
            f"gradient methods (integrated_gradients, gradient_shap) need a tabular torch model; this one is a {kind!r} model",
            hint="use methods: [feature_ablation, shapley_sampling, lime] for models without gradients",
        )
    import torch

    encoder = model.description["encoder"]
    position = {name: j for j, name in enumerate(view.features)}
    owners = [position[name] for name in encoder["numeric"]]
    for name, levels in encoder["categorical"]:
        owners += [position[name]] * len(levels)
    groups = np.zeros((len(owners), len(view.features)))
    groups[np.arange(len(owners)), owners] = 1.0
    column = model.classes.index(positive_label)
    network = model.model

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(network(inputs), dim=-1)[:, column]

    direct = direct_encoder(encoder, view)

    def encode(codes: np.ndarray) -> torch.Tensor:
        matrix = direct(codes) if direct is not None else encode_table(encoder, view.to_frame(codes))
        return torch.tensor(matrix, device=model.device)

    return GradientModel(forward, encode, groups)
