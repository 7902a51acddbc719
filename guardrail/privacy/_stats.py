"""ROC curves of membership scores from per-level count tables, and their stratified bootstrap.

Scores are reduced once to a table: for each distinct score level (highest first), the
number of members and of non-members at that level. The ROC curve, its area, the TPR at a
fixed FPR and the attack advantage all follow from the cumulative sums of that table.

Resampling members with replacement and then counting them per level is the same as
drawing one multinomial over the levels with the observed member proportions (members at
one level are exchangeable), and likewise for non-members. So the bootstrap stratified by
membership draws two multinomials per resample, whatever the number of rows — the same
idea as :mod:`guardrail.fairness.bootstrap`.

Interval constructions, one per quantity (chosen by the coverage simulation in
``benchmarks/coverage_privacy.py``):

* AUC — the percentile bootstrap (a smooth statistic: it covers at its level);
* TPR at FPR α — :func:`tpr_at_fpr_bounds`: binomial order statistics of the non-members'
  scores bound the threshold, Clopper–Pearson bounds the members above it. The percentile
  bootstrap of this extreme-quantile statistic under-covered (0.85–0.88 at 0.1% FPR);
* advantage — :func:`advantage_bounds`: the simultaneous bootstrap of ``TPR − FPR`` over all
  thresholds. The percentile bootstrap of a maximum is biased upwards and covered 0.01 of
  the time for a useless attack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CHUNK = 64
"""Bootstrap resamples evaluated together (memory: CHUNK × levels floats, a few times over)."""


@dataclass(frozen=True)
class LevelTable:
    """Members and non-members per distinct score level, highest level first."""

    levels: FloatArray
    members: IntArray
    nonmembers: IntArray

    @property
    def n_members(self) -> int:
        return int(self.members.sum())

    @property
    def n_nonmembers(self) -> int:
        return int(self.nonmembers.sum())


def level_table(scores: FloatArray, is_member: npt.NDArray[np.bool_]) -> LevelTable:
    """Count members and non-members at each distinct score, from the highest score down."""
    levels, inverse = np.unique(-scores, return_inverse=True)
    n_levels = levels.size
    members = np.bincount(inverse[is_member], minlength=n_levels).astype(np.int64)
    nonmembers = np.bincount(inverse[~is_member], minlength=n_levels).astype(np.int64)
    return LevelTable(levels=-levels, members=members, nonmembers=nonmembers)


def roc_points(
    members: IntArray, nonmembers: IntArray
) -> tuple[FloatArray, FloatArray]:
    """ROC vertices ``(fpr, tpr)`` of count rows ``(..., levels)``: ``(..., levels + 1)``, from (0, 0).

    Vertex ``l`` is the operating point of the rule "member if score ≥ level ``l``"; ties
    are one vertex, so the curve crosses a tie diagonally (a randomised threshold).
    """
    n1 = members.sum(axis=-1, keepdims=True)
    n0 = nonmembers.sum(axis=-1, keepdims=True)
    zero = np.zeros((*members.shape[:-1], 1))
    tpr = np.concatenate([zero, np.cumsum(members, axis=-1) / n1], axis=-1)
    fpr = np.concatenate([zero, np.cumsum(nonmembers, axis=-1) / n0], axis=-1)
    return fpr, tpr


def auc(fpr: FloatArray, tpr: FloatArray) -> FloatArray:
    """Area under ROC vertices (trapezoids): the Mann–Whitney probability, ties counted ½."""
    result: FloatArray = np.sum(
        np.diff(fpr, axis=-1) * (tpr[..., 1:] + tpr[..., :-1]) / 2, axis=-1
    )
    return result


def tpr_at_fpr(fpr: FloatArray, tpr: FloatArray, alpha: float) -> FloatArray:
    """The ROC curve's TPR at FPR ``alpha``, rows ``(..., vertices)`` at a time.

    Rule: the piecewise-linear curve through the vertices, evaluated at ``alpha``; where
    the curve is vertical at ``alpha`` (several vertices with FPR exactly ``alpha``), the
    highest of their TPRs.
    """
    k = (
        np.sum(fpr <= alpha, axis=-1, keepdims=True) - 1
    )  # last vertex with FPR ≤ alpha (≥ 0: vertex 0 is (0, 0))
    last = fpr.shape[-1] - 1
    k_next = np.minimum(k + 1, last)
    f0, f1 = np.take_along_axis(fpr, k, -1), np.take_along_axis(fpr, k_next, -1)
    t0, t1 = np.take_along_axis(tpr, k, -1), np.take_along_axis(tpr, k_next, -1)
    span = f1 - f0
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(span > 0, (alpha - f0) / np.where(span > 0, span, 1.0), 0.0)
    result: FloatArray = (t0 + (t1 - t0) * step)[..., 0]
    return result


def advantage(fpr: FloatArray, tpr: FloatArray) -> FloatArray:
    """Attack advantage ``max over thresholds (TPR − FPR)`` (Yeom et al. 2018); ≥ 0."""
    result: FloatArray = np.max(tpr - fpr, axis=-1)
    return result


def min_nonmembers(alpha: float) -> int:
    """Non-members needed before TPR at FPR ``alpha`` means anything: ``⌈1 / alpha⌉``.

    >>> min_nonmembers(0.001), min_nonmembers(0.01)
    (1000, 100)
    """
    return math.ceil(1 / alpha - 1e-9)


def summaries(
    fpr: FloatArray, tpr: FloatArray, alphas: tuple[float, ...]
) -> dict[str, FloatArray]:
    """AUC, advantage and TPR at each FPR in ``alphas`` of ROC rows."""
    out = {"auc": auc(fpr, tpr), "advantage": advantage(fpr, tpr)}
    for alpha in alphas:
        out[f"tpr@{alpha}"] = tpr_at_fpr(fpr, tpr, alpha)
    return out


DEVIATION = "deviation"
"""Key of the bootstrap draws of ``max over thresholds |Δ(TPR − FPR)|`` (see :func:`advantage_bounds`)."""


def bootstrap_summaries(
    table: LevelTable,
    resamples: int,
    rng: np.random.Generator,
    alphas: tuple[float, ...],
) -> dict[str, FloatArray]:
    """``(resamples,)`` bootstrap draws of :func:`summaries`, stratified by membership, and
    under :data:`DEVIATION` the largest deviation of each resample's ``TPR − FPR`` from the
    observed one over all thresholds."""
    n1, n0 = table.n_members, table.n_nonmembers
    p1, p0 = table.members / n1, table.nonmembers / n0
    fpr, tpr = roc_points(table.members, table.nonmembers)
    observed = tpr - fpr
    parts: list[dict[str, FloatArray]] = []
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        members = rng.multinomial(n1, p1, size=size).astype(np.int64)
        nonmembers = rng.multinomial(n0, p0, size=size).astype(np.int64)
        boot_fpr, boot_tpr = roc_points(members, nonmembers)
        part = summaries(boot_fpr, boot_tpr, alphas)
        part[DEVIATION] = np.max(np.abs(boot_tpr - boot_fpr - observed), axis=-1)
        parts.append(part)
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def percentile_bounds(samples: FloatArray, tail: float) -> tuple[float, float]:
    """The percentile bootstrap's ``(low, high)`` leaving ``tail`` of ``samples`` on each side."""
    low, high = np.quantile(samples, [tail, 1 - tail])
    return float(low), float(high)


