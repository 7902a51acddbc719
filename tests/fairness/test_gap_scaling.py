"""The simultaneous gap interval without G²: ``max_ij |Δ*_ij − Δ̂_ij| = max d − min d`` with
``d = b − v``, checked against the pairwise ``(B, G, G)`` definition, and its memory at
the largest grouping an audit allows."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from guardrail.fairness.bootstrap import gap_bootstrap, max_pair_deviation
from guardrail.fairness.groups import MAX_GROUPS


def pairwise_max_deviation(values: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """The definition, as the interval was first computed: every pair of groups, ``(B, G, G)``."""
    pairs = values[:, None] - values[None, :]
    with np.errstate(invalid="ignore"):
        boot_pairs = np.where(samples[:, :, None] == samples[:, None, :], 0.0, samples[:, :, None] - samples[:, None, :])
        deviation = np.abs(boot_pairs - pairs)
    result: np.ndarray = deviation.reshape(samples.shape[0], -1).max(axis=1)
    return result


@pytest.mark.parametrize("seed", range(20))
def test_the_linear_identity_equals_the_pairwise_definition_on_random_rates(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups, resamples = int(rng.integers(2, 40)), int(rng.integers(1, 60))
    values = rng.random(groups)
    samples = np.clip(values + rng.normal(0, 0.1, size=(resamples, groups)), 0, 1)

    found = max_pair_deviation(values, samples)

    np.testing.assert_allclose(found, pairwise_max_deviation(values, samples), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_the_identity_holds_on_log_rates_with_zeros_and_undefined_resamples(seed: int) -> None:
    """Ratios work on log rates: a resample at 0 is −inf, an undefined one NaN."""
    rng = np.random.default_rng(100 + seed)
    groups, resamples = int(rng.integers(2, 12)), 200
    rates = rng.random(groups) * 0.2 + 0.01
    samples = rng.binomial(8, rates, size=(resamples, groups)) / 8  # often 0
    samples[rng.random((resamples, groups)) < 0.02] = np.nan
    samples[rng.random(resamples) < 0.1] = 0.0  # every group at 0 in some resamples
    with np.errstate(divide="ignore"):
        values, logs = np.log(rates), np.log(samples)

    found = max_pair_deviation(values, logs)
    expected = pairwise_max_deviation(values, logs)

    assert np.array_equal(np.isnan(found), np.isnan(expected))
    assert np.array_equal(np.isinf(found), np.isinf(expected))
    finite = np.isfinite(expected)
    assert finite.any()
    np.testing.assert_allclose(found[finite], expected[finite], rtol=0, atol=1e-12)


def test_the_interval_keeps_its_bounds_at_the_largest_grouping_without_quadratic_memory() -> None:
    """At the group cap, 100 resamples: the pairwise arrays alone would take 0.8 GB each."""
    rng = np.random.default_rng(7)
    groups, resamples = MAX_GROUPS, 100
    values = rng.random(groups) * 0.5 + 0.25
    point = {"a": values, "b": values[::-1].copy()}
    boot = {name: np.clip(v + rng.normal(0, 0.05, size=(resamples, groups)), 0, 1) for name, v in point.items()}

    tracemalloc.start()
    try:
        found = gap_bootstrap(point, boot, "difference")
        ratio = gap_bootstrap(point, boot, "ratio")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert found is not None and ratio is not None
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    low, high = found.bounds(0.025)
    assert 0 <= low <= found.estimate <= high <= 1
