"""Batched LIME draws what lime draws, fits what lime fits, and finds the true drivers; rows
that share a pool get lime's own explanations, and intervals over them resample whole pools."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from guardrail.explain.importance import bootstrap_means
from guardrail.explain.lime_batch import (
    MIN_POOLS,
    lime_attributions,
    lime_explainer,
    pool_ids,
    pool_rows_for,
    reseed,
    shared_samples,
    weighted_ridge,
)
from guardrail.explain.quality import top_k, top_k_overlap
from guardrail.explain.tabular import ProbaFn, TabularView
from tests.explain.conftest import FEATURES, proba_of

LIME_SAMPLER = "_LimeTabularExplainer__data_inverse"


def plain_lime(explainer: Any, proba: ProbaFn, row: np.ndarray, num_samples: int) -> np.ndarray:
    """lime's own explanation of ``row`` (weights for the positive class, by feature)."""
    explanation = explainer.explain_instance(
        row, lambda x: np.stack([1 - proba(x), proba(x)], axis=1), num_features=len(row), num_samples=num_samples
    )
    weights = np.zeros(len(row))
    for j, w in explanation.local_exp[1]:
        weights[j] = w
    return weights


def test_a_pool_for_one_row_is_the_neighbourhood_lime_draws_for_it(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    explainer = lime_explainer(view, view.codes, seed=0)
    reseed(explainer, 7)
    data, pool = shared_samples(explainer, view.codes[3:5], 300)
    reseed(explainer, 7)
    lime_data, lime_inverse = getattr(explainer, LIME_SAMPLER)(view.codes[3], 300)
    np.testing.assert_array_equal(data[0], lime_data)
    np.testing.assert_array_equal(pool, lime_inverse[1:])
    assert data.shape == (2, 300, len(FEATURES)) and (data[:, 0] == 1).all()


def test_the_ridge_fits_equal_limes_local_models(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    explainer = lime_explainer(view, view.codes, seed=0)
    for i in range(3):
        data, inverse = getattr(explainer, LIME_SAMPLER)(view.codes[i], 400)
        scaled = (data - explainer.scaler.mean_) / explainer.scaler.scale_
        distances = np.linalg.norm(scaled - scaled[:1], axis=1)
        y = proba(inverse)
        intercept, local, _, _ = explainer.base.explain_instance_with_data(
            scaled, np.stack([1 - y, y], axis=1), distances, 1, len(FEATURES), feature_selection=explainer.feature_selection
        )
        coef, ours_intercept = weighted_ridge(scaled[None], y[None], explainer.base.kernel_fn(distances)[None])
        expected = np.zeros(len(FEATURES))
        for j, w in local:
            expected[j] = w
        np.testing.assert_allclose(coef[0], expected, rtol=1e-8, atol=1e-12)
        assert abs(ours_intercept[0] - intercept) < 1e-9


def test_lime_recovers_the_true_drivers(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    explainer = lime_explainer(view, view.codes, seed=0)
    weights = lime_attributions(explainer, proba_of(view), view.codes[:40], 2000)
    found = np.mean([set(row.tolist()) == {0, 1, 2} for row in top_k(weights, 3)])
    assert found >= 0.9, found
    importance = np.abs(weights).mean(axis=0)
    assert np.argsort(-importance)[:3].tolist() == [0, 1, 2]  # a (weight 3), b (−2), c (1.5 for 'x')
    assert importance[[0, 1, 2]].min() > 3 * importance[3:].max()  # noise and group carry little


def test_one_row_per_pool_equals_a_plain_lime_loop_with_the_same_seed(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    rows = view.codes[:15]
    ours = lime_attributions(lime_explainer(view, view.codes, seed=0), proba, rows, 500, pool_rows=1)
    plain = lime_explainer(view, view.codes, seed=0)
    theirs = np.stack([plain_lime(plain, proba, row, 500) for row in rows])
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-10)
    assert top_k_overlap(ours, theirs, 5).mean() == 1.0


def test_every_row_of_a_pool_gets_plain_limes_explanation_from_the_pools_seed(frame: pd.DataFrame) -> None:
    """lime's draws do not depend on the row, so each row's pooled explanation is exactly lime's
    explanation of that row with the random stream restarted where the pool was drawn."""
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    rows = view.codes[:12]
    explainer = lime_explainer(view, view.codes, seed=0)
    reseed(explainer, 5)
    ours = lime_attributions(explainer, proba, rows, 400, pool_rows=12)
    plain = lime_explainer(view, view.codes, seed=0)
    for i, row in enumerate(rows):
        reseed(plain, 5)
        np.testing.assert_allclose(ours[i], plain_lime(plain, proba, row, 400), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize(("pool_rows", "scored"), [(20, 499 + 20), (5, 4 * 499 + 20), (1, 20 * 500)])
def test_the_model_scores_each_pool_once(frame: pd.DataFrame, pool_rows: int, scored: int) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    calls: list[int] = []

    def counting(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return proba(x)

    lime_attributions(lime_explainer(view, view.codes, seed=0), counting, view.codes[:20], 500, pool_rows=pool_rows)
    assert calls == [scored]  # one model call, every pool's samples and the rows themselves


def test_pools_are_consecutive_and_a_pool_size_below_one_is_refused() -> None:
    assert pool_ids(7, 3).tolist() == [0, 0, 0, 1, 1, 1, 2]
    with pytest.raises(ValueError, match="at least 1"):
        pool_ids(3, 0)


@pytest.mark.parametrize(("instances", "asked", "used"), [(200, 8, 8), (64, 8, 4), (10, 8, 1), (1000, 3, 3)])
def test_pools_shrink_so_there_are_enough_to_resample(instances: int, asked: int, used: int) -> None:
    assert pool_rows_for(instances, asked) == used
    assert used == 1 or instances // used >= MIN_POOLS


def test_the_pool_bootstrap_sees_the_noise_rows_share() -> None:
    """Rows whose values share a per-pool shift: resampling rows hides that shift's variance,
    resampling pools shows it. Checked against a direct numpy cluster bootstrap."""
    rng = np.random.default_rng(0)
    pools = np.repeat(np.arange(20), 8)
    values = (rng.normal(size=20)[pools] + 0.1 * rng.normal(size=160))[:, None]
    by_row = bootstrap_means(values, 2000, np.random.default_rng(1))[:, 0]
    by_pool = bootstrap_means(values, 2000, np.random.default_rng(1), clusters=pools)[:, 0]
    assert by_pool.std() > 2 * by_row.std()
    assert by_pool.std() == pytest.approx(values[:, 0].reshape(20, 8).mean(axis=1).std() / np.sqrt(20), rel=0.1)

    direct_rng = np.random.default_rng(3)
    drawn = direct_rng.multinomial(20, np.full(20, 1 / 20), size=50)
    direct = np.array([np.repeat(d, 8) @ values[:, 0] / (8 * d.sum()) for d in drawn])
    np.testing.assert_allclose(bootstrap_means(values, 50, np.random.default_rng(3), clusters=pools)[:, 0], direct)


def test_the_explainer_keeps_pools_whole_across_chunks_and_names_each_rows_pool(frame: pd.DataFrame) -> None:
    from guardrail.explain.budget import Budget
    from guardrail.explain.engine import ExplainConfig, Explainer

    view = TabularView.from_frame(frame, FEATURES)
    config = ExplainConfig(methods=("feature_ablation", "lime"), lime_samples=100, lime_pool_rows=3, batch_size=200)
    explainer = Explainer(view, proba_of(view), None, np.arange(300), config)
    assert explainer.chunk_size() % 3 == 0 and explainer.chunk_size() < 50  # several chunks of whole pools
    found = explainer.run(np.arange(50), np.ones(len(frame), dtype=bool), Budget(600))
    assert found.lime_pools is not None and found.lime_pools.tolist() == (np.arange(50) // 3).tolist()
    assert found.clusters("lime") is found.lime_pools and found.clusters("feature_ablation") is None