def advantage_bounds(estimate: float, deviation: FloatArray, tail: float) -> tuple[float, float]:
    """Simultaneous bootstrap bounds on the advantage ``max_t (TPR − FPR)(t)``.

    ``|max_t a*(t) − max_t a(t)| ≤ max_t |a*(t) − a(t)|``, so with ``c`` the ``1 − 2·tail``
    quantile of that largest deviation over the resamples (``deviation``, never interpolated
    toward a narrower bound) the advantage lies in ``[max(0, D̂ − c), min(1, D̂ + c)]`` — the
    construction of :func:`guardrail.fairness.bootstrap.gap_bootstrap` for a gap.
    """
    coverage = 1 - 2 * tail
    c = float(np.quantile(deviation, coverage, method="higher")) if coverage > 0 else 0.0
    return max(0.0, estimate - c), min(1.0, estimate + c)


def tpr_at_fpr_bounds(table: LevelTable, alpha: float, tail: float) -> tuple[float, float]:
    """Bounds on the TPR at FPR ``alpha``, each side leaving at most ``tail`` outside.

    Distribution-free, for any sample size. Let ``t`` be the score threshold whose true FPR
    is ``alpha``; the number ``K`` of non-members scoring ≥ ``t`` is Binomial(n0, alpha).
    With ``k_lo`` and ``k_hi`` its ``tail/2`` and ``1 − tail/2`` quantiles, ``K ≥ k_lo``
    puts ``t`` at or below the ``k_lo``-th highest non-member score ``X_(k_lo)``, and
    ``K ≤ k_hi`` puts it above ``X_(k_hi+1)``, each with probability ≥ 1 − tail/2. So
    ``P1(S > X_(k_lo)) ≤ TPR(alpha) ≤ P1(S ≥ X_(k_hi+1))``, and the members, independent of
    the non-members, bound those two probabilities by Clopper–Pearson at ``tail/2`` each.
    """
    from scipy.stats import binom

    from guardrail.fairness.intervals import clopper_pearson

    n1, n0 = table.n_members, table.n_nonmembers
    half = tail / 2
    k_lo = int(binom.ppf(half, n0, alpha))
    k_hi = int(binom.ppf(1 - half, n0, alpha))
    above0 = np.cumsum(table.nonmembers)  # non-members scoring ≥ each level (levels descend)
    above1 = np.cumsum(table.members)
    if k_lo <= 0:
        lower_count = 0
    else:
        level = int(np.searchsorted(above0, k_lo))  # the level of X_(k_lo)
        lower_count = int(above1[level] - table.members[level])  # members strictly above it
    if k_hi + 1 > n0:
        upper_count = n1
    else:
        upper_count = int(above1[int(np.searchsorted(above0, k_hi + 1))])  # members ≥ X_(k_hi+1)
    low, _ = clopper_pearson(np.array([lower_count]), np.array([n1]), half)
    _, high = clopper_pearson(np.array([upper_count]), np.array([n1]), half)
    return float(low[0]), float(high[0])


def downsample_curve(
    fpr: FloatArray, tpr: FloatArray, max_points: int = 200
) -> tuple[FloatArray, FloatArray]:
    """At most ``max_points`` points on the ROC curve, for a chart.

    All vertices when there are few enough. Otherwise the curve (by the rule of
    :func:`tpr_at_fpr`) at FPR 0, 1 and a grid that is half log-spaced (from the smallest
    non-zero FPR, so that a log-scale chart of the low-FPR region stays faithful) and half
    evenly spaced.
    """
    if fpr.size <= max_points:
        return fpr, tpr
    smallest = float(np.min(fpr[fpr > 0]))
    half = (max_points - 2) // 2
    grid = np.unique(
        np.concatenate(
            [
                [0.0, 1.0],
                np.geomspace(smallest, 1.0, half),
                np.linspace(0.0, 1.0, max_points - 2 - half),
            ]
        )
    )[:max_points]
    values = np.array([float(tpr_at_fpr(fpr, tpr, float(alpha))) for alpha in grid])
    return grid, values
