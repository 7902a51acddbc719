"""One result builder: every rate and disparity of a grouping's count table, with its interval.

The fairness audit, the mitigation what-if and the federated fairness builder all report
rates and disparities of ``(G, 2, 2)`` count tables; they build them here, so that one
quantity of one table, with one seed, has one value and one interval in whichever audit
reports it. The constructions, and their simulated coverage
(``benchmarks/coverage_fairness.py``; ``tests/fairness/test_coverage.py``):

* **A rate**, per group or overall: Clopper–Pearson (:func:`~guardrail.fairness.intervals.rate_interval`),
  at least the nominal coverage at every rate and group size, 0/3 included.
* **A disparity** (max − min or min / max, worst over its rates): the simultaneous pairwise
  bootstrap of the table's resamples (:func:`~guardrail.fairness.bootstrap.gap_bootstrap`),
  kept within the Bonferroni box of the groups' Clopper–Pearson intervals
  (:func:`~guardrail.fairness.intervals.box_bounds`), so it is never looser than what the
  per-group bounds alone imply. Where some group has fewer than :data:`RELIABLE_COUNT`
  successes or failures in a rate the disparity uses, its resamples cannot show how far
  that group's rate may be from its estimate (every resample of 0/66 is 0/66), and the box
  alone is used: a ratio with a group at 0 gets a finite ``[0, upper]``, and a small group
  at 0 no longer collapses a ratio's interval to ``[0, 1]``.
* **Δ candidate − baseline**: :mod:`guardrail.fairness.paired` (exact bounds from the rows
  where the models differ, and the paired bootstrap within them where those rows are many).

Every interval contains its own estimate, and every overall interval keeps a quantile table
consistent with its bounds (policies read other levels from it).

A disparity whose groups include some below ``min_group_size`` and at least two others
also carries, in ``details["without_small"]``, the same disparity and interval over the
groups at or above it, on the same resamples, for a policy rule that sets the small ones aside.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from guardrail.core.types import GroupValue, Interval, MetricResult
from guardrail.fairness.bootstrap import gap_bootstrap
from guardrail.fairness.intervals import (
    BOX,
    RELIABLE_COUNT,
    Bounds,
    bounded_interval,
    box_bounds,
    intersect,
    rate_interval,
    rate_intervals,
)
from guardrail.fairness.metrics import (
    HIGHER_IS_BETTER,
    Disparity,
    DisparityName,
    RateName,
    based_on,
    denominator_array,
    disparity,
    numerator_array,
    rate,
    rate_array,
)

HYBRID = "simultaneous pairwise bootstrap within per-group Clopper–Pearson bounds"


@dataclass(frozen=True)
class GroupTable:
    """One grouping's confusion counts ``(G, 2, 2)`` and, when intervals are asked for, their
    stratified resamples ``(B, G, 2, 2)``."""

    labels: tuple[str, ...]
    counts: np.ndarray
    boot: np.ndarray | None = None
    level: float = 0.95
    min_group_size: int = 30

    @property
    def sizes(self) -> np.ndarray:
        sizes: np.ndarray = self.counts.sum(axis=(1, 2))
        return sizes

    @property
    def small(self) -> np.ndarray:
        small: np.ndarray = self.sizes < self.min_group_size
        return small

    def subset(self, keep: np.ndarray) -> GroupTable:
        """The same table restricted to the groups where ``keep`` is true (same resamples)."""
        return GroupTable(
            tuple(label for label, kept in zip(self.labels, keep, strict=True) if kept),
            self.counts[keep],
            self.boot[:, keep] if self.boot is not None else None,
            self.level,
            self.min_group_size,
        )


@dataclass(frozen=True)
class RateEstimate:
    """A rate overall and per group, with exact intervals (``None`` without resamples or
    where undefined), and why values are undefined."""

    name: RateName
    overall: float
    ci: Interval | None
    by_group: np.ndarray
    group_ci: tuple[Interval | None, ...]
    undefined_reason: str | None


@dataclass(frozen=True)
class DisparityEstimate:
    """A disparity, its interval, and the same over the groups not below the minimum size."""

    disparity: Disparity
    ci: Interval | None
    without_small: dict[str, Any] | None = None


def rate_estimate(table: GroupTable, name: RateName) -> RateEstimate:
    """One rate of ``table``: per group and overall, with Clopper–Pearson intervals."""
    found = rate(table.counts, name)
    groups = len(table.labels)
    if name == "count" or table.boot is None:
        return RateEstimate(name, found.overall, None, found.by_group, (None,) * groups, found.undefined_reason)
    successes, trials = numerator_array(table.counts, name), denominator_array(table.counts, name)
    return RateEstimate(
        name,
        found.overall,
        rate_interval(int(successes.sum()), int(trials.sum()), table.level),
        found.by_group,
        rate_intervals(successes, trials, table.level),
        found.undefined_reason,
    )


def disparity_estimate(table: GroupTable, name: DisparityName) -> DisparityEstimate:
    """One disparity of ``table`` with its interval (see the module docstring), and the
    same without the groups below ``table.min_group_size`` when that leaves two or more."""
    found, ci = _disparity_with_interval(table, name)
    return DisparityEstimate(found, ci, _without_small(table, name))


def _disparity_with_interval(table: GroupTable, name: DisparityName) -> tuple[Disparity, Interval | None]:
    rates = {r: rate(table.counts, r) for r in based_on(name)}
    found = disparity(rates, name, table.labels)
    if table.boot is None or found.reason is not None:
        return found, None
    # a ratio leaves out a rate that is 0 in every group, as its estimate does
    used = [r for r in found.based_on if found.kind == "difference" or np.any(rates[r].by_group > 0)]
    successes = {r: numerator_array(table.counts, r) for r in used}
    trials = {r: denominator_array(table.counts, r) for r in used}
    bounds: Bounds = box_bounds(successes, trials, found.kind)
    method, resamples, undefined = BOX, 0, 0
    if all(np.minimum(successes[r], trials[r] - successes[r]).min() >= RELIABLE_COUNT for r in used):
        boot = gap_bootstrap(
            {r: rates[r].by_group for r in used}, {r: rate_array(table.boot, r) for r in used}, found.kind
        )
        if boot is not None:
            bounds, method = intersect(boot.bounds, bounds), HYBRID
            resamples, undefined = boot.resamples, boot.undefined
    ci = bounded_interval(bounds, found.value, table.level, method, resamples=resamples, undefined=undefined)
    return found, ci


def _without_small(table: GroupTable, name: DisparityName) -> dict[str, Any] | None:
    """``details["without_small"]``: the disparity over the groups at or above the minimum
    size, with its interval on the same resamples; ``None`` unless some group is below it and
    at least two are not."""
    small = table.small
    if not small.any() or int((~small).sum()) < 2:
        return None
    found, ci = _disparity_with_interval(table.subset(~small), name)
    return {
        "min_group_n": table.min_group_size,
        "excluded": [label for label, s in zip(table.labels, small, strict=True) if s],
        "value": None if math.isnan(found.value) else found.value,
        "reason": found.reason,
        "ci": None if ci is None else {"low": ci.low, "high": ci.high, "level": ci.level, "method": ci.method},
    }


# -- MetricResults, as every audit reports them -------------------------------------------------


def group_values(table: GroupTable, estimate: RateEstimate) -> tuple[GroupValue, ...]:
    """Each group's value of a rate, with its size, small flag and exact interval."""
    sizes, small = table.sizes, table.small
    return tuple(
        GroupValue(
            group=label,
            value=None if math.isnan(estimate.by_group[i]) else float(estimate.by_group[i]),
            n=int(sizes[i]),
            small=bool(small[i]),
            reason=estimate.undefined_reason if math.isnan(estimate.by_group[i]) else None,
            ci=estimate.group_ci[i],
        )
        for i, label in enumerate(table.labels)
    )


