"""Bootstrap intervals from count tables, without touching the rows again.

A stratified row bootstrap (resample ``n_g`` rows with replacement inside each group)
draws, for each group, a multinomial over the group's four confusion cells with the
observed cell proportions. Drawing those multinomials directly gives the same distribution
at a cost of ``O(resamples × groups)``, whatever the number of rows.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from guardrail.core.types import Interval, Quantile
from guardrail.fairness.intervals import TABLE_LEVELS, Bounds, bounded_interval

METHOD = "percentile"


@dataclass(frozen=True)
class BootstrapSpec:
    resamples: int = 1000
    level: float = 0.95
    seed: int = 0


def grouping_rng(seed: int, scope: str) -> np.random.Generator:
    """The random stream of one grouping's resamples: a function of the seed and the scope's
    name only, so that the same table with the same seed gets the same resamples in every
    audit that reports on it (fairness, mitigation), whatever else that audit resamples."""
    return np.random.default_rng([seed, zlib.crc32(scope.encode())])


def resample_counts(counts: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified bootstrap replicates of a ``(G, *cells)`` count table: ``(resamples, G, *cells)``."""
    groups, cell_shape = counts.shape[0], counts.shape[1:]
    flat = counts.reshape(groups, -1)
    out = np.zeros((resamples, groups, flat.shape[1]), dtype=np.int64)
    for g in range(groups):
        n = int(flat[g].sum())
        if n:
            out[:, g, :] = rng.multinomial(n, flat[g] / n, size=resamples)
    return out.reshape(resamples, groups, *cell_shape)


def interval(samples: np.ndarray, spec: BootstrapSpec, *, table: bool = True) -> Interval | None:
    """Percentile interval of bootstrap ``samples`` (NaN = undefined in that resample).

    ``None`` when fewer than half the resamples define the value: the interval would
    describe a different population than the estimate.
    """
    defined = samples[~np.isnan(samples)]
    if defined.size * 2 < samples.size or defined.size == 0:
        return None
    tail = (1 - spec.level) / 2
    low, high = np.quantile(defined, [tail, 1 - tail])
    levels = np.quantile(defined, TABLE_LEVELS)
    return Interval(
        low=float(low),
        high=float(high),
        level=spec.level,
        method=METHOD,
        resamples=int(samples.size),
        undefined=int(samples.size - defined.size),
        quantiles=tuple(Quantile(level, float(value)) for level, value in zip(TABLE_LEVELS, levels, strict=True))
        if table
        else (),
    )


SIMULTANEOUS = "simultaneous pairwise bootstrap (max |Δ| over group pairs)"


