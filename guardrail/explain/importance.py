"""Global importance: mean ``|attribution|`` per feature, with a bootstrap interval over
instances, or over clusters of instances whose attributions share randomness (LIME's pools)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from guardrail.core.types import GroupValue, Interval
from guardrail.fairness.bootstrap import BootstrapSpec, interval


@dataclass(frozen=True)
class FeatureImportance:
    feature: str
    value: float
    ci: Interval | None
    by_group: tuple[GroupValue, ...]


def bootstrap_means(
    values: np.ndarray, resamples: int, rng: np.random.Generator, clusters: np.ndarray | None = None
) -> np.ndarray:
    """Means of ``values (n, d)`` over ``resamples`` bootstraps: ``(resamples, d)``.

    Rows are resampled one by one, or, given ``clusters`` (a label per row), whole clusters
    are (the cluster bootstrap: each replicate's mean is over the rows of the clusters drawn,
    with their multiplicity), so noise the rows of a cluster share shows in the interval.
    """
    n = values.shape[0]
    if clusters is None:
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
        return np.asarray(counts @ values / n)
    labels, index = np.unique(clusters, return_inverse=True)
    drawn = rng.multinomial(len(labels), np.full(len(labels), 1.0 / len(labels)), size=resamples)
    weights = drawn[:, index].astype(np.float64)
    return np.asarray(weights @ values / weights.sum(axis=1, keepdims=True))


def global_importance(
    attributions: np.ndarray,
    features: tuple[str, ...],
    groups: Mapping[str, np.ndarray],
    spec: BootstrapSpec,
    *,
    min_group_size: int,
    clusters: np.ndarray | None = None,
) -> list[FeatureImportance]:
    """Mean ``|attribution|`` per feature, its percentile interval, and its value per group.

    ``groups`` maps each sensitive column to the group label of every explained instance;
    group values are labelled ``column=group``. ``clusters``: see :func:`bootstrap_means`.
    """
    magnitude = np.abs(attributions)
    means = magnitude.mean(axis=0)
    rng = np.random.default_rng(spec.seed)
    boot = bootstrap_means(magnitude, spec.resamples, rng, clusters) if spec.resamples else None
    out = []
    for j, name in enumerate(features):
        by_group = []
        for column, labels in groups.items():
            for group in sorted(set(labels.tolist())):
                rows = labels == group
                size = int(rows.sum())
                by_group.append(
                    GroupValue(f"{column}={group}", float(magnitude[rows, j].mean()), size, small=size < min_group_size)
                )
        ci = interval(boot[:, j], spec, table=False) if boot is not None else None
        out.append(FeatureImportance(name, float(means[j]), ci, tuple(by_group)))
    return out
