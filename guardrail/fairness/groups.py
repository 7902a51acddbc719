"""Sensitive features as groups: one feature, or the intersection of several.

:func:`tabulate` builds the per-(group, y_true, y_pred) count table in chunks of rows, without
materialising a code per row, so that memory stays a small multiple of the input columns
even at tens of millions of rows; :func:`encode` gives each row's group when a caller needs
it.

Limits (what one input may cost; beyond them the audit stops with a :class:`DataError`, exit 3):

* :data:`MAX_LABEL_CHARS`: the longest group label (one sensitive value as text). Every
  metric repeats each group's label, in run.json, the history and the HTML report, so one
  5 MB value would cost gigabytes of output; map such values to short codes first.
* :data:`MAX_GROUPS`: the most groups in one grouping, one feature's values or an
  intersection's observed combinations. Beyond it the column is ID-like (a row key, a
  free-text field) and every per-group number would be noise; bin it, or audit another
  sensitive column.

Scope names (:func:`~guardrail.core.scopes.scope_name`) join features with
``+``, each percent-encoded for the characters scopes use as syntax (:mod:`guardrail.core.scopes`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from guardrail.core.errors import DataError
from guardrail.core.scopes import scope_name

MISSING_GROUP = "missing"
"""Label of the explicit group formed by missing sensitive values, when the spec asks for it."""
INTERSECTION_SEPARATOR = " × "
MAX_LABEL_CHARS = 200
"""Longest group label, in characters (see the module docstring)."""
MAX_GROUPS = 1000
"""Most groups in one grouping, one feature or an intersection (see the module docstring)."""
LONG_LABEL = (
    "sensitive column {column!r} has a value of {length:,} characters (data row {row}, counting from 1 "
    "after the header); group labels are limited to {limit} characters"
)
LONG_LABEL_HINT = "map the column's values to short labels (codes or categories) before the audit"
TOO_MANY_GROUPS = "{what} has {count:,} groups, more than the limit of {limit:,} in one grouping"
TOO_MANY_GROUPS_HINT = (
    "an ID-like or free-text column makes one group per row: bin it into fewer values, "
    "or audit another sensitive column"
)
CHUNK_ROWS = 1 << 20
_DENSE_LIMIT = 1 << 22
"""Largest number of value combinations counted in one dense array; beyond, combinations are
made compact with a sort first."""


@dataclass(frozen=True)
class Grouping:
    """Groups of a scope: labels in order, and each group's value index per feature.

    ``codes`` (each row's group) is present only when made by :func:`encode`.
    """

    scope: str
    features: tuple[str, ...]
    labels: tuple[str, ...]
    feature_values: tuple[tuple[str, ...], ...]
    combos: np.ndarray
    """``(n_groups, n_features)`` index of each group's value in ``feature_values``."""
    codes: np.ndarray | None = None

    @property
    def n_groups(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class _ValueTable:
    """One sensitive feature: its value labels in order, and a row encoder into them."""

    values: tuple[str, ...]
    encode: Callable[[slice], np.ndarray]


def check_sensitive(column: pd.Series, name: str, *, missing: str = "error", where: str = "data") -> None:
    """Raise :class:`DataError` if one sensitive column is beyond the limits of the module
    docstring (or, unless ``missing`` is ``"group"``, has missing values): the check a runner
    makes before any audit, so that such a column stops the run (exit 3) rather than each
    audit that groups by it. An intersection's number of groups is checked when it is built."""
    _value_table(column, name, missing=missing, where=where)


def group_label(value: object) -> str:
    """The label of one sensitive value: integral numbers without a decimal point.

    >>> group_label(2.0), group_label(2.5), group_label(True), group_label("F")
    ('2', '2.5', 'True', 'F')
    """
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def check_missing(column: pd.Series, name: str, *, where: str) -> None:
    """Raise :class:`DataError` if ``column`` has missing values, naming the first rows."""
    is_missing = column.isna().to_numpy()
    if is_missing.any():
        rows = np.flatnonzero(is_missing) + 1
        shown = ", ".join(str(r) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
        raise DataError(
            f"sensitive column {name!r} has {len(rows)} missing value(s) (data row {shown}, counting from 1 after the header)",
            where=where,
            hint="fill or drop those rows, or set `data.missing_sensitive: group` "
            "to audit them as an explicit 'missing' group",
        )


def check_declared_groups(rows: Mapping[str, int], name: str, expected: Sequence[object], *, where: str) -> None:
    """Raise :class:`DataError` unless the groups of column ``name`` (label → rows) are exactly
    the values ``data.groups`` declares: no unseen group, no declared group without rows."""
    declared = tuple(group_label(value) for value in expected)
    unseen = [label for label, n in rows.items() if n > 0 and label not in declared]
    if unseen:
        shown = ", ".join(f"{label!r} ({rows[label]} rows)" for label in unseen[:5])
        raise DataError(
            f"sensitive column {name!r} has value(s) not declared in data.groups: {shown}",
            where=where,
            hint="add them to data.groups if they are legitimate groups, or fix the data",
        )
    empty = [label for label in declared if rows.get(label, 0) == 0]
    if empty:
        raise DataError(
            f"group(s) {', '.join(map(repr, empty))} of {name!r}, declared in data.groups, have no rows: "
            "an empty group cannot be audited",
            where=where,
            hint="audit data that contains every declared group, or remove the group from data.groups",
        )


def tabulate(
    frame: pd.DataFrame,
    features: Sequence[str],
    digits: Sequence[tuple[np.ndarray, int]],
    *,
    missing: str = "error",
    where: str = "data",
) -> tuple[Grouping, np.ndarray]:
    """The grouping by ``features`` and its count table, in one pass over chunks of rows.

    ``digits`` are per-row codes and their ranges, combined into one cell per row, most
    significant first: ``[(y_true, 2), (y_pred, 2)]`` counts confusion cells
    ``2 * y_true + y_pred``. Returns counts of shape ``(G, Π ranges)``. Cells are formed
    chunk by chunk, so no row-sized integer array is ever allocated. Groups are ordered by
    each feature's own order (categories as declared, numbers numerically, text
    alphabetically); intersections that no row has are not groups.
    """
    features, tables = _tables(frame, features, missing=missing, where=where)
    shape = tuple(len(t.values) for t in tables)
    size = int(np.prod(shape))
    n_cells = int(np.prod([width for _, width in digits]))
    rows = len(frame)

    def cells(part: slice) -> np.ndarray:
        combined = np.zeros(part.stop - part.start, dtype=np.int64)
        for values, width in digits:
            combined *= width
            combined += np.asarray(values[part], dtype=np.int64)
        return combined

    if size > _DENSE_LIMIT:
        grouping = encode(frame, features, missing=missing, where=where)
        assert grouping.codes is not None
        flat = grouping.codes * n_cells + cells(slice(0, rows))
        return grouping, np.bincount(flat, minlength=grouping.n_groups * n_cells).reshape(grouping.n_groups, n_cells)
    counts = np.zeros(size * n_cells, dtype=np.int64)
    for start in range(0, rows, CHUNK_ROWS):
        part = slice(start, min(rows, start + CHUNK_ROWS))
        flat = _combined(tables, shape, part) * n_cells
        flat += cells(part)
        counts += np.bincount(flat, minlength=size * n_cells)
    full = counts.reshape(size, n_cells)
    observed = np.flatnonzero(full.sum(axis=1) > 0)
    combos = np.stack(np.unravel_index(observed, shape), axis=1).astype(np.int64)
    return _grouping(features, tuple(t.values for t in tables), combos, where=where), full[observed]


def encode(frame: pd.DataFrame, features: Sequence[str], *, missing: str = "error", where: str = "data") -> Grouping:
    """The grouping by ``features`` with each row's group in ``codes``."""
    features, tables = _tables(frame, features, missing=missing, where=where)
    shape = tuple(len(t.values) for t in tables)
    combined = _combined(tables, shape, slice(0, len(frame)))
    observed, codes = np.unique(combined, return_inverse=True)
    combos = np.stack(np.unravel_index(observed, shape), axis=1).astype(np.int64)
    return _grouping(features, tuple(t.values for t in tables), combos, codes.reshape(-1).astype(np.int64), where=where)


def _grouping(
    features: tuple[str, ...],
    values: tuple[tuple[str, ...], ...],
    combos: np.ndarray,
    codes: np.ndarray | None = None,
    *,
    where: str = "data",
) -> Grouping:
    if len(combos) > MAX_GROUPS:
        several = len(features) > 1
        what = f"the intersection of {', '.join(map(repr, features))}" if several else f"sensitive column {features[0]!r}"
        raise DataError(
            TOO_MANY_GROUPS.format(what=what, count=len(combos), limit=MAX_GROUPS),
            where=where,
            hint=TOO_MANY_GROUPS_HINT + (" (or audit the features one by one: `groupings: each`)" if several else ""),
        )
    labels = tuple(INTERSECTION_SEPARATOR.join(values[i][j] for i, j in enumerate(row)) for row in combos.tolist())
    return Grouping(scope_name(features), features, labels, values, combos, codes)


def _tables(
    frame: pd.DataFrame, features: Sequence[str], *, missing: str, where: str
) -> tuple[tuple[str, ...], list[_ValueTable]]:
    features = tuple(features)
    absent = [f for f in features if f not in frame.columns]
    if absent:
        raise DataError(
            f"sensitive column(s) {', '.join(map(repr, absent))} not found",
            where=where,
            hint=f"available columns: {', '.join(map(str, frame.columns))}",
        )
    return features, [_value_table(frame[f], f, missing=missing, where=where) for f in features]


def _combined(tables: list[_ValueTable], shape: tuple[int, ...], part: slice) -> np.ndarray:
    """Row-major index of each row's value combination, for the rows in ``part``."""
    combined = np.zeros(part.stop - part.start, dtype=np.int64)
    for table, width in zip(tables, shape, strict=True):
        combined *= width
        combined += table.encode(part)
    return combined


def _value_table(column: pd.Series, name: str, *, missing: str, where: str) -> _ValueTable:
    """Values of ``column`` ordered as its data type orders them, missing last as 'missing'."""
    if missing != "group":
        check_missing(column, name, where=where)
    if isinstance(column.dtype, pd.CategoricalDtype):
        raw = column.cat.codes.to_numpy()
        present = np.bincount(raw[raw >= 0], minlength=len(column.cat.categories)) > 0
        labels = [group_label(c) for c, p in zip(column.cat.categories, present, strict=True) if p]
        remap = np.cumsum(present) - 1

        def lookup(part: slice) -> np.ndarray:
            chunk = raw[part]
            return np.where(chunk >= 0, remap[np.maximum(chunk, 0)], -1)

    elif pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        array = column.to_numpy(dtype=float, na_value=np.nan) if column.hasnans else column.to_numpy()
        uniques = np.sort(pd.unique(array[~pd.isna(array)]))
        labels = [group_label(u) for u in uniques.tolist()]

        def lookup(part: slice) -> np.ndarray:
            chunk = array[part]
            codes = np.searchsorted(uniques, chunk).astype(np.int64)
            return np.where(pd.isna(chunk), -1, codes)

    else:
        objects = column.to_numpy(dtype=object)
        distinct = pd.unique(objects[~pd.isna(objects)])
        texts = [str(v) for v in distinct]
        order = sorted(range(len(texts)), key=texts.__getitem__)
        labels = [texts[i] for i in order]
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        index = pd.Index(distinct)

        def lookup(part: slice) -> np.ndarray:
            found = index.get_indexer(objects[part])
            return np.where(found >= 0, position[np.maximum(found, 0)], -1)

    _check_size(labels, lookup, len(column), name, where=where)
    repeated = sorted(v for v, times in Counter(labels).items() if times > 1)
    if repeated:
        raise DataError(
            f"sensitive column {name!r} has distinct values with the same label ({', '.join(repeated)})",
            where=where,
            hint="make the column's values distinct as text (e.g. do not mix 1 and '1')",
        )
    has_missing = missing == "group" and bool(column.hasnans)
    if has_missing:
        if MISSING_GROUP in labels:
            raise DataError(
                f"sensitive column {name!r} has a real value {MISSING_GROUP!r}, which would merge with "
                "the group of missing values",
                where=where,
                hint="rename that value, or set `data.missing_sensitive: error` and fill the gaps",
            )
        labels.append(MISSING_GROUP)
    missing_index = len(labels) - 1

    def encode_rows(part: slice) -> np.ndarray:
        codes = lookup(part)
        return np.where(codes < 0, missing_index, codes) if has_missing else codes

    return _ValueTable(tuple(labels), encode_rows)


def _check_size(
    labels: list[str], lookup: Callable[[slice], np.ndarray], rows: int, name: str, *, where: str
) -> None:
    """Raise :class:`DataError` when one feature has more than :data:`MAX_GROUPS` values or a
    label longer than :data:`MAX_LABEL_CHARS` (naming the first row that has it)."""
    if len(labels) > MAX_GROUPS:
        raise DataError(
            TOO_MANY_GROUPS.format(what=f"sensitive column {name!r}", count=len(labels), limit=MAX_GROUPS),
            where=where,
            hint=TOO_MANY_GROUPS_HINT,
        )
    long = next((i for i, label in enumerate(labels) if len(label) > MAX_LABEL_CHARS), None)
    if long is not None:
        row = int(np.flatnonzero(lookup(slice(0, rows)) == long)[0]) + 1
        raise DataError(
            LONG_LABEL.format(column=name, length=len(labels[long]), row=row, limit=MAX_LABEL_CHARS),
            where=where,
            hint=LONG_LABEL_HINT,
        )
