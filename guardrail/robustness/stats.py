"""The figures of a robustness probe, per group with intervals, from each probed row's outcome.

A probe compares every probed row's decision before and after a change; what this module gets
is, per row, whether the decision changed (``flipped``), how far the positive-class score moved
and whether the decision was right before and after. From these:

* a **flip rate** is the share of rows whose decision changed: per group with its
  Clopper–Pearson interval and the gap between groups with the fairness engine's validated
  interval (:func:`guardrail.data_audit.labels.rate_metrics`, the same construction as a base
  rate: the fairness engine's selection rate of the ``(G, 2, 2)`` table of the indicator);
* a **coverage** is the share of rows a probe applies to (the same construction);
* a **score change** is the mean of the rows' absolute score changes, per group, with a
  stratified percentile bootstrap of the rows;
* an **accuracy drop** is accuracy before minus accuracy after on the same rows: the paired
  Δ of the fairness engine (:func:`guardrail.fairness.paired.rate_delta`), whose interval is
  built from the rows whose correctness changed (exact bounds, or a paired bootstrap within
  them when there are enough).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from guardrail.core.types import GroupValue, Interval, MetricResult
from guardrail.fairness.groups import Grouping

PREFIX = "robustness"
BOOT_CHUNK = 1 << 22
"""Bootstrap draws of row indices per chunk (bounds the memory of the score-change bootstrap)."""
SCORE_BOOTSTRAP = "stratified percentile bootstrap of the rows"


def _lower_is_better(metric: MetricResult) -> MetricResult:
    return dataclasses.replace(metric, higher_is_better=False)


def _indicator_counts(grouping: Grouping, indicator: np.ndarray) -> np.ndarray:
    assert grouping.codes is not None
    counts = np.bincount(grouping.codes * 2 + indicator.astype(np.int64), minlength=2 * grouping.n_groups)
    return counts.reshape(grouping.n_groups, 2)


def share_metrics(
    grouping: Grouping,
    indicator: np.ndarray,
    *,
    name: str,
    scope: str,
    level: float,
    min_group_size: int,
    bootstrap: int,
    seed: int,
    details: Mapping[str, Any],
    gap: bool = True,
) -> list[MetricResult]:
    """``robustness.{name}`` (the share of rows where ``indicator`` holds, per group) and, with
    ``gap``, ``robustness.{name}_difference`` (max − min over the groups), both lower-is-better."""
    from guardrail.data_audit.labels import rate_metrics

    found = rate_metrics(
        grouping, _indicator_counts(grouping, indicator), name=name, scope=scope, level=level,
        min_group_size=min_group_size, bootstrap=bootstrap, seed=seed, details=details, ratio=False, prefix=PREFIX,
    )  # fmt: skip
    return [_lower_is_better(m) for m in (found if gap else found[:1])]


def coverage_metric(
    grouping: Grouping, applicable: np.ndarray, *, scope: str, level: float, min_group_size: int, details: Mapping[str, Any]
) -> MetricResult:
    """``robustness.coverage``: the share of rows a probe applies to, per group (higher is better)."""
    metric = share_metrics(
        grouping, applicable, name="coverage", scope=scope, level=level, min_group_size=min_group_size,
        bootstrap=0, seed=0, details=details, gap=False,
    )[0]  # fmt: skip
    return dataclasses.replace(metric, higher_is_better=True)


def _percentile(means: np.ndarray, mean: float, level: float, resamples: int) -> Interval:
    """The percentile interval of bootstrap ``means`` with its quantile table (for policies'
    multiple-comparison corrections), widened to hold the estimate."""
    from guardrail.core.types import Quantile
    from guardrail.fairness.intervals import TABLE_LEVELS

    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    table = np.quantile(means, TABLE_LEVELS)
    quantiles = tuple(Quantile(q, float(min(v, mean) if q < 0.5 else max(v, mean))) for q, v in zip(TABLE_LEVELS, table, strict=True))
    return Interval(min(float(low), mean), max(float(high), mean), level, SCORE_BOOTSTRAP, resamples, quantiles=quantiles)


def _resampled_sums(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Sums of ``resamples`` bootstrap resamples of ``values``, drawn in chunks of at most
    :data:`BOOT_CHUNK` indices so that memory does not grow with ``resamples × rows``."""
    n = len(values)
    sums = np.empty(resamples)
    per_chunk = max(1, BOOT_CHUNK // n)
    for start in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - start)
        sums[start : start + count] = values[rng.integers(0, n, size=(count, n))].sum(axis=1)
    return sums


def mean_interval(values: np.ndarray, resamples: int, level: float, rng: np.random.Generator) -> Interval | None:
    """Percentile bootstrap interval of the mean of ``values`` (``None`` without resamples or rows);
    it always contains the mean."""
    if resamples == 0 or len(values) == 0:
        return None
    return _percentile(_resampled_sums(values, resamples, rng) / len(values), float(values.mean()), level, resamples)


