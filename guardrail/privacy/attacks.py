"""The two membership inference attacks: each turns model outputs into one score per example,
higher meaning "more likely a member". :func:`~guardrail.privacy.mia_metrics.attack_metrics`
judges any score.

* :func:`loss_threshold_attack` — score = −loss (Yeom et al. 2018): training examples
  tend to have lower loss.
* :func:`lira_offline_attack` — offline LiRA (Carlini et al. 2022): a per-example
  calibration against reference models that never saw the example. For each example, the
  logit-scaled confidence ``φ = log(p_y / (1 − p_y))`` of the reference models is fitted
  with a Gaussian ``N(μ_out, σ²_out)``; the score is ``(φ_target − μ_out) / σ_out``, a
  monotone transform of the paper's one-sided likelihood test ``Φ((φ − μ_out)/σ_out)``
  kept unbounded so that the low-FPR end of the ROC curve is not lost to rounding.
  :func:`train_reference_models` trains the reference models on random halves of a
  population split through a caller-supplied ``fit`` callable.

Both read model outputs through :mod:`guardrail.privacy.outputs` (:class:`Logits` whenever
the model has them), so they are model-agnostic: the caller computes the outputs with its
own model (scikit-learn, torch, anything).

References
----------
S. Yeom, I. Giacomelli, M. Fredrikson, S. Jha. *Privacy Risk in Machine Learning: Analyzing
the Connection to Overfitting.* IEEE CSF 2018.

N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramèr. *Membership Inference Attacks
From First Principles.* IEEE S&P 2022 (LiRA; offline variant and fixed variance, Sec. IV-C/D).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from guardrail.privacy.outputs import Logits, ModelOutput, cross_entropy_loss, logit_confidence

__all__ = [
    "ReferenceModels",
    "Variance",
    "lira_offline_attack",
    "loss_threshold_attack",
    "train_reference_models",
]

Variance = Literal["global", "per_example"]
"""How LiRA fits σ_out: one for all examples, or each example's own (see :func:`lira_offline_attack`)."""


