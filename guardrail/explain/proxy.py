"""Proxies of sensitive attributes: features strongly associated with them.

Association is the normalised mutual information (scikit-learn's
``normalized_mutual_info_score``, arithmetic mean) between a feature — numeric features
binned at their quantiles — and a sensitive column. A feature at or above the threshold is
a proxy of that column.
"""

from __future__ import annotations

from collections.abc import Mapping
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
