"""Proxies of sensitive columns in the data: features whose values reveal a person's group.

For each sensitive column ``s`` and each examined feature ``f`` (numeric features in quantile
bins, others by value, missing values in a bin of their own), the normalised mutual information
of the ``(groups × bins)`` count table (:mod:`guardrail.data_audit.association`, scikit-learn's
definition) is ``data.proxy_nmi[s/column=f]``. Its interval is the percentile bootstrap of that
table resampled as one multinomial (the row bootstrap, without touching the rows again).
``data.max_proxy_nmi[s]`` is the strongest association of ``s`` with any feature, and names
every feature at or above the threshold.

A sensitive column with a single group has nothing to be a proxy of: its ``proxy_nmi`` and
``max_proxy_nmi`` are undefined ("fewer than two groups to compare"), never a reassuring 0.

Every sensitive column is coded once; when their combined groups are few (the usual case),
each feature is counted against all of them in one pass over its rows, and each sensitive
column's table is a margin of that joint table (:func:`~guardrail.data_audit.association.group_tables`).

The interval of a largest estimate (:func:`max_interval`, also the shift's and the missing
rates') is Bonferroni-corrected on its lower side: the largest of ``F`` lower bounds each at
the nominal tail would exceed the true largest value far more often than the tail says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from guardrail.core.errors import DataError
from guardrail.core.scopes import scope_name, scope_part
from guardrail.core.types import Interval, MetricResult
from guardrail.data_audit.association import code_column, combine, group_tables, mutual_information, nmi
from guardrail.fairness.bootstrap import BootstrapSpec, grouping_rng, interval, resample_counts

MAX_OF_BOUNDS = "largest bounds over features of percentile bootstrap intervals"
NO_FEATURES = "no feature to examine besides the sensitive columns"
NO_ROWS = "the audit data has no rows"
ONE_GROUP = "fewer than two groups to compare"


def check_columns(frame: pd.DataFrame, columns: Sequence[str], *, what: str, where: str) -> None:
    """Raise :class:`DataError` naming every column of ``columns`` that ``frame`` lacks."""
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise DataError(
            f"{what} lacks column(s) {', '.join(map(repr, absent))}",
            where=where,
            hint=f"available columns: {', '.join(map(str, frame.columns[:30]))}",
        )


def percentile_interval(samples: np.ndarray, spec: BootstrapSpec, estimate: float, *, table: bool = True) -> Interval | None:
    """The percentile bootstrap interval of ``samples``, widened to contain ``estimate``.

    The plug-in NMI and JS distance are biased upwards (a finite sample always shows some
    association or difference), so near zero every resample can exceed the estimate and the
    plain percentile interval would exclude it; like every interval in guardrail, this one
    contains its own estimate (its quantile table is widened alike).
    """
    found = interval(samples, spec, table=table)
    if found is None:
        return None
    quantiles = tuple(
        replace(q, value=min(q.value, estimate) if q.level < 0.5 else max(q.value, estimate) if q.level > 0.5 else q.value)
        for q in found.quantiles
    )
    return replace(found, low=min(found.low, estimate), high=max(found.high, estimate), quantiles=quantiles)


def max_interval(
    intervals: Sequence[Interval | None], estimate: float, level: float, method: str = MAX_OF_BOUNDS
) -> Interval | None:
    """Bounds for the largest of ``F`` estimates from their intervals (``None`` when any is missing).

    The upper bound is the largest upper bound: the true largest value is some ``θ_f ≤ high_f``,
    so it exceeds ``max high`` with probability at most the tail. The lower bound is the
    largest lower bound *at tail / F* (Bonferroni): ``max low_f`` exceeds the true largest
    value only when some ``low_f`` exceeds its own ``θ_f``, which at the nominal tail happens
    with probability up to ``F ×`` the tail (about 0.3 for 20 equal features at 0.025). Both
    are read at every level of the intervals' quantile tables, so that a policy's
    multiple-comparison correction can read other levels.

    Intervals without quantile tables cannot be read at ``tail / F``: their ``[max low, max
    high]`` is returned, and its method says the lower bound is not corrected.
    """
    if not intervals or any(i is None for i in intervals):
        return None
    known = [i for i in intervals if i is not None]
    count = len(known)
    if not all(i.quantiles for i in known):
        named = method if count == 1 else f"{method}; lower bound not corrected for the {count} compared"
        return Interval(max(i.low for i in known), max(i.high for i in known), level, named)
    from guardrail.fairness.intervals import bounded_interval

    def bounds(tail: float) -> tuple[float, float]:
        return max(i.bound(tail / count, "low") for i in known), max(i.bound(tail, "high") for i in known)

    named = method if count == 1 else f"{method}; lower bound Bonferroni-corrected for the {count} compared"
    return bounded_interval(bounds, estimate, level, named, resamples=max(i.resamples for i in known))


def proxy_metrics(
    data: pd.DataFrame,
    sensitive: Sequence[str],
    features: Sequence[str],
    *,
    bins: int = 10,
    threshold: float = 0.1,
    level: float = 0.95,
    bootstrap: int = 1000,
    seed: int = 0,
    where: str = "data",
) -> tuple[list[MetricResult], dict[str, Any]]:
    """``data.proxy_nmi`` of every (sensitive column, feature) pair and ``data.max_proxy_nmi`` of
    each sensitive column, with the artifact table (sorted by NMI, strongest first)."""
    sensitive = list(dict.fromkeys(sensitive))
    features = [f for f in dict.fromkeys(features) if f not in sensitive]
    check_columns(data, [*sensitive, *features], what="the audit data", where=where)
    spec = BootstrapSpec(bootstrap, level, seed)
    groups = [code_column(data[s], bins=None) for s in sensitive]
    combined = combine(groups)
    scratch = np.empty(len(data), dtype=np.float64) if features and sensitive else None  # one sort buffer for every feature
    pair_metrics: dict[str, list[MetricResult]] = {s: [] for s in sensitive}
    rows: list[dict[str, Any]] = []
    for feature in features if sensitive else []:
        coded = code_column(data[feature], bins=bins, scratch=scratch)
        _, tables = group_tables(coded, groups, combined)
        for s, table in zip(sensitive, tables, strict=True):
            scope = f"{scope_name((s,))}/column={scope_part(feature)}"
            metric = _pair_metric(table, scope, spec)
            pair_metrics[s].append(metric)
            ci = metric.ci
            rows.append(
                {"feature": feature, "sensitive": s, "nmi": metric.value, "mi": metric.details["mi"],
                 "ci_low": ci.low if ci else None, "ci_high": ci.high if ci else None}
            )  # fmt: skip
    metrics: list[MetricResult] = []
    for s in sensitive:
        metrics += pair_metrics[s]
        metrics.append(_max_metric(s, features, pair_metrics[s], threshold, level, len(data)))
    rows.sort(key=lambda row: -(row["nmi"] or 0.0))
    return metrics, {"threshold": threshold, "bins": bins, "table": rows}


def _pair_metric(table: np.ndarray, scope: str, spec: BootstrapSpec) -> MetricResult:
    n, bins = int(table.sum()), int(np.count_nonzero(table.sum(axis=0)))
    if n == 0 or np.count_nonzero(table.sum(axis=1)) < 2:
        return MetricResult(
            "data.proxy_nmi", None, scope=scope, reason=NO_ROWS if n == 0 else ONE_GROUP, n=n, higher_is_better=False,
            details={"mi": None, "bins": bins},
        )  # fmt: skip
    value = float(nmi(table, constant=0.0))
    ci = None
    if spec.resamples > 0:
        boot = resample_counts(table.reshape(1, -1), spec.resamples, grouping_rng(spec.seed, f"data.proxy/{scope}"))
        ci = percentile_interval(nmi(boot.reshape(spec.resamples, *table.shape), constant=0.0), spec, value)
    return MetricResult(
        "data.proxy_nmi", value, scope=scope, ci=ci, n=n, higher_is_better=False,
        details={"mi": float(mutual_information(table)), "bins": bins},
    )  # fmt: skip


def _max_metric(
    sensitive: str, features: Sequence[str], found: Sequence[MetricResult], threshold: float, level: float, rows: int
) -> MetricResult:
    scope = scope_name((sensitive,))
    if not found:
        return MetricResult("data.max_proxy_nmi", None, scope=scope, reason=NO_FEATURES, higher_is_better=False)
    undefined = [m.reason for m in found if m.value is None]
    if undefined:
        return MetricResult("data.max_proxy_nmi", None, scope=scope, reason=undefined[0] or NO_ROWS, n=rows, higher_is_better=False)
    values = [float(m.value or 0.0) for m in found]
    worst = int(np.argmax(values))
    proxies = [features[i] for i in sorted(range(len(values)), key=lambda i: -values[i]) if values[i] >= threshold]
    return MetricResult(
        "data.max_proxy_nmi", values[worst], scope=scope, ci=max_interval([m.ci for m in found], values[worst], level), n=rows,
        higher_is_better=False, details={"feature": features[worst], "proxies": proxies, "threshold": threshold},
    )  # fmt: skip
