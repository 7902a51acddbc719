"""Multiple-comparison corrections across a policy's interval-judged outcomes.

Each rule judged on an interval bound (``on: ci_low | ci_high | worst``) is one comparison:
a one-sided test of "the metric violates the threshold" at tail probability
``(1 - level) / 2``. Across the ``m`` comparisons of a policy:

* ``bonferroni``: every bound is read at tail ``α / m`` (family-wise error control);
* ``holm``: Holm's step-down: comparisons sorted by their bootstrap p-value, the k-th
  (from 0) is judged at tail ``α / (m − k)``; from the first that does not pass, the rest are
  judged at that step's tail (family-wise error control, never wider than Bonferroni);
* ``bh``: Benjamini–Hochberg: with ``R`` comparisons passing the step-up rule, every bound
  is read at tail ``R·α / m`` (Benjamini–Yekutieli false-coverage-rate intervals; ``α / m``
  when none passes).

Bounds at other levels are read from the bootstrap quantile table each interval keeps, so
corrections only ever widen intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guardrail.core.types import Interval, MetricResult
from guardrail.spec.models import RuleSpec

NAMES = {"bonferroni": "Bonferroni", "holm": "Holm", "bh": "Benjamini–Hochberg"}


@dataclass(frozen=True)
class Adjustment:
    """The tail probability at which one comparison's bounds are read, and why."""

    tail: float
    method: str
    comparisons: int

    def label(self) -> str:
        return f"{NAMES[self.method]}-adjusted over {self.comparisons} comparisons"


def sides(rule: RuleSpec) -> tuple[str, ...]:
    """The interval bounds a rule judges: ``("low",)``, ``("high",)`` or both."""
    return {"ci_low": ("low",), "ci_high": ("high",)}.get(rule.on, ("low", "high"))


def p_value(rule: RuleSpec, ci: Interval) -> float:
    """Bootstrap one-sided p-value of the test the rule's decision makes, from the quantile table.

    A rule judged on its lower bound decides from the mass below the threshold: with ``ge``
    it tests "the metric violates" (rejecting it passes the rule), with ``le`` it tests "the
    metric complies" (rejecting it fails the rule). Symmetrically for the upper bound. A
    ``worst`` rule is ordered by its test of violation.
    """
    threshold = rule.threshold
    if rule.op == "between":
        assert isinstance(threshold, tuple)
        return min(1.0, cdf(ci, threshold[0]) + 1 - cdf(ci, threshold[1]))
    assert isinstance(threshold, float | int)
    if rule.on == "worst":
        side = "low" if rule.op in ("ge", "gt") else "high"
    else:
        side = "low" if rule.on == "ci_low" else "high"
    below = cdf(ci, float(threshold))
    return below if side == "low" else 1 - below


def cdf(ci: Interval, x: float) -> float:
    """Bootstrap distribution function at ``x``, interpolated in the quantile table and
    clamped to its extreme levels (so a p-value is never reported below what the resamples
    can show)."""
    table = ci.quantiles
    if x <= table[0].value:
        return table[0].level
    if x >= table[-1].value:
        return table[-1].level
    for lower, upper in zip(table, table[1:], strict=False):
        if lower.value <= x <= upper.value:
            if upper.value == lower.value:
                return upper.level
            return lower.level + (upper.level - lower.level) * (x - lower.value) / (upper.value - lower.value)
    raise AssertionError("unreachable")


def adjust(method: str, comparisons: Sequence[tuple[RuleSpec, MetricResult]]) -> list[Adjustment]:
    """One :class:`Adjustment` per comparison, in the given order."""
    m = len(comparisons)
    if m == 0:
        return []
    bases = [(1 - c.ci.level) / 2 for _, c in comparisons if c.ci is not None]
    alpha = min(bases) if bases else 0.025
    if method == "bonferroni":
        return [Adjustment(alpha / m, method, m) for _ in comparisons]
    p_values = [p_value(rule, metric.ci) if metric.ci and metric.ci.quantiles else 1.0 for rule, metric in comparisons]
    # ties broken by rule and metric, never by the order rules are written in
    order = sorted(range(m), key=lambda i: (p_values[i], comparisons[i][0].id, comparisons[i][1].ref))
    if method == "holm":
        tails = [0.0] * m
        stopped_at: float | None = None
        for step, index in enumerate(order):
            tail = stopped_at if stopped_at is not None else alpha / (m - step)
            tails[index] = tail
            if stopped_at is None and p_values[index] > tail:
                stopped_at = tail
        return [Adjustment(t, method, m) for t in tails]
    if method == "bh":
        passing = max((k + 1 for k, i in enumerate(order) if p_values[i] <= (k + 1) * alpha / m), default=0)
        tail = max(passing, 1) * alpha / m
        return [Adjustment(tail, method, m) for _ in comparisons]
    raise ValueError(f"unknown correction {method!r}")
