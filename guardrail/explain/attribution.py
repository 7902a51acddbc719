"""Attribution methods on the codes of a :class:`~guardrail.explain.tabular.TabularView`.

Every method returns attributions of the probability of the positive class, one column per
source feature:

* ``integrated_gradients`` (Captum) on the encoded input of a torch MLP, from the baseline
  row; the number of steps doubles (50 → 100 → 200 …, up to a cap) for the instances whose
  convergence delta is above the tolerance, see :func:`integrated_gradients`;
* ``gradient_shap``: Captum's GradientShap estimator with a sample of audited rows as
  baselines, its Monte Carlo draws (baseline row, path point ``α``, input noise) made once
  per call from the seed and shared by every row, so the attribution is a deterministic
  function of the input (see :func:`expected_gradients`; a test checks it against Captum's
  own GradientShap in expectation);
* ``feature_ablation``: ``f(x) − f(x with feature j set to the baseline)``, computed in one
  batched model call (Captum's ``FeatureAblation`` with one feature per group; a test
  checks the two agree);
* ``shapley_sampling`` (Captum's ``ShapleyValueSampling``) through ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from guardrail.explain.methods import DELTA_FLOOR, GRADIENT_METHODS, STOCHASTIC_METHODS, Method
from guardrail.explain.tabular import ProbaFn

if TYPE_CHECKING:
    import torch

__all__ = ["GRADIENT_METHODS", "STOCHASTIC_METHODS", "Method", "IGResult", "integrated_gradients", "ShapSamples",
           "shap_samples", "expected_gradients", "gradient_shap", "feature_ablation", "shapley_sampling"]


@dataclass(frozen=True)
class IGResult:
    """Integrated gradients of ``n`` instances on encoded inputs.

    ``delta`` is Captum's convergence delta ``Σ attributions − (f(x) − f(baseline))``;
    ``relative`` is ``|delta| / max(|f(x) − f(baseline)|, DELTA_FLOOR)``; ``steps`` the
    number of steps each instance finally used.
    """

    attributions: np.ndarray
    delta: np.ndarray
    relative: np.ndarray
    steps: np.ndarray
    gap: np.ndarray


def integrated_gradients(
    forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    baseline: torch.Tensor,
    *,
    n_steps: int = 50,
    max_steps: int = 800,
    tolerance: float = 0.05,
    internal_batch_size: int | None = None,
) -> IGResult:
    """Captum's IntegratedGradients with the step count raised until the delta is within tolerance.

    Instances whose relative delta exceeds ``tolerance`` are recomputed with twice the steps,
    until they converge or the next doubling would pass ``max_steps``.
    """
    import torch
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(forward)
    n = inputs.shape[0]
    attributions = np.zeros(tuple(inputs.shape), dtype=np.float64)
    delta = np.zeros(n)
    gap = np.zeros(n)
    steps = np.zeros(n, dtype=np.int64)
    todo = np.arange(n)
    current = n_steps
    while todo.size:
        attr, d = ig.attribute(
            inputs if todo.size == n else inputs[torch.from_numpy(todo)],
            baselines=baseline,
            n_steps=current,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=True,
        )
        attributions[todo] = attr.detach().double().cpu().numpy()
        delta[todo] = d.detach().double().cpu().numpy()
        # Captum's delta is Σ attributions − (f(x) − f(baseline)): the output gap without another forward pass
        gap[todo] = attributions[todo].reshape(todo.size, -1).sum(axis=1) - delta[todo]
        steps[todo] = current
        todo = todo[np.abs(delta[todo]) / np.maximum(np.abs(gap[todo]), DELTA_FLOOR) > tolerance]
        if current * 2 > max_steps:
            break
        current *= 2
    return IGResult(attributions, delta, np.abs(delta) / np.maximum(np.abs(gap), DELTA_FLOOR), steps, gap)


@dataclass(frozen=True)
class ShapSamples:
    """GradientShap's Monte Carlo draws, made once and shared by every input row.

    Sample ``s`` is the background row ``baselines[s]``, the point ``alphas[s]`` on the
    straight path from it to the input, and the input noise ``noise[s]`` (zeros when the
    standard deviation is 0). Captum draws these afresh for every row and every call; with
    them fixed, :func:`expected_gradients` is a deterministic function of its input, so a
    perturbed input's attribution differs from the original's only through the input.
    """

    baselines: torch.Tensor
    alphas: torch.Tensor
    noise: torch.Tensor

    @property
    def n_samples(self) -> int:
        return int(self.alphas.shape[0])


def shap_samples(background: torch.Tensor, n_samples: int, *, seed: int, stdevs: float = 0.0) -> ShapSamples:
    """``n_samples`` draws for GradientShap from ``background`` (rows drawn with replacement,
    ``α ~ U(0, 1)``, noise ``~ N(0, stdevs²)`` per element), from a generator seeded with ``seed``
    (not the global numpy or torch state), in ``background``'s dtype and device."""
    import torch

    rng = np.random.default_rng(seed)
    index = rng.integers(0, background.shape[0], size=n_samples)
    alphas = rng.uniform(0.0, 1.0, size=n_samples)
    shape = (n_samples, *background.shape[1:])
    noise = rng.normal(0.0, stdevs, size=shape) if stdevs > 0 else np.zeros(shape)

    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=background.dtype, device=background.device)

    return ShapSamples(background[torch.as_tensor(index, device=background.device)].detach(), tensor(alphas), tensor(noise))


