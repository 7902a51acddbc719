"""Attribution methods against exact answers and against Captum itself."""

from __future__ import annotations

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
