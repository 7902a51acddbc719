"""A time budget and a progress line (on stderr, only when it is a terminal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


class Budget:
    """Wall-clock allowance of ``max_seconds``, started at construction."""

    def __init__(self, max_seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.max_seconds = max_seconds
        self._clock = clock
        self._started = clock()

    def elapsed(self) -> float:
        return self._clock() - self._started

    def expired(self) -> bool:
        return self.elapsed() >= self.max_seconds


class Progress:
    """``label: done/total`` rewritten in place on stderr when stderr is a TTY; silent otherwise."""

    def __init__(self, label: str, total: int, unit: str = "instances") -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if self.enabled:
            sys.stderr.write(f"\r{self.label}: {done}/{self.total} {self.unit}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
