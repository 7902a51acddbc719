"""Quality measures: faithfulness curves rank good attributions above bad ones; stability; agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.explain.engine import ExplainConfig, Explainer
from guardrail.explain.quality import deletion_insertion, spearman, stability, top_k_overlap
from guardrail.explain.sampling import stratified_order
from guardrail.explain.tabular import TabularView
from tests.explain.conftest import FEATURES, proba_of


def test_true_attributions_are_more_faithful_than_reversed_ones(frame: pd.DataFrame) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    codes = view.codes[:50]
    truth = np.zeros_like(codes)
    truth[:, 0] = 3.0 * (codes[:, 0] - view.baseline[0])
    truth[:, 1] = -2.0 * (codes[:, 1] - view.baseline[1])
    predicted = proba(codes) >= 0.5
    good_del, good_ins = deletion_insertion(proba, codes, view.baseline, truth, predicted)
    bad_del, bad_ins = deletion_insertion(proba, codes, view.baseline, -truth, predicted)
    assert good_del.mean() < bad_del.mean() and good_ins.mean() > bad_ins.mean()
    assert ((good_del >= 0) & (good_del <= 1) & (good_ins >= 0) & (good_ins <= 1)).all()


@pytest.mark.parametrize("method", ["lime", "shapley_sampling"])
def test_stability_is_one_when_the_seed_is_fixed_and_lower_otherwise(frame: pd.DataFrame, method: str) -> None:
    view = TabularView.from_frame(frame, FEATURES)
    config = ExplainConfig(methods=(method,), lime_samples=100, shapley_permutations=2)  # type: ignore[arg-type]
    explainer = Explainer(view, proba_of(view), None, np.arange(200), config)
    rows = view.codes[:10]
    fixed = [explainer.attribute(method, rows, seed=3)[0] for _ in range(3)]  # type: ignore[arg-type]
    assert stability(fixed, 5) == 1.0
    varied = [explainer.attribute(method, rows, seed=s)[0] for s in (1, 2, 3)]  # type: ignore[arg-type]
    assert not np.array_equal(varied[0], varied[1])
    if method == "lime":  # noise features get random small weights, so the top-5 sets move
        assert stability(varied, 5) < 1.0


def test_agreement_measures() -> None:
    a = np.array([[3.0, 2.0, 1.0, 0.0]])
    assert top_k_overlap(a, a, 2).tolist() == [1.0]
    assert top_k_overlap(a, a[:, ::-1], 2).tolist() == [0.0]
    assert spearman(np.array([1.0, 2, 3]), np.array([10.0, 20, 30])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 1, 1]), np.array([1.0, 2, 3])) is None


def test_the_stratified_order_covers_small_strata_first() -> None:
    strata = np.array(["big"] * 100 + ["small"] * 2)
    order = stratified_order(strata, 4, np.random.default_rng(0))
    assert sorted(strata[order].tolist()) == ["big", "big", "small", "small"]
    assert len(stratified_order(strata, 1000, np.random.default_rng(0))) == 102
