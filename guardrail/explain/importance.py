"""Global importance: mean ``|attribution|`` per feature, with a bootstrap interval over instances."""

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


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``values (n, d)`` over ``resamples`` row bootstraps: ``(resamples, d)``."""
    n = values.shape[0]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
    return np.asarray(counts @ values / n)


def global_importance(
    attributions: np.ndarray,
    features: tuple[str, ...],
    groups: Mapping[str, np.ndarray],
    spec: BootstrapSpec,
    *,
    min_group_size: int,
) -> list[FeatureImportance]:
    """Mean ``|attribution|`` per feature, its percentile interval, and its value per group.

    ``groups`` maps each sensitive column to the group label of every explained instance;
    group values are labelled ``column=group``.
    """
    magnitude = np.abs(attributions)
    means = magnitude.mean(axis=0)
    rng = np.random.default_rng(spec.seed)
    boot = bootstrap_means(magnitude, spec.resamples, rng) if spec.resamples else None
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
