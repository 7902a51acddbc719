"""A model's per-example outputs as membership attacks read them: the loss and LiRA's confidence.

An output is either :class:`Logits` (float64 logits or log-probabilities, or a binary
model's log-odds) or an array of probabilities. Logits keep every digit of a confident
prediction; probabilities lose them where ``1 − p`` underflows (``p`` rounds to 1 beyond a
log-odds of ≈ 16.6 in float32 and ≈ 36.7 in float64), and the floor of
:data:`PROBABILITY_FLOOR` then caps LiRA's confidence at ±27.6, so on an overfit model the
attack would see ties where the model ranks its examples. Pass logits whenever the model
has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "PROBABILITY_FLOOR",
    "Logits",
    "ModelOutput",
    "cross_entropy_loss",
    "logit_confidence",
]

PROBABILITY_FLOOR = 1e-12
"""Probabilities are clipped to ``[floor, 1 − floor]`` before logs (a 0/1 output is finite)."""


@dataclass(frozen=True, eq=False)
class Logits:
    """A model's outputs on the log scale, in float64: the precise input of both attacks.

    ``values`` is ``(n, classes)`` logits or log-probabilities (a constant added to a row
    changes nothing), or ``(n,)`` log-odds of class 1 for a binary model. ``-inf`` (a
    probability of exactly 0, e.g. a forest's unanimous vote) is allowed in the 2-D form and
    is raised to ``log(PROBABILITY_FLOOR)`` after normalisation, as a probability of 0 always
    was; NaN and ``+inf`` are refused.

    >>> Logits([40.0]).log_probabilities().round(6).tolist()  # log-odds 40: [log P(0), log P(1)]
    [[-40.0, 0.0]]
    """

    values: npt.ArrayLike

    def __post_init__(self) -> None:
        values = np.array(self.values, dtype=np.float64)
        if values.ndim not in (1, 2) or (values.ndim == 2 and values.shape[1] < 2):
            raise ValueError(f"logits must be (n,) log-odds or (n, classes ≥ 2), got shape {values.shape}")
        if np.isnan(values).any() or np.isposinf(values).any():
            raise ValueError("logits must be finite (−inf allowed in the (n, classes) form)")
        if values.ndim == 1 and np.isinf(values).any():
            raise ValueError("log-odds must be finite")
        if values.ndim == 2 and np.isneginf(values).all(axis=1).any():
            raise ValueError("a row of logits is −inf in every class")
        values.setflags(write=False)
        object.__setattr__(self, "values", values)

    @property
    def array(self) -> npt.NDArray[np.float64]:
        """The values as a read-only float64 array."""
        result: npt.NDArray[np.float64] = np.asarray(self.values, dtype=np.float64)
        return result

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def log_probabilities(self) -> npt.NDArray[np.float64]:
        """``(n, classes)`` log-probabilities (log-softmax in float64), floored at ``log(PROBABILITY_FLOOR)`` only where −inf."""
        from scipy.special import log_softmax

        values = self.array
        if values.ndim == 1:
            values = np.column_stack([np.zeros_like(values), values])
        result: npt.NDArray[np.float64] = log_softmax(values, axis=1)
        return np.where(np.isneginf(result), math.log(PROBABILITY_FLOOR), result)


ModelOutput = Logits | npt.ArrayLike
"""What a model gives an attack: :class:`Logits` (precise) or probabilities ``(n, classes)``
or ``(n,)`` of class 1 (precise only while ``1 − p`` does not underflow)."""


def cross_entropy_loss(
    output: ModelOutput, labels: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Per-example cross-entropy ``−log p_y``.

    Parameters
    ----------
    output:
        :class:`Logits` (exact: ``log1p(exp(−φ))`` from LiRA's confidence φ in float64, so a
        tiny loss keeps its digits instead of rounding to 0), or ``(n, classes)``
        class probabilities, or ``(n,)`` probabilities of class 1 for a binary model
        (clipped to ``[PROBABILITY_FLOOR, 1]``).
    labels:
        ``(n,)`` integer class labels (0/1 for the binary form).

    >>> cross_entropy_loss([0.9, 0.2], [1, 0]).round(4)
    array([0.1054, 0.2231])
    >>> float(cross_entropy_loss(Logits([40.0]), [1])[0])  # p = 1 − 4e-18: not 0, not −log(1)
    4.248354255291589e-18
    """
    if isinstance(output, Logits):
        # −log p_y = log(1 + Σ_{j≠y} p_j / p_y) = log1p(exp(−φ)): exact where p_y ≈ 1
        loss: npt.NDArray[np.float64] = np.logaddexp(0.0, -logit_confidence(output, labels))
        return loss
    probs, y = _as_probabilities(output, labels)
    p = np.clip(probs[np.arange(y.size), y], PROBABILITY_FLOOR, 1.0)
    result: npt.NDArray[np.float64] = -np.log(p)
    return result


def logit_confidence(
    output: ModelOutput, labels: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """LiRA's logit-scaled confidence ``φ = log(p_y) − log(1 − p_y)`` per example.

    From :class:`Logits`, ``φ = z_y − logsumexp_{j≠y} z_j`` in float64 (for a binary model,
    ± its log-odds): exact however confident the model. From probabilities, ``1 − p_y`` is
    the sum of the other classes' probabilities (never ``1 − p_y`` by subtraction, which
    underflows), both clipped to ``PROBABILITY_FLOOR``; given only the probability of class
    1, ``1 − p`` is all there is, and φ saturates (see the module docstring).

    >>> logit_confidence([0.5, 0.9], [1, 1]).round(4)
    array([0.    , 2.1972])
    >>> logit_confidence(Logits([[0.0, 40.0], [0.0, 40.0]]), [1, 0]).tolist()
    [40.0, -40.0]
    """
    if isinstance(output, Logits):
        from scipy.special import logsumexp

        log_p = output.log_probabilities()
        if np.shape(labels) != (log_p.shape[0],):
            raise ValueError(f"expected labels ({log_p.shape[0]},), got {np.shape(labels)}")
        y = _class_indices(labels, log_p.shape[1])
        rows = np.arange(y.size)
        others = log_p.copy()
        others[rows, y] = -np.inf
        phi: npt.NDArray[np.float64] = log_p[rows, y] - logsumexp(others, axis=1)
        return phi
    probs, y = _as_probabilities(output, labels)
    rows = np.arange(y.size)
    p_true = probs[rows, y]
    mask = np.ones_like(probs, dtype=bool)
    mask[rows, y] = False
    other = np.where(mask, probs, 0.0).sum(axis=1)
    result: npt.NDArray[np.float64] = np.log(
        np.clip(p_true, PROBABILITY_FLOOR, None)
    ) - np.log(np.clip(other, PROBABILITY_FLOOR, None))
    return result


def _as_probabilities(
    proba: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """``(n, classes)`` probabilities (a binary ``(n,)`` of class 1 widened) and their labels."""
    probs = np.asarray(proba, dtype=float)
    if probs.ndim == 1:
        probs = np.column_stack([1 - probs, probs])
    if probs.ndim != 2 or np.shape(labels) != (probs.shape[0],):
        raise ValueError(
            f"expected probabilities (n,) or (n, classes) and labels (n,), got {probs.shape} and {np.shape(labels)}"
        )
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1:
        raise ValueError("probabilities must lie in [0, 1]")
    return probs, _class_indices(labels, probs.shape[1])


def _class_indices(labels: npt.ArrayLike, classes: int) -> npt.NDArray[np.int64]:
    """``labels`` as integer indices of one of ``classes`` columns (a label 1.0 is 1; 0.5 is refused)."""
    y = np.asarray(labels)
    y_int = y.astype(np.int64)
    if np.any(y_int != y) or y_int.min(initial=0) < 0 or y_int.max(initial=0) >= classes:
        raise ValueError(f"labels must be integers in [0, {classes})")
    return y_int
