"""Completeness (EU AI Act Art. 10(3)): which features are missing, and how unevenly by group.

For each examined feature with a missing value, the fairness engine's selection rate on the
``(G, 2, 2)`` table of ``(isna(f), isna(f))`` is the feature's missing rate per group (exact
intervals), and its difference between groups has the engine's validated interval
(:mod:`guardrail.fairness.results`): differential missingness, the gap a model can learn as a
proxy, is measured with the same care as a fairness gap.

The rows are read once per batch of features: the missing indicators of up to
:data:`BATCH_FEATURES` features are packed into the bits of one 16-bit code per row, one digit
of one :func:`~guardrail.fairness.groups.tabulate` table per family of groupings
(:func:`~guardrail.data_audit.representation.grouping_counts`), whose marginals give each
feature's table. One ``column.isna()`` is held at a time, beside the packed codes; the frame
is never copied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.scopes import scope_part
from guardrail.core.types import MetricResult

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.fairness.groups import Grouping

BATCH_FEATURES = 12
"""Most missing indicators counted in one pass over the rows (a table of ``G × 2¹²`` cells; at
most 16, the bits of the packed code)."""
DENSE_CELLS = 1 << 22
"""Largest ``combinations × cells`` a batch may ask ``tabulate`` to count densely."""
MAX_OVER_FEATURES = "largest of the per-feature intervals"
NO_COLUMNS = "no column was examined (every column is the target, sensitive or ignored)"


def column_scope(scope: str, column: str) -> str:
    """The scope of one column's metric within a grouping: ``sex/column=income``."""
    return f"{scope}/column={scope_part(column)}"


