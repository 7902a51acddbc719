"""Representation (EU AI Act Art. 10(3)–(4)): who is in the data, and how many of each.

Every figure comes from one count table per grouping (:func:`grouping_counts`):

* ``data.group_share[scope]``: each group's share of the rows, with its Clopper–Pearson
  interval; the value is the smallest share, bounded by the Bonferroni box of all groups'
  intervals (each bound at tail ``(1 − level) / 2 / G``), so that the bounds hold for whichever
  group is truly the smallest.
* ``data.representation_ratio[feature]``: each group's share over its share of a declared
  population (:class:`Population`), with the same box divided by the population shares.
* ``data.small_cells[intersection]``: how many cells of the full cross product of the observed
  values (empty cells included) hold fewer than ``min_group_size`` rows.

:func:`grouping_counts` reads the rows once for a whole family of groupings: when one of them
holds every feature of the others (the intersection), the others' tables are its marginals,
summed from its counts, so that a grouping by ``sex``, ``race`` and ``sex+race`` costs one pass
over the rows rather than three.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.errors import DataError
from guardrail.core.scopes import scope_name
from guardrail.core.types import GroupValue, Interval, MetricResult
from guardrail.fairness.groups import INTERSECTION_SEPARATOR, MAX_GROUPS, Grouping, group_label, tabulate
from guardrail.fairness.intervals import CLOPPER_PEARSON, bounded_interval, clopper_pearson, nominal_tail, rate_intervals

if TYPE_CHECKING:
    import pandas as pd

SHARE_BOX = "Bonferroni-combined per-group Clopper–Pearson bounds"
"""Method of the smallest share's and the lowest ratio's interval (no ', ': see intervals.py)."""
SHARE_TOLERANCE = 0.005
"""How far a population's shares may sum from 1: published shares are rounded."""

NOT_SENSITIVE = "population shares are given for column {column!r}, which is not an audited sensitive column"
NOT_SENSITIVE_HINT = "declare populations only for sensitive columns ({columns}), or add {column!r} to the sensitive columns"
NO_SHARES = "the population of {column!r} has no shares"
NO_SHARES_HINT = "give each group's share of the population, e.g. shares: {{F: 0.51, M: 0.49}}"
BAD_SHARE = "the population of {column!r} has share(s) outside (0, 1]: {shares}"
BAD_SHARE_HINT = "give each group's share as a fraction of the population (0.25 for 25%), every share above 0"
BAD_SUM = "the population shares of {column!r} sum to {total:.4f}, not 1 (tolerance {tolerance})"
BAD_SUM_HINT = "give every group's share of the same population (shares of a census table), as fractions that sum to 1"
DUPLICATE_GROUP = "the population of {column!r} names group(s) {groups} more than once (as different values with the same label)"
DUPLICATE_GROUP_HINT = "name each group once, as its label appears in the data"
ABSENT_GROUP = "population group(s) {groups} of {column!r} have no rows in the data"
ABSENT_GROUP_HINT = "name the groups as they appear in column {column!r} ({labels}), or fold the absent ones into others"
UNSHARED_GROUP = "data group(s) {groups} of {column!r} have no population share"
UNSHARED_GROUP_HINT = "give every group of column {column!r} a share ({labels}), or map the extra values to declared groups"


@dataclass(frozen=True)
class Population:
    """The shares of a sensitive column's groups in the population the data should represent.

    ``shares`` is keyed by group label, as :func:`guardrail.fairness.groups.group_label` writes
    a value (``"1"`` for 1.0); ``source`` cites where the shares come from (a census table).
    """

    shares: Mapping[str, float]
    source: str


# -- count tables of a family of groupings ------------------------------------------------------


