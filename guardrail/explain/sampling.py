"""Which rows to explain: a stratified order over outcome × sensitive groups.

Tabular rows are stratified by outcome (:func:`outcome_labels`) and group; text documents by
whether the prediction is right, the predicted class and group (:func:`sample_documents`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def outcome_labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``TP``/``FP``/``FN``/``TN`` per row of a binary task."""
    truth = np.asarray(y_true, dtype=bool)
    pred = np.asarray(y_pred, dtype=bool)
    return np.where(pred, np.where(truth, "TP", "FP"), np.where(truth, "FN", "TN"))


def stratum_labels(*labels: np.ndarray) -> np.ndarray:
    """One stratum per row: its labels (one array per criterion, a label per row) joined by ``|``.

    >>> stratum_labels(np.asarray(["TP", "FN"]), np.asarray([1, 0])).tolist()
    ['TP|1', 'FN|0']
    """
    joined = np.asarray(labels[0]).astype(str).astype(object)
    for values in labels[1:]:
        joined = joined + "|" + np.asarray(values).astype(str).astype(object)
    return joined.astype(str)


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


def sample_documents(
    y_true: np.ndarray, y_pred: np.ndarray, groups: Mapping[str, np.ndarray], size: int, seed: int
) -> np.ndarray:
    """Up to ``size`` documents, round-robin over (right or wrong, predicted class, groups)."""
    right = np.where(np.asarray(y_true) == np.asarray(y_pred), "right", "wrong")
    return stratified_order(stratum_labels(right, y_pred, *groups.values()), size, np.random.default_rng(seed))
