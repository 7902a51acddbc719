"""The exact bounds behind the fairness intervals: Clopper–Pearson rates, their Bonferroni
boxes for gaps, and the hybrid with the bootstrap (never looser than the box)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta, binom

from guardrail.fairness.bootstrap import grouping_rng, resample_counts
from guardrail.fairness.intervals import box_bounds, clopper_pearson, rate_intervals
from guardrail.fairness.results import GroupTable, disparity_estimate


@pytest.mark.parametrize("n", [3, 10, 30, 200])
@pytest.mark.parametrize("p", [0.0, 0.02, 0.1, 0.5])
def test_exact_rate_intervals_cover_at_every_size_and_rate(n: int, p: float) -> None:
    """Coverage computed exactly over every possible count (no Monte Carlo error)."""
    x = np.arange(n + 1)
    ci = rate_intervals(x, np.full(n + 1, n), 0.95)
    covered = np.array([c is not None and c.low <= p <= c.high for c in ci])
    assert float(binom.pmf(x, n, p)[covered].sum()) >= 0.95 - 1e-12
    assert all(c is not None and c.low <= k / n <= c.high for k, c in zip(x, ci, strict=True))


def test_a_gap_interval_is_never_looser_than_the_per_group_bounds_and_holds_its_estimate() -> None:
    rng = np.random.default_rng(4)
    for trial in range(40):
        groups = int(rng.integers(2, 6))
        sizes = rng.integers(3, 400, size=groups)
        rates = rng.choice([0.0, 0.01, 0.05, 0.3, 0.6, 0.97, 1.0], size=groups)
        counts = np.zeros((groups, 2, 2), dtype=np.int64)
        counts[:, 1, 1] = rng.binomial(sizes // 2, rates)
        counts[:, 1, 0] = sizes // 2 - counts[:, 1, 1]
        counts[:, 0, 1] = rng.binomial(sizes - sizes // 2, rates)
        counts[:, 0, 0] = sizes - sizes // 2 - counts[:, 0, 1]
        table = GroupTable(tuple("abcde"[:groups]), counts, resample_counts(counts, 200, grouping_rng(trial, "g")))
        for name in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"):
            found = disparity_estimate(table, name)
            if found.ci is None:
                assert found.disparity.reason is not None
                continue
            value, ci = found.disparity.value, found.ci
            assert ci.low <= value <= ci.high, (trial, name, value, ci)
            assert ci.bound(0.025, "low") == ci.low and ci.bound(0.025, "high") == ci.high
            levels = [q.value for q in ci.quantiles]
            assert levels == sorted(levels)
            if name == "demographic_parity_ratio":
                x, n = counts[:, 0, 1] + counts[:, 1, 1], counts.sum(axis=(1, 2))
                low, high = box_bounds({"selection_rate": x}, {"selection_rate": n}, "ratio")(0.025)
                assert low <= ci.low + 1e-12 and ci.high <= high + 1e-12


def test_clopper_pearson_matches_the_beta_quantiles() -> None:
    low, high = clopper_pearson(np.array([0, 1, 7, 10]), np.array([10, 10, 10, 10]), 0.025)
    assert low.tolist() == pytest.approx([0.0, beta.ppf(0.025, 1, 10), beta.ppf(0.025, 7, 4), beta.ppf(0.025, 10, 1)])
    assert high.tolist() == pytest.approx([beta.ppf(0.975, 1, 10), beta.ppf(0.975, 2, 9), beta.ppf(0.975, 8, 3), 1.0])
