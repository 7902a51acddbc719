"""Rates and disparities derived from per-group confusion counts.

Definitions follow fairlearn (``MetricFrame`` and its derived metrics): a disparity
"difference" is max − min over groups, a "ratio" is min / max; equalized odds takes the
worse of the TPR and FPR disparities. Unlike fairlearn, a rate that is undefined for some
group (for example TPR in a group without positives) makes every disparity built on it
undefined too, with the reason, instead of silently leaving that group out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

RateName = Literal["count", "selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy"]
DisparityName = Literal[
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
]

RATES: tuple[RateName, ...] = get_args(RateName)
DISPARITIES: tuple[DisparityName, ...] = get_args(DisparityName)

RATE_LABELS: dict[RateName, str] = {
    "count": "count",
    "selection_rate": "selection rate",
    "tpr": "true positive rate",
    "fpr": "false positive rate",
    "fnr": "false negative rate",
    "precision": "precision",
    "accuracy": "accuracy",
}

# numerator, denominator, and why the rate is undefined when the denominator is 0
_RATE_PARTS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray], str]] = {
    "selection_rate": (lambda c: c[..., 0, 1] + c[..., 1, 1], lambda c: c.sum(axis=(-1, -2)), "no rows"),
    "tpr": (lambda c: c[..., 1, 1], lambda c: c[..., 1, 0] + c[..., 1, 1], "no positive labels"),
    "fpr": (lambda c: c[..., 0, 1], lambda c: c[..., 0, 0] + c[..., 0, 1], "no negative labels"),
    "fnr": (lambda c: c[..., 1, 0], lambda c: c[..., 1, 0] + c[..., 1, 1], "no positive labels"),
    "precision": (lambda c: c[..., 1, 1], lambda c: c[..., 0, 1] + c[..., 1, 1], "no positive predictions"),
    "accuracy": (lambda c: c[..., 0, 0] + c[..., 1, 1], lambda c: c.sum(axis=(-1, -2)), "no rows"),
}

HIGHER_IS_BETTER: dict[str, bool | None] = {
    "count": None,
    "selection_rate": None,
    "tpr": True,
    "fpr": False,
    "fnr": False,
    "precision": True,
    "accuracy": True,
    "demographic_parity_difference": False,
    "demographic_parity_ratio": True,
    "equalized_odds_difference": False,
    "equalized_odds_ratio": True,
    "equal_opportunity_difference": False,
    "equal_opportunity_ratio": True,
}


@dataclass(frozen=True)
class Rate:
    """A rate per group (NaN where undefined) and overall, with why values are undefined."""

    name: RateName
    by_group: np.ndarray
    overall: float
    undefined_reason: str | None


@dataclass(frozen=True)
class Disparity:
    """A between-groups disparity: value (NaN if undefined), the rates and groups behind it."""

    name: DisparityName
    value: float
    based_on: tuple[RateName, ...]
    min_group: int | None
    max_group: int | None
    reason: str | None
    kind: Literal["difference", "ratio"] = "difference"
    worst_rate: RateName | None = None


def rate_array(counts: np.ndarray, name: RateName) -> np.ndarray:
    """One rate from count tables of shape ``(..., 2, 2)``, NaN where undefined.

    Leading axes are kept: ``(G, 2, 2)`` gives a rate per group, ``(B, G, 2, 2)`` one per
    resample and group.
    """
    if name == "count":
        totals: np.ndarray = counts.sum(axis=(-1, -2)).astype(np.float64)
        return totals
    numerator, denominator, _why = _RATE_PARTS[name]
    num, den = numerator(counts), denominator(counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def numerator_array(counts: np.ndarray, name: RateName) -> np.ndarray:
    """How many of each group's ``name`` denominator rows count as successes (e.g. true positives for TPR)."""
    result: np.ndarray = counts.sum(axis=(-1, -2)) if name == "count" else _RATE_PARTS[name][0](counts)
    return result


def denominator_array(counts: np.ndarray, name: RateName) -> np.ndarray:
    """How many rows each group's ``name`` rate is computed over (e.g. positives for TPR)."""
    result: np.ndarray = counts.sum(axis=(-1, -2)) if name == "count" else _RATE_PARTS[name][1](counts)
    return result


def rate(counts: np.ndarray, name: RateName) -> Rate:
    """Compute one rate for every group (``counts`` of shape ``(G, 2, 2)``) and overall."""
    per_group = rate_array(counts, name)
    overall = float(rate_array(counts.sum(axis=0), name))
    if name == "count":
        return Rate(name, per_group, overall, None)
    undefined = bool(np.isnan(per_group).any() or np.isnan(overall))
    return Rate(name, per_group, overall, _RATE_PARTS[name][2] if undefined else None)


