"""Intervals that hold for small counts: exact binomial bounds for a rate, and simultaneous
bounds for a gap between groups built from them.

A rate with a tiny denominator (a true-positive rate of 0/3) has a degenerate bootstrap:
every resample of 0/3 is 0/3, so a percentile interval is ``[0, 0]`` and claims a
certainty the data do not have. The Clopper–Pearson interval inverts two one-sided binomial
tests; its coverage is at least the nominal level for every true rate and every ``n``
(0 and ``n`` successes included), and it always contains the observed ``x / n``.

For a gap between groups (max − min, or min / max, worst over several rates), the
per-group bounds combine into a simultaneous *box*: with ``K`` per-group intervals, each
one-sided bound at tail ``t / K`` (Bonferroni), every true rate lies in its interval with
probability at least ``1 − 2t``, and then

* difference: ``max(0, max_g L_g − min_g U_g) ≤ max − min ≤ max_g U_g − min_g L_g``,
* ratio: ``min_g L_g / max_g U_g ≤ min / max ≤ min(1, min_g U_g / max_g L_g)``.

The box is conservative but valid at any group size, finite when a group's rate is 0 (a
ratio with a group at 0 gets ``[0, upper]``, so a four-fifths rule can fail on it), and it
always contains the estimate. :func:`guardrail.fairness.results.disparity_estimate`
combines it with the bootstrap construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, TypeVar

import numpy as np

from guardrail.core.errors import MissingExtraError
from guardrail.core.types import Interval, Quantile

CLOPPER_PEARSON = "Clopper–Pearson (exact binomial)"
BOX = "Bonferroni-combined per-group Clopper–Pearson bounds (counts too small for the bootstrap)"
"""Method names hold no ', ': a policy appends its multiple-comparison correction after one."""

TABLE_LEVELS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9975, 0.999, 0.9995,
)  # fmt: skip
"""Levels of the quantile table kept with each overall interval, so that a policy can judge
a bound at another level (multiple-comparison corrections). Entry ``q`` below 0.5 is the
lower bound leaving ``q`` outside (two-sided coverage ``1 − 2q``), above 0.5 the upper bound
leaving ``1 − q`` outside; 0.5 is the estimate."""

RELIABLE_COUNT = 10
"""Fewest successes and failures every group needs, in every rate a gap compares, for the
bootstrap to describe that group's sampling spread (the usual condition for a normal
approximation to a binomial); below it a gap's interval is the exact box alone."""

Name = TypeVar("Name", bound=str)

Bounds = Callable[[float], tuple[float, float]]
"""``tail → (low, high)``: the interval leaving ``tail`` outside on each side."""


def nominal_tail(level: float) -> float:
    """The tail left outside on each side at ``level`` (rounded, so that 0.95 gives exactly
    the table's 0.025 and an interval equals its own table's entries)."""
    return round((1 - level) / 2, 12)


