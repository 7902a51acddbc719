"""Score-based metrics per group — ROC AUC and expected calibration error — with bootstrap
intervals computed on tables of (unique score, label) counts.

A stratified row bootstrap of a group is a multinomial over the group's distinct
(score, label) cells, so the cost grows with the number of distinct scores, never beyond the
number of rows. AUC counts ties as one half (as scikit-learn's ``roc_auc_score``); ECE uses
equal-width bins on [0, 1] assigned as scikit-learn's ``calibration_curve`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from guardrail.core.types import GroupValue, MetricResult

if TYPE_CHECKING:
    from guardrail.fairness.groups import Grouping

BLOCK_CELLS = 4_000_000
"""Resamples are drawn in blocks of at most this many (resample × score) cells."""


@dataclass(frozen=True)
class ScoreTable:
    """Counts per (group, distinct score, label) for one grouping; ``scores`` ascending."""

    scores: np.ndarray
    counts: np.ndarray
    """``(G, U, 2)``: ``[g, u, 0]`` negatives and ``[g, u, 1]`` positives with score ``scores[u]``."""


def score_table(codes: np.ndarray, n_groups: int, y_score: np.ndarray, y_true: np.ndarray) -> ScoreTable:
    scores, position = np.unique(np.asarray(y_score, dtype=np.float64), return_inverse=True)
    cell = (codes.astype(np.int64) * scores.size + position.reshape(-1)) * 2 + np.asarray(y_true, dtype=np.int64)
    counts = np.bincount(cell, minlength=n_groups * scores.size * 2).reshape(n_groups, scores.size, 2)
    return ScoreTable(scores, counts)


def auc(table: np.ndarray) -> np.ndarray:
    """ROC AUC from ``(..., U, 2)`` counts ordered by score; NaN without both labels."""
    negatives, positives = table[..., 0].astype(np.float64), table[..., 1].astype(np.float64)
    below = np.cumsum(negatives, axis=-1) - negatives
    wins = (positives * (below + 0.5 * negatives)).sum(axis=-1)
    pairs = positives.sum(axis=-1) * negatives.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1), np.nan)


def bin_index(scores: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width calibration bin of each score, as ``sklearn.calibration.calibration_curve``."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.searchsorted(edges[1:-1], scores)  # an edge value belongs to the lower bin, as in scikit-learn


def ece(table: np.ndarray, scores: np.ndarray, bins: int) -> np.ndarray:
    """Expected calibration error ``Σ_b n_b/n · |mean label_b − mean score_b|``; NaN if empty.

    Per bin, ``n_b · |mean label − mean score| = |Σ positives − Σ count · score|``.
    """
    totals = table.sum(axis=-1).astype(np.float64)
    gap = table[..., 1] - totals * scores  # per distinct score: positives − expected positives
    onehot = np.zeros((scores.size, bins))
    onehot[np.arange(scores.size), bin_index(scores, bins)] = 1.0
    per_bin = gap @ onehot
    n = totals.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.abs(per_bin).sum(axis=-1) / np.where(n > 0, n, 1), np.nan)


def bootstrap_score_metrics(
    table: ScoreTable, resamples: int, rng: np.random.Generator, bins: int
) -> dict[str, np.ndarray]:
    """Per resample: ``auc`` and ``ece`` per group ``(B, G)`` and pooled over groups ``(B,)``.

    Each group is resampled (stratified) over its own distinct (score, label) cells, in
    blocks, and each block is reduced to the metrics at once: time ``O(B · rows)`` at most,
    memory bounded by :data:`BLOCK_CELLS`.
    """
    groups, distinct = table.counts.shape[0], table.scores.size
    flat = table.counts.reshape(groups, -1)
    layouts = []
    for g in range(groups):
        cells = np.flatnonzero(flat[g])
        local_scores, local = np.unique(cells // 2, return_inverse=True)
        layouts.append((cells, flat[g, cells], local.reshape(-1), cells % 2, table.scores[local_scores]))
    widest = max([distinct, *(layout[0].size for layout in layouts)])
    block = max(1, min(resamples, BLOCK_CELLS // (2 * widest)))
    parts: dict[str, list[np.ndarray]] = {"auc": [], "ece": [], "auc_overall": [], "ece_overall": []}
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        pooled = np.zeros((size, distinct * 2), dtype=np.int64)
        group_auc = np.full((size, groups), np.nan)
        group_ece = np.full((size, groups), np.nan)
        for g, (cells, counts, local, label, scores) in enumerate(layouts):
            n = int(counts.sum())
            if not n:
                continue
            drawn = rng.multinomial(n, counts / n, size=size)
            pooled[:, cells] += drawn
            compact = np.zeros((size, scores.size, 2), dtype=np.int64)
            compact[:, local, label] = drawn
            group_auc[:, g] = auc(compact)
            group_ece[:, g] = ece(compact, scores, bins)
        pooled_table = pooled.reshape(size, distinct, 2)
        parts["auc"].append(group_auc)
        parts["ece"].append(group_ece)
        parts["auc_overall"].append(auc(pooled_table))
        parts["ece_overall"].append(ece(pooled_table, table.scores, bins))
        done += size
    return {key: np.concatenate(values) for key, values in parts.items()}


def score_metrics(
    grouping: Grouping,
    y_score: np.ndarray,
    y_true: np.ndarray,
    *,
    bootstrap: int,
    confidence: float,
    min_group_size: int,
    calibration_bins: int,
    rng: np.random.Generator,
) -> list[MetricResult]:
    """ROC AUC and calibration error per group of an encoded grouping, and their gaps between
    groups, with stratified bootstrap intervals."""
    from guardrail.fairness.bootstrap import BootstrapSpec, gap_interval, interval

    assert grouping.codes is not None
    table = score_table(grouping.codes, grouping.n_groups, y_score, y_true)
    sizes = table.counts.sum(axis=(1, 2))
    small = sizes < min_group_size
    spec = BootstrapSpec(resamples=bootstrap, level=confidence)
    boot = bootstrap_score_metrics(table, bootstrap, rng, calibration_bins) if bootstrap else {}
    values = {"auc": auc(table.counts), "ece": ece(table.counts, table.scores, calibration_bins)}
    pooled = table.counts.sum(axis=0)
    overall = {"auc": float(auc(pooled)), "ece": float(ece(pooled, table.scores, calibration_bins))}
    reasons = {"auc": "needs both positive and negative labels", "ece": "no rows"}
    common = {
        "sensitive_features": list(grouping.features),
        "min_group_size": min_group_size,
        "calibration_bins": calibration_bins,
    }
    results: list[MetricResult] = []
    for name, higher in (("auc", True), ("ece", False)):
        by_group = tuple(
            GroupValue(
                group=label,
                value=None if math.isnan(values[name][i]) else float(values[name][i]),
                n=int(sizes[i]),
                small=bool(small[i]),
                reason=reasons[name] if math.isnan(values[name][i]) else None,
                ci=interval(boot[name][:, i], spec, table=False) if boot else None,
            )
            for i, label in enumerate(grouping.labels)
        )
        results.append(
            MetricResult(
                key=f"fairness.{name}",
                scope=grouping.scope,
                value=None if math.isnan(overall[name]) else overall[name],
                reason=f"undefined overall ({reasons[name]})" if math.isnan(overall[name]) else None,
                ci=interval(boot[f"{name}_overall"], spec) if boot else None,
                by_group=by_group,
                n=int(sizes.sum()),
                higher_is_better=higher,
                details=common,
            )
        )
        undefined = [grouping.labels[i] for i in np.flatnonzero(np.isnan(values[name]))]
        why: str | None
        gap = float(values[name].max() - values[name].min()) if not undefined and grouping.n_groups > 1 else math.nan
        if undefined:
            why = f"{name} undefined for group {', '.join(map(repr, undefined[:3]))} ({reasons[name]})"
        else:
            why = "fewer than two groups to compare" if grouping.n_groups < 2 else None
        gap_ci = (
            gap_interval({name: values[name]}, {name: boot[name]}, "difference", spec) if boot and why is None else None
        )
        results.append(
            MetricResult(
                key=f"fairness.{name}_difference",
                scope=grouping.scope,
                value=None if why else gap,
                reason=why,
                ci=gap_ci,
                by_group=by_group,
                n=int(sizes.sum()),
                higher_is_better=False,
                details={
                    **common,
                    "aggregation": "difference",
                    "min_group": None if why else grouping.labels[int(np.argmin(values[name]))],
                    "max_group": None if why else grouping.labels[int(np.argmax(values[name]))],
                },
            )
        )
    return results
