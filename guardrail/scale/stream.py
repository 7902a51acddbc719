"""One pass over the audit rows: count tables, score tables and a row-keyed sample.

A pass reads record batches, scores each with the model (any adapter) and adds it to a
:class:`Partial`: the count table of every grouping, the score table of every grouping and
calibration-bin count, and the sample that row-needing audits read. Partials are additive,
so the streaming engine fills one and the Ray engine fills one per partition and merges them:
both give exactly the tables the in-memory engine builds from the whole frame
(:mod:`guardrail.scale.tables`), and the same sample whatever the partitioning
(:mod:`guardrail.scale.sample`). Memory is bounded by the batch size, the number of groups
and the sample's capacity, never by the number of rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from guardrail.fairness.groups import Grouping
    from guardrail.fairness.scores import ScoreTable
    from guardrail.scale.sources import Source


@dataclass(frozen=True)
class ScanPlan:
    """What one pass computes."""

    columns: tuple[str, ...]
    """Columns read from the source (target, sensitive, prediction/score, the model's features)."""
    feature_sets: tuple[tuple[str, ...], ...]
    """The groupings whose count tables are kept (each sensitive feature, their intersection)."""
    n_cells: int
    """Cells of the count table per group: 4 (y_true × y_pred), 8 with a baseline, k² multiclass."""
    calibration_bins: tuple[int, ...]
    """Calibration-bin counts whose score tables are kept; () without scores."""
    strata: tuple[str, ...]
    """The sample's strata (the intersection of the sensitive features)."""
    sample_capacity: int
    """Most rows the sample keeps per stratum while streaming."""
    seed: int
    missing: str = "error"
    where: str = "data"


@dataclass(frozen=True)
class BatchOutcome:
    """A batch's rows as the tables count them."""

    cells: np.ndarray
    """Each row's count-table cell (int64)."""
    y_true: np.ndarray
    """Booleans (is the label positive), for the score tables."""
    y_score: np.ndarray | None = None
    """The positive-class score of each row, when the model gives one."""


ScoreBatch = Callable[["pd.DataFrame"], BatchOutcome]
"""Scores one batch: the model's outcomes on its rows."""


@dataclass(frozen=True)
class ScanProgress:
    """Where a pass stands, for a progress line."""

    rows: int
    partitions_done: int
    partitions: int
    total_rows: int | None
    seconds: float

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far, when the total is known."""
        if self.total_rows is None or self.rate <= 0:
            return None
        return max(0.0, (self.total_rows - self.rows) / self.rate)


ProgressFn = Callable[[ScanProgress], None]


@dataclass
class Partial:
    """One share of a pass (a batch, a partition, the whole stream): additive tables and sample."""

    plan: ScanPlan
    rows: int = 0
    partitions: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        from guardrail.scale.sample import RowSample
        from guardrail.scale.tables import GroupCounts, ScoreCounts

        plan = self.plan
        self.counts = GroupCounts(plan.feature_sets, plan.n_cells, missing=plan.missing, where=plan.where)
        self.scores = (
            ScoreCounts(plan.feature_sets, plan.calibration_bins, missing=plan.missing, where=plan.where)
            if plan.calibration_bins
            else None
        )
        self.sample = RowSample(plan.strata, plan.sample_capacity, seed=plan.seed, missing=plan.missing)

    def add(self, frame: pd.DataFrame, outcome: BatchOutcome, partition: int = 0) -> None:
        """Count a scored batch of ``partition``."""
        self.counts.add(frame, outcome.cells)
        if self.scores is not None and outcome.y_score is not None:
            self.scores.add(frame, outcome.y_score, outcome.y_true)
        self.sample.add(frame)
        self.rows += len(frame)
        self.partitions.add(partition)

    def merge(self, other: Partial) -> None:
        """Add ``other``'s rows (the result is the same in any merge order)."""
        self.counts.merge(other.counts)
        if self.scores is not None and other.scores is not None:
            self.scores.merge(other.scores)
        self.sample.merge(other.sample)
        self.rows += other.rows
        self.partitions |= other.partitions


@dataclass(frozen=True)
class ScanTables:
    """The count and score tables of every row of a pass, as the fairness auditor reads them."""

    counts: Mapping[tuple[str, ...], tuple[Grouping, np.ndarray]]
    scores: Mapping[tuple[tuple[str, ...], int], ScoreTable]
    n_cells: int

    def count_table(self, features: tuple[str, ...], n_cells: int) -> tuple[Grouping, np.ndarray]:
        """The grouping by ``features`` and its ``(G, n_cells)`` counts."""
        if features not in self.counts or n_cells != self.n_cells:
            raise _not_counted(f"the count table of {' × '.join(features)} with {n_cells} cells")
        return self.counts[features]

    def score_table(self, features: tuple[str, ...], calibration_bins: int) -> tuple[Grouping, ScoreTable]:
        """The grouping by ``features`` and its score table for ``calibration_bins`` bins."""
        key = (features, calibration_bins)
        if features not in self.counts or key not in self.scores:
            raise _not_counted(f"the score table of {' × '.join(features)} with {calibration_bins} calibration bins")
        return self.counts[features][0], self.scores[key]


def _not_counted(what: str) -> Exception:
    from guardrail.core.errors import AuditError

    return AuditError(
        f"the pass over the data did not keep {what}",
        hint="this looks like a bug in the engine's plan; please report it with run.json, or run with --engine memory",
    )


def tables_of(partial: Partial) -> ScanTables:
    """The finished tables of a whole pass."""
    return ScanTables(
        counts=partial.counts.tables(),
        scores=partial.scores.tables() if partial.scores is not None else {},
        n_cells=partial.plan.n_cells,
    )


def scan_batches(
    plan: ScanPlan,
    batches: Iterable[tuple[int, pd.DataFrame]],
    score_batch: ScoreBatch,
    *,
    partitions: int = 1,
    total_rows: int | None = None,
    progress: ProgressFn | None = None,
    where: Callable[[int], str] | None = None,
) -> Partial:
    """Score and count ``(partition, frame)`` batches into one :class:`Partial`.

    A :class:`DataError` from scoring or counting a batch (a missing sensitive value, a model
    that does not match its data) names the partition it was met in, by ``where``."""
    from guardrail.core.errors import DataError

    partial = Partial(plan)
    started = time.perf_counter()
    done: set[int] = set()
    last = None
    for partition, frame in batches:
        if last is not None and partition != last:
            done.add(last)
        last = partition
        try:
            partial.add(frame, score_batch(frame), partition)
        except DataError as exc:
            if where is None:
                raise
            raise type(exc)(exc.message, where=where(partition), hint=exc.hint, more=exc.more) from None
        if progress is not None:
            progress(ScanProgress(partial.rows, len(done), partitions, total_rows, time.perf_counter() - started))
    if progress is not None:
        progress(ScanProgress(partial.rows, partitions, partitions, total_rows, time.perf_counter() - started))
    return partial


def stream_scan(
    source: Source,
    plan: ScanPlan,
    score_batch: ScoreBatch,
    *,
    batch_rows: int,
    progress: ProgressFn | None = None,
) -> Partial:
    """The streaming engine: every batch of ``source`` in order, on this machine."""
    from guardrail.scale.sources import count_rows, iter_batches

    batches = ((batch.partition, batch.frame) for batch in iter_batches(source, plan.columns, batch_rows))
    return scan_batches(
        plan, batches, score_batch, partitions=max(1, len(source.partitions)), total_rows=count_rows(source), progress=progress,
        where=partition_namer(source),
    )


def partition_namer(source: Source) -> Callable[[int], str]:
    """How errors name a batch's partition: its file, or the source itself (a query)."""
    from guardrail.spec.yamlsource import display_path

    def name(partition: int) -> str:
        if source.partitions and 0 <= partition < len(source.partitions):
            return f"{display_path(source.partitions[partition].path)} (partition {partition + 1} of {len(source.partitions)})"
        return source.where

    return name
