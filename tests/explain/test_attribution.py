"""Attribution methods against exact answers and against Captum itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest

from guardrail.explain.attribution import feature_ablation, integrated_gradients
from guardrail.explain.tabular import TabularView
from tests.explain.conftest import FEATURES, proba_of


def test_ig_on_a_linear_model_is_weight_times_difference() -> None:
    import torch

    torch.manual_seed(0)
    weight = torch.randn(6, dtype=torch.float64)
    inputs = torch.randn(8, 6, dtype=torch.float64)
    baseline = torch.randn(1, 6, dtype=torch.float64)
    result = integrated_gradients(lambda x: x @ weight, inputs, baseline, n_steps=50)
    expected = (weight * (inputs - baseline)).numpy()
    np.testing.assert_allclose(result.attributions, expected, rtol=1e-7, atol=1e-9)  # Captum's Gauss-Legendre weights are float32-accurate
    assert np.abs(result.delta).max() < 1e-6 and (result.steps == 50).all()


def _mlp() -> object:
    import torch

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    return lambda x: torch.softmax(net(x), dim=-1)[:, 1]


def test_ig_attributions_sum_to_the_output_difference_within_the_reported_delta() -> None:
    import torch

    forward = _mlp()
    inputs = torch.randn(20, 5, dtype=torch.float64) * 4
    baseline = torch.zeros(1, 5, dtype=torch.float64)
    result = integrated_gradients(forward, inputs, baseline, n_steps=2, max_steps=512, tolerance=1e-4)  # type: ignore[arg-type]
    with torch.no_grad():
        gap = (forward(inputs) - forward(baseline)).numpy()  # type: ignore[operator]
    completeness = result.attributions.sum(axis=1) - gap
    np.testing.assert_allclose(completeness, result.delta, atol=1e-9)  # the reported delta is the true error
    assert (result.relative <= 1e-4).all()
    assert result.steps.max() > 2  # the tolerance made it raise the steps for some instances


def test_ig_says_when_the_tolerance_is_not_reached() -> None:
    import torch

    forward = _mlp()
    inputs = torch.randn(10, 5, dtype=torch.float64) * 3
    baseline = torch.zeros(1, 5, dtype=torch.float64)
    result = integrated_gradients(forward, inputs, baseline, n_steps=2, max_steps=4, tolerance=1e-9)  # type: ignore[arg-type]
    assert result.steps.max() == 4
    assert (result.relative > 1e-9).any()


def test_feature_ablation_matches_captum(frame: pd.DataFrame) -> None:
    import torch
    from captum.attr import FeatureAblation

    view = TabularView.from_frame(frame, FEATURES)
    proba = proba_of(view)
    codes = view.codes[:25]
    ours = feature_ablation(proba, codes, view.baseline)
    theirs = FeatureAblation(lambda t: torch.from_numpy(proba(t.numpy()))).attribute(
        torch.from_numpy(codes), baselines=torch.from_numpy(view.baseline[None, :])
    )
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-12)


def test_the_view_round_trips_the_table_and_keeps_missing_categories() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "k": ["u", None, "v", "u"], "flag": [True, False, True, True]})
    view = TabularView.from_frame(frame, ("x", "k", "flag"))
    back = view.to_frame(view.codes)
    assert back["x"].tolist() == [1.0, 2.0, 2.0, 4.0]  # missing numeric → median
    assert back["k"].iloc[0] == "u" and pd.isna(back["k"].iloc[1]) and back["k"].iloc[2] == "v"
    assert back["flag"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert view.describe(view.codes[1])["k"] == "(missing)"
    assert view.to_frame(view.baseline[None, :])["k"].iloc[0] == "u"  # the mode


@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_shap"])
def test_gradient_attributions_of_one_hot_columns_sum_to_their_feature(frame: pd.DataFrame, method: str) -> None:
    import torch

    from guardrail.adapters.torch import TorchAdapter
    from guardrail.explain.engine import ExplainConfig, Explainer
    from guardrail.training.data import TabularEncoder

    features = ("a", "b", "c")
    encoder = TabularEncoder.fit(frame, features)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(encoder.width, 2))
    description = {"classes": [0, 1], "features": list(features), "encoder": encoder.to_dict()}
    adapter = TorchAdapter(net, description)
    view = TabularView.from_frame(frame, features)
    from guardrail.explain.tabular import gradient_model, proba_function

    explainer = Explainer(
        view,
        proba_function(adapter, view, 1, 1024),
        gradient_model(adapter, view, 1),
        np.arange(50),
        ExplainConfig(methods=(method,)),  # type: ignore[arg-type]
    )
    values, encoded = explainer.attribute(method, view.codes[:10], seed=0)  # type: ignore[arg-type]
    assert encoded is not None and encoded.shape == (10, encoder.width)
    np.testing.assert_allclose(values[:, 0], encoded[:, 0])
    np.testing.assert_allclose(values[:, 2], encoded[:, 2:].sum(axis=1))
    np.testing.assert_allclose(values.sum(axis=1), encoded.sum(axis=1))


def test_the_direct_encoding_equals_the_torch_adapters_table_encoding() -> None:
    from guardrail.adapters.torch import encode_table
    from guardrail.explain.tabular import direct_encoder
    from guardrail.training.data import TabularEncoder

    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 5.0], "k": ["u", "v", "w", "u"], "n": [1, 2, 3, 4], "flag": [True, False, True, True]})
    audit = pd.DataFrame({"x": [1.0, np.nan, 4.0, 7.0], "k": ["u", None, "unseen", "w"], "n": [0, 1, 2, 9], "flag": [False, True, True, False]})
    encoder = TabularEncoder.fit(train, ("x", "k", "n", "flag")).to_dict()
    view = TabularView.from_frame(audit, ("n", "k", "x", "flag"))  # another column order than the encoder's
    encode = direct_encoder(encoder, view)
    assert encode is not None
    codes = np.vstack([view.codes, view.codes + np.array([0.5, 0.0, -1.25, 0.0])])
    np.testing.assert_array_equal(encode(codes), encode_table(encoder, view.to_frame(codes)))
    assert direct_encoder(encoder, TabularView.from_frame(audit.astype({"n": str}), ("n", "k", "x", "flag"))) is None


@contextmanager
def _global_seeds(seed: int) -> Iterator[None]:
    """numpy's and torch's global generators seeded with ``seed``, restored afterwards (Captum draws from both)."""
    import torch

    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


def _shap_setup() -> tuple[Any, Any, Any]:
    """A float64 MLP, 6 inputs and 50 background rows (seeded)."""
    import torch

    forward = _mlp()
    generator = torch.Generator().manual_seed(7)
    inputs = torch.randn(6, 5, dtype=torch.float64, generator=generator) * 2
    background = torch.randn(50, 5, dtype=torch.float64, generator=generator)
    return forward, inputs, background


def test_gradient_shap_with_fixed_samples_is_a_deterministic_function_of_each_row() -> None:
    import torch

    from guardrail.explain.attribution import expected_gradients, gradient_shap, shap_samples

    forward, inputs, background = _shap_setup()
    samples = shap_samples(background, 20, seed=3, stdevs=0.1)
    first = expected_gradients(forward, inputs, samples)
    again = expected_gradients(forward, inputs, samples)
    assert torch.equal(first, again)
    alone = expected_gradients(forward, inputs[3:4], samples)
    batched = expected_gradients(forward, inputs, samples, batch_size=40)  # two rows per model call
    np.testing.assert_allclose(alone.numpy()[0], first.numpy()[3], rtol=1e-12, atol=1e-15)  # no other row's draws
    np.testing.assert_allclose(batched.numpy(), first.numpy(), rtol=1e-12, atol=1e-15)
    other = expected_gradients(forward, inputs, shap_samples(background, 20, seed=4))
    assert not torch.allclose(first, other)
    # the seed alone fixes the draws, whatever the global numpy and torch states (Captum's draw from both)
    with _global_seeds(1):
        one = gradient_shap(forward, inputs, background, n_samples=20, seed=3)
    with _global_seeds(2):
        two = gradient_shap(forward, inputs, background, n_samples=20, seed=3)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("stdevs", [0.0, 0.3])
def test_gradient_shap_with_fixed_samples_has_captums_expectation(stdevs: float) -> None:
    import torch
    from captum.attr import GradientShap

    from guardrail.explain.attribution import gradient_shap

    forward, inputs, background = _shap_setup()
    runs = np.stack(
        [gradient_shap(forward, inputs, background, n_samples=100, seed=s, stdevs=stdevs) for s in range(40)]
    )
    ours = runs.mean(axis=0)  # 4,000 draws per row
    standard_error = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    with _global_seeds(0):
        theirs = GradientShap(forward).attribute(inputs, baselines=background, n_samples=4000, stdevs=stdevs)
    # Captum's 4,000 independent draws have about the same standard error: the difference's is √2 times it
    np.testing.assert_array_less(np.abs(ours - theirs.detach().numpy()), 4 * np.sqrt(2) * standard_error + 1e-12)
    # tight enough to tell estimators apart: α fixed at 0.5, or half the background, miss by 6.9 and 2.8 tolerances
    assert standard_error.max() < 0.05 * np.abs(ours).max()
    if stdevs == 0.0:  # completeness in expectation: Σ φ(x) = f(x) − E_b f(b)
        with torch.no_grad():
            gap = (forward(inputs) - forward(background).mean()).numpy()
        row_error = np.sqrt((runs.sum(axis=2).var(axis=0, ddof=1)) / len(runs))
        np.testing.assert_array_less(np.abs(ours.sum(axis=1) - gap), 4 * row_error + 1e-12)