def rate_metric(
    table: GroupTable, name: RateName, *, key: str, scope: str, details: Mapping[str, Any] | None = None
) -> MetricResult:
    """A rate as a :class:`MetricResult`: overall value and interval, every group's value."""
    found = rate_estimate(table, name)
    undefined = math.isnan(found.overall)
    return MetricResult(
        key=key,
        scope=scope,
        value=None if undefined else found.overall,
        reason=f"undefined overall ({found.undefined_reason})" if undefined else None,
        ci=found.ci,
        by_group=group_values(table, found),
        n=int(table.sizes.sum()),
        higher_is_better=HIGHER_IS_BETTER[name],
        details=dict(details or {}),
    )


def disparity_details(found: DisparityEstimate, labels: Sequence[str]) -> dict[str, Any]:
    """What a disparity's ``details`` say about it, in every audit that reports one: the rates
    it is based on and the one it is worst on, how it aggregates, which groups are furthest
    apart, and the larger groups' disparity when some are small (``without_small``)."""
    gap = found.disparity
    described: dict[str, Any] = {
        "based_on": list(gap.based_on),
        "worst_rate": gap.worst_rate or gap.based_on[0],
        "aggregation": gap.kind,
        "min_group": labels[gap.min_group] if gap.min_group is not None else None,
        "max_group": labels[gap.max_group] if gap.max_group is not None else None,
    }
    if found.without_small is not None:
        described["without_small"] = found.without_small
    return described


def disparity_metric(
    table: GroupTable, name: DisparityName, *, key: str, scope: str, details: Mapping[str, Any] | None = None
) -> MetricResult:
    """A disparity as a :class:`MetricResult`: value and interval, the groups' values of the
    rate it is worst on, which groups are furthest apart and how it aggregates."""
    found = disparity_estimate(table, name)
    gap = found.disparity
    shown = gap.worst_rate or gap.based_on[0]
    described = {**(details or {}), **disparity_details(found, table.labels)}
    return MetricResult(
        key=key,
        scope=scope,
        value=None if math.isnan(gap.value) else gap.value,
        reason=gap.reason,
        ci=found.ci,
        by_group=group_values(table, rate_estimate(table, shown)),
        n=int(table.sizes.sum()),
        higher_is_better=HIGHER_IS_BETTER[name],
        details=described,
    )
