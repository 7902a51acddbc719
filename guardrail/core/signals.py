"""Hold SIGINT and SIGTERM back while a write commits (see :mod:`guardrail.core.atomic`).

Standard library only.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the body; their handlers run right after it.

    Only the main thread runs Python's signal handlers, so elsewhere this changes nothing
    (an interruption then reaches the main thread, not the body).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    for held in (signal.SIGINT, signal.SIGTERM):
        previous[held] = signal.signal(held, lambda number, _frame: caught.append(number))
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)
