"""The time budget and the progress line (stderr, only on a terminal)."""

from __future__ import annotations

import io
import sys

import pytest

from guardrail.explain.budget import Budget, Progress


def test_the_budget_expires_on_its_clock() -> None:
    now = [0.0]
    budget = Budget(2.0, clock=lambda: now[0])
    assert not budget.expired()
    now[0] = 2.5
    assert budget.expired() and budget.elapsed() == 2.5


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_progress_writes_only_to_a_terminal(monkeypatch: pytest.MonkeyPatch, tty: bool) -> None:
    stream = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    progress = Progress("explain x", 10)
    progress.update(5)
    progress.close()
    assert (stream.getvalue() == "\rexplain x: 5/10 instances\n") is tty
    assert (stream.getvalue() == "") is not tty
