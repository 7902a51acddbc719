"""Compare the metrics and verdicts of two runs, with an interval on every change.

One engine serves ``guardrail diff`` and the regression gate against the approved run:
:func:`metric_changes` pairs the metrics of two runs by key and scope, and states for each
whether the later run is better or worse, by how much, and how sure that is.

The interval on a change treats the two runs' estimates as independent: each run's interval
is read as a normal one (standard error = half-width / z), and the change gets
``± z·sqrt(se_a² + se_b²)``. When both runs audited the same rows, the estimates are
positively correlated and this interval is conservative (wider than a paired one).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from guardrail.core.types import Interval, MetricResult, OutcomeStatus, RunRecord

Direction = Literal["worse", "better", "same", "undirected", "undefined"]

CHANGE_METHOD = "normal approximation from both runs' intervals, taken as independent"


@dataclass(frozen=True)
class MetricChange:
    """One metric in two runs: ``change`` is ``after − before``; ``worsening`` is the change
    oriented so that a positive value is worse (None when the metric has no direction)."""

    ref: str
    key: str
    scope: str | None
    before: float | None
    after: float | None
    before_ci: Interval | None
    after_ci: Interval | None
    change: float | None
    change_ci: Interval | None
    worsening: float | None
    worsening_ci: Interval | None
    higher_is_better: bool | None
    direction: Direction

    @property
    def significant(self) -> bool:
        """Whether the change's interval excludes zero."""
        ci = self.change_ci
        return ci is not None and (ci.low > 0 or ci.high < 0)


@dataclass(frozen=True)
class OutcomeChange:
    """A rule outcome whose status differs between the two runs (absent counts as a change)."""

    rule_id: str
    metric: str
    before: OutcomeStatus | None
    after: OutcomeStatus | None


@dataclass(frozen=True)
class RunDiff:
    """Everything that differs between run ``before`` and run ``after``."""

    before: str
    after: str
    metrics: tuple[MetricChange, ...]
    outcomes: tuple[OutcomeChange, ...]
    only_before: tuple[str, ...]
    only_after: tuple[str, ...]

    def worse(self) -> tuple[MetricChange, ...]:
        """Directed metrics that got worse by more than their interval allows."""
        return tuple(c for c in self.metrics if c.direction == "worse" and c.significant)

    def _repr_html_(self) -> str:
        """Jupyter display: the same table as ``guardrail diff``, escaped."""
        import html

        from guardrail.history.views import diff_table

        return f"<pre>{html.escape(diff_table(self))}</pre>"


def compare_runs(before: RunRecord, after: RunRecord) -> RunDiff:
    """Compare run ``before`` with run ``after`` (metric by metric and rule by rule)."""
    changes = metric_changes(before.metrics(), after.metrics())
    paired = {c.ref for c in changes}
    before_of = {(o.rule_id, o.metric): o.status for o in before.verdict.outcomes}
    after_of = {(o.rule_id, o.metric): o.status for o in after.verdict.outcomes}
    outcomes = tuple(
        OutcomeChange(rule_id, metric, before_of.get((rule_id, metric)), after_of.get((rule_id, metric)))
        for rule_id, metric in dict.fromkeys([*before_of, *after_of])
        if before_of.get((rule_id, metric)) != after_of.get((rule_id, metric))
    )
    return RunDiff(
        before=before.run_id,
        after=after.run_id,
        metrics=tuple(changes),
        outcomes=outcomes,
        only_before=tuple(m.ref for m in _unique(before.metrics()) if m.ref not in paired),
        only_after=tuple(m.ref for m in _unique(after.metrics()) if m.ref not in paired),
    )


def metric_changes(before: Iterable[MetricResult], after: Iterable[MetricResult]) -> list[MetricChange]:
    """Pair metrics by ``key[scope]`` (first occurrence of each) and describe each change."""
    earlier = {m.ref: m for m in _unique(before)}
    return [_change(earlier[m.ref], m) for m in _unique(after) if m.ref in earlier]


def _change(before: MetricResult, after: MetricResult) -> MetricChange:
    direction_known = after.higher_is_better if after.higher_is_better is not None else before.higher_is_better
    if before.value is None or after.value is None:
        return MetricChange(
            after.ref, after.key, after.scope, before.value, after.value, before.ci, after.ci,
            None, None, None, None, direction_known, "undefined",
        )
    change = after.value - before.value
    change_ci = _difference_interval(change, before.ci, after.ci)
    worsening: float | None = None
    worsening_ci: Interval | None = None
    direction: Direction = "undirected"
    if direction_known is not None:
        sign = -1.0 if direction_known else 1.0
        worsening = sign * change
        if change_ci is not None:
            low, high = sorted((sign * change_ci.low, sign * change_ci.high))
            worsening_ci = Interval(low, high, change_ci.level, change_ci.method)
        direction = "same" if change == 0 else ("worse" if worsening > 0 else "better")
    return MetricChange(
        after.ref, after.key, after.scope, before.value, after.value, before.ci, after.ci,
        change, change_ci, worsening, worsening_ci, direction_known, direction,
    )


def _difference_interval(change: float, a: Interval | None, b: Interval | None) -> Interval | None:
    if a is None or b is None:
        return None
    level = min(a.level, b.level)
    z_a = NormalDist().inv_cdf(0.5 + a.level / 2)
    z_b = NormalDist().inv_cdf(0.5 + b.level / 2)
    se = math.hypot((a.high - a.low) / (2 * z_a), (b.high - b.low) / (2 * z_b))
    half = NormalDist().inv_cdf(0.5 + level / 2) * se
    return Interval(change - half, change + half, level, CHANGE_METHOD)


def _unique(metrics: Iterable[MetricResult]) -> Sequence[MetricResult]:
    seen: dict[str, MetricResult] = {}
    for metric in metrics:
        seen.setdefault(metric.ref, metric)
    return list(seen.values())