def missingness_metrics(
    data: pd.DataFrame,
    feature_sets: Sequence[Sequence[str]],
    features: Sequence[str],
    *,
    level: float,
    min_group_size: int,
    bootstrap: int,
    seed: int,
    missing: str = "error",
    where: str = "data",
) -> tuple[list[MetricResult], list[dict[str, Any]]]:
    """``data.missing_rate`` and ``data.missing_rate_difference`` of every feature with a
    missing value in every grouping, ``data.max_missing_rate_difference`` of every grouping,
    and each grouping's heatmap piece (features by overall missing rate, highest first)."""
    from guardrail.data_audit.representation import grouping_counts

    sets = [tuple(s) for s in feature_sets]
    if not sets:
        return [], []
    from guardrail.data_audit.proxies import check_columns

    check_columns(data, features, what="the audit data", where=where)
    per_set: dict[tuple[str, ...], dict[str, np.ndarray]] = {s: {} for s in sets}
    groupings: dict[tuple[str, ...], Grouping] = {}
    sizes: dict[tuple[str, ...], np.ndarray] = {}
    batch: list[str] = []
    packed = np.zeros(len(data), dtype=np.uint16)
    width = _first_batch(data, sets)

    def count(batch: list[str]) -> int:
        digits = [(packed, 1 << len(batch))] if batch else []
        tables = grouping_counts(data, sets, digits, missing=missing, where=where)
        for features, (grouping, counts) in tables.items():
            groupings[features], sizes[features] = grouping, counts.sum(axis=1)
            bits = counts.reshape(grouping.n_groups, *([2] * len(batch)))
            for j, name in enumerate(batch):
                per_set[features][name] = bits.sum(axis=tuple(a for a in range(1, len(batch) + 1) if a != j + 1))[:, 1]
        packed[:] = 0
        combos = max((int(np.prod([len(v) for v in g.feature_values])) for g in groupings.values()), default=1)
        return max(1, min(BATCH_FEATURES, int(math.log2(max(1, DENSE_CELLS // max(1, combos))))))

    for feature in features:
        isna = data[feature].isna().to_numpy()
        if isna.any():
            batch.append(feature)
            packed <<= np.uint16(1)  # the first feature of a batch ends as its most significant bit
            packed |= isna.view(np.uint8)
        if len(batch) >= width:
            width, batch = count(batch), []
    if batch or not groupings:
        count(batch)

    with_missing = [f for f in features if f in per_set[sets[0]]]
    metrics: list[MetricResult] = []
    pieces: list[dict[str, Any]] = []
    for features_set in sets:
        grouping, n = groupings[features_set], sizes[features_set]
        found = {f: per_set[features_set][f] for f in with_missing}
        complete = len(with_missing) < len(features)
        metrics += _grouping_metrics(
            grouping, n, found, complete, level=level, min_group_size=min_group_size, bootstrap=bootstrap, seed=seed
        )
        pieces.append(_piece(grouping, n, found))
    return metrics, pieces


def _first_batch(data: pd.DataFrame, sets: list[tuple[str, ...]]) -> int:
    """How many indicators the first pass may count: from the number of each sensitive
    column's categories where known (categorical, boolean), else one (the first pass then
    tells the number of combinations for the next)."""
    import pandas as pd

    combos = 1
    for column in {f for s in sets for f in s}:
        dtype = data[column].dtype if column in data.columns else None
        if isinstance(dtype, pd.CategoricalDtype):
            combos *= len(dtype.categories) + 1
        elif dtype is not None and pd.api.types.is_bool_dtype(dtype):
            combos *= 3
        else:
            return 1
    return max(1, min(BATCH_FEATURES, int(math.log2(max(1, DENSE_CELLS // combos)))))


def _grouping_metrics(
    grouping: Grouping,
    sizes: np.ndarray,
    found: dict[str, np.ndarray],
    complete: bool,
    *,
    level: float,
    min_group_size: int,
    bootstrap: int,
    seed: int,
) -> list[MetricResult]:
    """One grouping's per-feature metrics and their largest difference."""
    from guardrail.data_audit.labels import rate_metrics

    results: list[MetricResult] = []
    differences: dict[str, MetricResult] = {}
    for feature, missing in found.items():
        counts = np.stack([sizes - missing, missing], axis=1)
        scope = column_scope(grouping.scope, feature)
        rate, difference = rate_metrics(
            grouping, counts, name="missing_rate", scope=scope, details={"column": feature}, ratio=False,
            level=level, min_group_size=min_group_size, bootstrap=bootstrap, seed=seed,
        )  # fmt: skip
        results += [rate, difference]
        differences[feature] = difference
    results.append(
        _max_difference(
            grouping, sizes, differences, complete, level=level, min_group_size=min_group_size, bootstrap=bootstrap, seed=seed
        )
    )
    return results


def _max_difference(
    grouping: Grouping,
    sizes: np.ndarray,
    differences: dict[str, MetricResult],
    complete: bool,
    *,
    level: float,
    min_group_size: int,
    bootstrap: int,
    seed: int,
) -> MetricResult:
    """``data.max_missing_rate_difference``: the largest difference over every examined feature
    (a feature without missing values counts as 0, with the interval its group sizes allow)."""
    from guardrail.data_audit.labels import rate_metrics

    candidates = dict(differences)
    if complete:
        none_missing = np.stack([sizes, np.zeros_like(sizes)], axis=1)
        scope = f"{grouping.scope}/complete"
        _, candidates[""] = rate_metrics(
            grouping, none_missing, name="missing_rate", scope=scope, level=level, min_group_size=min_group_size,
            bootstrap=bootstrap, seed=seed, ratio=False,
        )  # fmt: skip
    details: dict[str, Any] = {
        "sensitive_features": list(grouping.features),
        "worst_feature": None,
        "features_with_missing": list(differences),
    }
    key, scope, n = "data.max_missing_rate_difference", grouping.scope, int(sizes.sum())
    undefined = [m.reason for m in candidates.values() if m.value is None]
    if undefined:
        return MetricResult(key, None, scope, reason=undefined[0], n=n, higher_is_better=False, details=details)
    if not candidates:  # nothing examined is no evidence of complete data
        return MetricResult(key, None, scope, reason=NO_COLUMNS, n=n, higher_is_better=False, details=details)
    worst = max(candidates, key=lambda f: (float(candidates[f].value or 0.0), f != ""))
    details["worst_feature"] = worst or None
    value = float(candidates[worst].value or 0.0)
    intervals = [m.ci for m in candidates.values() if m.ci is not None]
    from guardrail.data_audit.proxies import max_interval

    ci = max_interval(intervals, value, level, MAX_OVER_FEATURES) if len(intervals) == len(candidates) else None
    return MetricResult(key, value, scope, ci=ci, n=n, higher_is_better=False, details=details)


def _piece(grouping: Grouping, sizes: np.ndarray, found: dict[str, np.ndarray]) -> dict[str, Any]:
    """The heatmap of one grouping: features (highest overall missing rate first) × groups."""
    total = max(1, int(sizes.sum()))
    order = sorted(found, key=lambda f: (-int(found[f].sum()) / total, f))
    return {
        "scope": grouping.scope,
        "features": order,
        "groups": list(grouping.labels),
        "rates": [[float(x) / int(n) if n else None for x, n in zip(found[f], sizes, strict=True)] for f in order],
        "group_n": [int(n) for n in sizes],
    }