def disparity_array(rates: dict[RateName, np.ndarray], name: DisparityName) -> np.ndarray:
    """A disparity from per-group rate arrays of shape ``(..., G)``; NaN where undefined.

    Same semantics as :func:`disparity`: a group with an undefined rate makes the value
    undefined; a ratio whose rate is 0 in every group is left out of the worst case.
    """
    kind = "difference" if name.endswith("difference") else "ratio"
    components = []
    undefined = np.zeros(next(iter(rates.values())).shape[:-1], dtype=bool)
    for rate_name in _BASED_ON[name.rsplit("_", 1)[0]]:
        values = rates[rate_name]
        undefined |= np.isnan(values).any(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            hi, lo = values.max(axis=-1), values.min(axis=-1)  # NaN if any group is undefined
            components.append(hi - lo if kind == "difference" else np.where(hi > 0, lo / np.where(hi > 0, hi, 1), np.nan))
    stacked = np.stack(components)
    with np.errstate(invalid="ignore"):
        worst = np.max(stacked, axis=0) if kind == "difference" else _nanmin_quiet(stacked)
    return np.where(undefined, np.nan, worst)


def _nanmin_quiet(stacked: np.ndarray) -> np.ndarray:
    """``nanmin`` over the first axis without the all-NaN warning (all-NaN gives NaN)."""
    filled = np.where(np.isnan(stacked), np.inf, stacked)
    best = filled.min(axis=0)
    return np.where(np.isinf(best), np.nan, best)


def _between(values: np.ndarray, kind: Literal["difference", "ratio"]) -> tuple[float, int, int]:
    lo, hi = int(np.argmin(values)), int(np.argmax(values))
    if kind == "difference":
        return float(values[hi] - values[lo]), lo, hi
    return (float(values[lo] / values[hi]) if values[hi] > 0 else float("nan")), lo, hi


_BASED_ON: dict[str, tuple[RateName, ...]] = {
    "demographic_parity": ("selection_rate",),
    "equalized_odds": ("tpr", "fpr"),
    "equal_opportunity": ("tpr",),
}


def based_on(name: DisparityName) -> tuple[RateName, ...]:
    """The rates a disparity compares (equalized odds: TPR and FPR, the worse of the two)."""
    return _BASED_ON[name.rsplit("_", 1)[0]]


def disparity(rates: dict[RateName, Rate], name: DisparityName, labels: tuple[str, ...]) -> Disparity:
    """Compute a disparity from the rates it needs (``selection_rate``, ``tpr``, ``fpr``)."""
    kind: Literal["difference", "ratio"] = "difference" if name.endswith("difference") else "ratio"
    based_on = _BASED_ON[name.rsplit("_", 1)[0]]
    if len(labels) < 2:
        return Disparity(name, float("nan"), based_on, None, None, "fewer than two groups to compare", kind)
    candidates: list[tuple[float, int, int, RateName]] = []
    all_zero: list[RateName] = []
    for rate_name in based_on:
        values = rates[rate_name].by_group
        undefined = np.flatnonzero(np.isnan(values))
        if undefined.size:
            groups = ", ".join(repr(labels[i]) for i in undefined[:3])
            reason = f"{RATE_LABELS[rate_name]} undefined for group {groups} ({rates[rate_name].undefined_reason})"
            return Disparity(name, float("nan"), based_on, None, None, reason, kind)
        value, lo, hi = _between(values, kind)
        if np.isnan(value):
            all_zero.append(rate_name)  # 0 in every group: equal, but the ratio 0/0 is undefined
        else:
            candidates.append((value, lo, hi, rate_name))
    if not candidates:
        zeros = " and ".join(RATE_LABELS[r] for r in all_zero)
        return Disparity(name, float("nan"), based_on, None, None, f"{zeros} is 0 in every group; the ratio is undefined", kind)
    # worst case, as fairlearn's agg="worst_case": largest difference, smallest ratio
    pick = max if kind == "difference" else min
    value, lo, hi, worst = pick(candidates, key=lambda c: c[0])
    return Disparity(name, value, based_on, lo, hi, None, kind, worst)


def one_vs_rest(table: np.ndarray, index: int) -> np.ndarray:
    """The 2×2 "class ``index`` versus the rest" tables of ``(..., K, K)`` confusion tables
    (rows: true class, columns: predicted class)."""
    tp = table[..., index, index]
    fn = table[..., index, :].sum(axis=-1) - tp
    fp = table[..., :, index].sum(axis=-1) - tp
    tn = table.sum(axis=(-1, -2)) - tp - fn - fp
    return np.stack([np.stack([tn, fp], axis=-1), np.stack([fn, tp], axis=-1)], axis=-2)
