"""The one-dimensional search that both the σ planner and the canary audit's ε bound need."""

from __future__ import annotations

from collections.abc import Callable


def crossing(
    below: Callable[[float], bool],
    high: float,
    *,
    grow: Callable[[float], float],
    close: Callable[[float, float], bool],
) -> tuple[float, float]:
    """Where a monotone condition stops holding, on ``x ≥ 0``: ``below(x)`` is true below the
    crossing and false above it (true at 0, which is never evaluated).

    ``high`` is grown by ``grow`` until ``below(high)`` is false (the previous ``high``
    becomes ``low``), then ``[low, high]`` is bisected until ``close(low, high)``. Returns
    ``(low, high)``, with ``below`` true at ``low`` (or ``low`` = 0) and false at ``high``.
    ``grow`` may raise to stop a search that runs away.

    >>> low, high = crossing(lambda x: x * x < 2, 1.0, grow=lambda h: 2 * h, close=lambda lo, hi: hi - lo <= 1e-9)
    >>> round(low, 6), round(high, 6)
    (1.414214, 1.414214)
    """
    low = 0.0
    while below(high):
        low, high = high, grow(high)
    while not close(low, high):
        middle = (low + high) / 2
        if below(middle):
            low = middle
        else:
            high = middle
    return low, high
