"""Batched LIME draws what lime draws, fits what lime fits, and finds the true drivers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from guardrail.explain.lime_batch import (
    lime_attributions,
    lime_explainer,
    lime_samples,
    reseed,
    shared_samples,
    vectorised_samples,
    weighted_ridge,
)
from guardrail.explain.quality import top_k, top_k_overlap
from guardrail.explain.tabular import ProbaFn, TabularView
from tests.explain.conftest import FEATURES, proba_of


def test_the_vectorised_sampler_draws_what_lime_draws_for_one_row(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    explainer = lime_explainer(view, view.codes, seed=0)
    reseed(explainer, 7)
    data, inverse = vectorised_samples(explainer, view.codes[3:4], 300)
    reseed(explainer, 7)
    lime_data, lime_inverse = explainer._LimeTabularExplainer__data_inverse(view.codes[3], 300)
    np.testing.assert_array_equal(data[0], lime_data)
    np.testing.assert_array_equal(inverse[0], lime_inverse)


def test_the_ridge_fits_equal_limes_local_models(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    explainer = lime_explainer(view, view.codes, seed=0)
    data, inverse = lime_samples(explainer, view.codes[:3], 400)
    for i in range(3):
        scaled = (data[i] - explainer.scaler.mean_) / explainer.scaler.scale_
        distances = np.linalg.norm(scaled - scaled[:1], axis=1)
        y = proba(inverse[i])
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
    weights = lime_attributions(explainer, proba_of(view), view.codes[:40], 1000)
    found = np.mean([set(row.tolist()) == {0, 1, 2} for row in top_k(weights, 3)])
    assert found >= 0.9, found
    importance = np.abs(weights).mean(axis=0)
    assert np.argsort(-importance)[:3].tolist() == [0, 1, 2]  # a (weight 3), b (−2), c (1.5 for 'x')
    assert importance[[0, 1, 2]].min() > 3 * importance[3:].max()  # noise and group carry little


def plain_lime(explainer: Any, proba: ProbaFn, row: np.ndarray, num_samples: int) -> np.ndarray:
    """lime's own explanation of ``row`` (weights for the positive class, by feature)."""
    explanation = explainer.explain_instance(
        row, lambda x: np.stack([1 - proba(x), proba(x)], axis=1), num_features=len(row), num_samples=num_samples
    )
    weights = np.zeros(len(row))
    for j, w in explanation.local_exp[1]:
        weights[j] = w
    return weights


def test_per_instance_lime_equals_a_plain_lime_loop_with_the_same_seed(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    rows = view.codes[:15]
    explainer = lime_explainer(view, view.codes, seed=0)
    ours = lime_attributions(explainer, proba, rows, 500, sampling="per_instance")
    plain = lime_explainer(view, view.codes, seed=0)
    theirs = np.stack([plain_lime(plain, proba, row, 500) for row in rows])
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-10)
    assert top_k_overlap(ours, theirs, 5).mean() == 1.0


def test_the_vectorised_sampler_explains_like_lime(frame: pd.DataFrame) -> None:
    """Other draws, same distribution: the top features agree with lime's own sampler."""
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    explainer = lime_explainer(view, view.codes, seed=0)
    rows = view.codes[:30]
    data, inverse = vectorised_samples(explainer, rows, 2000)
    reference = lime_attributions(explainer, proba, rows, 2000)
    scaled = (data - explainer.scaler.mean_) / explainer.scaler.scale_
    weights = explainer.base.kernel_fn(np.linalg.norm(scaled - scaled[:, :1], axis=2))
    coef, _ = weighted_ridge(scaled, proba(inverse.reshape(-1, len(FEATURES))).reshape(30, 2000), weights)
    assert top_k_overlap(coef, reference, 3).mean() >= 0.9


def test_shared_lime_gives_every_row_the_explanation_plain_lime_gives_it_from_the_same_seed(frame: pd.DataFrame) -> None:
    """lime's draws do not depend on the row, so each row's shared explanation is exactly lime's
    explanation of that row with the random stream restarted at the chunk's seed."""
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    rows = view.codes[:12]
    explainer = lime_explainer(view, view.codes, seed=0)
    reseed(explainer, 5)
    ours = lime_attributions(explainer, proba, rows, 400, sampling="shared")
    plain = lime_explainer(view, view.codes, seed=0)
    for i, row in enumerate(rows):
        reseed(plain, 5)
        np.testing.assert_allclose(ours[i], plain_lime(plain, proba, row, 400), rtol=1e-7, atol=1e-10)


def test_the_shared_neighbourhood_is_limes_neighbourhood_for_one_row(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    explainer = lime_explainer(view, view.codes, seed=0)
    reseed(explainer, 9)
    data, pool = shared_samples(explainer, view.codes[4:6], 300)
    reseed(explainer, 9)
    lime_data, lime_inverse = lime_samples(explainer, view.codes[4:5], 300)
    np.testing.assert_array_equal(data[0], lime_data[0])
    np.testing.assert_array_equal(pool, lime_inverse[0, 1:])
    assert data.shape == (2, 300, len(FEATURES)) and (data[:, 0] == 1).all()


def test_shared_lime_scores_the_pool_once(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    scored: list[int] = []

    def counting(x: np.ndarray) -> np.ndarray:
        scored.append(len(x))
        return proba(x)

    explainer = lime_explainer(view, view.codes, seed=0)
    lime_attributions(explainer, counting, view.codes[:20], 500, sampling="shared")
    assert sum(scored) == 500 - 1 + 20
    scored.clear()
    lime_attributions(explainer, counting, view.codes[:20], 500, sampling="per_instance")
    assert sum(scored) == 20 * 500


def test_an_unknown_sampling_is_refused(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    explainer = lime_explainer(view, view.codes, seed=0)
    with pytest.raises(ValueError, match="shared, per_instance"):
        lime_attributions(explainer, proba_of(view), view.codes[:2], 50, sampling="pooled")  # type: ignore[arg-type]
