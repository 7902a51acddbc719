"""The parts of the explainability audit's metrics that tabular and text models share.

:mod:`~guardrail.explain.results` (tabular) and :mod:`~guardrail.explain.text_results`
(text) build their metrics from these: the settings both read from the auditor's params,
the seeds of the stability reruns, a bootstrap interval of a mean, faithfulness by group
and its gap, the ``explain.proxy.*`` findings and ``explain.coverage``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from guardrail.core.types import SMALL_GROUP, GroupValue, Interval, MetricResult


class Settings(Protocol):
    """What the result builders read from the auditor's params (or anything with these attributes)."""

    @property
    def bootstrap(self) -> int: ...
    @property
    def confidence(self) -> float: ...
    @property
    def min_group_size(self) -> int: ...
    @property
    def top_k(self) -> int: ...
    @property
    def stability_seeds(self) -> int: ...
    @property
    def stability_instances(self) -> int: ...
    @property
    def quality_instances(self) -> int: ...
    @property
    def ig_steps(self) -> int: ...
    @property
    def ig_max_steps(self) -> int: ...
    @property
    def ig_tolerance(self) -> float: ...
    @property
    def gradient_shap_samples(self) -> int: ...
    @property
    def proxy_threshold(self) -> float: ...
    @property
    def proxy_bins(self) -> int: ...
    @property
    def local_per_stratum(self) -> int: ...
    @property
    def lime_samples(self) -> int: ...
    @property
    def max_seconds(self) -> float: ...


BUDGET_SPENT = "the time budget (max_seconds) was spent before this check"
"""The reason of a quality metric the time budget left undone."""


def stability_seeds(seed: int, p: Settings) -> list[int]:
    """The seeds of the stability reruns: ``seed + 1000·(i + 1)`` for each of ``p.stability_seeds``."""
    return [seed + 1000 * (i + 1) for i in range(p.stability_seeds)]


def mean_ci(values: np.ndarray, p: Settings, seed: int, clusters: np.ndarray | None = None) -> Interval | None:
    """A percentile bootstrap interval of the mean of ``values`` (one per instance), resampling
    instances or, given ``clusters``, whole clusters; ``None`` when ``p.bootstrap`` is 0."""
    from guardrail.explain.importance import bootstrap_means
    from guardrail.fairness.bootstrap import BootstrapSpec, interval

    if not p.bootstrap:
        return None
    spec = BootstrapSpec(resamples=p.bootstrap, level=p.confidence, seed=seed)
    boot = bootstrap_means(values[:, None], p.bootstrap, np.random.default_rng(seed), clusters)[:, 0]
    return interval(boot, spec, table=False)


def faithfulness_by_group(
    method: str, score: np.ndarray, groups: Mapping[str, np.ndarray], p: Settings, *, unit: str
) -> tuple[tuple[GroupValue, ...], list[MetricResult]]:
    """Per-group means of the per-instance ``score`` (faithfulness), labelled ``column=group``,
    and ``explain.<method>.faithfulness_gap[column]``: the largest difference among groups of
    at least ``min_group_size`` explained ``unit``, inconclusive (``small_group:``) below two."""
    labelled: list[GroupValue] = []
    gaps = []
    for column, labels in groups.items():
        per_group = []
        for group in sorted(set(labels.tolist())):
            rows = labels == group
            size = int(rows.sum())
            per_group.append(GroupValue(group, float(score[rows].mean()), size, small=size < p.min_group_size))
        labelled += [GroupValue(f"{column}={g.group}", g.value, g.n, small=g.small) for g in per_group]
        judged = [g.value for g in per_group if not g.small and g.value is not None]
        key = f"explain.{method}.faithfulness_gap"
        if len(judged) < 2:
            reason = (
                f"{SMALL_GROUP}: fewer than two groups of {column!r} have {p.min_group_size} explained {unit} "
                "(min_group_size); inconclusive"
            )
            gaps.append(MetricResult(key, None, scope=column, reason=reason, by_group=tuple(per_group), n=len(score),
                                     higher_is_better=False))
        else:
            gaps.append(MetricResult(key, float(max(judged) - min(judged)), scope=column, by_group=tuple(per_group),
                                     n=len(score), higher_is_better=False))
    return tuple(labelled), gaps


def proxy_findings(
    rankings: Mapping[str, Sequence[tuple[str, float]]],
    direct: Sequence[str],
    flagged: Sequence[str],
    proxy_of: Mapping[str, list[str]],
    p: Settings,
    *,
    sensitive_details: Any,
    extra_details: Mapping[str, Any] | None = None,
) -> list[MetricResult]:
    """The four ``explain.proxy.*`` metrics from each method's ranking (``(name, importance)``,
    strongest first): whether a sensitive (``direct``) or ``flagged`` (sensitive or proxy) name
    is among the top ``p.top_k``, and the largest share of total importance they hold."""
    per_method: dict[str, Any] = {}
    sensitive_top: set[str] = set()
    proxy_top: set[str] = set()
    sensitive_share = proxy_share = 0.0
    for method, ranked in rankings.items():
        value = dict(ranked)
        rank = {name: i + 1 for i, (name, _) in enumerate(ranked)}
        total = sum(value.values())
        share = {f: value[f] / total if total > 0 else 0.0 for f in flagged if f in value}
        top = {name for name, _ in ranked[: p.top_k]}
        sensitive_top |= top & set(direct)
        proxy_top |= top & set(flagged)
        sensitive_share = max(sensitive_share, sum(share.get(f, 0.0) for f in direct))
        proxy_share = max(proxy_share, sum(share.values()))
        per_method[method] = {f: {"rank": rank[f], "share": share[f]} for f in flagged if f in value}
    details = {
        "sensitive_features": sensitive_details,
        "proxies": {f: proxy_of[f] for f in flagged if f in proxy_of},
        "top_k": p.top_k,
        "threshold": p.proxy_threshold,
        "by_method": per_method,
        **(extra_details or {}),
    }
    return [
        MetricResult("explain.proxy.sensitive_in_top_k", float(bool(sensitive_top)), higher_is_better=False,
                     details={**details, "in_top_k": sorted(sensitive_top)}),
        MetricResult("explain.proxy.proxy_in_top_k", float(bool(proxy_top)), higher_is_better=False,
                     details={**details, "in_top_k": sorted(proxy_top)}),
        MetricResult("explain.proxy.sensitive_share", sensitive_share, higher_is_better=False, details=details),
        MetricResult("explain.proxy.proxy_share", proxy_share, higher_is_better=False, details=details),
    ]



def coverage_metric(explained: int, requested: int, stopped_by_budget: bool) -> MetricResult:
    """``explain.coverage``: the share of the requested instances explained before the budget ran out."""
    details = {"explained": explained, "requested": requested, "stopped_by_budget": stopped_by_budget}
    return MetricResult("explain.coverage", explained / max(requested, 1), n=explained, higher_is_better=True, details=details)
