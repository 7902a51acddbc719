"""Score tables: exact up to SCORE_RESOLUTION distinct scores, a histogram beyond, whose AUC and
ECE stay within the error bounds each metric reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from guardrail.fairness.groups import encode
from guardrail.fairness.scores import (
    SCORE_RESOLUTION,
    ScoreTable,
    auc,
    bin_index,
    ece,
    histogram_cells,
    histogram_midpoints,
    histogram_spec,
    score_metrics,
    score_table,
    table_score_metrics,
    to_histogram,
)


def _ece(y: np.ndarray, s: np.ndarray, bins: int = 10) -> float:
    prob_true, prob_pred = calibration_curve(y, s, n_bins=bins, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], s), minlength=bins)
    counts = counts[counts > 0]
    return float((counts / len(y) * np.abs(prob_true - prob_pred)).sum())


def _data(n: int, seed: int, *, digits: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = rng.choice(np.array(["a", "b", "c"]), size=n, p=[0.6, 0.3, 0.1])
    y_true = (rng.random(n) < 0.35).astype(int)
    noise = np.where(groups == "c", 0.9, 0.6)
    scores = np.clip(0.4 * y_true + noise * rng.random(n) + 0.05, 0, 1)
    return y_true, scores.round(digits) if digits is not None else scores, groups


def _metrics(y_true: np.ndarray, scores: np.ndarray, groups: np.ndarray, bins: int = 10, bootstrap: int = 0) -> dict[str, object]:
    grouping = encode(pd.DataFrame({"g": groups}), ["g"])
    results = score_metrics(
        grouping, scores, y_true, bootstrap=bootstrap, confidence=0.95, min_group_size=1, calibration_bins=bins,
        rng=np.random.default_rng(0),
    )
    return {m.key: m for m in results}


@pytest.mark.parametrize("bins", [10, 7])
def test_midpoints_lie_strictly_inside_their_calibration_bin(bins: int) -> None:
    mids = histogram_midpoints(bins)
    spec = histogram_spec(bins)
    assert mids.size == spec.bins_total == bins * spec.sub_bins >= SCORE_RESOLUTION
    assert np.all(np.diff(mids) > 0)
    assert np.array_equal(bin_index(mids, bins), np.repeat(np.arange(bins), spec.sub_bins))
    edges = np.linspace(0, 1, bins + 1)
    assert np.all(mids > edges[bin_index(mids, bins)]) and np.all(mids < edges[bin_index(mids, bins) + 1])
    # every score (edges included) falls in a sub-bin of its own calibration bin, no farther than half a width
    scores = np.concatenate([edges, np.random.default_rng(1).random(50_000), np.nextafter(edges, 2), np.nextafter(edges, -1)])
    scores = np.clip(scores, 0, 1)
    cells = histogram_cells(scores, bins)
    assert np.array_equal(bin_index(mids[cells], bins), bin_index(scores, bins))
    assert np.max(np.abs(mids[cells] - scores)) <= spec.width / 2 * (1 + 1e-9)
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(cells[order]) >= 0)  # the sub-bins keep the scores' order


def test_below_the_resolution_nothing_changes() -> None:
    y_true, scores, groups = _data(6000, 0, digits=3)
    by_key = _metrics(y_true, scores, groups, bootstrap=50)
    auc_m, ece_m = by_key["fairness.auc"], by_key["fairness.ece"]
    assert auc_m.value == pytest.approx(roc_auc_score(y_true, scores), abs=1e-12)
    assert ece_m.value == pytest.approx(_ece(y_true, scores), abs=1e-12)
    for metric, reference in ((auc_m, roc_auc_score), (ece_m, _ece)):
        for group in metric.by_group:
            rows = groups == group.group
            assert group.value == pytest.approx(reference(y_true[rows], scores[rows]), abs=1e-12)
        assert metric.details["score_resolution"] == {"method": "exact", "distinct_scores": np.unique(scores).size}
    codes = encode(pd.DataFrame({"g": groups}), ["g"]).codes
    assert codes is not None
    table = score_table(codes, 3, scores, y_true)
    assert table.histogram is None and np.array_equal(table.scores, np.unique(scores))


def test_the_resolution_is_the_threshold() -> None:
    scores = np.linspace(0, 1, SCORE_RESOLUTION)
    y = np.arange(scores.size) % 2
    codes = np.zeros(scores.size, dtype=np.int64)
    assert score_table(codes, 1, scores, y).histogram is None
    more = np.linspace(0, 1, SCORE_RESOLUTION + 1)
    table = score_table(np.zeros(more.size, dtype=np.int64), 1, more, np.arange(more.size) % 2)
    assert table.histogram is not None and table.counts.sum() == more.size


@pytest.mark.parametrize("bins", [10, 15])
def test_above_the_resolution_the_exact_values_lie_within_the_bounds(bins: int) -> None:
    y_true, scores, groups = _data(60_000, 3)
    assert np.unique(scores).size > SCORE_RESOLUTION
    by_key = _metrics(y_true, scores, groups, bins=bins, bootstrap=20)
    exact = {"auc": roc_auc_score, "ece": lambda y, s: _ece(y, s, bins)}
    for name, reference in exact.items():
        metric = by_key[f"fairness.{name}"]
        resolution = metric.details["score_resolution"]
        assert resolution["method"] == "histogram" and resolution["bins"] == histogram_spec(bins).bins_total
        assert 0 < resolution["error_bound"] < 1e-3
        assert abs(metric.value - reference(y_true, scores)) <= resolution["error_bound"]
        truth = {}
        for group in metric.by_group:
            rows = groups == group.group
            truth[group.group] = reference(y_true[rows], scores[rows])
            bound = resolution["group_error_bounds"][group.group]
            assert 0 < bound < 1e-3
            assert abs(group.value - truth[group.group]) <= bound
        gap = by_key[f"fairness.{name}_difference"]
        gap_bound = gap.details["score_resolution"]["error_bound"]
        extremes = [gap.details["min_group"], gap.details["max_group"]]
        assert gap_bound >= sum(resolution["group_error_bounds"][g] for g in extremes) - 1e-15
        assert 0 < gap_bound < 2e-3
        assert abs(gap.value - (max(truth.values()) - min(truth.values()))) <= gap_bound
        assert metric.by_group[0].ci is not None


def test_a_histogram_from_the_exact_table_equals_one_from_the_rows() -> None:
    y_true, scores, groups = _data(30_000, 5)
    codes = encode(pd.DataFrame({"g": groups}), ["g"]).codes
    assert codes is not None
    from_rows = score_table(codes, 3, scores, y_true, calibration_bins=10)
    assert from_rows.histogram is not None
    uniques, position = np.unique(scores, return_inverse=True)
    exact_counts = np.zeros((3, uniques.size, 2), dtype=np.int64)
    np.add.at(exact_counts, (codes, position, y_true), 1)
    converted = to_histogram(ScoreTable(uniques, exact_counts), 10)
    assert converted.histogram == from_rows.histogram
    assert np.array_equal(converted.scores, from_rows.scores)
    assert np.array_equal(converted.counts, from_rows.counts)
    assert converted.counts.sum() == 30_000


def test_table_score_metrics_equals_score_metrics() -> None:
    y_true, scores, groups = _data(3000, 7, digits=4)
    grouping = encode(pd.DataFrame({"g": groups}), ["g"])
    assert grouping.codes is not None
    kwargs = dict(bootstrap=30, confidence=0.9, min_group_size=5, calibration_bins=10)
    direct = score_metrics(grouping, scores, y_true, rng=np.random.default_rng(3), **kwargs)  # type: ignore[arg-type]
    table = score_table(grouping.codes, grouping.n_groups, scores, y_true, calibration_bins=10)
    prebuilt = table_score_metrics(grouping, table, rng=np.random.default_rng(3), **kwargs)  # type: ignore[arg-type]
    assert direct == prebuilt


def test_histogram_values_are_the_midpoint_table_metrics() -> None:
    y_true, scores, groups = _data(40_000, 9)
    codes = encode(pd.DataFrame({"g": groups}), ["g"]).codes
    assert codes is not None
    table = score_table(codes, 3, scores, y_true, calibration_bins=10)
    mids = histogram_midpoints(10)[histogram_cells(scores, 10)]
    assert float(auc(table.counts.sum(axis=0))) == pytest.approx(roc_auc_score(y_true, mids), abs=1e-12)
    assert float(ece(table.counts.sum(axis=0), table.scores, 10)) == pytest.approx(_ece(y_true, mids), abs=1e-12)
