"""Labels (EU AI Act Art. 10(2)(f), (3)): base rates of the target by group, and rows whose
features are identical but whose labels disagree.

Base rates are the fairness engine's selection rate on the ``(G, 2, 2)`` table of ``(y, y)``:
the share of rows labelled positive, per group with Clopper–Pearson intervals, and its
difference and ratio between groups with the engine's validated interval (simultaneous
pairwise bootstrap within the groups' exact bounds; :mod:`guardrail.fairness.results`). The
details the engine writes are renamed to say what the rate is here (:func:`renamed_rate`):
``based_on`` and ``worst_rate`` name ``base_rate``, and reasons say "base rate".

The difference is ``max − min`` over groups; for two groups it is the absolute value of
AIF360's statistical parity difference of the labels (``base_rate(unprivileged) −
base_rate(privileged)``), without having to name a privileged group.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.errors import DataError
from guardrail.core.types import MetricResult
from guardrail.fairness.metrics import RATE_LABELS

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.fairness.groups import Grouping

BAD_LABELS = "the labels are not binary: {problem}"
BAD_LABELS_HINT = "give one label per data row as booleans (True = the positive class)"


def check_labels(data: pd.DataFrame, y: np.ndarray, *, where: str) -> np.ndarray:
    """``y`` as a boolean array with one value per row of ``data`` (0/1 accepted), or :class:`DataError`."""
    array = np.asarray(y)
    if array.shape != (len(data),):
        raise DataError(
            BAD_LABELS.format(problem=f"{array.shape} labels for {len(data):,} rows"), where=where, hint=BAD_LABELS_HINT
        )
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
        raise DataError(BAD_LABELS.format(problem="values other than 0/1 or True/False"), where=where, hint=BAD_LABELS_HINT)
    converted: np.ndarray = array == 1
    return converted


def renamed_rate(metric: MetricResult, name: str) -> MetricResult:
    """A metric built from the fairness engine's selection rate, its details and reasons
    naming the rate ``name`` (``base_rate``, ``missing_rate``) instead: ``based_on``,
    ``worst_rate``, the detectable gap's basis and the reasons (group labels are left as they are)."""
    words = name.replace("_", " ")

    def text(reason: str | None) -> str | None:
        return None if reason is None else reason.replace(RATE_LABELS["selection_rate"], words)

    details = dict(metric.details)
    if "based_on" in details:
        details["based_on"] = [name if r == "selection_rate" else r for r in details["based_on"]]
    if details.get("worst_rate") == "selection_rate":
        details["worst_rate"] = name
    if isinstance(details.get("detectable_gap_basis"), Mapping):
        details["detectable_gap_basis"] = {**details["detectable_gap_basis"], "rate": name}
    if isinstance(details.get("without_small"), Mapping):
        details["without_small"] = {**details["without_small"], "reason": text(details["without_small"].get("reason"))}
    return dataclasses.replace(metric, details=details, reason=text(metric.reason))


def rate_table(counts: np.ndarray) -> np.ndarray:
    """The ``(G, 2, 2)`` table of ``(x, x)`` from counts ``(G, 2)`` of a 0/1 indicator ``x``
    (its off-diagonal cells are empty): the fairness engine's selection rate is then the
    share of rows with ``x = 1``."""
    table = np.zeros((counts.shape[0], 2, 2), dtype=np.int64)
    table[:, 0, 0], table[:, 1, 1] = counts[:, 0], counts[:, 1]
    return table


