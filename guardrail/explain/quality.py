"""How good are the explanations: faithfulness curves, stability, agreement, Captum's metrics.

* :func:`deletion_insertion`: features are removed (set to the baseline) — or inserted into
  the baseline row — in the order of their attribution toward the predicted class; the
  areas under the curves of the predicted class's probability are the deletion AUC (lower
  is better: the top features carried the decision) and the insertion AUC (higher is
  better). Both are on ``[0, 1]`` with the feature count scaled to ``[0, 1]``.
* :func:`stability`: mean top-k Jaccard between runs of a method with different seeds.
* :func:`top_k_overlap` and :func:`spearman`: agreement between two methods.
* :func:`captum_quality`: Captum's ``infidelity`` and ``sensitivity_max`` of a gradient method.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.explain.tabular import ProbaFn

if TYPE_CHECKING:
    from guardrail.explain.tabular import GradientModel

INFIDELITY_NOISE = 0.1
"""Standard deviation of the Gaussian perturbations of Captum's infidelity (encoded, standardised inputs)."""
SENSITIVITY_RADIUS = 0.02
PERTURBATIONS = 10


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


def captum_quality(
    method: str, model: GradientModel, inputs: Any, baseline: Any, background: Any, attributions: Any, *, n_steps: int, seed: int
) -> tuple[float, float]:
    """Mean ``infidelity`` and mean ``sensitivity_max`` (Captum) of a gradient method on ``inputs``."""
    import torch
    from captum.attr import GradientShap, IntegratedGradients
    from captum.metrics import infidelity, sensitivity_max

    def perturb(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn_like(x) * INFIDELITY_NOISE
        return noise, x - noise

    if method == "integrated_gradients":
        ig = IntegratedGradients(model.forward)

        def explain(x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = ig.attribute(x, baselines=baseline, n_steps=n_steps)
            return out

    else:
        shap = GradientShap(model.forward)

        def explain(x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = shap.attribute(x, baselines=background, n_samples=n_steps, stdevs=0.0)
            return out

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inf = infidelity(model.forward, perturb, inputs, attributions, n_perturb_samples=PERTURBATIONS, normalize=True)
        sens = sensitivity_max(explain, inputs, perturb_radius=SENSITIVITY_RADIUS, n_perturb_samples=PERTURBATIONS // 2)
    return float(inf.mean()), float(sens.mean())
