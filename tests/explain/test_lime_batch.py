"""Batched LIME draws what lime draws, fits what lime fits, and finds the true drivers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from guardrail.explain.lime_batch import (
    lime_attributions,
    lime_explainer,
    lime_samples,
    reseed,
    vectorised_samples,
    weighted_ridge,
)
from guardrail.explain.quality import top_k, top_k_overlap
from guardrail.explain.tabular import TabularView
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


def test_batched_lime_equals_a_plain_lime_loop_with_the_same_seed(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    rows = view.codes[:15]
    explainer = lime_explainer(view, view.codes, seed=0)
    ours = lime_attributions(explainer, proba, rows, 500)
    plain = lime_explainer(view, view.codes, seed=0)
    theirs = np.zeros_like(ours)
    for i, row in enumerate(rows):
        explanation = plain.explain_instance(
            row, lambda x: np.stack([1 - proba(x), proba(x)], axis=1), num_features=len(FEATURES), num_samples=500
        )
        for j, w in explanation.local_exp[1]:
            theirs[i, j] = w
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