def grouping_counts(
    data: pd.DataFrame,
    feature_sets: Sequence[Sequence[str]],
    digits: Sequence[tuple[np.ndarray, int]],
    *,
    missing: str,
    where: str,
) -> dict[tuple[str, ...], tuple[Grouping, np.ndarray]]:
    """Each grouping's :func:`~guardrail.fairness.groups.tabulate` table, keyed by its features.

    A grouping whose features are all in another (the widest) is that one's marginal: its
    counts are summed from the wider table (exact; groups and their order are those
    ``tabulate`` gives), so the rows are read once for the family, not once per grouping.
    """
    sets = [tuple(s) for s in feature_sets]
    found: dict[tuple[str, ...], tuple[Grouping, np.ndarray]] = {}
    if not sets:
        return found
    widest = max(sets, key=len, default=())
    base = widest if all(set(s) <= set(widest) for s in sets) else None
    if base is not None:
        found[base] = tabulate(data, base, digits, missing=missing, where=where)
    for features in sets:
        if features in found:
            continue
        if base is not None:
            found[features] = marginal(*found[base], features)
        else:
            found[features] = tabulate(data, features, digits, missing=missing, where=where)
    return found


def marginal(grouping: Grouping, counts: np.ndarray, features: Sequence[str]) -> tuple[Grouping, np.ndarray]:
    """The grouping by ``features`` (a subset of ``grouping.features``) and its counts, summed
    from ``counts`` (``(G, ...)``): exactly what ``tabulate`` gives for those features."""
    features = tuple(features)
    index = [grouping.features.index(f) for f in features]
    values = tuple(grouping.feature_values[i] for i in index)
    shape = tuple(len(v) for v in values)
    flat = np.ravel_multi_index(tuple(grouping.combos[:, i] for i in index), shape)
    observed, inverse = np.unique(flat, return_inverse=True)
    summed = np.zeros((len(observed), *counts.shape[1:]), dtype=counts.dtype)
    np.add.at(summed, inverse.reshape(-1), counts)
    combos = np.stack(np.unravel_index(observed, shape), axis=1).astype(np.int64)
    labels = tuple(INTERSECTION_SEPARATOR.join(values[i][j] for i, j in enumerate(row)) for row in combos.tolist())
    return Grouping(scope_name(features), features, labels, values, combos), summed


# -- populations --------------------------------------------------------------------------------


def check_population(
    data: pd.DataFrame,
    population: Mapping[str, Population],
    *,
    sensitive: Sequence[str],
    where: str,
    missing: str = "group",
) -> None:
    """Raise :class:`DataError` (exit 3) unless every declared population fits the data: a
    sensitive column, shares in (0, 1] summing to 1 (within :data:`SHARE_TOLERANCE`), every
    population group present in the data and every data group given a share.

    ``missing="group"`` (the default) counts missing sensitive values as the group
    ``"missing"``, which then needs a share like any other; the runner has already stopped a
    run whose sensitive columns may not have missing values."""
    for column, declared in population.items():
        if column not in sensitive:
            columns = ", ".join(map(repr, sensitive)) or "none"
            raise DataError(
                NOT_SENSITIVE.format(column=column), where=where, hint=NOT_SENSITIVE_HINT.format(columns=columns, column=column)
            )
        check_shares(column, declared, _shares_of(column, declared, where=where), where=where)
        grouping, _ = tabulate(data, [column], [], missing=missing, where=where)
        check_groups(column, declared, grouping.labels, where=where)


def check_shares(column: str, declared: Population, shares: Mapping[str, float], *, where: str) -> None:
    """The shares alone: some given, each in (0, 1], summing to 1 within the tolerance."""
    if not shares:
        raise DataError(NO_SHARES.format(column=column), where=where, hint=NO_SHARES_HINT)
    bad = {g: s for g, s in shares.items() if not (math.isfinite(s) and 0 < s <= 1)}
    if bad:
        listed = ", ".join(f"{g}: {s}" for g, s in bad.items())
        raise DataError(BAD_SHARE.format(column=column, shares=listed), where=where, hint=BAD_SHARE_HINT)
    total = math.fsum(shares.values())
    if abs(total - 1) > SHARE_TOLERANCE:
        raise DataError(
            BAD_SUM.format(column=column, total=total, tolerance=SHARE_TOLERANCE) + f" (source: {declared.source})",
            where=where,
            hint=BAD_SUM_HINT,
        )


