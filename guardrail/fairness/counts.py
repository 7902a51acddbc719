"""Per-group confusion counts in one pass over the rows."""

from __future__ import annotations

import numpy as np


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Count rows per (group, true label, predicted label).

    Parameters
    ----------
    y_true, y_pred:
        Boolean (or 0/1) arrays: is the true / predicted label the positive class.
    codes:
        Group index of each row, in ``range(n_groups)``.

    Returns
    -------
    numpy.ndarray
        ``int64`` array of shape ``(n_groups, 2, 2)``: ``[g, 0, 0]`` true negatives,
        ``[g, 0, 1]`` false positives, ``[g, 1, 0]`` false negatives, ``[g, 1, 1]`` true positives.

    Examples
    --------
    >>> confusion_counts(np.array([1, 0, 1]), np.array([1, 1, 0]), np.array([0, 0, 1]), 2)[:, 1, 1]
    array([1, 0])
    """
    cell = codes.astype(np.int64) * 4 + np.asarray(y_true, dtype=np.int64) * 2 + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(cell, minlength=4 * n_groups).reshape(n_groups, 2, 2)
