"""Candidate − baseline on the same rows: the Δ of a rate or of a disparity, with its interval.

A paired table ``(G, 2, 2, 2)`` counts rows by group, true label, candidate decision and
baseline decision; its resamples ``(B, G, 2, 2, 2)`` judge both models on the same resampled
rows. The Δ of a rate whose denominator both models share (selection rate, TPR, FPR, FNR,
accuracy) is ``(n₁₀ − n₀₁) / n``, with ``n₁₀`` the rows that count as a success for the
candidate only and ``n₀₁`` for the baseline only: the rows on which the two models differ
carry all the information, and when there are few of them (two models that differ on 2% of
30 rows) every resample shows no difference, and a bootstrap interval is ``[0, 0]``.

Constructions (two-sided level ``1 − 2t``; every interval contains its estimate):

* **Exact box.** Δ of a shared-denominator rate: ``[L₁₀ − U₀₁, U₁₀ − L₀₁]`` from
  Clopper–Pearson bounds of both discordant shares, each at tail ``t / 2``. Δ of precision
  (the denominators differ): ``[L_c − U_b, U_c − L_b]``, the two models' rates at ``t / 2``.
  Δ of a difference-kind disparity: a max − min moves by at most the spread of the groups'
  changes, ``|ΔD| ≤ max_g δ_g − min_g δ_g`` (and the worst over rates by at most the worst
  such spread), with every group's change ``δ_g`` bounded at once (Bonferroni over groups
  and rates). Δ of a ratio: the two models' disparity boxes
  (:func:`~guardrail.fairness.intervals.box_bounds`) at ``t / 2`` each.
* **Paired bootstrap.** Where every count involved is large (at least
  :data:`~guardrail.fairness.intervals.RELIABLE_COUNT` discordant rows each way and, for a
  disparity, successes and failures of both models in every group), the percentile interval
  of the paired resamples' differences, kept within the exact box.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from guardrail.core.types import GroupValue, Interval, MetricResult
from guardrail.fairness.intervals import RELIABLE_COUNT, Bounds, bounded_interval, box_bounds, clopper_pearson, intersect
from guardrail.fairness.metrics import (
    HIGHER_IS_BETTER,
    DisparityName,
    RateName,
    based_on,
    denominator_array,
    disparity,
    disparity_array,
    numerator_array,
    rate,
    rate_array,
)

if TYPE_CHECKING:
    from guardrail.fairness.groups import Grouping

PAIRED = "paired bootstrap percentile within exact bounds"
PAIRED_BOX = "exact bounds from the rows where the models differ (too few of them for the bootstrap)"


@dataclass(frozen=True)
class DeltaEstimate:
    """Candidate − baseline of one quantity: both values, their difference and its interval."""

    candidate: float
    baseline: float
    ci: Interval | None

    @property
    def value(self) -> float:
        return self.candidate - self.baseline


def candidate_table(paired: np.ndarray) -> np.ndarray:
    """The candidate's ``(..., 2, 2)`` confusion table of a paired ``(..., 2, 2, 2)`` one."""
    table: np.ndarray = paired.sum(axis=-1)
    return table


def baseline_table(paired: np.ndarray) -> np.ndarray:
    """The baseline's ``(..., 2, 2)`` confusion table of a paired ``(..., 2, 2, 2)`` one."""
    table: np.ndarray = paired.sum(axis=-2)
    return table


def discordance(paired: np.ndarray, name: RateName) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(n₁₀, n₀₁, n)`` over the leading axes of a paired table, for a rate whose denominator
    depends on the true label only; ``None`` for one whose denominator depends on the
    decision (precision)."""
    num, den = _masks(name)
    if not np.array_equal(den[:, 0], den[:, 1]):
        return None
    y, c, b = np.meshgrid(range(2), range(2), range(2), indexing="ij")
    rows = den[y, 0]
    only_candidate = rows & num[y, c] & ~num[y, b]
    only_baseline = rows & ~num[y, c] & num[y, b]
    axes = (-3, -2, -1)
    return (paired * only_candidate).sum(axis=axes), (paired * only_baseline).sum(axis=axes), (paired * rows).sum(axis=axes)


def _masks(name: RateName) -> tuple[np.ndarray, np.ndarray]:
    """Which ``(y_true, y_pred)`` cells count in a rate's numerator and denominator."""
    unit = np.eye(4, dtype=np.int64).reshape(4, 2, 2)
    return numerator_array(unit, name).reshape(2, 2) > 0, denominator_array(unit, name).reshape(2, 2) > 0