def check_groups(column: str, declared: Population, labels: Sequence[str], *, where: str) -> None:
    """The population's groups are exactly the data's groups ``labels``."""
    shares = _shares_of(column, declared, where=where)
    present = ", ".join(map(repr, labels))
    absent = [g for g in shares if g not in labels]
    if absent:
        raise DataError(
            ABSENT_GROUP.format(groups=", ".join(map(repr, absent)), column=column),
            where=where,
            hint=ABSENT_GROUP_HINT.format(column=column, labels=present),
        )
    unshared = [g for g in labels if g not in shares]
    if unshared:
        raise DataError(
            UNSHARED_GROUP.format(groups=", ".join(map(repr, unshared)), column=column),
            where=where,
            hint=UNSHARED_GROUP_HINT.format(column=column, labels=present),
        )


def _shares_of(column: str, declared: Population, *, where: str) -> dict[str, float]:
    """The declared shares keyed by group label (a key 1.0 reads as the data's "1")."""
    shares: dict[str, float] = {}
    repeated = []
    for key, share in declared.shares.items():
        label = group_label(key)
        if label in shares:
            repeated.append(label)
        shares[label] = float(share)
    if repeated:
        raise DataError(
            DUPLICATE_GROUP.format(column=column, groups=", ".join(map(repr, repeated))), where=where, hint=DUPLICATE_GROUP_HINT
        )
    return shares


# -- metrics ------------------------------------------------------------------------------------


def representation_metrics(
    data: pd.DataFrame,
    feature_sets: Sequence[Sequence[str]],
    *,
    population: Mapping[str, Population],
    level: float,
    min_group_size: int,
    missing: str = "error",
    where: str = "data",
) -> list[MetricResult]:
    """``data.group_share`` of every grouping, ``data.representation_ratio`` of every audited
    column with a declared population, ``data.small_cells`` of every intersection."""
    sets = [tuple(s) for s in feature_sets]
    audited = {f for s in sets for f in s}
    declared = [column for column in population if column in audited]
    wanted = sets + [(column,) for column in declared if (column,) not in sets]
    tables = grouping_counts(data, wanted, [], missing=missing, where=where)
    results: list[MetricResult] = []
    for features in sets:
        grouping, counts = tables[features]
        results.append(group_share_metric(grouping, counts.sum(axis=1), level=level, min_group_size=min_group_size))
    for column in declared:
        grouping, counts = tables[(column,)]
        results.append(
            representation_ratio_metric(
                grouping, counts.sum(axis=1), population[column], level=level, min_group_size=min_group_size, where=where
            )
        )
    for features in sets:
        if len(features) >= 2:
            grouping, counts = tables[features]
            results.append(small_cells_metric(grouping, counts.sum(axis=1), min_group_size=min_group_size))
    return results


def share_bounds(sizes: np.ndarray, scale: np.ndarray | None = None) -> Any:
    """``tail → (low, high)`` of the smallest (scaled) share: every group's Clopper–Pearson
    bounds at tail ``tail / G`` (Bonferroni), each divided by ``scale`` when given, and the
    smallest lower and smallest upper bound over groups."""
    total = np.full(len(sizes), int(sizes.sum()))
    divide = np.ones(len(sizes)) if scale is None else scale

    def bounds(tail: float) -> tuple[float, float]:
        low, high = clopper_pearson(sizes, total, tail / len(sizes))
        return float(np.min(low / divide)), float(np.min(high / divide))

    return bounds


