"""Bootstrap intervals from count tables: same distribution as a row bootstrap, honest coverage."""

from __future__ import annotations

import numpy as np
import pytest

from guardrail.api import audit_fairness
from guardrail.fairness.bootstrap import BootstrapSpec, interval, resample_counts
from guardrail.fairness.metrics import RATES, disparity_array, rate_array


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Brute-force oracle: count rows per (group, y_true, y_pred) with a Python loop."""
    out = np.zeros((n_groups, 2, 2), dtype=np.int64)
    for g, t, p in zip(groups.tolist(), np.asarray(y_true, dtype=int).tolist(), np.asarray(y_pred, dtype=int).tolist(), strict=True):
        out[g, t, p] += 1
    return out


def _data(seed: int, n: int = 600) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    y_true = rng.random(n) < 0.4
    y_pred = np.where(rng.random(n) < 0.75, y_true, ~y_true) & (rng.random(n) < 0.9 - 0.2 * (groups == 2))
    return y_true, y_pred, groups


def _row_bootstrap(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Brute force: resample rows with replacement inside each group, recount, recompute."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in range(3)]
    out = np.empty((resamples, 3, 2, 2), dtype=np.int64)
    for b in range(resamples):
        rows = np.concatenate([rng.choice(m, size=m.size, replace=True) for m in members])
        out[b] = confusion_counts(y_true[rows], y_pred[rows], groups[rows], 3)
    return out


def test_count_table_bootstrap_matches_a_row_bootstrap_within_monte_carlo_error() -> None:
    y_true, y_pred, groups = _data(seed=7)
    counts = confusion_counts(y_true, y_pred, groups, 3)
    resamples = 3000
    fast = resample_counts(counts, resamples, np.random.default_rng(1))
    slow = _row_bootstrap(y_true, y_pred, groups, resamples, seed=2)
    assert (fast.sum(axis=(2, 3)) == counts.sum(axis=(1, 2))).all(), "stratified: group sizes fixed"
    for name in ("selection_rate", "tpr", "fpr", "precision"):
        for samples_fast, samples_slow in (
            (rate_array(fast, name), rate_array(slow, name)),
            (rate_array(fast.sum(axis=1), name), rate_array(slow.sum(axis=1), name)),
        ):
            for level in (0.025, 0.5, 0.975):
                q_fast = np.nanquantile(samples_fast, level, axis=0)
                q_slow = np.nanquantile(samples_slow, level, axis=0)
                # Monte-Carlo error of a bootstrap quantile ~ sd / sqrt(B) * a small factor
                tolerance = 5 * np.nanstd(samples_slow, axis=0) / np.sqrt(resamples) * 3
                assert np.all(np.abs(q_fast - q_slow) <= tolerance + 1e-12), (name, level, q_fast, q_slow)
    for name in ("demographic_parity_difference", "equalized_odds_difference", "equal_opportunity_ratio"):
        d_fast = disparity_array({r: rate_array(fast, r) for r in RATES}, name)
        d_slow = disparity_array({r: rate_array(slow, r) for r in RATES}, name)
        for level in (0.025, 0.975):
            gap = abs(np.nanquantile(d_fast, level) - np.nanquantile(d_slow, level))
            assert gap <= 15 * np.nanstd(d_slow) / np.sqrt(resamples), (name, level)


def test_ninety_five_percent_intervals_cover_a_known_gap_93_to_97_percent_of_the_time() -> None:
    true_rates = np.array([0.30, 0.45])
    true_gap = true_rates[1] - true_rates[0]
    n = 400
    covered = 0
    for seed in range(400):
        rng = np.random.default_rng(10_000 + seed)
        groups = np.repeat([0, 1], n)
        y_pred = rng.random(2 * n) < true_rates[groups]
        y_true = rng.random(2 * n) < 0.5
        result = audit_fairness(
            y_true.astype(int), y_pred.astype(int), sensitive_features=groups.astype(str), bootstrap=1000, seed=seed
        )
        ci = next(m.ci for m in result.metrics if m.key == "fairness.demographic_parity_difference")
        assert ci is not None
        covered += ci.low <= true_gap <= ci.high
    assert 0.93 <= covered / 400 <= 0.97, covered / 400


def test_intervals_are_seeded_and_reproducible() -> None:
    y_true, y_pred, groups = _data(seed=3)
    first = audit_fairness(y_true, y_pred, sensitive_features=groups.astype(str), seed=5)
    again = audit_fairness(y_true, y_pred, sensitive_features=groups.astype(str), seed=5)
    other = audit_fairness(y_true, y_pred, sensitive_features=groups.astype(str), seed=6)
    assert first.metrics == again.metrics
    assert first.metrics != other.metrics
    ratio = next(m for m in first.metrics if m.key == "fairness.demographic_parity_ratio")
    assert ratio.ci is not None and ratio.ci.low <= ratio.value <= ratio.ci.high  # type: ignore[operator]
    assert ratio.ci.resamples == 1000 and ratio.ci.method.startswith("simultaneous pairwise") and len(ratio.ci.quantiles) == 19
    assert all(g.ci is not None and g.ci.method.startswith("Clopper–Pearson") for g in ratio.by_group)


def test_every_grouping_counts_every_row() -> None:
    y_true, y_pred, groups = _data(seed=4)
    other = np.random.default_rng(0).choice(["x", "y"], size=groups.size)
    result = audit_fairness(y_true, y_pred, sensitive_features={"g": groups.astype(str), "h": other}, bootstrap=200)
    counts = {m.scope: m for m in result.metrics if m.key == "fairness.count"}
    assert counts["g"].value == counts["h"].value == counts["g+h"].value == groups.size
    assert len(counts["g+h"].by_group) == 6


def test_mostly_undefined_resamples_give_no_interval() -> None:
    samples = np.array([np.nan] * 6 + [0.1, 0.2, 0.3, 0.4])
    assert interval(samples, BootstrapSpec()) is None
    kept = interval(samples[3:], BootstrapSpec())
    assert kept is not None and kept.undefined == 3


@pytest.mark.parametrize("tail", [0.025, 0.005, 0.0005])
def test_interval_bounds_at_other_levels_come_from_the_quantile_table(tail: float) -> None:
    samples = np.random.default_rng(0).normal(size=20_000)
    ci = interval(samples, BootstrapSpec(resamples=20_000))
    assert ci is not None
    assert ci.bound(tail, "low") == pytest.approx(np.quantile(samples, tail), abs=1e-9)
    assert ci.bound(tail, "high") == pytest.approx(np.quantile(samples, 1 - tail), abs=1e-9)


def test_chunked_and_sorted_tabulation_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from guardrail.fairness import groups

    y_true, y_pred, codes = _data(seed=9, n=5000)
    frame = pd.DataFrame({"g": codes.astype(str), "n": (codes * 1.5).astype(float), "c": pd.Categorical(codes % 2)})
    monkeypatch.setattr(groups, "CHUNK_ROWS", 777)  # many chunks
    digits = [(y_true, 2), (y_pred, 2)]
    dense, dense_counts = groups.tabulate(frame, ["g", "n", "c"], digits)
    monkeypatch.setattr(groups, "_DENSE_LIMIT", 1)  # the sort-based path
    sparse, sparse_counts = groups.tabulate(frame, ["g", "n", "c"], digits)
    assert dense.labels == sparse.labels == ("0 × 0 × 0", "1 × 1.5 × 1", "2 × 3 × 0")
    assert (dense_counts == sparse_counts).all() and dense_counts.sum() == 5000


def test_bounds_beyond_the_table_are_extrapolated_never_clamped() -> None:
    samples = np.random.default_rng(1).normal(size=1000)
    ci = interval(samples, BootstrapSpec())
    assert ci is not None
    extreme_low = ci.quantiles[0].value
    tiny_tail = 0.025 / 1000  # e.g. Bonferroni over 1,000 comparisons
    assert ci.bound(tiny_tail, "low") < extreme_low
    assert ci.bound(tiny_tail, "low") == pytest.approx(-4.06, abs=0.3)  # normal quantile at 2.5e-5
    assert ci.bound(tiny_tail, "high") > ci.quantiles[-1].value


@pytest.mark.parametrize(("groups", "n"), [(2, 400), pytest.param(8, 150, marks=pytest.mark.slow)])  # 8 groups: ~13 s
def test_gap_intervals_cover_parity(groups: int, n: int) -> None:
    """With equal rates in every group the true gap is 0: a percentile interval of max − min
    almost never contains it (its bootstrap is biased upwards); ours must, ~95% of the time."""
    covered = 0
    for seed in range(400):
        rng = np.random.default_rng(20_000 + seed)
        labels = np.repeat(np.arange(groups), n).astype(str)
        y_pred = (rng.random(groups * n) < 0.3).astype(int)
        y_true = (rng.random(groups * n) < 0.5).astype(int)
        result = audit_fairness(y_true, y_pred, sensitive_features=labels, seed=seed)
        ci = next(m.ci for m in result.metrics if m.key == "fairness.demographic_parity_difference")
        assert ci is not None
        covered += ci.low <= 0.0
    # measured: 0.9475 (2 groups), 0.9325 (8 groups of 150; the plug-in bootstrap runs a little narrow)
    assert covered / 400 >= 0.92, covered / 400


def test_each_grouping_is_stratified_by_its_own_groups() -> None:
    """Selection depends on race only; the interval for sex must reflect sex-level sampling,
    i.e. equal what a sex-only audit gives (same table, same seed, same resamples), not the
    narrower sex×race-stratified one."""
    rng = np.random.default_rng(3)
    n = 4000
    sex = rng.choice(["F", "M"], size=n)
    race = rng.choice(["x", "y"], size=n)
    y_pred = (rng.random(n) < np.where(race == "x", 0.1, 0.6)).astype(int)
    y_true = (rng.random(n) < 0.5).astype(int)
    both = audit_fairness(y_true, y_pred, sensitive_features={"sex": sex, "race": race}, seed=1)
    alone = audit_fairness(y_true, y_pred, sensitive_features={"sex": sex}, seed=1)
    key = "fairness.demographic_parity_difference"
    width_both = next(m.ci for m in both.metrics if m.key == key and m.scope == "sex")
    width_alone = next(m.ci for m in alone.metrics if m.key == key and m.scope == "sex")
    assert width_both is not None and width_both.resamples == 1000
    assert width_both == width_alone  # same table, same seed, same draws: sex is resampled on its own