def clopper_pearson(successes: np.ndarray, trials: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact one-sided binomial bounds, each leaving at most ``tail`` outside (vectorised).

    ``low`` is 0 when there are no successes and ``high`` is 1 when all are; both are NaN
    where ``trials`` is 0. The bounds always contain ``successes / trials``.

    >>> low, high = clopper_pearson(np.array([0, 3]), np.array([3, 10]), 0.025)
    >>> [round(float(v), 4) for v in (*low, *high)]
    [0.0, 0.0667, 0.7076, 0.6525]
    """
    try:
        from scipy.special import betaincinv
    except ImportError:
        raise MissingExtraError("scipy", "fairness") from None
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    defined = n > 0
    safe_n = np.where(defined, n, 1.0)
    estimate = np.where(defined, x / safe_n, np.nan)
    # parameters kept valid (> 0) where a branch is not taken, so no warning is raised
    low = np.where(x > 0, betaincinv(np.maximum(x, 1.0), np.maximum(safe_n - x + 1, 1.0), tail), 0.0)
    high = np.where(x < n, betaincinv(x + 1, np.maximum(safe_n - x, 1.0), 1 - tail), 1.0)
    low = np.where(defined, np.minimum(low, estimate), np.nan)  # exact containment despite rounding
    high = np.where(defined, np.maximum(high, estimate), np.nan)
    return low, high


def rate_interval(successes: int, trials: int, level: float, *, table: bool = True) -> Interval | None:
    """Clopper–Pearson interval of one rate (``None`` when ``trials`` is 0), with a quantile
    table of the exact bounds at :data:`TABLE_LEVELS` when ``table``."""
    if trials <= 0:
        return None
    x, n = np.array([successes]), np.array([trials])

    def bounds(tail: float) -> tuple[float, float]:
        low, high = clopper_pearson(x, n, tail)
        return float(low[0]), float(high[0])

    return bounded_interval(bounds, successes / trials, level, CLOPPER_PEARSON, table=table)


def rate_intervals(successes: np.ndarray, trials: np.ndarray, level: float) -> tuple[Interval | None, ...]:
    """Clopper–Pearson interval of each group's rate (no quantile tables; ``None`` where undefined)."""
    low, high = clopper_pearson(successes, trials, nominal_tail(level))
    return tuple(
        Interval(float(lo), float(hi), level, CLOPPER_PEARSON) if n > 0 else None
        for lo, hi, n in zip(low, high, np.asarray(trials), strict=True)
    )


def box_bounds(
    successes: Mapping[Name, np.ndarray],
    trials: Mapping[Name, np.ndarray],
    kind: Literal["difference", "ratio"],
) -> Bounds:
    """Simultaneous bounds on a between-groups gap from Bonferroni-adjusted per-group
    Clopper–Pearson intervals (see the module docstring).

    ``successes`` and ``trials`` map each rate the gap takes the worst of to its ``(G,)``
    counts; every group must have ``trials > 0``. A difference is the largest over the
    rates, a ratio the smallest.
    """
    k = sum(len(x) for x in successes.values())

    def bounds(tail: float) -> tuple[float, float]:
        lows, highs = [], []
        for name, x in successes.items():
            low, high = clopper_pearson(x, trials[name], tail / k)
            if kind == "difference":
                lows.append(max(0.0, float(low.max() - high.min())))
                highs.append(float(high.max() - low.min()))
            else:
                lows.append(float(low.min() / high.max()))
                top = float(low.max())
                highs.append(min(1.0, float(high.min()) / top) if top > 0 else 1.0)
        pick = max if kind == "difference" else min
        return pick(lows), pick(highs)

    return bounds


def bounded_interval(
    bounds: Bounds,
    estimate: float,
    level: float,
    method: str,
    *,
    table: bool = True,
    resamples: int = 0,
    undefined: int = 0,
) -> Interval:
    """The :class:`Interval` at ``level`` of a family of bounds, with its quantile table.

    Every bound is widened to contain ``estimate`` (the table stays monotone and the
    interval never excludes its own estimate).
    """

    def at(tail: float) -> tuple[float, float]:
        low, high = bounds(tail)
        return min(low, estimate), max(high, estimate)

    low, high = at(nominal_tail(level))
    quantiles: tuple[Quantile, ...] = ()
    if table:
        quantiles = tuple(
            Quantile(q, estimate if q == 0.5 else (at(q)[0] if q < 0.5 else at(round(1 - q, 12))[1])) for q in TABLE_LEVELS
        )
    return Interval(
        low=low,
        high=high,
        level=level,
        method=method,
        resamples=resamples,
        undefined=undefined,
        quantiles=quantiles,
    )


def intersect(first: Bounds, second: Bounds) -> Bounds:
    """Bounds that are the intersection of two families (both must contain the estimate)."""

    def bounds(tail: float) -> tuple[float, float]:
        (low_a, high_a), (low_b, high_b) = first(tail), second(tail)
        return max(low_a, low_b), min(high_a, high_b)

    return bounds