def group_share_metric(grouping: Grouping, sizes: np.ndarray, *, level: float, min_group_size: int) -> MetricResult:
    """``data.group_share``: every group's share of the rows; the smallest, with the box interval."""
    total = int(sizes.sum())
    shares = sizes / total
    small = sizes < min_group_size
    cis = rate_intervals(sizes, np.full(len(sizes), total), level)
    smallest = int(np.argmin(shares))
    by_group = tuple(
        GroupValue(label, float(shares[i]), int(sizes[i]), bool(small[i]), ci=cis[i]) for i, label in enumerate(grouping.labels)
    )
    ci = bounded_interval(share_bounds(sizes), float(shares[smallest]), level, SHARE_BOX)
    return MetricResult(
        key="data.group_share",
        scope=grouping.scope,
        value=float(shares[smallest]),
        ci=ci,
        by_group=by_group,
        n=total,
        higher_is_better=None,
        details={
            "sensitive_features": list(grouping.features),
            "smallest_group": grouping.labels[smallest],
            "small_groups": [label for label, s in zip(grouping.labels, small, strict=True) if s],
        },
    )


def representation_ratio_metric(
    grouping: Grouping, sizes: np.ndarray, declared: Population, *, level: float, min_group_size: int, where: str
) -> MetricResult:
    """``data.representation_ratio``: each group's share of the rows over its population share."""
    column = grouping.features[0]
    shares = _shares_of(column, declared, where=where)
    check_shares(column, declared, shares, where=where)
    check_groups(column, declared, grouping.labels, where=where)
    expected = np.array([shares[label] for label in grouping.labels])
    total = int(sizes.sum())
    ratios = sizes / total / expected
    small = sizes < min_group_size
    low, high = clopper_pearson(sizes, np.full(len(sizes), total), nominal_tail(level))
    by_group = tuple(
        GroupValue(
            label,
            float(ratios[i]),
            int(sizes[i]),
            bool(small[i]),
            ci=Interval(float(low[i] / expected[i]), float(high[i] / expected[i]), level, CLOPPER_PEARSON),
        )
        for i, label in enumerate(grouping.labels)
    )
    lowest, highest = int(np.argmin(ratios)), int(np.argmax(ratios))
    ci = bounded_interval(share_bounds(sizes, expected), float(ratios[lowest]), level, SHARE_BOX)
    return MetricResult(
        key="data.representation_ratio",
        scope=grouping.scope,
        value=float(ratios[lowest]),
        ci=ci,
        by_group=by_group,
        n=total,
        higher_is_better=True,
        details={
            "population": {label: shares[label] for label in grouping.labels},
            "source": declared.source,
            "lowest_group": grouping.labels[lowest],
            "highest_group": grouping.labels[highest],
            "highest_ratio": float(ratios[highest]),
        },
    )


def small_cells_metric(grouping: Grouping, sizes: np.ndarray, *, min_group_size: int) -> MetricResult:
    """``data.small_cells``: cells of the full cross product of the observed values (empty ones
    included) with fewer than ``min_group_size`` rows. Every cell is listed when the cross
    product has at most :data:`MAX_GROUPS` cells; beyond, the non-empty ones only."""
    shape = tuple(len(v) for v in grouping.feature_values)
    cells = int(np.prod(shape))
    full = np.zeros(cells, dtype=np.int64)
    observed = np.ravel_multi_index(tuple(grouping.combos.T), shape)
    full[observed] = sizes
    small = full < min_group_size
    listed = np.arange(cells) if cells <= MAX_GROUPS else np.sort(observed)
    by_group = []
    for flat in listed.tolist():
        index = np.unravel_index(flat, shape)
        label = INTERSECTION_SEPARATOR.join(grouping.feature_values[i][int(j)] for i, j in enumerate(index))
        by_group.append(GroupValue(label, float(full[flat]), int(full[flat]), bool(small[flat])))
    details: dict[str, Any] = {"cells": cells, "empty_cells": cells - len(observed), "min_group_size": min_group_size}
    if cells > MAX_GROUPS:
        details["listed"] = f"non-empty cells only (the cross product has more than {MAX_GROUPS} cells)"
    return MetricResult(
        key="data.small_cells",
        scope=grouping.scope,
        value=float(small.sum()),
        by_group=tuple(by_group),
        n=int(sizes.sum()),
        higher_is_better=False,
        details=details,
    )
