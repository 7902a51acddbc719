"""The data audit of one table, and of the reference (training) table beside it, composed.

Each part reads the rows once into count tables (per group, per column, per bin) and derives
every figure and its resamples from those tables (:mod:`guardrail.data_audit.representation`,
:mod:`~guardrail.data_audit.labels`, :mod:`~guardrail.data_audit.completeness`,
:mod:`~guardrail.data_audit.proxies`, :mod:`~guardrail.data_audit.shift`,
:mod:`~guardrail.data_audit.duplicates`). What could not be examined is said in the notes,
never passed over in silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.core.types import MetricResult
    from guardrail.data_audit.representation import Population


@dataclass(frozen=True)
class DataAuditOptions:
    """How the data audit measures (the ``use: data`` params, without the file paths)."""

    min_group_size: int = 30
    bootstrap: int = 1000
    confidence: float = 0.95
    bins: int = 10
    proxy_threshold: float = 0.1
    shift_threshold: float = 0.1
    alpha: float = 0.05


@dataclass(frozen=True)
class DataTables:
    """The tables a data audit reads: the audited rows, their labels, and the reference rows."""

    data: pd.DataFrame
    sensitive: tuple[str, ...]
    features: tuple[str, ...]
    feature_sets: tuple[tuple[str, ...], ...]
    target: str | None = None
    labels: np.ndarray | None = None
    """``True`` where the row's label is the positive class (binary targets); ``None`` otherwise."""
    reference: pd.DataFrame | None = None
    population: Mapping[str, Population] = field(default_factory=dict)
    missing_sensitive: str = "error"
    where: str = "data"


@dataclass(frozen=True)
class DataAudit:
    """Every metric of a data audit, and what the report draws from (see the contract of
    :func:`audit_tables`)."""

    metrics: tuple[MetricResult, ...]
    artifacts: dict[str, Any]


NO_REFERENCE = (
    "no reference (training) data was given: shift between training and audit data and audit rows "
    "leaked from training were not examined (set params.reference_data or params.reference_column)"
)
NOT_BINARY = "the target is not binary: label base rates by group were not examined"
NO_FEATURES_NOTE = (
    "no column besides the target and the sensitive columns was examined: missingness, proxies and shift "
    "had nothing to measure (check params.features and params.ignore)"
)
NO_TARGET_NOTE = "no target column: label base rates and conflicting labels were not examined"


def audit_tables(tables: DataTables, options: DataAuditOptions, *, seed: int) -> DataAudit:
    """Representation, labels, completeness, proxies, shift and duplicates of ``tables``."""
    from guardrail.data_audit.completeness import missingness_metrics
    from guardrail.data_audit.duplicates import duplicate_metrics
    from guardrail.data_audit.labels import conflicting_labels, label_metrics
    from guardrail.data_audit.proxies import proxy_metrics
    from guardrail.data_audit.representation import representation_metrics

    t, o = tables, options
    sets = [tuple(s) for s in t.feature_sets]
    level, small, missing, where = o.confidence, o.min_group_size, t.missing_sensitive, t.where
    metrics: list[MetricResult] = list(
        representation_metrics(t.data, sets, population=t.population, level=level, min_group_size=small, missing=missing, where=where)
    )  # the declared population is checked against the data's groups on the way
    notes: list[str] = []
    if t.labels is not None:
        metrics += label_metrics(
            t.data, sets, t.labels, level=level, min_group_size=small, bootstrap=o.bootstrap, seed=seed, missing=missing, where=where
        )
        metrics.append(conflicting_labels(t.data, [*t.features, *t.sensitive], t.labels, level=o.confidence))
    else:
        notes.append(NOT_BINARY if t.target is not None else NO_TARGET_NOTE)
    if not t.features:
        notes.append(NO_FEATURES_NOTE)
    incomplete, missingness = missingness_metrics(
        t.data, sets, t.features, level=level, min_group_size=small, bootstrap=o.bootstrap, seed=seed, missing=missing, where=where
    )
    metrics += incomplete
    proxies, proxy_table = proxy_metrics(
        t.data, t.sensitive, [f for f in t.features if f not in t.sensitive], bins=o.bins, threshold=o.proxy_threshold,
        level=o.confidence, bootstrap=o.bootstrap, seed=seed, where=t.where,
    )  # fmt: skip
    metrics += proxies
    compared = [*t.features, *t.sensitive, *([t.target] if t.target is not None else [])]
    shift_table = None
    if t.reference is not None:
        from guardrail.data_audit.shift import shift_metrics

        shifted, shift_table = shift_metrics(
            t.data, t.reference, t.features, t.sensitive, bins=o.bins, level=o.confidence, bootstrap=o.bootstrap,
            seed=seed, alpha=o.alpha, threshold=o.shift_threshold, where=t.where,
        )  # fmt: skip
        metrics += shifted
    else:
        notes.append(NO_REFERENCE)
    metrics += duplicate_metrics(t.data, compared, t.reference, level=o.confidence)
    artifacts: dict[str, Any] = {
        "rows": len(t.data),
        "features": list(t.features),
        "sensitive": list(t.sensitive),
        "population": {column: {"shares": dict(p.shares), "source": p.source} for column, p in t.population.items()},
        "missingness": missingness,
        "proxies": proxy_table,
        "shift": shift_table,
        "notes": notes,
    }
    return DataAudit(tuple(metrics), artifacts)
