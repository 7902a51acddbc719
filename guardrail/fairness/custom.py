"""User metrics per group, through fairlearn's ``MetricFrame``: the general path for a metric
that is not a rate of a count table (its bootstrap resamples rows, so it is capped)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from guardrail.core.errors import AuditError, MissingExtraError
from guardrail.core.types import GroupValue, Interval, MetricResult

if TYPE_CHECKING:
    from guardrail.fairness.groups import Grouping

MAX_RESAMPLES = 200
"""MetricFrame resamples rows: its bootstrap is capped at this many resamples to stay affordable."""


def custom_metrics(
    grouping: Grouping,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    custom: Mapping[str, str],
    *,
    bootstrap: int,
    confidence: float,
    min_group_size: int,
    seed: int,
) -> list[MetricResult]:
    """``fairness.custom.<name>`` per group of an encoded grouping for each ``name →
    "module:function"`` of ``custom`` (``function(y_true, y_pred)``), with MetricFrame's
    percentile intervals. The functions are imported and run: the caller names only trusted code."""
    import importlib
    import warnings

    try:
        from fairlearn.metrics import MetricFrame
    except ImportError:
        raise MissingExtraError("fairlearn", "fairness") from None
    functions = {}
    for name, target in custom.items():
        module, _, attr = target.partition(":")
        try:
            functions[name] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise AuditError(f"custom metric {name!r}: cannot import {target!r} ({exc})") from None
    assert grouping.codes is not None
    labels = np.asarray(grouping.labels, dtype=object)[grouping.codes]
    boot = min(bootstrap, MAX_RESAMPLES)  # MetricFrame resamples rows: keep it affordable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics=functions,
            y_true=np.asarray(y_true).astype(int),
            y_pred=np.asarray(y_pred).astype(int),
            sensitive_features=labels,
            n_boot=boot or None,
            ci_quantiles=[(1 - confidence) / 2, (1 + confidence) / 2] if boot else None,
            random_state=seed if boot else None,
        )
    sizes = np.bincount(grouping.codes, minlength=grouping.n_groups)
    results = []
    for name in functions:
        overall = float(frame.overall[name])
        per_group = frame.by_group[name]
        ci_overall = ci_groups = None
        if boot:
            low, high = frame.overall_ci[0][name], frame.overall_ci[1][name]
            ci_overall = Interval(float(low), float(high), confidence, f"percentile (fairlearn MetricFrame, {boot} resamples)")
            ci_groups = (frame.by_group_ci[0][name], frame.by_group_ci[1][name])
        by_group = tuple(
            GroupValue(
                label,
                None if math.isnan(float(per_group[label])) else float(per_group[label]),
                int(sizes[i]),
                small=bool(sizes[i] < min_group_size),
                reason="undefined" if math.isnan(float(per_group[label])) else None,
                ci=Interval(float(ci_groups[0][label]), float(ci_groups[1][label]), confidence, "percentile (fairlearn MetricFrame)")
                if ci_groups is not None and not math.isnan(float(ci_groups[0][label]))
                else None,
            )
            for i, label in enumerate(grouping.labels)
        )
        results.append(
            MetricResult(
                key=f"fairness.custom.{name}",
                scope=grouping.scope,
                value=None if math.isnan(overall) else overall,
                reason="undefined overall" if math.isnan(overall) else None,
                ci=ci_overall if ci_overall is not None and math.isfinite(ci_overall.low) else None,
                by_group=by_group,
                n=int(sizes.sum()),
                details={"function": custom[name], "engine": "fairlearn MetricFrame"},
            )
        )
    return results
