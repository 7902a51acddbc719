"""The progress line of a long pass: rows, partitions, rate and time left.

The CLI shows it on a terminal only (rewritten in place, at most a few times a second), never
in CI logs or pipes, where a line per update would bury the verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from guardrail.scale.stream import ScanProgress

REFRESH_SECONDS = 0.5
"""Least time between two redraws of the line."""


def progress_line(progress: ScanProgress) -> str:
    """One line saying where a pass stands.

    >>> progress_line(ScanProgress(rows=2_500_000, partitions_done=3, partitions=8, total_rows=10_000_000, seconds=2.0))
    'scanned 2,500,000 / 10,000,000 rows (25%) · 3/8 partitions · 1,250,000 rows/s · 6 s left'
    """
    rows = f"{progress.rows:,}"
    if progress.total_rows:
        rows += f" / {progress.total_rows:,} rows ({progress.rows / progress.total_rows:.0%})"
    else:
        rows += " rows"
    parts = [f"scanned {rows}", f"{progress.partitions_done}/{progress.partitions} partitions", f"{progress.rate:,.0f} rows/s"]
    if progress.eta is not None:
        parts.append(f"{_duration(progress.eta)} left")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class TerminalProgress:
    """A progress callback that redraws one terminal line through ``write``: at most every
    :data:`REFRESH_SECONDS`, and always for the pass's last update, which ends the line.
    :meth:`close` ends a line left open (a pass stopped by an error), so that the error
    starts on a line of its own."""

    def __init__(self, write: Callable[[str], None], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.write = write
        self.clock = clock
        self.last = float("-inf")
        self.open = False

    def __call__(self, progress: ScanProgress) -> None:
        finished = progress.partitions_done >= progress.partitions and (
            progress.total_rows is None or progress.rows >= progress.total_rows
        )
        now = self.clock()
        if not finished and now - self.last < REFRESH_SECONDS:
            return
        self.last = now
        self.write("\r\033[K" + progress_line(progress) + ("\n" if finished else ""))
        self.open = not finished

    def close(self) -> None:
        if self.open:
            self.write("\n")
            self.open = False


def terminal_progress(write: Callable[[str], None], *, clock: Callable[[], float] = time.monotonic) -> TerminalProgress:
    """The progress line on a terminal (see :class:`TerminalProgress`)."""
    return TerminalProgress(write, clock=clock)
