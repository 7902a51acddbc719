"""Which rows to explain: a stratified order over outcome × sensitive groups."""

from __future__ import annotations

import numpy as np


def outcome_labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``TP``/``FP``/``FN``/``TN`` per row of a binary task."""
    truth = np.asarray(y_true, dtype=bool)
    pred = np.asarray(y_pred, dtype=bool)
    return np.where(pred, np.where(truth, "TP", "FP"), np.where(truth, "FN", "TN"))


def stratified_order(strata: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``size`` row indices drawn round-robin across strata (shuffled within each).

    Every stratum gets a row before any gets a second, so small strata (false negatives of a
    small group) are explained, and a prefix of the order is itself balanced: a run that
    stops early at the budget still covers the strata.
    """
    labels, inverse = np.unique(strata, return_inverse=True)
    queues = [rng.permutation(np.flatnonzero(inverse == k)) for k in range(len(labels))]
    order: list[int] = []
    depth = 0
    while len(order) < size and any(depth < len(q) for q in queues):
        order += [int(q[depth]) for q in queues if depth < len(q)][: size - len(order)]
        depth += 1
    return np.asarray(order, dtype=np.int64)