def rate_delta(paired: np.ndarray, boot: np.ndarray | None, name: RateName, level: float, *, table: bool = True) -> DeltaEstimate:
    """Δ of one rate over the rows of a paired ``(2, 2, 2)`` table (a group, or all groups
    summed), with resamples ``(B, 2, 2, 2)`` of the same rows."""
    c_counts, b_counts = candidate_table(paired), baseline_table(paired)
    candidate, baseline = float(rate_array(c_counts, name)), float(rate_array(b_counts, name))
    if boot is None or math.isnan(candidate - baseline):
        return DeltaEstimate(candidate, baseline, None)
    split = discordance(paired, name)
    if split is None:
        # precision: judged on the rows where the decisions differ, and both models' own counts
        box = _two_rates_box(c_counts, b_counts, name)
        differ = discordance(paired, "selection_rate")
        assert differ is not None
        reliable = min(int(differ[0]), int(differ[1])) >= RELIABLE_COUNT and all(
            _counts_reliable(counts, name) for counts in (c_counts, b_counts)
        )
    else:
        n10, n01, n = (int(v) for v in split)
        box = _discordant_box(np.array([n10]), np.array([n01]), np.array([n]))
        reliable = min(n10, n01) >= RELIABLE_COUNT
    samples = rate_array(candidate_table(boot), name) - rate_array(baseline_table(boot), name) if reliable else None
    return DeltaEstimate(candidate, baseline, _combined(box, samples, candidate - baseline, level, table))


def disparity_delta(paired: np.ndarray, boot: np.ndarray | None, name: DisparityName, labels: tuple[str, ...], level: float) -> DeltaEstimate:
    """Δ of one disparity between the groups of a paired ``(G, 2, 2, 2)`` table."""
    c_counts, b_counts = candidate_table(paired), baseline_table(paired)
    rates = based_on(name)
    found_c = disparity({r: rate(c_counts, r) for r in rates}, name, labels)
    found_b = disparity({r: rate(b_counts, r) for r in rates}, name, labels)
    if boot is None or math.isnan(found_c.value - found_b.value):
        return DeltaEstimate(found_c.value, found_b.value, None)
    splits = [discordance(paired, r) for r in rates]
    reliable = all(s is not None and min(int(s[0].min()), int(s[1].min())) >= RELIABLE_COUNT for s in splits) and all(
        _counts_reliable(counts, r) for counts in (c_counts, b_counts) for r in rates
    )
    if found_c.kind == "difference":
        box = _spread_box([s for s in splits if s is not None])
    else:
        box = _ratio_boxes(c_counts, b_counts, rates)
    samples = None
    if reliable:
        boot_c, boot_b = candidate_table(boot), baseline_table(boot)
        samples = disparity_array({r: rate_array(boot_c, r) for r in rates}, name) - disparity_array(
            {r: rate_array(boot_b, r) for r in rates}, name
        )
    return DeltaEstimate(found_c.value, found_b.value, _combined(box, samples, found_c.value - found_b.value, level, True))


def _counts_reliable(counts: np.ndarray, name: RateName) -> bool:
    successes, trials = numerator_array(counts, name), denominator_array(counts, name)
    return bool(np.minimum(successes, trials - successes).min() >= RELIABLE_COUNT)


def _combined(box: Bounds, samples: np.ndarray | None, estimate: float, level: float, table: bool) -> Interval | None:
    """The paired percentile interval within ``box`` where ``samples`` are given (and mostly
    defined), else ``box`` alone."""
    if samples is not None:
        defined = samples[~np.isnan(samples)]
        if defined.size and defined.size * 2 >= samples.size:
            percentile: Bounds = _percentile(defined)
            return bounded_interval(
                intersect(percentile, box),
                estimate,
                level,
                PAIRED,
                table=table,
                resamples=int(samples.size),
                undefined=int(samples.size - defined.size),
            )
    return bounded_interval(box, estimate, level, PAIRED_BOX, table=table)


def _percentile(defined: np.ndarray) -> Bounds:
    def bounds(tail: float) -> tuple[float, float]:
        low, high = np.quantile(defined, [tail, 1 - tail])
        return float(low), float(high)

    return bounds


