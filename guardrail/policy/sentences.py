"""One-sentence renderings of constraints and observations, shared by every outcome."""

from __future__ import annotations

from guardrail.core.types import Interval

OP_SYMBOLS = {"le": "≤", "ge": "≥", "lt": "<", "gt": ">", "eq": "="}
BOUND_WORDS = {"value": "", "ci_low": " on the lower bound", "ci_high": " on the upper bound", "worst": " on the worse bound"}


def fmt(value: float, distinct_from: float | tuple[float, ...] | None = None) -> str:
    """Numbers as people read them: integers plain, others to four significant digits.

    With ``distinct_from``, more digits are shown until the value no longer reads as
    that threshold, so "0.79996" never prints as "0.8" next to "required ≥ 0.8".

    >>> fmt(0.71234), fmt(30.0), fmt(1e-05), fmt(0.79996, distinct_from=0.8)
    ('0.7123', '30', '1e-05', '0.79996')
    """
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    others = distinct_from if isinstance(distinct_from, tuple) else (() if distinct_from is None else (distinct_from,))
    for digits in range(4, 18):
        text = f"{value:.{digits}g}"
        if all(value == other or text != f"{other:.{digits}g}" for other in others):
            return text
    return repr(value)


def requirement(op: str, threshold: float | tuple[float, float] | None, on: str, tolerance: float = 0.0) -> str:
    """What a rule requires, without the metric name: ``≥ 0.8 on the lower bound``.

    >>> requirement("between", (0.8, 1.25), "value")
    'between 0.8 and 1.25'
    """
    if op == "present":
        return "present and finite"
    if op == "between":
        assert isinstance(threshold, tuple)
        return f"between {fmt(threshold[0])} and {fmt(threshold[1])}{BOUND_WORDS[on]}"
    assert isinstance(threshold, float | int)
    text = f"{OP_SYMBOLS[op]} {fmt(threshold)}"
    if op == "eq" and tolerance:
        text += f" ± {fmt(tolerance)}"
    return text + BOUND_WORDS[on]


def constraint(metric: str, op: str, threshold: float | tuple[float, float] | None, on: str, tolerance: float = 0.0) -> str:
    """The whole constraint: ``fairness.x[sex] ≥ 0.8 on the lower bound``.

    >>> constraint("fairness.x", "present", None, "value")
    'fairness.x is present and finite'
    """
    needed = requirement(op, threshold, on, tolerance)
    return f"{metric} is {needed}" if op in ("present", "between") else f"{metric} {needed}"


def observation(
    metric: str, value: float, ci: Interval | None, threshold: float | tuple[float, float] | None = None
) -> str:
    """``fairness.x[sex] = 0.71 (95% CI 0.66–0.76)``."""
    text = f"{metric} = {fmt(value, threshold)}"
    if ci is not None:
        adjusted = ci.method.split(", ", 1)[1] if ", " in ci.method else ""
        text += f" ({fmt(ci.level * 100)}% CI {fmt(ci.low, threshold)}–{fmt(ci.high, threshold)}"
        text += f", {adjusted})" if adjusted else ")"
    return text
