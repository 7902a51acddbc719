"""Text formatting shared by the renderers: numbers (and the units findings read them in),
intervals, durations, verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from guardrail.core.types import Interval

DASH = "—"
"""Shown in place of a value that could not be computed."""

COUNT_KEYS = frozenset({"fairness.count", "fairness.min_group_size"})
"""Metric keys whose values are counts, shown as integers."""

def number(value: float | None, *, count: bool = False) -> str:
    """Format a metric value: four decimals, an integer for counts, a dash for ``None``.

    Very small or very large magnitudes switch to four significant digits in scientific
    notation so that they never read as ``0.0000``.
    """
    if value is None:
        return DASH
    if count and float(value).is_integer():
        return f"{int(value):d}"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-4 or magnitude >= 1e6):
        return f"{value:.3e}"
    return f"{value:.4f}"


def metric_value(key: str, value: float | None) -> str:
    """Format ``value`` of metric ``key``, as an integer when the key is a count."""
    return number(value, count=key in COUNT_KEYS)


def integer(value: int | None) -> str:
    """Format a count, or a dash for ``None``."""
    return DASH if value is None else f"{value:d}"


def interval(ci: Interval | None) -> str:
    """``low–high (95%, method)``, or an empty string when there is no interval."""
    if ci is None:
        return ""
    return f"{number(ci.low)}–{number(ci.high)} ({level(ci.level)}, {ci.method})"


def level(value: float) -> str:
    """A confidence level as a percentage: ``0.95`` gives ``95%``."""
    return f"{round(value * 100, 4):g}%"


def duration(seconds: float) -> str:
    """A duration for humans: ``0.042 s``, ``12.3 s``, ``4 min 05 s``."""
    if not math.isfinite(seconds) or seconds < 0:
        return DASH
    if seconds < 1:
        return f"{seconds:.3f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes:d} min {rest:02d} s"


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


@dataclass(frozen=True)
class Cell:
    """A formatted value; ``title`` and ``note`` explain a missing one."""

    text: str
    title: str | None = None
    note: int | None = None
    extra: str | None = None


@dataclass(frozen=True)
class Unit:
    """How a metric's values read: ``percent`` (shares and ratios), ``points`` (a difference of
    shares), ``count`` (people) or ``plain`` (any other number)."""

    kind: Literal["percent", "points", "count", "plain"]

    def show(self, value: float, avoid: Sequence[float] = ()) -> str:
        """``value`` in this unit, with enough digits not to read as any of ``avoid`` (thresholds)."""
        if self.kind == "count":
            return f"{value:,.0f}" if float(value).is_integer() else _plain(value, avoid)
        if self.kind == "plain":
            return _plain(value, avoid)
        number = _percent_digits(value, avoid)
        return f"{number}%" if self.kind == "percent" else f"{number} points"

    def bare(self, value: float, avoid: Sequence[float] = ()) -> str:
        """``value`` without its unit word (for the first bound of a range)."""
        return _percent_digits(value, avoid) if self.kind in ("percent", "points") else self.show(value, avoid)


def _percent_digits(value: float, avoid: Sequence[float]) -> str:
    """``value`` × 100 with the fewest decimals that neither read as 0 nor as any of ``avoid``;
    a value short of ±100% never reads as "100" (an upper bound of 0.9997 is 99.97, not 100).

    >>> _percent_digits(0.9997, ()), _percent_digits(0.5, ()), _percent_digits(1.0, ())
    ('99.97', '50', '100')
    """
    avoid = (*avoid, 1.0, -1.0)
    scaled = value * 100
    magnitude = abs(scaled)
    start = 0 if magnitude >= 10 or magnitude == 0 else 1 if magnitude >= 1 else max(1, 1 - _exponent(magnitude))
    for decimals in range(start, start + 8):
        text = f"{scaled:.{decimals}f}"
        if float(text) != 0 or scaled == 0:
            if all(value == other or text != f"{other * 100:.{decimals}f}" for other in avoid):
                return text
    return f"{scaled:.6g}"


def _exponent(magnitude: float) -> int:
    return int(f"{magnitude:e}".split("e")[1])


def _plain(value: float, avoid: Sequence[float]) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    for digits in range(3, 18):
        text = f"{value:.{digits}g}"
        if all(value == other or text != f"{other:.{digits}g}" for other in avoid):
            return text
    return repr(value)
