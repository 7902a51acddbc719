"""One-sentence renderings of constraints and observations, shared by every outcome."""

from __future__ import annotations

from guardrail.core.types import Interval

OP_SYMBOLS = {"le": "≤", "ge": "≥", "lt": "<", "gt": ">", "eq": "="}
BOUND_WORDS = {"value": "", "ci_low": " on the lower bound", "ci_high": " on the upper bound", "worst": " on the worse bound"}


def fmt(value: float) -> str:
    """Numbers as people read them: integers plain, others to four significant digits.

    >>> fmt(0.71234), fmt(30.0), fmt(1e-05)
    ('0.7123', '30', '1e-05')
    """
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


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


def observation(metric: str, value: float, ci: Interval | None) -> str:
    """``fairness.x[sex] = 0.71 (95% CI 0.66–0.76)``."""
    text = f"{metric} = {fmt(value)}"
    if ci is not None:
        text += f" ({fmt(ci.level * 100)}% CI {fmt(ci.low)}–{fmt(ci.high)})"
    return text
