"""Every changed input of an audit scored through the model in large batches.

Probes do not call the model one example at a time (the way CheckList-style suites are
usually written): each probe hands over whole frames of changed rows, the scorer stacks every
probe's frames into one table and runs the model over it in chunks of :data:`BATCH_ROWS`
rows, then hands each probe its part back. The model's own batching (a torch adapter's
mini-batches, a scikit-learn pipeline's vectorised transforms) does the rest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

BATCH_ROWS = 65_536
"""Rows per call to the model: large enough that per-call costs vanish, small enough that a
tokenised chunk of long documents stays within memory."""


@dataclass(frozen=True)
class Scored:
    """The model's decisions on one frame, and its positive-class score where it gives one."""

    decisions: np.ndarray
    scores: np.ndarray | None

    def take(self, rows: np.ndarray) -> Scored:
        return Scored(self.decisions[rows], None if self.scores is None else self.scores[rows])


@dataclass
class BatchScorer:
    """Scores frames through ``model.predict`` in as few calls as possible, counting what it did."""

    model: Any
    positive_label: Any
    batch_rows: int = BATCH_ROWS
    inputs: int = 0
    calls: int = 0
    seconds: float = 0.0
    classes: tuple[Any, ...] = ()
    """Every label the model can output, as its predictions declare them (empty when they do not)."""

    def score(self, frames: Sequence[pd.DataFrame]) -> list[Scored]:
        """Each frame's decisions and scores, the frames stacked and scored together."""
        import pandas as pd

        lengths = [len(f) for f in frames]
        total = sum(lengths)
        if total == 0:
            return [Scored(np.asarray([], dtype=object), None) for _ in frames]
        stacked = pd.concat([f for f in frames if len(f)], ignore_index=True)
        started = time.perf_counter()
        decisions: list[np.ndarray] = []
        scores: list[np.ndarray] | None = []
        for start in range(0, total, self.batch_rows):
            found = self.model.predict(stacked.iloc[start : start + self.batch_rows], self.positive_label)
            self.calls += 1
            self.classes = self.classes or tuple(found.classes)
            decisions.append(np.asarray(found.labels))
            if found.scores is None or scores is None:
                scores = None
            else:
                scores.append(np.asarray(found.scores, dtype=float))
        self.seconds += time.perf_counter() - started
        self.inputs += total
        all_decisions = np.concatenate(decisions)
        all_scores = np.concatenate(scores) if scores else None
        out: list[Scored] = []
        offset = 0
        for length in lengths:
            rows = np.arange(offset, offset + length)
            out.append(Scored(all_decisions[rows], None if all_scores is None else all_scores[rows]))
            offset += length
        return out

    def summary(self) -> dict[str, Any]:
        """What the scorer did, for the run record."""
        return {"inputs": self.inputs, "batches": self.calls, "seconds": round(self.seconds, 3)}


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Whether each decision differs (labels compared as values, whatever their type)."""
    if len(before) != len(after):
        raise ValueError(f"{len(before)} decisions before, {len(after)} after")
    return np.asarray(before != after, dtype=bool).reshape(len(before))