def loss_threshold_attack(losses: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Scores of the loss-threshold attack (Yeom et al. 2018): ``−loss``.

    Any threshold on the score is one attack;
    :func:`~guardrail.privacy.mia_metrics.attack_metrics` sweeps them all.

    >>> loss_threshold_attack([0.1, 2.0])
    array([-0.1, -2. ])
    """
    loss = np.asarray(losses, dtype=float)
    if loss.ndim != 1 or not np.all(np.isfinite(loss)):
        raise ValueError("losses must be a 1-D array of finite numbers")
    result: npt.NDArray[np.float64] = -loss
    return result


def lira_offline_attack(
    target_confidence: npt.ArrayLike,
    reference_confidence: npt.ArrayLike,
    *,
    variance: Variance = "global",
) -> npt.NDArray[np.float64]:
    """Scores of offline LiRA (Carlini et al. 2022): ``(φ − μ_out) / σ_out`` per example.

    Parameters
    ----------
    target_confidence:
        ``(n,)`` logit-scaled confidences φ of the audited model on the audited examples
        (:func:`logit_confidence`).
    reference_confidence:
        ``(K, n)`` the same for ``K ≥ 2`` reference models, none of which trained on any
        audited example (members or non-members): the "out" distribution of each example.
    variance:
        ``"global"`` (default): one σ_out for all examples, the mean of the per-example
        variances — the paper's advice with few reference models (it is what lets a CI-sized
        K of 4–8 work); ``"per_example"``: each example's own variance.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` scores, higher meaning "more likely a member".
    """
    target = np.asarray(target_confidence, dtype=float)
    reference = np.asarray(reference_confidence, dtype=float)
    if target.ndim != 1 or reference.ndim != 2 or reference.shape[1] != target.size:
        raise ValueError(
            f"expected target (n,) and reference (K, n) confidences, got {target.shape} and {reference.shape}"
        )
    if reference.shape[0] < 2:
        raise ValueError("LiRA needs at least 2 reference models to fit a variance")
    if not (np.all(np.isfinite(target)) and np.all(np.isfinite(reference))):
        raise ValueError(
            "confidences must be finite (use logit_confidence, which clips probabilities)"
        )
    mean = reference.mean(axis=0)
    per_example = reference.var(axis=0, ddof=1)
    if variance == "global":
        spread = np.full_like(mean, math.sqrt(float(per_example.mean())))
    elif variance == "per_example":
        spread = np.sqrt(per_example)
    else:
        raise ValueError(
            f"variance must be 'global' or 'per_example', got {variance!r}"
        )
    spread = np.maximum(
        spread, 1e-6
    )  # reference models that agree exactly: a (near) point mass
    result: npt.NDArray[np.float64] = (target - mean) / spread
    return result


@dataclass(frozen=True)
class ReferenceModels:
    """Outputs of ``K`` reference models on the audited examples.

    ``confidence`` and ``loss`` are ``(K, n)``: logit-scaled confidence
    (:func:`logit_confidence`) and cross-entropy of model ``k`` on audited example ``i``;
    ``train_indices[k]`` are the population rows model ``k`` was trained on. ``from_logits``
    is true when every model gave :class:`Logits` (precise confidences), false when any
    gave probabilities: the target's confidences must then come from probabilities too, or
    LiRA compares numbers computed two ways.
    """

    confidence: npt.NDArray[np.float64]
    loss: npt.NDArray[np.float64]
    train_indices: tuple[npt.NDArray[np.int64], ...]
    from_logits: bool = False


def train_reference_models(
    fit: Callable[
        [npt.NDArray[np.int64]], Callable[[npt.NDArray[np.int64]], ModelOutput]
    ],
    population: npt.ArrayLike,
    audited: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_models: int = 4,
    fraction: float = 0.5,
    seed: int = 0,
) -> ReferenceModels:
    """Train ``n_models`` reference models on random subsets of a population split.

    Parameters
    ----------
    fit:
        ``fit(train_idx) -> predict``: trains a fresh model (same recipe as the audited
        one) on the rows ``train_idx`` of the caller's data and returns
        ``predict(idx) -> output``: :class:`Logits` (preferred), or probabilities
        (``(len(idx), classes)``, or ``(len(idx),)`` probabilities of class 1). Works for
        any framework: the rows stay with the caller.
    population:
        Row indices the reference models may train on. They must not include any audited
        row (offline LiRA models the "out" distribution only).
    audited:
        Row indices of the audited examples (members and non-members of the target model).
    labels:
        Labels of all rows (indexed by row index), used for confidences and losses.
    n_models, fraction, seed:
        ``K ≥ 2`` models, each on ``round(fraction · len(population))`` rows drawn without
        replacement with a generator seeded by ``seed``.
    """
    pool = np.asarray(population, dtype=np.int64)
    rows = np.asarray(audited, dtype=np.int64)
    y = np.asarray(labels)
    if n_models < 2:
        raise ValueError(f"n_models must be ≥ 2, got {n_models!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if np.intersect1d(pool, rows).size:
        raise ValueError(
            "population and audited rows overlap: reference models must never train on audited rows"
        )
    size = max(1, round(fraction * pool.size))
    rng = np.random.default_rng(seed)
    confidences, losses, subsets, kinds = [], [], [], []
    for _ in range(n_models):
        subset = np.sort(rng.choice(pool, size=size, replace=False))
        predict = fit(subset)
        output = predict(rows)
        confidences.append(logit_confidence(output, y[rows]))
        losses.append(cross_entropy_loss(output, y[rows]))
        subsets.append(subset)
        kinds.append(isinstance(output, Logits))
    return ReferenceModels(
        confidence=np.stack(confidences),
        loss=np.stack(losses),
        train_indices=tuple(subsets),
        from_logits=all(kinds),
    )

