"""Bootstrap intervals from count tables, without touching the rows again.

A stratified row bootstrap (resample ``n_g`` rows with replacement inside each group)
draws, for each group, a multinomial over the group's four confusion cells with the
observed cell proportions. Drawing those multinomials directly gives the same distribution
at a cost of ``O(resamples × groups)``, whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guardrail.core.types import Interval, Quantile

TABLE_LEVELS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9975, 0.999, 0.9995,
)  # fmt: skip
"""Levels of the bootstrap quantiles kept with each interval, so that a policy can judge a
bound at another level (multiple-comparison corrections) without the resamples."""

METHOD = "percentile"


@dataclass(frozen=True)
class BootstrapSpec:
    resamples: int = 1000
    level: float = 0.95
    seed: int = 0


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


def aggregate(counts: np.ndarray, mapping: np.ndarray, n_coarse: int, group_axis: int = -3) -> np.ndarray:
    """Sum count tables over fine groups into coarse ones along ``group_axis``
    (``(..., G_fine, 2, 2)`` → ``(..., n_coarse, 2, 2)`` by default)."""
    onehot = np.zeros((mapping.size, n_coarse), dtype=counts.dtype)
    onehot[np.arange(mapping.size), mapping] = 1
    moved = np.moveaxis(counts, group_axis, -1)
    summed: np.ndarray = np.moveaxis(moved @ onehot, -1, group_axis)
    return summed


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
