"""Shift between the reference (training) data and the audited data, feature by feature.

Each feature is coded on common bins (:func:`~guardrail.data_audit.association.code_pair`:
numeric features at the reference's quantiles — by value when the reference has few values, a
heavy tied value in a bin of its own (:func:`~guardrail.data_audit.association.bin_edges`) —,
others by the union of both tables' values, missing values in a bin of their own) and its two
histograms are compared:

* the Jensen–Shannon **distance** (square root of the JS divergence, base 2, in ``[0, 1]``;
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``), with a percentile bootstrap
  interval in which each histogram is resampled as its own multinomial;
* the chi-square test of homogeneity of the ``2 × K`` table (bins empty in both dropped;
  ``scipy.stats.chi2_contingency(table, correction=False)``), its p-values adjusted by Holm's
  step-down method over every shift test of the audit (overall and per group).

A feature has shifted when its adjusted p-value is below ``alpha`` *and* its distance reaches
``threshold``: with millions of rows every difference is significant, so significance alone
says nothing of size. Within each group of a sensitive column the same comparison is made
(``data.shift_js[s/column=f]``), from one joint count per feature and table. A group with
audited rows but no training rows cannot be compared: it is kept in ``by_group`` with no value
and the reason, and listed in the details' ``groups_without_reference`` (the metric's value is
the largest distance over the groups compared).

With no feature compared, ``data.max_shift_js`` and ``data.shifted_features`` have no value
(a count of 0 would pass any policy); a reference table without rows is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from guardrail.core.errors import DataError
from guardrail.core.scopes import scope_name, scope_part
from guardrail.core.types import GroupValue, Interval, MetricResult
from guardrail.data_audit.association import code_pair, combine, group_tables
from guardrail.data_audit.proxies import check_columns, max_interval, percentile_interval
from guardrail.fairness.bootstrap import BootstrapSpec, grouping_rng, resample_counts

TEST = "chi-square test of homogeneity"
CORRECTION = "holm"
NO_ROWS = "the reference or the audit data has no rows in this group"
NO_REFERENCE = "no training rows in this group"
NO_AUDIT = "no audited rows in this group"
NO_FEATURES = "no feature to compare"
NOTHING_COMPARED = "no column was compared"


@dataclass(frozen=True)
class Comparison:
    """One reference histogram against one audit histogram."""

    js: float | None
    statistic: float | None
    dof: int | None
    p_value: float | None
    bins: int


@dataclass(frozen=True)
class GroupShift:
    """One feature compared within each group of one sensitive column."""

    feature: str
    scope: str
    labels: tuple[str, ...]
    comparisons: list[Comparison]
    audit_rows: np.ndarray
    reference_rows: np.ndarray
    intervals: list[Interval | None]


def js_distance(reference: np.ndarray, audit: np.ndarray) -> np.ndarray:
    """Jensen–Shannon distance (base 2) between count histograms ``(..., K)``; NaN where either is
    empty. Equal to ``scipy.spatial.distance.jensenshannon(p, q, base=2)``."""
    p = np.asarray(reference, dtype=np.float64)
    q = np.asarray(audit, dtype=np.float64)
    n_p, n_q = p.sum(axis=-1, keepdims=True), q.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p, q = p / n_p, q / n_q
        m = (p + q) / 2
        left = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(m > 0, m, 1.0)), 0.0).sum(axis=-1)
        right = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) / np.where(m > 0, m, 1.0)), 0.0).sum(axis=-1)
    divergence = (left + right) / (2 * np.log(2.0))
    distance: np.ndarray = np.sqrt(np.maximum(divergence, 0.0))
    return np.where((n_p[..., 0] > 0) & (n_q[..., 0] > 0), distance, np.nan)


def chi_square(reference: np.ndarray, audit: np.ndarray) -> tuple[float, int, float]:
    """Statistic, degrees of freedom and p-value of the chi-square test of homogeneity of two
    count histograms (bins empty in both dropped; no continuity correction). One bin left:
    statistic 0, 0 degrees of freedom, p = 1 (as ``scipy.stats.chi2_contingency``)."""
    from scipy.special import chdtrc  # scipy.stats.chi2.sf, without importing scipy.stats

    table = np.stack([reference, audit]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    dof = table.shape[1] - 1
    if dof < 1:
        return 0.0, 0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, dof, float(chdtrc(dof, statistic))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the ``i``-th smallest of ``m`` p-values becomes the running
    maximum of ``(m − j + 1) · p_(j)`` over ``j ≤ i``, capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return [float(v) for v in out]


def compare(reference: np.ndarray, audit: np.ndarray) -> Comparison:
    """The JS distance and the homogeneity test of one pair of histograms (``None`` where either is empty)."""
    bins = int(np.count_nonzero(reference + audit))
    if reference.sum() == 0 or audit.sum() == 0:
        return Comparison(None, None, None, None, bins)
    statistic, dof, p = chi_square(reference, audit)
    return Comparison(float(js_distance(reference, audit)), statistic, dof, p, bins)


def _boot_js(reference: np.ndarray, audit: np.ndarray, spec: BootstrapSpec, name: str) -> np.ndarray:
    """``(B, G)`` bootstrap JS distances of ``(G, K)`` reference and audit histograms, each row of
    each resampled as its own multinomial."""
    groups = reference.shape[0]
    boot = resample_counts(np.concatenate([reference, audit]), spec.resamples, grouping_rng(spec.seed, name))
    return js_distance(boot[:, :groups], boot[:, groups:])


def shift_metrics(
    audit: pd.DataFrame,
    reference: pd.DataFrame,
    features: Sequence[str],
    sensitive: Sequence[str],
    *,
    bins: int = 10,
    level: float = 0.95,
    bootstrap: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    threshold: float = 0.1,
    where: str = "data",
) -> tuple[list[MetricResult], dict[str, Any]]:
    """``data.shift_js`` of every feature (overall and within each group of each sensitive
    column), ``data.max_shift_js`` and ``data.shifted_features``, with the artifact table."""
    sensitive = list(dict.fromkeys(sensitive))
    features = [f for f in dict.fromkeys(features) if f not in sensitive]
    needed = [*features, *sensitive]
    check_columns(reference, needed, what="the reference (training) data", where=where)
    check_columns(audit, needed, what="the audit data", where=where)
    if len(reference) == 0:
        raise DataError(
            "the reference (training) data has no rows: there is nothing to compare the audit data with",
            where=where,
            hint="point reference_data at the training table, or check that reference_column marks some rows as training rows",
        )
    spec = BootstrapSpec(bootstrap, level, seed)
    pairs = [code_pair(audit[s], reference[s], bins=None) for s in sensitive]
    groups_audit, groups_reference = [a for a, _ in pairs], [r for _, r in pairs]
    combined_audit, combined_reference = combine(groups_audit), combine(groups_reference)
    overall: list[tuple[str, Comparison, Interval | None]] = []
    grouped: list[GroupShift] = []
    scratch = np.empty(len(reference), dtype=np.float64) if features else None  # one sort buffer for every feature
    for feature in features:
        coded_audit, coded_reference = code_pair(audit[feature], reference[feature], bins=bins, scratch=scratch)
        hist_a, per_a = group_tables(coded_audit, groups_audit, combined_audit)
        hist_r, per_r = group_tables(coded_reference, groups_reference, combined_reference)
        scope = f"column={scope_part(feature)}"
        found = compare(hist_r, hist_a)
        ci = None
        if spec.resamples > 0 and found.js is not None:
            ci = percentile_interval(_boot_js(hist_r[None], hist_a[None], spec, f"data.shift/{scope}")[:, 0], spec, found.js)
        overall.append((feature, found, ci))
        for s, (groups, _), table_a, table_r in zip(sensitive, pairs, per_a, per_r, strict=True):
            s_scope = f"{scope_name((s,))}/{scope}"
            comparisons = [compare(table_r[g], table_a[g]) for g in range(groups.k)]
            cis: list[Interval | None] = [None] * groups.k
            if spec.resamples > 0:
                samples = _boot_js(table_r, table_a, spec, f"data.shift/{s_scope}")
                cis = [
                    percentile_interval(samples[:, g], spec, c.js, table=False) if c.js is not None else None
                    for g, c in enumerate(comparisons)
                ]
            grouped.append(GroupShift(feature, s_scope, groups.labels, comparisons, table_a.sum(axis=1), table_r.sum(axis=1), cis))
    tested = [c.p_value for _, c, _ in overall] + [c.p_value for g in grouped for c in g.comparisons]
    adjusted = iter(holm([p for p in tested if p is not None]))
    adjusted_all = [next(adjusted) if p is not None else None for p in tested]
    return _assemble(overall, grouped, adjusted_all, level, alpha, threshold, len(audit))


def _shifted(c: Comparison, p_adjusted: float | None, alpha: float, threshold: float) -> bool:
    return p_adjusted is not None and c.js is not None and p_adjusted < alpha and c.js >= threshold


def _assemble(
    overall: list[tuple[str, Comparison, Interval | None]],
    grouped: list[GroupShift],
    adjusted: list[float | None],
    level: float,
    alpha: float,
    threshold: float,
    rows: int,
) -> tuple[list[MetricResult], dict[str, Any]]:
    metrics: list[MetricResult] = []
    table: list[dict[str, Any]] = []
    shifted: list[str] = []
    for (feature, c, ci), p_adj in zip(overall, adjusted, strict=False):
        scope = f"column={scope_part(feature)}"
        is_shifted = _shifted(c, p_adj, alpha, threshold)
        if is_shifted:
            shifted.append(feature)
        details = {"test": TEST, "statistic": c.statistic, "dof": c.dof, "p_value": c.p_value, "p_adjusted": p_adj,
                   "shifted": is_shifted, "bins": c.bins}  # fmt: skip
        if c.js is None:
            metrics.append(
                MetricResult("data.shift_js", None, scope=scope, reason=NO_ROWS, n=rows, higher_is_better=False, details=details)
            )
        else:
            metrics.append(MetricResult("data.shift_js", c.js, scope=scope, ci=ci, n=rows, higher_is_better=False, details=details))
        table.append(_row(feature, scope, None, c, ci, p_adj, is_shifted, None if c.js is not None else NO_ROWS))
    position = len(overall)
    for shift in grouped:
        feature, s_scope, labels, comparisons, cis = shift.feature, shift.scope, shift.labels, shift.comparisons, shift.intervals
        p_adjusted = adjusted[position : position + len(comparisons)]
        position += len(comparisons)
        by_group = []
        rows_of = zip(shift.audit_rows.tolist(), shift.reference_rows.tolist(), strict=True)
        for label, c, ci, (n, n_reference), p_adj in zip(labels, comparisons, cis, rows_of, p_adjusted, strict=True):
            reason = None if c.js is not None else NO_REFERENCE if n_reference == 0 else NO_AUDIT if n == 0 else NO_ROWS
            by_group.append(GroupValue(label, c.js, int(n), reason=reason, ci=ci))
            table.append(_row(feature, s_scope, label, c, ci, p_adj, _shifted(c, p_adj, alpha, threshold), reason))
        defined = [g for g in by_group if g.value is not None]
        group_details: dict[str, Any] = {
            "p_values": {g: c.p_value for g, c in zip(labels, comparisons, strict=True)},
            "p_adjusted": dict(zip(labels, p_adjusted, strict=True)),
            "groups_without_reference": [g.group for g in by_group if g.reason == NO_REFERENCE],
        }
        if defined:
            value = max(float(g.value) for g in defined if g.value is not None)
            ci = max_interval([g.ci for g in defined], value, level)
            metrics.append(MetricResult("data.shift_js", value, scope=s_scope, ci=ci, by_group=tuple(by_group), n=rows,
                                        higher_is_better=False, details=group_details))  # fmt: skip
        else:
            metrics.append(MetricResult("data.shift_js", None, scope=s_scope, reason=NO_ROWS, by_group=tuple(by_group),
                                        n=rows, higher_is_better=False, details=group_details))  # fmt: skip
    measured = [(f, c, ci) for f, c, ci in overall if c.js is not None]
    if measured:
        worst = max(range(len(measured)), key=lambda i: measured[i][1].js or 0.0)
        largest = float(measured[worst][1].js or 0.0)
        max_ci = max_interval([found for *_, found in measured], largest, level)
        metrics.append(MetricResult("data.max_shift_js", largest, ci=max_ci, n=rows, higher_is_better=False,
                                    details={"feature": measured[worst][0]}))  # fmt: skip
    else:
        reason = NOTHING_COMPARED if overall else NO_FEATURES
        metrics.append(MetricResult("data.max_shift_js", None, reason=reason, n=rows, higher_is_better=False))
    shifted_details = {"features": shifted, "alpha": alpha, "threshold": threshold, "correction": CORRECTION}
    if measured:
        metrics.append(MetricResult("data.shifted_features", float(len(shifted)), n=rows, higher_is_better=False, details=shifted_details))
    else:  # no comparison: a count of 0 would pass every policy on it
        metrics.append(MetricResult("data.shifted_features", None, reason=NOTHING_COMPARED, n=rows, higher_is_better=False,
                                    details=shifted_details))  # fmt: skip
    artifact = {"alpha": alpha, "threshold": threshold, "test": TEST, "correction": CORRECTION, "table": table}
    return metrics, artifact


def _row(
    feature: str, scope: str, group: str | None, c: Comparison, ci: Interval | None, p_adj: float | None, shifted: bool,
    reason: str | None,
) -> dict[str, Any]:
    """One row of the artifact table; ``reason`` says why ``js`` is ``None`` (e.g. no training rows in the group)."""
    return {"feature": feature, "scope": scope, "group": group, "js": c.js, "ci_low": ci.low if ci else None,
            "ci_high": ci.high if ci else None, "statistic": c.statistic, "p_value": c.p_value, "p_adjusted": p_adj,
            "shifted": shifted, "reason": reason}  # fmt: skip