def max_pair_deviation(values: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Per resample, the largest deviation of a pairwise difference from its estimate,
    ``max_ij |(b_i − b_j) − (v_i − v_j)|``, in ``O(B·G)`` time and memory.

    With ``d = b − v`` the deviation of pair ``(i, j)`` is ``|d_i − d_j|``, so the largest is
    ``max_i d_i − min_j d_j``: no ``(B, G, G)`` array is formed. ``values`` is ``(G,)``
    (finite), ``samples`` ``(B, G)``. A resample with an undefined (NaN) group gives NaN.
    Infinite samples (log of a rate at 0) follow the pairwise definition: two equal
    infinities differ by 0, so a resample whose groups are all at the same infinity deviates
    by ``max v − min v``, and one that mixes an infinity with any other value by ``inf``.

    >>> max_pair_deviation(np.array([0.25, 0.5, 0.75]), np.array([[0.5, 0.25, 0.75], [0.25, 0.5, 0.75]])).tolist()
    [0.5, 0.0]
    """
    values = np.asarray(values, dtype=np.float64)
    samples = np.asarray(samples, dtype=np.float64)
    centred = samples - values
    with np.errstate(invalid="ignore"):
        spread = np.max(centred, axis=1) - np.min(centred, axis=1)  # NaN wherever a group is NaN
    infinite = np.isinf(samples)
    if infinite.any():
        has_nan = np.isnan(samples).any(axis=1)
        rows = infinite.any(axis=1) & ~has_nan
        same = (samples == samples[:, :1]).all(axis=1)
        ptp = float(np.max(values) - np.min(values)) if values.size else 0.0
        spread = np.where(rows, np.where(same, ptp, np.inf), spread)
    result: np.ndarray = spread
    return result


@dataclass(frozen=True)
class GapBootstrap:
    """The simultaneous bootstrap bounds of one gap: ``bounds(tail)`` and the resamples behind them."""

    estimate: float
    bounds: Bounds
    resamples: int
    undefined: int


def gap_bootstrap(
    point: dict[str, np.ndarray],
    boot: dict[str, np.ndarray],
    kind: str,
    *,
    limit: float | None = 1.0,
) -> GapBootstrap | None:
    """Simultaneous bootstrap bounds for a between-groups gap (max − min, or min / max).

    The percentile bootstrap of a max − min is biased upwards (it is never below the
    estimate's own upward bias), so near parity it would almost never cover the truth.
    Instead every pairwise difference of group values is bounded simultaneously: with ``c``
    the ``1 − 2·tail`` quantile of the largest deviation ``|Δ*_ij − Δ̂_ij|`` over all pairs
    (and over every rate the gap takes the worst of), the gap lies in
    ``[max(0, D̂ − c), D̂ + c]``. Ratios use the same construction on log rates.

    ``point`` maps each rate to its ``(G,)`` group values, ``boot`` to ``(B, G)`` resamples.
    Rates that are 0 in every group are left out of a ratio (as the point estimate does).
    ``limit`` is the largest possible difference (1 for rates; ``None`` when unbounded).
    ``None`` when a ratio has a group at 0 (its log-scale spread is unbounded) or when
    fewer than half the resamples define the gap.
    """
    deviations = []
    gaps = []
    for name, values in point.items():
        samples = boot[name]
        if kind == "ratio":
            if not np.any(values > 0):
                continue
            if np.any(values == 0):
                return None  # a group at 0: the ratio is 0 and its log-scale spread is unbounded
            with np.errstate(divide="ignore"):
                values, samples = np.log(values), np.log(samples)
        deviations.append(max_pair_deviation(values, samples))
        gaps.append(float(np.max(values) - np.min(values)))
    if not gaps:
        return None
    worst = np.max(np.stack(deviations), axis=0)
    defined = worst[~np.isnan(worst)]
    if defined.size * 2 < worst.size or defined.size == 0:
        return None
    gap = max(gaps)

    def bounds(tail: float) -> tuple[float, float]:
        coverage = 1 - 2 * tail
        c = float(np.quantile(defined, coverage, method="higher")) if coverage > 0 else 0.0  # never interpolates toward narrower
        low, high = max(0.0, gap - c), gap + c
        if limit is not None and kind == "difference":
            high = min(high, limit)
        if kind == "ratio":
            return float(np.exp(-high)), float(np.exp(-low))
        return low, high

    estimate = float(np.exp(-gap)) if kind == "ratio" else gap
    return GapBootstrap(estimate, bounds, int(worst.size), int(worst.size - defined.size))


def gap_interval(
    point: dict[str, np.ndarray],
    boot: dict[str, np.ndarray],
    kind: str,
    spec: BootstrapSpec,
    *,
    table: bool = True,
    limit: float | None = 1.0,
) -> Interval | None:
    """Interval of a between-groups gap from the simultaneous bootstrap alone (:func:`gap_bootstrap`).

    For gaps of rates from count tables, :func:`guardrail.fairness.results.disparity_estimate`
    also bounds the gap by the groups' exact binomial intervals; this serves gaps of other
    per-group values (ROC AUC, calibration error, mean errors).
    """
    found = gap_bootstrap(point, boot, kind, limit=limit)
    if found is None:
        return None
    return bounded_interval(
        found.bounds,
        found.estimate,
        spec.level,
        SIMULTANEOUS,
        table=table,
        resamples=found.resamples,
        undefined=found.undefined,
    )
