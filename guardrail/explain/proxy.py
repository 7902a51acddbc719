"""Proxies of sensitive attributes: features strongly associated with them.

Association is the normalised mutual information (scikit-learn's
``normalized_mutual_info_score``, arithmetic mean) between a feature — numeric features
binned at their quantiles, tied values kept together — and a sensitive column. A feature at or above the threshold is
a proxy of that column.

For text (:func:`word_associations`) the feature is a word's presence in a document (a
0/1 label per document), with the same normalisation, computed for every word at once.

Binning and the (normalised) mutual information are :mod:`guardrail.data_audit.association`'s,
the one implementation the data audit's proxy check shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from guardrail.data_audit.association import bin_edges, contingency, mutual_information, nmi
from guardrail.explain.tabular import TabularView


@dataclass(frozen=True)
class Association:
    feature: str
    sensitive: str
    nmi: float
    mi: float


def binned(view: TabularView, j: int, bins: int) -> np.ndarray:
    """Feature ``j`` as discrete labels: categorical codes, or numeric quantile bins
    (:func:`~guardrail.data_audit.association.bin_edges`: by value when the feature has at most
    ``bins`` values, a heavily tied value in a bin of its own, as the data audit bins)."""
    values = view.codes[:, j]
    if j in view.levels:
        return values.astype(np.int64)
    return np.asarray(np.digitize(values, bin_edges(values, bins)))


def associations(view: TabularView, sensitive: Mapping[str, np.ndarray], bins: int) -> list[Association]:
    """Mutual information of every feature with every sensitive column (labels per row), as
    scikit-learn's ``normalized_mutual_info_score`` and ``mutual_info_score``."""
    coded = {}
    for column, groups in sensitive.items():
        labels, codes = np.unique(np.asarray(groups), return_inverse=True)
        coded[column] = (codes.reshape(-1), len(labels))
    out = []
    for j, name in enumerate(view.features):
        values = binned(view, j, bins)
        k = int(values.max()) + 1 if values.size else 0
        for column, (codes, g) in coded.items():
            table = contingency(codes, g, values, k)
            out.append(Association(name, column, float(nmi(table)), float(mutual_information(table))))
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
    with_presence = presence.astype(np.float64)
    for column, groups in sensitive.items():
        labels, codes = np.unique(np.asarray(groups), return_inverse=True)
        group_size = np.bincount(codes.reshape(-1), minlength=len(labels)).astype(np.float64)
        onehot = np.zeros((presence.shape[0], len(labels)))
        onehot[np.arange(presence.shape[0]), codes.reshape(-1)] = 1.0
        with_word = with_presence.T @ onehot  # (words, groups): documents of the group that contain the word
        tables = np.stack([with_word, group_size[None, :] - with_word], axis=-1)  # (words, groups, 2)
        mi = mutual_information(tables)
        scores = np.minimum(nmi(tables, constant=0.0), 1.0)
        out += [Association(w, column, float(scores[j]), float(mi[j])) for j, w in enumerate(vocabulary)]
    return out
