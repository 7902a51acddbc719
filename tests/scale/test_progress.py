"""The progress line of a long pass: what it says, and how often it is redrawn."""

from __future__ import annotations

from guardrail.scale.progress import progress_line, terminal_progress
from guardrail.scale.stream import ScanProgress


def test_the_line_says_rows_partitions_rate_and_time_left() -> None:
    line = progress_line(ScanProgress(rows=25_000_000, partitions_done=25, partitions=100, total_rows=100_000_000, seconds=10.0))
    assert line == "scanned 25,000,000 / 100,000,000 rows (25%) · 25/100 partitions · 2,500,000 rows/s · 30 s left"
    unknown = progress_line(ScanProgress(rows=1_000, partitions_done=0, partitions=3, total_rows=None, seconds=2.0))
    assert unknown == "scanned 1,000 rows · 0/3 partitions · 500 rows/s"
    long = progress_line(ScanProgress(rows=1, partitions_done=0, partitions=1, total_rows=10_000, seconds=1.0))
    assert long.endswith("2 h 46 min left")


def test_redraws_at_most_twice_a_second_and_always_ends_the_line() -> None:
    written: list[str] = []
    now = [0.0]
    show = terminal_progress(written.append, clock=lambda: now[0])
    for step in range(10):  # ten updates within 0.45 s: one redraw
        now[0] = step * 0.05
        show(ScanProgress(rows=step, partitions_done=0, partitions=2, total_rows=100, seconds=now[0] + 0.1))
    assert len(written) == 1 and written[0].startswith("\r\033[K")
    show(ScanProgress(rows=100, partitions_done=2, partitions=2, total_rows=100, seconds=1.0))
    assert len(written) == 2 and written[-1].endswith("\n")


def test_closing_ends_a_line_left_open_by_a_failed_pass() -> None:
    written: list[str] = []
    show = terminal_progress(written.append, clock=lambda: 0.0)
    show(ScanProgress(rows=5, partitions_done=0, partitions=2, total_rows=100, seconds=1.0))
    show.close()
    assert written[-1] == "\n"
    show.close()
    assert len(written) == 2  # closed once only
