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
    feature_values: tuple[tuple[str, ...], ...] = ()
    """Each feature's value labels, in order."""
    combos: np.ndarray | None = None
    """``(n_groups, n_features)`` index of each group's value in ``feature_values``."""

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

    Groups are ordered by each feature's own order (categories as declared, numbers
    numerically, text alphabetically); intersections that no row has are not groups.
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
    observed, group_codes = _compact(combined, int(np.prod(shape)))
    combos = np.stack(np.unravel_index(observed, shape), axis=1).astype(np.int64)
    return _grouping(features, tuple(tuple(v) for v in feature_values), combos, group_codes)


def coarsen(fine: Grouping, features: Sequence[str]) -> tuple[Grouping, np.ndarray]:
    """The grouping by a subset of ``fine``'s features, and the coarse group of each fine group.

    Works on the groups, not the rows: ``counts_coarse = sum of counts_fine over mapping``.
    """
    assert fine.combos is not None, "coarsen() needs a grouping made by encode()"
    positions = [fine.features.index(f) for f in features]
    values = tuple(fine.feature_values[i] for i in positions)
    shape = tuple(len(v) for v in values)
    sub = fine.combos[:, positions]
    combined = np.ravel_multi_index(tuple(sub.T), shape)
    observed, mapping = _compact(combined, int(np.prod(shape)))
    combos = np.stack(np.unravel_index(observed, shape), axis=1).astype(np.int64)
    coarse = _grouping(tuple(features), values, combos, mapping[fine.codes])
    return coarse, mapping


def _grouping(
    features: tuple[str, ...], values: tuple[tuple[str, ...], ...], combos: np.ndarray, codes: np.ndarray
) -> Grouping:
    labels = tuple(INTERSECTION_SEPARATOR.join(values[i][j] for i, j in enumerate(row)) for row in combos.tolist())
    return Grouping(
        scope=scope_name(features),
        features=features,
        labels=labels,
        codes=codes,
        feature_values=values,
        combos=combos,
    )


def _compact(combined: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Observed values of ``combined`` (sorted) and each row's index among them, in O(rows)."""
    if size <= 1 << 24:
        present = np.bincount(combined, minlength=size) > 0
        observed = np.flatnonzero(present)
        remap = np.cumsum(present) - 1
        return observed, remap[combined].astype(np.int64, copy=False)
    observed, codes = np.unique(combined, return_inverse=True)
    return observed, codes.astype(np.int64, copy=False).reshape(-1)


def group_label(value: object) -> str:
    """The label of one sensitive value: integral numbers without a decimal point.

    >>> group_label(2.0), group_label(2.5), group_label(True), group_label("F")
    ('2', '2.5', 'True', 'F')
    """
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _factorize(column: pd.Series, name: str, *, missing: str, where: str) -> tuple[np.ndarray, list[str]]:
    """Codes of ``column``'s observed values, ordered as the data type orders them.

    Categories keep their declared order, numbers sort numerically, anything else sorts
    as text; missing values (with ``missing="group"``) come last as the 'missing' group.
    """
    is_missing = column.isna().to_numpy()
    if is_missing.any() and missing != "group":
        rows = np.flatnonzero(is_missing) + 1
        shown = ", ".join(str(r) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
        raise DataError(
            f"sensitive column {name!r} has {len(rows)} missing value(s) (data row {shown}, counting from 1 after the header)",
            where=where,
            hint="fill or drop those rows, or set `data.missing_sensitive: group` "
            "to audit them as an explicit 'missing' group",
        )
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = column.cat.remove_unused_categories()
        codes = present.cat.codes.to_numpy(dtype=np.int64)
        values = [group_label(c) for c in present.cat.categories]
    elif pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=True)
        values = [group_label(u) for u in uniques]
    else:
        codes, uniques = pd.factorize(column.astype("string"), sort=True, use_na_sentinel=True)
        values = [str(u) for u in uniques]
    if len(set(values)) != len(values):
        raise DataError(
            f"sensitive column {name!r} has distinct values with the same label "
            f"({', '.join(sorted({v for v in values if values.count(v) > 1}))})",
            where=where,
            hint="make the column's values distinct as text (e.g. do not mix 1 and '1')",
        )
    if is_missing.any():
        if MISSING_GROUP in values:
            raise DataError(
                f"sensitive column {name!r} has a real value {MISSING_GROUP!r}, which would merge with "
                "the group of missing values",
                where=where,
                hint="rename that value, or set `data.missing_sensitive: error` and fill the gaps",
            )
        codes = np.where(codes < 0, len(values), codes)
        values.append(MISSING_GROUP)
    return np.asarray(codes, dtype=np.int64), values