def score_change_metric(
    grouping: Grouping,
    change: np.ndarray | None,
    *,
    scope: str,
    level: float,
    min_group_size: int,
    bootstrap: int,
    seed: int,
    details: Mapping[str, Any],
    no_scores: str,
) -> MetricResult:
    """``robustness.counterfactual_score_change``: the mean absolute change of the positive-class
    score, per group with bootstrap intervals; undefined (``no_scores``) when the model gives none."""
    key = f"{PREFIX}.counterfactual_score_change"
    if change is None:
        return MetricResult(key=key, scope=scope, value=None, reason=no_scores, higher_is_better=False, details=dict(details))
    from guardrail.fairness.bootstrap import grouping_rng

    assert grouping.codes is not None
    rng = grouping_rng(seed, f"{key}/{scope}")
    by_group = []
    for code, label in enumerate(grouping.labels):
        values = np.abs(change[grouping.codes == code])
        n = len(values)
        by_group.append(
            GroupValue(
                group=label,
                value=float(values.mean()) if n else None,
                n=n,
                small=n < min_group_size,
                reason=None if n else "no rows",
                ci=mean_interval(values, bootstrap, level, rng) if n else None,
            )
        )
    absolute = np.abs(change)
    return MetricResult(
        key=key,
        scope=scope,
        value=float(absolute.mean()) if len(absolute) else None,
        reason=None if len(absolute) else "no rows probed",
        ci=_stratified_mean_interval(absolute, grouping.codes, bootstrap, level, rng),
        by_group=tuple(by_group),
        n=len(absolute),
        higher_is_better=False,
        details={**details, "interval": SCORE_BOOTSTRAP},
    )


def _stratified_mean_interval(values: np.ndarray, codes: np.ndarray, resamples: int, level: float, rng: np.random.Generator) -> Interval | None:
    """The overall mean's interval, resampling within each group (as the count tables do)."""
    if resamples == 0 or len(values) == 0:
        return None
    total = np.zeros(resamples)
    for code in np.unique(codes):
        total += _resampled_sums(values[codes == code], resamples, rng)
    return _percentile(total / len(values), float(values.mean()), level, resamples)


def accuracy_drop_metric(
    grouping: Grouping,
    correct_before: np.ndarray,
    correct_after: np.ndarray,
    *,
    scope: str,
    level: float,
    min_group_size: int,
    bootstrap: int,
    seed: int,
    details: Mapping[str, Any],
) -> MetricResult:
    """``robustness.accuracy_drop``: accuracy on the original rows minus accuracy on the changed
    ones, overall and per group, with the paired interval of the fairness engine (positive =
    the change costs accuracy)."""
    from guardrail.fairness.bootstrap import grouping_rng, resample_counts
    from guardrail.fairness.paired import rate_delta

    assert grouping.codes is not None
    key = f"{PREFIX}.accuracy_drop"
    # (G, y, candidate, baseline) with y = 1 for every row: "accuracy" is then the share of rows
    # whose decision was right; candidate = the original inputs, baseline = the changed ones.
    cells = grouping.codes * 8 + 4 + correct_before.astype(np.int64) * 2 + correct_after.astype(np.int64)
    paired = np.bincount(cells, minlength=8 * grouping.n_groups).reshape(grouping.n_groups, 2, 2, 2)
    boot = resample_counts(paired, bootstrap, grouping_rng(seed, f"{key}/{scope}")) if bootstrap else None
    sizes = paired.sum(axis=(1, 2, 3))

    def value(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    overall = rate_delta(paired.sum(axis=0), boot.sum(axis=1) if boot is not None else None, "accuracy", level)
    by_group = []
    for i, label in enumerate(grouping.labels):
        found = rate_delta(paired[i], boot[:, i] if boot is not None else None, "accuracy", level, table=False)
        n = int(sizes[i])
        by_group.append(
            GroupValue(group=label, value=value(found.value), n=n, small=n < min_group_size,
                       reason=None if n else "no rows", ci=found.ci)  # fmt: skip
        )
    return MetricResult(
        key=key,
        scope=scope,
        value=value(overall.value),
        reason=None if not math.isnan(overall.value) else "no rows probed",
        ci=overall.ci,
        by_group=tuple(by_group),
        n=int(sizes.sum()),
        higher_is_better=False,
        details={**details, "accuracy_before": value(overall.candidate), "accuracy_after": value(overall.baseline)},
    )


def not_applicable(key: str, scope: str, reason: str, details: Mapping[str, Any]) -> MetricResult:
    """A probe's metric when no row could be probed: no value, the reason said (inconclusive, never a pass)."""
    return MetricResult(key=f"{PREFIX}.{key}", scope=scope, value=None, reason=reason, higher_is_better=False, details=dict(details))

