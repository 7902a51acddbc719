"""What the evidence sections show of an audit besides its own part: the parameters that
mattered, and each table's interval method said once.

- :func:`shown_params` leaves out parameters that did nothing: empty values, and the settings
  of explanation methods that did not run (``lime_samples`` without LIME).
- :class:`IntervalNotes` collects the (level, method) of a table's intervals, so the table's
  caption names each method once and only rows whose method differs from the others carry a mark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from guardrail.core.types import Interval
from guardrail.report import _format

METHOD_PARAMS: dict[str, str] = {
    "lime_": "lime",
    "ig_": "integrated_gradients",
    "gradient_shap_": "gradient_shap",
    "shapley_": "shapley_sampling",
}
"""Parameter name prefixes that configure one explanation method, by the method's name."""


def shown_params(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The parameters worth showing, in order: not empty, and not for a method that did not run."""
    methods = params.get("methods")
    ran = {str(m) for m in methods} if isinstance(methods, list | tuple) else None
    shown = []
    for key, value in params.items():
        if value is None or (isinstance(value, list | tuple | dict | str) and len(value) == 0):
            continue
        prefix = next((p for p in METHOD_PARAMS if str(key).startswith(p)), None)
        if ran is not None and prefix is not None and METHOD_PARAMS[prefix] not in ran:
            continue
        shown.append((str(key), value))
    return tuple(shown)


MARKS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class IntervalNotes:
    """The interval methods of one table: each row's interval shows only its range (and a mark
    when the table mixes methods); :meth:`caption` names every method once."""

    methods: list[tuple[str, str]] = field(default_factory=list)
    """(level, method) in order of first use."""

    def add(self, ci: Interval | None) -> int | None:
        """Record ``ci``'s method; its index in :attr:`methods`, or ``None`` without an interval."""
        if ci is None:
            return None
        key = (_format.level(ci.level), ci.method)
        if key not in self.methods:
            self.methods.append(key)
        return self.methods.index(key)

    def mark(self, index: int | None) -> str:
        """The mark a row with method ``index`` carries: none when the table uses a single method."""
        if index is None or len(self.methods) < 2:
            return ""
        return MARKS[index % len(MARKS)]

    def caption(self) -> str:
        """``Intervals: 95%, percentile bootstrap.``, or one entry per mark when methods differ."""
        if not self.methods:
            return ""
        if len(self.methods) == 1:
            level, method = self.methods[0]
            return f"Intervals: {level}, {method}."
        parts = [f"{MARKS[i % len(MARKS)]}: {level}, {method}" for i, (level, method) in enumerate(self.methods)]
        return "Intervals — " + "; ".join(parts) + "."


def interval_range(ci: Interval | None) -> str:
    """The range of ``ci`` alone, ``low–high``, or an empty string."""
    return "" if ci is None else f"{_format.number(ci.low)}–{_format.number(ci.high)}"
