"""Proxies of sensitive attributes: features strongly associated with them.

Association is the normalised mutual information (scikit-learn's
``normalized_mutual_info_score``, arithmetic mean) between a feature — numeric features
binned at their quantiles — and a sensitive column. A feature at or above the threshold is
a proxy of that column.

For text (:func:`word_associations`) the feature is a word's presence in a document (a
0/1 label per document), with the same normalisation, computed for every word at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from guardrail.explain.tabular import TabularView


@dataclass(frozen=True)
class Association:
    feature: str
    sensitive: str
    nmi: float
    mi: float


def binned(view: TabularView, j: int, bins: int) -> np.ndarray:
    """Feature ``j`` as discrete labels: categorical codes, or numeric quantile bins."""
    values = view.codes[:, j]
    if j in view.levels:
        return values.astype(np.int64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.asarray(np.digitize(values, edges))


def associations(view: TabularView, sensitive: Mapping[str, np.ndarray], bins: int) -> list[Association]:
    """Mutual information of every feature with every sensitive column (labels per row)."""
    from sklearn.metrics import mutual_info_score, normalized_mutual_info_score

    out = []
    for j, name in enumerate(view.features):
        labels = binned(view, j, bins)
        for column, groups in sensitive.items():
            out.append(
                Association(
                    name,
                    column,
                    float(normalized_mutual_info_score(groups, labels)),
                    float(mutual_info_score(groups, labels)),
                )
            )
    return out


def proxies(found: list[Association], threshold: float) -> dict[str, list[str]]:
    """Features (not themselves sensitive) whose NMI with a sensitive column reaches ``threshold``."""
    out: dict[str, list[str]] = {}
    for a in found:
        if a.feature != a.sensitive and a.nmi >= threshold:
            out.setdefault(a.feature, []).append(a.sensitive)
    return out


def word_presence(documents: Sequence[Sequence[str]], min_documents: int) -> tuple[list[str], np.ndarray]:
    """The words (lowercased) seen in at least ``min_documents`` documents, sorted, and a
    ``(documents, words)`` boolean matrix of which document contains which word."""
    seen: dict[str, int] = {}
    per_document = [{w.lower() for w in words} for words in documents]
    for words in per_document:
        for w in words:
            seen[w] = seen.get(w, 0) + 1
    vocabulary = sorted(w for w, n in seen.items() if n >= min_documents)
    index = {w: j for j, w in enumerate(vocabulary)}
    presence = np.zeros((len(documents), len(vocabulary)), dtype=bool)
    for i, words in enumerate(per_document):
        presence[i, [index[w] for w in words if w in index]] = True
    return vocabulary, presence


def word_associations(vocabulary: Sequence[str], presence: np.ndarray, sensitive: Mapping[str, np.ndarray]) -> list[Association]:
    """Mutual information of each word's presence (``presence[:, j]``) with each sensitive
    column (a group label per document).

    Equal to ``normalized_mutual_info_score(groups, presence[:, j])`` and
    ``mutual_info_score`` (natural logarithm), except that a column with a single group
    associates with nothing (scikit-learn scores two constant labellings 1).
    """
    out = []
    n = presence.shape[0]
    present = presence.astype(np.float64)
    for column, groups in sensitive.items():
        labels, codes = np.unique(np.asarray(groups), return_inverse=True)
        onehot = np.zeros((n, len(labels)))
        onehot[np.arange(n), codes] = 1.0
        with_word = present.T @ onehot  # (words, groups): documents of the group that contain the word
        group_size = onehot.sum(axis=0)
        joint = np.stack([with_word, group_size[None, :] - with_word]) / max(n, 1)  # (2, words, groups)
        p_word = joint.sum(axis=2, keepdims=True)
        p_group = (group_size / max(n, 1))[None, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(joint > 0, joint * np.log(joint / (p_word * p_group)), 0.0)
            h_word = -np.where(p_word[..., 0] > 0, p_word[..., 0] * np.log(p_word[..., 0]), 0.0).sum(axis=0)
        h_group = float(-(p_group[p_group > 0] * np.log(p_group[p_group > 0])).sum())
        mi = np.maximum(terms.sum(axis=(0, 2)), 0.0)
        normaliser = np.maximum((h_word + h_group) / 2, np.finfo(np.float64).eps)
        nmi = np.where((mi > 0) & (h_group > 0), np.minimum(mi / normaliser, 1.0), 0.0)
        out += [Association(w, column, float(nmi[j]), float(mi[j])) for j, w in enumerate(vocabulary)]
    return out
