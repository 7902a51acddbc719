"""Score-based metrics per group — ROC AUC and expected calibration error — with bootstrap
intervals computed on tables of (score, label) counts.

A stratified row bootstrap of a group is a multinomial over the group's distinct
(score, label) cells, so the cost grows with the number of distinct scores, never beyond the
number of rows. AUC counts ties as one half (as scikit-learn's ``roc_auc_score``); ECE uses
equal-width bins on [0, 1] assigned as scikit-learn's ``calibration_curve`` does.

Up to :data:`SCORE_RESOLUTION` distinct scores the table is exact (one cell per distinct
score). Beyond, it is a histogram, so that its size (and a streaming engine's state) stays
bounded whatever the number of rows: each calibration bin is cut into ``K =
ceil(SCORE_RESOLUTION / bins)`` equal sub-bins and a score becomes its sub-bin's midpoint. The
midpoint lies strictly inside the score's calibration bin, so ECE's bin assignment is
unchanged and ECE moves by at most half a sub-bin's width; the sub-bins keep the scores'
order, so AUC changes only through pairs tied in one sub-bin (counted as one half), which
bounds its error. Both bounds are reported in each metric's ``details``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.types import GroupValue, MetricResult

if TYPE_CHECKING:
    from guardrail.fairness.groups import Grouping

BLOCK_CELLS = 4_000_000
"""Resamples are drawn in blocks of at most this many (resample × score) cells."""
SCORE_RESOLUTION = 20_000
"""Most distinct scores a score table keeps exactly; beyond, it is a histogram (module docstring)."""


@dataclass(frozen=True)
class ScoreHistogram:
    """How a score table was made coarse: ``bins_total`` equal sub-bins, ``sub_bins`` inside each
    of the ``calibration_bins`` calibration bins, each at most ``width`` wide.

    ``distinct_scores`` is a lower bound, ``SCORE_RESOLUTION + 1``: counting the distinct scores
    beyond the resolution would cost memory in proportion to their number, which a streaming
    engine does not have, and every engine must report the same table.
    """

    bins_total: int
    width: float
    distinct_scores: int
    calibration_bins: int
    sub_bins: int


@dataclass(frozen=True)
class ScoreTable:
    """Counts per (group, score, label) for one grouping; ``scores`` ascending.

    ``scores`` are the distinct scores when ``histogram`` is ``None``, else the midpoints of the
    occupied sub-bins.
    """

    scores: np.ndarray
    counts: np.ndarray
    """``(G, U, 2)``: ``[g, u, 0]`` negatives and ``[g, u, 1]`` positives with score ``scores[u]``."""
    histogram: ScoreHistogram | None = None


def sub_bins(calibration_bins: int) -> int:
    """Sub-bins per calibration bin of a histogram: ``ceil(SCORE_RESOLUTION / bins)``."""
    return -(-SCORE_RESOLUTION // calibration_bins)


def histogram_spec(calibration_bins: int) -> ScoreHistogram:
    """The histogram made for ``calibration_bins``: its size and the widest sub-bin."""
    k = sub_bins(calibration_bins)
    edges = np.linspace(0.0, 1.0, calibration_bins + 1)
    width = float(np.max(np.diff(edges)) / k)
    return ScoreHistogram(calibration_bins * k, width, SCORE_RESOLUTION + 1, calibration_bins, k)


def histogram_midpoints(calibration_bins: int) -> np.ndarray:
    """Midpoint of every sub-bin, ascending: ``(calibration_bins * K,)``.

    Each lies strictly inside its calibration bin (checked with :func:`bin_index`), so that the
    histogram assigns every row to the calibration bin its exact score has.
    """
    k = sub_bins(calibration_bins)
    edges = np.linspace(0.0, 1.0, calibration_bins + 1)
    low, width = edges[:-1], np.diff(edges) / k
    mids = (low[:, None] + (np.arange(k)[None, :] + 0.5) * width[:, None]).reshape(-1)
    inside = bin_index(mids, calibration_bins) == np.repeat(np.arange(calibration_bins), k)
    if not inside.all():  # pragma: no cover - would need ~1e12 sub-bins per unit
        raise ValueError(f"sub-bin midpoints leave their calibration bin at {calibration_bins} bins")
    return mids


def histogram_cells(scores: np.ndarray, calibration_bins: int) -> np.ndarray:
    """Sub-bin of each score in ``[0, calibration_bins * K)``: its calibration bin (as
    :func:`bin_index`), then its equal-width sub-bin inside. Non-decreasing in the score."""
    k = sub_bins(calibration_bins)
    values = np.asarray(scores, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, calibration_bins + 1)
    c = bin_index(values, calibration_bins)
    low, high = edges[c], edges[c + 1]
    inner = np.floor((values - low) / (high - low) * k)
    cells: np.ndarray = c * k + np.clip(np.nan_to_num(inner, nan=k - 1), 0, k - 1).astype(np.int64)
    return cells


def score_table(
    codes: np.ndarray, n_groups: int, y_score: np.ndarray, y_true: np.ndarray, *, calibration_bins: int = 10
) -> ScoreTable:
    """The (group, score, label) counts of rows with group ``codes``: exact up to
    :data:`SCORE_RESOLUTION` distinct scores, a histogram beyond (module docstring)."""
    scores, position = np.unique(np.asarray(y_score, dtype=np.float64), return_inverse=True)
    position = position.reshape(-1)
    histogram = None
    if scores.size > SCORE_RESOLUTION:
        cell_of_score = histogram_cells(scores, calibration_bins)
        occupied, local = np.unique(cell_of_score, return_inverse=True)
        position = local.reshape(-1)[position]
        scores = histogram_midpoints(calibration_bins)[occupied]
        histogram = histogram_spec(calibration_bins)
    cell = (codes.astype(np.int64) * scores.size + position) * 2 + np.asarray(y_true, dtype=np.int64)
    counts = np.bincount(cell, minlength=n_groups * scores.size * 2).reshape(n_groups, scores.size, 2)
    return ScoreTable(scores, counts, histogram)


def to_histogram(table: ScoreTable, calibration_bins: int) -> ScoreTable:
    """The histogram of an exact table: what :func:`score_table` gives from the rows once the
    scores are too many (lossless: the table holds every row's score)."""
    if table.histogram is not None:
        if table.histogram.calibration_bins != calibration_bins:
            raise ValueError(f"a histogram for {table.histogram.calibration_bins} calibration bins, not {calibration_bins}")
        return table
    cell_of_score = histogram_cells(table.scores, calibration_bins)
    occupied, starts = np.unique(cell_of_score, return_index=True)
    counts = (
        np.add.reduceat(table.counts, starts, axis=1)
        if starts.size
        else np.zeros((table.counts.shape[0], 0, 2), dtype=np.int64)
    )
    return ScoreTable(histogram_midpoints(calibration_bins)[occupied], counts, histogram_spec(calibration_bins))


def auc_tie_bound(table: np.ndarray) -> np.ndarray:
    """Largest AUC error of a histogram ``(..., U, 2)``: half the share of (positive, negative)
    pairs that share a sub-bin (their exact order is unknown; the histogram counts each as ½)."""
    negatives, positives = table[..., 0].astype(np.float64), table[..., 1].astype(np.float64)
    tied = (positives * negatives).sum(axis=-1)
    pairs = positives.sum(axis=-1) * negatives.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, 0.5 * tied / np.where(pairs > 0, pairs, 1), np.nan)


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
    # scores ascend, so each bin's scores are one run: summed in order, one run at a time (a
    # matrix product would sum in an order that depends on memory alignment, and two engines
    # holding the same table would differ in the last digit)
    index = bin_index(scores, bins)
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]]) if scores.size else np.zeros(0, dtype=np.int64)
    per_bin = np.add.reduceat(gap, starts, axis=-1) if scores.size else np.zeros((*gap.shape[:-1], 0))
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
    assert grouping.codes is not None
    table = score_table(grouping.codes, grouping.n_groups, y_score, y_true, calibration_bins=calibration_bins)
    return table_score_metrics(
        grouping, table, bootstrap=bootstrap, confidence=confidence, min_group_size=min_group_size,
        calibration_bins=calibration_bins, rng=rng,
    )


