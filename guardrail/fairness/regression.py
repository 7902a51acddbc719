"""Fairness of a regression target: per-group means of errors and predictions, their gaps,
and their stratified row bootstrap."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from guardrail.core.types import GroupValue, MetricResult

if TYPE_CHECKING:
    from guardrail.fairness.groups import Grouping

BLOCK_VALUES = 4_000_000


def bootstrap_group_means(
    values: np.ndarray, codes: np.ndarray, n_groups: int, resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Resample rows with replacement inside each group; return each resample's group means
    ``(B, G)`` and overall mean ``(B,)`` (group sizes fixed, as in a stratified bootstrap)."""
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sorted_values = values[order]
    means = np.empty((resamples, n_groups))
    sums = np.zeros(resamples)
    for g in range(n_groups):
        n = int(sizes[g])
        if n == 0:
            means[:, g] = np.nan
            continue
        members = sorted_values[starts[g] : starts[g] + n]
        block = max(1, BLOCK_VALUES // n)
        for first in range(0, resamples, block):
            last = min(resamples, first + block)
            picks = members[rng.integers(0, n, size=(last - first, n))]
            total = picks.sum(axis=1)
            means[first:last, g] = total / n
            sums[first:last] += total
    return means, sums / sizes.sum()


def regression_metrics(
    grouping: Grouping,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    bootstrap: int,
    confidence: float,
    min_group_size: int,
    rng: np.random.Generator,
) -> list[MetricResult]:
    """Per group of an encoded grouping: mean error (prediction − truth), mean absolute error,
    mean prediction; the gap (max − min) of each between groups, with stratified row-bootstrap
    intervals; and the smallest group's size."""
    from guardrail.fairness.bootstrap import BootstrapSpec, gap_interval, interval
    from guardrail.fairness.results import min_group_size_metric

    assert grouping.codes is not None
    truth = np.asarray(y_true, dtype=float)
    predicted = np.asarray(y_pred, dtype=float)
    columns = {
        "mean_error": predicted - truth,
        "mean_absolute_error": np.abs(predicted - truth),
        "mean_prediction": predicted,
    }
    sizes = np.bincount(grouping.codes, minlength=grouping.n_groups)
    small = sizes < min_group_size
    spec = BootstrapSpec(resamples=bootstrap, level=confidence)
    common = {"sensitive_features": list(grouping.features), "min_group_size": min_group_size}
    results: list[MetricResult] = []
    for name, values in columns.items():
        per_group = np.bincount(grouping.codes, weights=values, minlength=grouping.n_groups) / sizes
        boot = (
            bootstrap_group_means(values, grouping.codes, grouping.n_groups, bootstrap, rng)
            if bootstrap
            else None
        )
        by_group = tuple(
            GroupValue(
                label,
                float(per_group[i]),
                int(sizes[i]),
                small=bool(small[i]),
                ci=interval(boot[0][:, i], spec, table=False) if boot is not None else None,
            )
            for i, label in enumerate(grouping.labels)
        )
        results.append(
            MetricResult(
                key=f"fairness.{name}",
                scope=grouping.scope,
                value=float(values.mean()),
                ci=interval(boot[1], spec) if boot is not None else None,
                by_group=by_group,
                n=int(sizes.sum()),
                higher_is_better=False if name == "mean_absolute_error" else None,  # a signed error has no better side
                details=common,
            )
        )
        two = grouping.n_groups > 1
        results.append(
            MetricResult(
                key=f"fairness.{name}_difference",
                scope=grouping.scope,
                value=float(per_group.max() - per_group.min()) if two else None,
                reason=None if two else "fewer than two groups to compare",
                ci=gap_interval({name: per_group}, {name: boot[0]}, "difference", spec, limit=None)
                if boot is not None and two
                else None,
                by_group=by_group,
                n=int(sizes.sum()),
                higher_is_better=False,
                details={
                    **common,
                    "aggregation": "difference",
                    "min_group": grouping.labels[int(per_group.argmin())] if two else None,
                    "max_group": grouping.labels[int(per_group.argmax())] if two else None,
                },
            )
        )
    results.append(min_group_size_metric(grouping.scope, grouping.labels, sizes, small, common))
    return results