def _discordant_bounds(n10: np.ndarray, n01: np.ndarray, n: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on each change ``p₁₀ − p₀₁``, every one-sided bound at ``tail``."""
    l10, u10 = clopper_pearson(n10, n, tail)
    l01, u01 = clopper_pearson(n01, n, tail)
    return l10 - u01, u10 - l01


def _discordant_box(n10: np.ndarray, n01: np.ndarray, n: np.ndarray) -> Bounds:
    """Δ of a shared-denominator rate: four one-sided bounds, each at ``tail / 2``."""

    def bounds(tail: float) -> tuple[float, float]:
        low, high = _discordant_bounds(n10, n01, n, tail / 2)
        return float(low[0]), float(high[0])

    return bounds


def _two_rates_box(c_counts: np.ndarray, b_counts: np.ndarray, name: RateName) -> Bounds:
    """Δ of a rate whose denominators differ between the models: both rates at ``tail / 2``."""

    def bounds(tail: float) -> tuple[float, float]:
        lc, uc = clopper_pearson(numerator_array(c_counts, name), denominator_array(c_counts, name), tail / 2)
        lb, ub = clopper_pearson(numerator_array(b_counts, name), denominator_array(b_counts, name), tail / 2)
        return float(lc - ub), float(uc - lb)

    return bounds


def _spread_box(splits: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Bounds:
    """Δ of a difference-kind disparity: ``±`` the largest spread of the groups' changes,
    every change bounded at once (``4K`` one-sided bounds for ``K`` group × rate changes)."""
    k = sum(len(s[0]) for s in splits)

    def bounds(tail: float) -> tuple[float, float]:
        spread = 0.0
        for n10, n01, n in splits:
            low, high = _discordant_bounds(n10, n01, n, tail / (2 * k))
            spread = max(spread, float(high.max() - low.min()))
        spread = min(spread, 1.0)
        return -spread, spread

    return bounds


def _ratio_boxes(c_counts: np.ndarray, b_counts: np.ndarray, rates: tuple[RateName, ...]) -> Bounds:
    """Δ of a ratio: the candidate's and the baseline's ratio boxes, each at ``tail / 2``."""
    boxes: list[Callable[[float], tuple[float, float]]] = []
    for counts in (c_counts, b_counts):
        used = [r for r in rates if np.any(rate_array(counts, r) > 0)]
        boxes.append(
            box_bounds({r: numerator_array(counts, r) for r in used}, {r: denominator_array(counts, r) for r in used}, "ratio")
        )

    def bounds(tail: float) -> tuple[float, float]:
        (low_c, high_c), (low_b, high_b) = boxes[0](tail / 2), boxes[1](tail / 2)
        return low_c - high_b, high_c - low_b

    return bounds


def delta_metrics(
    grouping: Grouping,
    paired: np.ndarray,
    boot: np.ndarray | None,
    *,
    rates: Sequence[RateName],
    disparities: Sequence[DisparityName],
    confidence: float,
) -> list[MetricResult]:
    """``fairness.delta.*``: candidate − baseline for every rate and disparity of a paired
    ``(G, 2, 2, 2)`` table (both models judged on the same rows and the same resamples of
    them), with the intervals of this module."""
    level = confidence
    names: list[RateName] = [n for n in rates if n != "count"]
    sizes = paired.sum(axis=(1, 2, 3))
    common = {"sensitive_features": list(grouping.features), "comparison": "candidate − baseline, paired bootstrap"}

    def value(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    results: list[MetricResult] = []
    for name in names:
        overall = rate_delta(paired.sum(axis=0), boot.sum(axis=1) if boot is not None else None, name, level)
        groups = [rate_delta(paired[i], boot[:, i] if boot is not None else None, name, level, table=False) for i in range(len(sizes))]
        by_group = tuple(
            GroupValue(
                group=label,
                value=value(found.value),
                n=int(sizes[i]),
                reason="undefined for a model" if math.isnan(found.value) else None,
                ci=found.ci,
            )
            for i, (label, found) in enumerate(zip(grouping.labels, groups, strict=True))
        )
        results.append(
            MetricResult(
                key=f"fairness.delta.{name}",
                scope=grouping.scope,
                value=value(overall.value),
                reason="undefined for the candidate or the baseline" if math.isnan(overall.value) else None,
                ci=overall.ci,
                by_group=by_group,
                n=int(sizes.sum()),
                higher_is_better=HIGHER_IS_BETTER[name],
                details={**common, "candidate": value(overall.candidate), "baseline": value(overall.baseline)},
            )
        )
    for disparity_name in disparities:
        found = disparity_delta(paired, boot, disparity_name, grouping.labels, level)
        results.append(
            MetricResult(
                key=f"fairness.delta.{disparity_name}",
                scope=grouping.scope,
                value=value(found.value),
                reason="undefined for the candidate or the baseline" if math.isnan(found.value) else None,
                ci=found.ci,
                n=int(sizes.sum()),
                higher_is_better=HIGHER_IS_BETTER[disparity_name],
                details={**common, "candidate": value(found.candidate), "baseline": value(found.baseline)},
            )
        )
    return results
