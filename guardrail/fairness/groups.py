"""Encode one sensitive feature, or the intersection of several, as integer group codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from guardrail.errors import DataError

MISSING_GROUP = "missing"
"""Label of the explicit group formed by missing sensitive values, when the spec asks for it."""
INTERSECTION_SEPARATOR = " × "
SCOPE_SEPARATOR = "+"


@dataclass(frozen=True)
class Grouping:
    """Rows assigned to groups: ``codes[i]`` indexes ``labels``; every label has ≥ 1 row."""

    scope: str
    features: tuple[str, ...]
    labels: tuple[str, ...]
    codes: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.labels)


def scope_name(features: Sequence[str]) -> str:
    """``("sex", "race")`` → ``"sex+race"``."""
    return SCOPE_SEPARATOR.join(features)


def encode(
    frame: pd.DataFrame,
    features: Sequence[str],
    *,
    missing: str = "error",
    where: str = "data",
) -> Grouping:
    """Assign each row of ``frame`` to the group of its values in ``features``.

    Parameters
    ----------
    missing:
        ``"error"`` raises :class:`DataError` on a missing value; ``"group"`` puts such rows
        in an explicit ``missing`` group.

    Groups are ordered by the sorted string form of their values (categories in their
    declared order); intersections that no row has are not groups.
    """
    features = tuple(features)
    absent = [f for f in features if f not in frame.columns]
    if absent:
        raise DataError(
            f"sensitive column(s) {', '.join(map(repr, absent))} not found",
            where=where,
            hint=f"available columns: {', '.join(map(str, frame.columns))}",
        )
    feature_codes: list[np.ndarray] = []
    feature_values: list[list[str]] = []
    for feature in features:
        codes, values = _factorize(frame[feature], feature, missing=missing, where=where)
        feature_codes.append(codes)
        feature_values.append(values)
    shape = tuple(len(values) for values in feature_values)
    combined = np.ravel_multi_index(tuple(feature_codes), shape) if feature_codes else np.zeros(0, np.int64)
    observed, group_codes = np.unique(combined, return_inverse=True)
    labels = tuple(
        INTERSECTION_SEPARATOR.join(feature_values[i][j] for i, j in enumerate(index))
        for index in zip(*np.unravel_index(observed, shape), strict=True)
    )
    return Grouping(
        scope=scope_name(features),
        features=features,
        labels=labels,
        codes=group_codes.astype(np.int64, copy=False).reshape(-1),
    )


def _factorize(column: pd.Series, name: str, *, missing: str, where: str) -> tuple[np.ndarray, list[str]]:
    """Codes into the sorted string values of ``column``; missing values last, as 'missing'."""
    is_missing = column.isna().to_numpy()
    if is_missing.any() and missing != "group":
        rows = np.flatnonzero(is_missing)
        shown = ", ".join(str(r) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
        raise DataError(
            f"sensitive column {name!r} has {len(rows)} missing value(s) (0-based data rows {shown})",
            where=where,
            hint="fill or drop those rows, or set `data.missing_sensitive: group` "
            "to audit them as an explicit 'missing' group",
        )
    as_text = column.astype("string")
    codes, uniques = pd.factorize(as_text, sort=True, use_na_sentinel=True)
    values = [str(u) for u in uniques]
    if is_missing.any():
        codes = np.where(codes < 0, len(values), codes)
        values.append(MISSING_GROUP)
    return codes.astype(np.int64, copy=False), values