def rate_metrics(
    grouping: Grouping,
    counts: np.ndarray,
    *,
    name: str,
    scope: str,
    level: float,
    min_group_size: int,
    bootstrap: int,
    seed: int,
    details: Mapping[str, Any] | None = None,
    ratio: bool = True,
    prefix: str = "data",
) -> list[MetricResult]:
    """``{prefix}.{name}``, ``{prefix}.{name}_difference`` (and ``_ratio``) of one grouping's
    ``(G, 2)`` counts of a 0/1 indicator, in ``scope``, resampled from its own random stream
    (the robustness audit's flip rates are built here too, with ``prefix="robustness"``)."""
    from guardrail.fairness.bootstrap import grouping_rng, resample_counts
    from guardrail.fairness.power import detectable_gap_details
    from guardrail.fairness.results import GroupTable, disparity_metric, rate_metric

    table = rate_table(counts)
    boot = resample_counts(table, bootstrap, grouping_rng(seed, f"{prefix}.{name}/{scope}")) if bootstrap else None
    groups = GroupTable(grouping.labels, table, boot, level, min_group_size)
    common = {"sensitive_features": list(grouping.features), **(details or {}), "min_group_size": min_group_size}
    small = [label for label, s in zip(grouping.labels, groups.small, strict=True) if s]
    found = [rate_metric(groups, "selection_rate", key=f"{prefix}.{name}", scope=scope, details={**common, "small_groups": small})]
    gap = detectable_gap_details("demographic_parity_difference", table, grouping.labels, level)
    found.append(
        disparity_metric(groups, "demographic_parity_difference", key=f"{prefix}.{name}_difference", scope=scope, details={**common, **gap})
    )
    if ratio:
        found.append(disparity_metric(groups, "demographic_parity_ratio", key=f"{prefix}.{name}_ratio", scope=scope, details=common))
    return [renamed_rate(metric, name) for metric in found]


def label_metrics(
    data: pd.DataFrame,
    feature_sets: Sequence[Sequence[str]],
    y: np.ndarray,
    *,
    level: float,
    min_group_size: int,
    bootstrap: int,
    seed: int,
    missing: str = "error",
    where: str = "data",
) -> list[MetricResult]:
    """``data.base_rate``, ``data.base_rate_difference`` and ``data.base_rate_ratio`` of every
    grouping (one pass over the rows for the family; :func:`~guardrail.data_audit.representation.grouping_counts`)."""
    from guardrail.data_audit.representation import grouping_counts

    labels = check_labels(data, y, where=where)
    tables = grouping_counts(data, feature_sets, [(labels, 2)], missing=missing, where=where)
    results: list[MetricResult] = []
    for features in feature_sets:
        grouping, counts = tables[tuple(features)]
        results += rate_metrics(
            grouping, counts, name="base_rate", scope=grouping.scope, level=level, min_group_size=min_group_size,
            bootstrap=bootstrap, seed=seed,
        )  # fmt: skip
    return results


def conflicting_labels(data: pd.DataFrame, columns: Sequence[str], y: np.ndarray, *, level: float, where: str = "data") -> MetricResult:
    """``data.conflicting_labels``: the share of rows whose values in ``columns`` (the target
    excluded) occur in another row with the other label, with its Clopper–Pearson interval.

    Rows are compared by a 64-bit hash (:func:`row_hashes`); the label goes into the hash's
    lowest bit, so one sort of the keys puts each set of identical rows together with its
    labels ordered, and a set conflicts when both labels occur in it. Two distinct rows share
    the remaining 63 bits with probability about ``rows² / 2⁶⁴`` (10⁻⁵ at ten million rows)."""
    from guardrail.fairness.intervals import rate_interval

    labels = check_labels(data, y, where=where)
    from guardrail.data_audit.proxies import check_columns

    check_columns(data, columns, what="the audit data", where=where)
    rows = len(data)
    if rows == 0 or not columns:
        reason = "no rows" if rows == 0 else "no columns to compare rows on"
        return MetricResult(key="data.conflicting_labels", value=None, reason=reason, n=rows, higher_is_better=False)
    from guardrail.data_audit.rows import row_hashes

    keys = row_hashes(data, columns)
    keys &= ~np.uint64(1)
    keys |= labels.astype(np.uint64)
    keys.sort()
    same = keys[1:] >> np.uint64(1) == keys[:-1] >> np.uint64(1)
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    sizes = np.diff(np.append(starts, rows))
    positives = np.add.reduceat((keys & np.uint64(1)).astype(np.int64), starts)
    mixed = (positives > 0) & (positives < sizes)
    conflicting = int(sizes[mixed].sum())
    return MetricResult(
        key="data.conflicting_labels",
        value=conflicting / rows,
        ci=rate_interval(conflicting, rows, level),
        n=rows,
        higher_is_better=False,
        details={"conflicting_rows": conflicting, "rows": rows, "feature_groups_with_conflict": int(mixed.sum())},
    )
