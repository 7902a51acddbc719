"""Results as pandas DataFrames: tidy rows, and a by-group view like fairlearn's ``MetricFrame.by_group``.

Two shapes, one for each question a notebook asks:

* **tidy** (``to_frame()``): one row per metric (``group`` is ``None``: the metric's overall
  value) and one per group of the metric, with the columns of :data:`METRIC_COLUMNS`, so that
  every row's ``value`` is the quantity its ``metric`` names. A disparity or gap (such as
  ``fairness.equalized_odds_difference`` or ``fairness.demographic_parity_ratio``: see
  :func:`is_disparity`) has its overall row only: its groups hold the values of the rate it
  compares (``details["worst_rate"]``, e.g. ``fpr``), not a disparity of each group, and
  show under that rate's own key (``fairness.fpr``) where the audit reports it. ``status``
  says whether a value is there: ``ok``; ``small`` (a group below the auditor's minimum
  size, reported and flagged); ``undefined`` (no value, ``reason`` says why);
  ``error`` / ``skipped`` (an audit that produced no metrics, one row with ``metric`` None).
  Policy outcomes have their own columns (:data:`OUTCOME_COLUMNS`).
* **by group** (``by_group_frame(scope)``): the groups of one scope as the index (a
  ``MultiIndex`` named by the sensitive features for an intersection such as ``sex+race``),
  one column per metric key holding each group's value, ``NaN`` where a group has none.
  Metrics whose groups hold another metric's values are left out: the disparities and gaps
  (their groups show the rate they are based on, which has its own column) and
  ``min_group_size`` (its groups hold the sizes, which ``fairness.count`` shows).

The rows are built with the standard library; pandas is imported only when a frame is made.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from guardrail.core.scopes import scope_features, scope_name

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.core.types import AuditResult, MetricResult, RuleOutcome

METRIC_COLUMNS = ("audit", "metric", "scope", "group", "value", "ci_low", "ci_high", "n", "status", "reason")
"""Columns of a tidy metrics frame (``to_frame()`` of a metric, an audit result or a run)."""
OUTCOME_COLUMNS = (
    "rule", "policy", "metric", "scope", "status", "severity", "observed", "ci_low", "ci_high", "expected", "reason", "message",
)
"""Columns of a policy outcomes frame (``to_frame()`` of a verdict or an outcome)."""
GROUP_SEPARATOR = " × "
"""How an intersection's group label joins its features' values (``Female × White``); the
fairness engine's ``INTERSECTION_SEPARATOR`` (a test keeps the two equal)."""
OF_ANOTHER_METRIC = ("aggregation", "based_on", "smallest_group")
"""``details`` keys marking a metric whose groups hold another metric's values (a disparity
or gap, or the smallest group's size): left out of the by-group view."""

DISPARITY_AGGREGATIONS = ("difference", "ratio")
"""``details["aggregation"]`` of a disparity or gap (a privacy metric's "max over groups" is
not one: its groups hold its own quantity, each group's)."""

Row = dict[str, Any]


def is_disparity(metric: MetricResult) -> bool:
    """Whether ``metric`` measures how far apart its groups are (a disparity such as
    ``fairness.demographic_parity_ratio``, a gap such as ``fairness.mae_difference``): its
    ``details`` name the rates it is ``based_on``, or it aggregates them by ``difference`` or
    ``ratio``. Its groups hold the compared rate's values, not the disparity's.

    >>> from guardrail.core.types import MetricResult
    >>> is_disparity(MetricResult("fairness.equalized_odds_difference", 0.2, details={"based_on": ["tpr", "fpr"]}))
    True
    >>> is_disparity(MetricResult("privacy.mia.auc", 0.6, details={"aggregation": "max over groups"}))
    False
    """
    return "based_on" in metric.details or metric.details.get("aggregation") in DISPARITY_AGGREGATIONS