def expected_gradients(
    forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, samples: ShapSamples, *, batch_size: int | None = None
) -> torch.Tensor:
    """GradientShap attributions of ``inputs`` with the fixed ``samples``, one row per input row.

    ``φ(x) = 1/S Σ_s (x + ε_s − b_s) ⊙ ∇f(b_s + α_s (x + ε_s − b_s))``: Captum's GradientShap
    (a smoothgrad ``NoiseTunnel`` over ``InputBaselineXGradient``) term for term, except that
    the ``S`` draws ``(b_s, α_s, ε_s)`` are the same for every row and call instead of fresh
    ones. Each row's estimate has the distribution of Captum's, hence the same expectation.
    ``batch_size`` bounds the rows per model call (``rows × S``); the gradients are taken even
    under ``torch.no_grad()`` (Captum's ``sensitivity_max`` calls explanations inside it).
    """
    import torch

    per_call = max(1, (batch_size or inputs.shape[0] * samples.n_samples) // samples.n_samples)
    parts = [_expected_gradients(forward, inputs[i : i + per_call], samples) for i in range(0, inputs.shape[0], per_call)]
    return torch.cat(parts) if parts else torch.zeros_like(inputs)


def _expected_gradients(forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, samples: ShapSamples) -> torch.Tensor:
    """:func:`expected_gradients` of rows that fit one model call."""
    import torch

    n, s, shape = inputs.shape[0], samples.n_samples, tuple(inputs.shape[1:])
    diff = inputs.detach()[:, None] + samples.noise[None] - samples.baselines[None]  # (n, S, *shape)
    alpha = samples.alphas.view(1, s, *([1] * len(shape)))
    with torch.enable_grad():
        scaled = (samples.baselines[None] + alpha * diff).reshape(n * s, *shape).requires_grad_()
        (grads,) = torch.autograd.grad(forward(scaled).sum(), scaled)
    out: torch.Tensor = (diff * grads.detach().view(n, s, *shape)).mean(dim=1)
    return out


def gradient_shap(
    forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    background: torch.Tensor,
    *,
    n_samples: int,
    seed: int,
    stdevs: float = 0.0,
    batch_size: int | None = None,
) -> np.ndarray:
    """GradientShap against ``background`` baselines with ``n_samples`` draws fixed by ``seed``
    (:func:`shap_samples`, :func:`expected_gradients`): the same seed gives the same
    attributions whatever the global random state."""
    samples = shap_samples(background, n_samples, seed=seed, stdevs=stdevs)
    attr = expected_gradients(forward, inputs, samples, batch_size=batch_size)
    return np.asarray(attr.detach().double().cpu().numpy())


def feature_ablation(proba: ProbaFn, codes: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """``f(x) − f(x with feature j at its baseline value)`` for every row and feature, in one call."""
    n, d = codes.shape
    stacked = np.repeat(codes[:, None, :], d + 1, axis=1)
    index = np.arange(d)
    stacked[:, index + 1, index] = baseline[index]
    scores = proba(stacked.reshape(-1, d)).reshape(n, d + 1)
    return np.asarray(scores[:, :1] - scores[:, 1:])


def shapley_sampling(
    proba: ProbaFn, codes: np.ndarray, baseline: np.ndarray, *, permutations: int, seed: int, batch_size: int
) -> np.ndarray:
    """Captum's ShapleyValueSampling through ``proba``, seeded; perturbations batched up to ``batch_size`` rows."""
    import torch
    from captum.attr import ShapleyValueSampling

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(proba(inputs.detach().cpu().numpy().astype(np.float64)))

    per_eval = max(1, batch_size // max(1, len(codes)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        attr = ShapleyValueSampling(forward).attribute(
            torch.from_numpy(codes),
            baselines=torch.from_numpy(baseline[None, :]),
            n_samples=permutations,
            perturbations_per_eval=per_eval,
        )
    return np.asarray(attr.double().numpy())
