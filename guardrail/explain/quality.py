"""How good are the explanations: faithfulness curves, stability, agreement, Captum's metrics.

* :func:`deletion_insertion`: features are removed (set to the baseline) — or inserted into
  the baseline row — in the order of their attribution toward the predicted class; the
  areas under the curves of the predicted class's probability are the deletion AUC (lower
  is better: the top features carried the decision) and the insertion AUC (higher is
  better). Both are on ``[0, 1]`` with the feature count scaled to ``[0, 1]``.
* :func:`stability`: mean top-k Jaccard between runs of a method with different seeds.
* :func:`top_k_overlap` and :func:`spearman`: agreement between two methods.
* :func:`captum_quality`: Captum's ``infidelity`` and ``sensitivity_max`` of a gradient method.
  Sensitivity re-explains perturbed inputs, so the explanation must be a deterministic
  function of its input: GradientShap's random draws (baselines, path points, noise) are
  made once and shared by every call (:func:`explanation_function`); otherwise the metric
  would measure the sampling noise (≈ 0.5 at any radius) rather than the input change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.explain.tabular import ProbaFn

if TYPE_CHECKING:
    import torch

    from guardrail.explain.tabular import GradientModel

INFIDELITY_NOISE = 0.1
"""Standard deviation of the Gaussian perturbations of Captum's infidelity (encoded, standardised inputs)."""
SENSITIVITY_RADIUS = 0.02
"""Default half-width of the uniform (L∞) perturbations of Captum's ``sensitivity_max``
(encoded, standardised inputs); :func:`captum_quality`'s ``radius`` sets another."""
PERTURBATIONS = 10
"""Perturbations per instance for ``infidelity``; ``sensitivity_max`` takes half as many."""


def deletion_insertion(
    proba: ProbaFn, codes: np.ndarray, baseline: np.ndarray, attributions: np.ndarray, predicted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-instance deletion and insertion AUCs (``(n,)`` each), all curves scored in one call."""
    n, d = codes.shape
    sign = np.where(predicted, 1.0, -1.0)
    order = np.argsort(-(attributions * sign[:, None]), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(d)[None, :].repeat(n, axis=0), axis=1)
    replaced = ranks[:, None, :] < np.arange(d + 1)[None, :, None]
    deletion = np.where(replaced, baseline[None, None, :], codes[:, None, :])
    insertion = np.where(replaced, codes[:, None, :], baseline[None, None, :])
    scores = proba(np.concatenate([deletion, insertion]).reshape(-1, d)).reshape(2, n, d + 1)
    toward = np.where(predicted[None, :, None], scores, 1.0 - scores)
    area = np.trapezoid(toward, dx=1.0 / d, axis=2) if d else toward[..., 0]
    return area[0], area[1]


def top_k(attributions: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``|attribution|`` per row (ties: lower index first)."""
    return np.argsort(-np.abs(attributions), axis=1, kind="stable")[:, :k]


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Per-instance Jaccard index of the top-``k`` feature sets of two attribution matrices."""
    out = np.empty(a.shape[0])
    for i, (x, y) in enumerate(zip(top_k(a, k), top_k(b, k), strict=True)):
        sx, sy = set(x.tolist()), set(y.tolist())
        out[i] = len(sx & sy) / len(sx | sy) if sx | sy else 1.0
    return out


def stability(runs: Sequence[np.ndarray], k: int) -> float:
    """Mean top-``k`` Jaccard over every pair of runs and every instance (1.0: identical top sets)."""
    pairs = [float(top_k_overlap(a, b, k).mean()) for a, b in combinations(runs, 2)]
    return float(np.mean(pairs)) if pairs else 1.0


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation of two importance vectors; None when either is constant."""
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def explanation_function(
    method: str, model: GradientModel, baseline: Any, background: Any, *, n_steps: int, seed: int
) -> Callable[[torch.Tensor | tuple[torch.Tensor]], torch.Tensor | tuple[torch.Tensor]]:
    """The explanation ``sensitivity_max`` re-runs on perturbed inputs: a deterministic function of them.

    ``integrated_gradients``: Captum's IG from ``baseline`` with ``n_steps``.
    ``gradient_shap``: :func:`~guardrail.explain.attribution.expected_gradients` with
    ``n_steps`` draws from ``background`` made once with ``seed`` (the seed of the audit's
    first chunk of attributions), so every perturbed input shares the original's baselines,
    path points and noise. Any other method raises: its sensitivity is not measured.
    """
    from guardrail.explain.attribution import expected_gradients, shap_samples

    if method == "integrated_gradients":
        from captum.attr import IntegratedGradients

        ig = IntegratedGradients(model.forward)

        def integrated(x: torch.Tensor | tuple[torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor]:
            out: torch.Tensor | tuple[torch.Tensor] = ig.attribute(x, baselines=baseline, n_steps=n_steps)
            return out

        return integrated
    if method == "gradient_shap":
        samples = shap_samples(background, n_steps, seed=seed)

        def shap(x: torch.Tensor | tuple[torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor]:
            if isinstance(x, tuple):  # Captum's metrics pass a 1-tuple and expect one back, as its attribute() does
                return (expected_gradients(model.forward, x[0], samples),)
            return expected_gradients(model.forward, x, samples)

        return shap
    raise ValueError(f"no deterministic explanation function for {method!r}: only gradient methods get Captum's metrics")


def captum_quality(
    method: str,
    model: GradientModel,
    inputs: Any,
    baseline: Any,
    background: Any,
    attributions: Any,
    *,
    n_steps: int,
    seed: int,
    radius: float = SENSITIVITY_RADIUS,
) -> tuple[float, float]:
    """Mean ``infidelity`` and mean ``sensitivity_max`` (Captum) of a gradient method on ``inputs``.

    Infidelity scores the given ``attributions`` against the model under Gaussian input noise
    (:data:`INFIDELITY_NOISE`, normalised); it never re-explains. Sensitivity is the largest
    ``‖φ(x') − φ(x)‖ / ‖φ(x)‖`` over perturbations ``x'`` uniform within ``radius`` (L∞) of
    ``x``, with ``φ`` from :func:`explanation_function` (fixed draws for GradientShap). The
    perturbations are seeded with ``seed``.
    """
    import torch
    from captum.metrics import infidelity, sensitivity_max

    def perturb(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn_like(x) * INFIDELITY_NOISE
        return noise, x - noise

    explain = explanation_function(method, model, baseline, background, n_steps=n_steps, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inf = infidelity(model.forward, perturb, inputs, attributions, n_perturb_samples=PERTURBATIONS, normalize=True)
        sens = sensitivity_max(explain, inputs, perturb_radius=radius, n_perturb_samples=PERTURBATIONS // 2)
    return float(inf.mean()), float(sens.mean())