def metric_rows(metric: MetricResult, audit: str | None = None) -> list[Row]:
    """The tidy rows of one metric: its overall value, then each group's; a disparity
    (:func:`is_disparity`) has its overall row only (see the module docstring)."""
    rows = [_row(audit, metric, None, metric.value, metric.ci, metric.n, small=False, reason=metric.reason)]
    if is_disparity(metric):
        return rows
    rows += [_row(audit, metric, g.group, g.value, g.ci, g.n, small=g.small, reason=g.reason) for g in metric.by_group]
    return rows


def audit_rows(result: AuditResult) -> list[Row]:
    """The tidy rows of every metric of one audit; an audit without metrics that did not
    finish (error, skipped) gives one row saying so."""
    if not result.metrics and result.status.value != "ok":
        reason = f"{result.error.type}: {result.error.message}" if result.error else None
        empty = dict.fromkeys(METRIC_COLUMNS)
        return [{**empty, "audit": result.audit_id, "status": result.status.value, "reason": reason}]
    return [row for metric in result.metrics for row in metric_rows(metric, result.audit_id)]


def outcome_row(outcome: RuleOutcome) -> Row:
    """One policy outcome as a row of :data:`OUTCOME_COLUMNS`."""
    key, scope = split_ref(outcome.metric)
    return {
        "rule": outcome.rule_id,
        "policy": outcome.policy,
        "metric": key,
        "scope": scope,
        "status": outcome.status.value,
        "severity": outcome.severity.value,
        "observed": outcome.observed,
        "ci_low": outcome.ci.low if outcome.ci else None,
        "ci_high": outcome.ci.high if outcome.ci else None,
        "expected": outcome.expected,
        "reason": outcome.reason,
        "message": outcome.message,
    }


def frame(rows: Iterable[Row], columns: Sequence[str] = METRIC_COLUMNS) -> pd.DataFrame:
    """``rows`` as a DataFrame with ``columns`` in order (also when there are no rows);
    numeric columns are floats, ``NaN`` where there is no value."""
    import pandas as pd

    table = pd.DataFrame.from_records(list(rows), columns=list(columns))
    for column in ("value", "ci_low", "ci_high", "observed"):
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    if "n" in table.columns:
        table["n"] = table["n"].astype("Int64")
    return table


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"fairness.x[sex]"`` → ``("fairness.x", "sex")``; a ref without scope has scope None.

    >>> split_ref("fairness.tpr[sex+race]"), split_ref("privacy.epsilon")
    (('fairness.tpr', 'sex+race'), ('privacy.epsilon', None))
    """
    if ref.endswith("]") and "[" in ref:
        key, _, scope = ref[:-1].partition("[")
        return key, scope
    return ref, None


def by_group_frame(
    metrics: Sequence[MetricResult], scope: str | Sequence[str] | None = None, *, derived: bool = False
) -> pd.DataFrame:
    """The groups of ``scope`` (a scope such as ``"sex+race"``, or its features
    ``["sex", "race"]``) as rows and each metric's group values as columns (see the module
    docstring); ``scope`` may be left out when the metrics have one scope with groups.
    ``derived`` keeps the metrics whose groups hold another metric's values.

    Raises
    ------
    ValueError
        When ``scope`` is left out and there are several, or names a scope without groups,
        or two metrics of that scope share a key (a run with two audits of one kind: pick
        the audit first).
    """
    import pandas as pd

    candidates = [m for m in metrics if m.by_group and (derived or not any(k in m.details for k in OF_ANOTHER_METRIC))]
    scopes = list(dict.fromkeys(m.scope or "" for m in candidates))
    wanted = scope if scope is None or isinstance(scope, str) else scope_name(scope)
    if wanted is None:
        if len(scopes) > 1:
            raise ValueError(f"these results have groups in several scopes; pass scope=, one of: {', '.join(scopes)}")
        wanted = scopes[0] if scopes else ""
    chosen = [m for m in candidates if (m.scope or "") == wanted]
    if not chosen and candidates:
        raise ValueError(f"no metric has groups in scope {wanted!r}; scopes with groups: {', '.join(scopes)}")
    keys = [m.key for m in chosen]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"several metrics {repeated[0]}[{wanted}]: take the by-group view of one audit result")
    features = _features(chosen, wanted)
    labels = list(dict.fromkeys(g.group for m in chosen for g in m.by_group))
    columns = {m.key: _group_values(m, labels) for m in chosen}
    index = _index(labels, features, _known_values(metrics, features))
    return pd.DataFrame(columns, index=index, dtype=float)


def _row(
    audit: str | None, metric: MetricResult, group: str | None, value: float | None, ci: Any, n: int | None, *, small: bool, reason: str | None
) -> Row:
    status = "undefined" if value is None else "small" if small else "ok"
    return {
        "audit": audit,
        "metric": metric.key,
        "scope": metric.scope,
        "group": group,
        "value": value,
        "ci_low": ci.low if ci is not None else None,
        "ci_high": ci.high if ci is not None else None,
        "n": n,
        "status": status,
        "reason": reason,
    }


def _group_values(metric: MetricResult, labels: Sequence[str]) -> list[float]:
    values = {g.group: g.value for g in metric.by_group}
    return [math.nan if (value := values.get(label)) is None else float(value) for label in labels]


def _features(metrics: Sequence[MetricResult], scope: str) -> tuple[str, ...]:
    """The sensitive features the groups are values of: as the metrics' details name them,
    else the scope's features; ``("group",)`` when neither is known."""
    for metric in metrics:
        named = metric.details.get("sensitive_features")
        if isinstance(named, list | tuple) and named and all(isinstance(f, str) for f in named):
            return tuple(named)
    return scope_features(scope) if scope else ("group",)


