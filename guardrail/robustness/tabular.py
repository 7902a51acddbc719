"""Changed copies of tabular rows: the sensitive attribute set to each other value
(counterfactual), and numeric features moved by a small share of their spread (perturbation).

Both return the changed rows as one frame plus, for each of its rows, which original row it
came from, so that the whole probe is scored in one batch (:mod:`guardrail.robustness.scoring`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from guardrail.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Counterfactuals:
    """Every row with ``attribute`` set to each value it does not have."""

    attribute: str
    values: tuple[object, ...]
    """The attribute's observed values, in order."""
    frame: pd.DataFrame
    source: np.ndarray
    """For each row of ``frame``, the index of the original row."""
    assigned: np.ndarray
    """For each row of ``frame``, the index in ``values`` of the value it was given."""
    original: np.ndarray
    """For each original row, the index in ``values`` of its own value (-1 when missing)."""


def counterfactuals(data: pd.DataFrame, attribute: str) -> Counterfactuals:
    """``data`` (the model's input columns) with ``attribute`` set to every other observed value.

    A row whose value is missing gets every observed value. The column keeps its dtype (a
    categorical column's categories are the observed values, so every assignment is valid).
    """
    import pandas as pd

    column = data[attribute]
    present = column.dropna()
    values = tuple(pd.unique(present))
    if len(values) < 2:
        raise DataError(
            f"column {attribute!r} takes {len(values)} value(s) among the rows probed: there is no other value to set",
            where=f"data column {attribute!r}",
            hint="probe data in which the attribute takes at least two values",
        )
    index = {value: i for i, value in enumerate(values)}
    original = np.fromiter((index.get(v, -1) if not _missing(v) else -1 for v in column.tolist()), dtype=np.int64, count=len(column))
    parts, sources, assigned = [], [], []
    for i, value in enumerate(values):
        rows = np.flatnonzero(original != i)
        part = data.iloc[rows].copy()
        part[attribute] = pd.Series([value] * len(part), index=part.index, dtype=column.dtype)
        parts.append(part)
        sources.append(rows)
        assigned.append(np.full(len(rows), i, dtype=np.int64))
    frame = pd.concat(parts, ignore_index=True)
    return Counterfactuals(attribute, values, frame, np.concatenate(sources), np.concatenate(assigned), original)


def _missing(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value)) if not isinstance(value, str) else False  # type: ignore[call-overload]


def numeric_features(data: pd.DataFrame, candidates: Sequence[str]) -> tuple[str, ...]:
    """The columns of ``candidates`` that hold numbers (booleans excluded) and vary."""
    import pandas as pd

    found = []
    for name in candidates:
        column = data[name]
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            continue
        if column.dropna().nunique() > 1:
            found.append(name)
    return tuple(found)


ROBUST_SPREAD = 1.349
"""The interquartile range of a normal distribution in standard deviations: IQR / 1.349 is a
standard deviation that a long tail or a spike of zeros does not inflate."""


@dataclass(frozen=True)
class Shifted:
    """Every row with each numeric feature moved by ``strength`` × its spread."""

    strength: float
    frame: pd.DataFrame
    spreads: dict[str, float]


def spread(values: np.ndarray) -> float:
    """A feature's spread: its interquartile range / 1.349 (the standard deviation of a normal
    feature). Zero for a feature whose middle half is one value (a count that is zero for most
    rows, a flag): moving such a feature by a share of its spread would turn a zero into a
    value no row has, which is not a neutral change, so it is not moved."""
    finite = values[np.isfinite(values)]
    if len(finite) < 2:
        return 0.0
    q1, q3 = np.quantile(finite, [0.25, 0.75])
    return float(q3 - q1) / ROBUST_SPREAD


def movable(data: pd.DataFrame, candidates: Sequence[str]) -> tuple[str, ...]:
    """The numeric features of ``candidates`` with a spread above zero (:func:`spread`)."""
    return tuple(n for n in numeric_features(data, candidates) if spread(data[n].to_numpy(dtype=float, na_value=np.nan)) > 0)


def shifted(data: pd.DataFrame, features: Sequence[str], strength: float, *, seed: int) -> Shifted:
    """``data`` with every feature of ``features`` moved up or down (a random sign per row and
    feature) by ``strength`` times the feature's spread over ``data`` (:func:`spread`), kept
    within the range the feature takes there; missing values stay missing.

    The signs depend on the seed and the feature only, not on the strength, so that the curve
    follows the same rows moving further in the same direction.
    """
    frame = data.copy()
    spreads: dict[str, float] = {}
    for name in features:
        values = data[name].to_numpy(dtype=float, na_value=np.nan)
        spreads[name] = spread(values)
        rng = np.random.default_rng([seed, zlib.crc32(f"shift/{name}".encode())])
        signs = rng.choice((-1.0, 1.0), size=len(values))
        low, high = np.nanmin(values), np.nanmax(values)
        frame[name] = np.clip(values + signs * strength * spreads[name], low, high)
    return Shifted(strength, frame, spreads)
