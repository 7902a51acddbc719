"""Stratified bootstrap of per-group means (regression targets)."""

from __future__ import annotations

import numpy as np

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
