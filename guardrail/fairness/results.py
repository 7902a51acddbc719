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
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from guardrail.core.types import SMALL_GROUP, GroupValue, Interval, MetricResult
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

if TYPE_CHECKING:
    from guardrail.fairness.groups import Grouping

HYBRID = "simultaneous pairwise bootstrap within per-group Clopper–Pearson bounds"

SmallGroups = Literal["flag", "withhold"]
"""What a group below the minimum size does to the metrics built here: ``"flag"`` (the fairness
and mitigation audits) reports its values marked ``small``, and a policy rule's
``min_group_n`` decides; ``"withhold"`` (the federated audit, whose hospitals may not reveal a
small group's rates) withholds its values and leaves every disparity over it undefined."""


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


def group_values(table: GroupTable, estimate: RateEstimate, small: SmallGroups = "flag") -> tuple[GroupValue, ...]:
    """Each group's value of a rate, with its size, small flag and exact interval; with
    ``small="withhold"`` a small group's value and interval are withheld (its count is not)."""
    sizes, is_small = table.sizes, table.small
    values = []
    for i, label in enumerate(table.labels):
        undefined = math.isnan(estimate.by_group[i])
        withheld = small == "withhold" and bool(is_small[i]) and estimate.name != "count"
        values.append(
            GroupValue(
                group=label,
                value=None if undefined or withheld else float(estimate.by_group[i]),
                n=int(sizes[i]),
                small=bool(is_small[i]),
                reason=_small_group(int(sizes[i]), table) if withheld else (estimate.undefined_reason if undefined else None),
                ci=None if withheld else estimate.group_ci[i],
            )
        )
    return tuple(values)


def rate_metric(
    table: GroupTable,
    name: RateName,
    *,
    key: str,
    scope: str,
    details: Mapping[str, Any] | None = None,
    small: SmallGroups = "flag",
) -> MetricResult:
    """A rate as a :class:`MetricResult`: overall value and interval, every group's value.

    ``small`` says what groups below ``table.min_group_size`` do (:data:`SmallGroups`); with
    ``"withhold"`` the overall rate of a table smaller than that is undefined too."""
    found = rate_estimate(table, name)
    undefined = math.isnan(found.overall)
    total = int(table.sizes.sum())
    too_few = small == "withhold" and total < table.min_group_size and name != "count"
    reason = _small_group(total, table) if too_few else (f"undefined overall ({found.undefined_reason})" if undefined else None)
    return MetricResult(
        key=key,
        scope=scope,
        value=None if undefined or too_few else found.overall,
        reason=reason,
        ci=None if too_few else found.ci,
        by_group=group_values(table, found, small),
        n=total,
        higher_is_better=HIGHER_IS_BETTER[name],
        details=dict(details or {}),
    )


def _small_group(n: int, table: GroupTable) -> str:
    return f"{SMALL_GROUP}: n={n} below {table.min_group_size}"


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
    table: GroupTable,
    name: DisparityName,
    *,
    key: str,
    scope: str,
    details: Mapping[str, Any] | None = None,
    small: SmallGroups = "flag",
) -> MetricResult:
    """A disparity as a :class:`MetricResult`: value and interval, the groups' values of the
    rate it is worst on, which groups are furthest apart and how it aggregates.

    With ``small="withhold"``, a disparity over any group below ``table.min_group_size`` is
    undefined (inconclusive), its estimate kept in ``details["estimate"]``."""
    found = disparity_estimate(table, name)
    gap = found.disparity
    shown = gap.worst_rate or gap.based_on[0]
    estimate = None if math.isnan(gap.value) else gap.value
    if small == "withhold":
        reason = _small_groups(table) if table.small.any() else gap.reason
        value, ci = (estimate, found.ci) if reason is None else (None, None)
        described = {**(details or {}), "estimate": estimate, **disparity_details(found, table.labels)}
    else:
        reason, value, ci = gap.reason, estimate, found.ci
        described = {**(details or {}), **disparity_details(found, table.labels)}
    return MetricResult(
        key=key,
        scope=scope,
        value=value,
        reason=reason,
        ci=ci,
        by_group=group_values(table, rate_estimate(table, shown), small),
        n=int(table.sizes.sum()),
        higher_is_better=HIGHER_IS_BETTER[name],
        details=described,
    )


def _small_groups(table: GroupTable) -> str:
    named = [f"{table.labels[i]!r} (n={int(table.sizes[i])})" for i in np.flatnonzero(table.small)]
    return f"{SMALL_GROUP}: group(s) {', '.join(named)} below min_group_size {table.min_group_size}; inconclusive"


# -- a grouping's metrics, as the fairness audit reports them ----------------------------------------


def grouping_metrics(
    grouping: Grouping,
    counts: np.ndarray,
    boot: np.ndarray | None,
    *,
    rates: Sequence[RateName],
    disparities: Sequence[DisparityName],
    confidence: float,
    min_group_size: int,
    scope: str | None = None,
) -> list[MetricResult]:
    """Every rate and disparity of one grouping's ``(G, 2, 2)`` table (``boot``: its resamples),
    small groups flagged, each difference with the gap its two smallest groups can detect, and
    the smallest group's size; in ``scope`` (default: the grouping's)."""
    from guardrail.fairness.power import detectable_gap_details

    table = GroupTable(grouping.labels, counts, boot, confidence, min_group_size)
    labels, sizes, small = grouping.labels, table.sizes, table.small
    scope = scope or grouping.scope
    common = {"sensitive_features": list(grouping.features), "min_group_size": min_group_size}
    small_groups = [labels[i] for i in range(len(labels)) if small[i]]
    results = [
        rate_metric(table, name, key=f"fairness.{name}", scope=scope, details={**common, "small_groups": small_groups})
        for name in rates
    ]
    results += [
        disparity_metric(
            table,
            name,
            key=f"fairness.{name}",
            scope=scope,
            details={**common, **detectable_gap_details(name, counts, labels, confidence)},
        )
        for name in disparities
    ]
    results.append(min_group_size_metric(scope, labels, sizes, small, common))
    return results


def min_group_size_metric(
    scope: str, labels: tuple[str, ...], sizes: np.ndarray, small: np.ndarray, details: Mapping[str, object]
) -> MetricResult:
    """The smallest group's size, with every group's size."""
    return MetricResult(
        key="fairness.min_group_size",
        scope=scope,
        value=float(sizes.min()),
        by_group=tuple(GroupValue(label, float(sizes[i]), int(sizes[i]), bool(small[i])) for i, label in enumerate(labels)),
        n=int(sizes.sum()),
        higher_is_better=True,
        details={**details, "smallest_group": labels[int(sizes.argmin())]},
    )