def table_score_metrics(
    grouping: Grouping,
    table: ScoreTable,
    *,
    bootstrap: int,
    confidence: float,
    min_group_size: int,
    calibration_bins: int,
    rng: np.random.Generator,
) -> list[MetricResult]:
    """What :func:`score_metrics` gives, from a prebuilt :func:`score_table` of the grouping
    (a streaming engine accumulates the table without holding the rows)."""
    from guardrail.fairness.bootstrap import BootstrapSpec, gap_interval, interval

    if table.counts.shape[0] != grouping.n_groups:
        raise ValueError(f"a score table of {table.counts.shape[0]} groups for a grouping of {grouping.n_groups}")
    if table.histogram is not None and table.histogram.calibration_bins != calibration_bins:
        raise ValueError(f"a histogram made for {table.histogram.calibration_bins} calibration bins, not {calibration_bins}")
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
        resolution = _resolution(table, name, grouping.labels)
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
                details={**common, "score_resolution": resolution},
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
                    "score_resolution": _gap_resolution(resolution, values[name]) if why is None else resolution,
                },
            )
        )
    return results


def _resolution(table: ScoreTable, name: str, labels: tuple[str, ...]) -> dict[str, Any]:
    """How exact a metric computed from ``table`` is: ``{"method": "exact", ...}``, or the
    histogram's size and each value's largest error (``None`` where the value is undefined)."""
    hist = table.histogram
    if hist is None:
        return {"method": "exact", "distinct_scores": int(table.scores.size)}
    if name == "auc":
        group = auc_tie_bound(table.counts)
        overall = float(auc_tie_bound(table.counts.sum(axis=0)))
    else:
        n = table.counts.sum(axis=(1, 2))
        group = np.where(n > 0, hist.width / 2, np.nan)
        overall = hist.width / 2 if n.sum() > 0 else math.nan
    return {
        "method": "histogram",
        "bins": hist.bins_total,
        "distinct_scores_above": SCORE_RESOLUTION,
        "error_bound": None if math.isnan(overall) else overall,
        "group_error_bounds": {label: None if math.isnan(b) else float(b) for label, b in zip(labels, group.tolist(), strict=True)},
    }


def _gap_resolution(resolution: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    """The gap's largest error from its groups' bounds ``b``: the true gap lies between
    ``max(v − b) − min(v + b)`` and ``max(v + b) − min(v − b)``. That is at least the sum of the
    bounds of the two groups at the extremes, and more when another group is near an extreme."""
    if resolution["method"] != "histogram":
        return resolution
    bounds = np.array([resolution["group_error_bounds"][k] for k in resolution["group_error_bounds"]], dtype=np.float64)
    gap = float(values.max() - values.min())
    upper = float((values + bounds).max() - (values - bounds).min())
    lower = float((values - bounds).max() - (values + bounds).min())
    return {**resolution, "error_bound": max(upper - gap, gap - lower)}