def _known_values(metrics: Sequence[MetricResult], features: Sequence[str]) -> Mapping[str, set[str]]:
    """Each feature's group labels in its own scope, to split intersection labels whose
    values contain the separator."""
    known: dict[str, set[str]] = {}
    for feature in features:
        own = scope_name([feature])
        known[feature] = {g.group for m in metrics if m.scope == own for g in m.by_group}
    return known


def _index(labels: Sequence[str], features: Sequence[str], known: Mapping[str, set[str]]) -> pd.Index:
    import pandas as pd

    if len(features) == 1:
        return pd.Index(labels, name=features[0])
    split = [parts for parts in (split_group(label, features, known) for label in labels) if parts is not None]
    if len(split) < len(labels):  # values that cannot be told apart: the labels as written
        return pd.Index(labels, name=scope_name(features))
    return pd.MultiIndex.from_tuples(split, names=list(features))


def split_group(label: str, features: Sequence[str], known: Mapping[str, set[str]] | None = None) -> tuple[str, ...] | None:
    """An intersection's group label as one value per feature, or None when it cannot be
    split unambiguously (a value containing the separator that ``known`` cannot resolve).

    >>> split_group("Female × White", ["sex", "race"])
    ('Female', 'White')
    >>> split_group("a × b × c", ["x", "y"], {"x": {"a × b"}, "y": {"c"}})
    ('a × b', 'c')
    """
    parts = label.split(GROUP_SEPARATOR)
    if len(parts) == len(features):
        return tuple(parts)
    known = known or {}
    found = [s for s in _splits(parts, len(features)) if all(v in known.get(f, ()) for f, v in zip(features, s, strict=True))]
    return found[0] if len(found) == 1 else None


def _splits(parts: Sequence[str], k: int) -> Iterable[tuple[str, ...]]:
    """Every way of joining ``parts`` back into ``k`` consecutive values."""
    if k == 1:
        yield (GROUP_SEPARATOR.join(parts),)
        return
    for cut in range(1, len(parts) - k + 2):
        for rest in _splits(parts[cut:], k - 1):
            yield (GROUP_SEPARATOR.join(parts[:cut]), *rest)
