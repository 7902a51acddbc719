"""Read the audit rows with the engine the run asks for (:mod:`guardrail.scale`).

* ``memory``: every row in one data frame, as guardrail always did (a folder, glob or query
  is read whole first).
* ``stream``: one pass over record batches on this machine; the count and score tables hold
  every row, the audits that need rows read a stratified sample keyed by a hash of each row.
* ``ray``: the same pass, with the partitions read and scored on a Ray cluster and the
  partial tables merged on the driver.

The three give the same count tables, points and (for one seed) intervals: the streaming
engines build exactly the tables the in-memory fairness auditor builds, and the bootstrap
runs on the tables. ``auto`` streams a source beyond one file or beyond
``engine.stream_above_mb``, unless an audit needs every row in memory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.errors import DataError, Problem, SpecError
from guardrail.spec.yamlsource import display_path

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.adapters.base import ModelAdapter
    from guardrail.run.audit import PlannedAudit
    from guardrail.scale.sources import Source
    from guardrail.scale.stream import BatchOutcome, ProgressFn, ScanPlan, ScanTables
    from guardrail.spec.loader import LoadedSpec

ENGINES = ("auto", "memory", "stream", "ray")
TABLE_AUDITS = frozenset({"fairness"})
"""Audits whose numbers come from the pass's count tables (every row)."""
WHOLE_DATA_AUDITS = {
    "data": "its representation, missingness, proxy and shift figures read every row and column",
}
"""Audits that need every row in memory, with the reason (refused by the streaming engines)."""
HEAD_ROWS = 2_000
"""Rows read before the pass for the checks made before anything is scored."""
MIN_PER_STRATUM = 200
"""Rows the sample keeps of each stratum (all of a smaller one), whatever its share."""
MAX_TARGET_VALUES = 1_000


@dataclass(frozen=True)
class EngineChoice:
    kind: str
    """memory, stream or ray."""
    reason: str
    address: str | None = None
    workers: int | None = None


@dataclass(frozen=True)
class AuditRows:
    """What the audits read: the rows (all of them, or the sample), and with a streaming engine
    the tables of every row and the target's labels over every row."""

    data: pd.DataFrame
    tables: ScanTables | None = None
    labels: tuple[Any, ...] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    """The run record's ``scan``: engine, rows, partitions, what was sampled."""


def source_of(loaded: LoadedSpec) -> Source:
    """The spec's data as a :class:`~guardrail.scale.sources.Source`."""
    from guardrail.scale.sources import resolve_source

    path = loaded.spec.data.path
    return resolve_source(path, loaded.data_query, folder=loaded.path.parent)


def choose_engine(loaded: LoadedSpec, planned: Sequence[PlannedAudit], requested: str | None) -> EngineChoice:
    """The engine that reads the rows: ``requested`` (``--engine``), else the spec's ``engine.kind``;
    ``auto`` streams what is more than one file or larger than ``engine.stream_above_mb``.

    Raises :class:`SpecError` when a streaming engine is asked for and an audit or the task
    needs every row in memory."""
    engine = loaded.spec.engine
    kind = requested or engine.kind
    address = engine.address or os.environ.get("RAY_ADDRESS") or None
    if kind == "auto" and engine.address:
        kind, reason = "ray", "engine.address names a Ray cluster"
    elif kind == "auto":
        kind, reason = _auto(loaded)
        if kind == "stream" and _whole_data_needs(loaded, planned):
            kind, reason = "memory", reason + ", but " + _whole_data_needs(loaded, planned)[0].message
    else:
        reason = "--engine" if requested else "engine.kind in the spec"
    if kind != "memory":
        problems = _whole_data_needs(loaded, planned)
        if problems:
            raise SpecError.of([
                Problem(f"{p.message}: the {kind} engine cannot run it", p.where, "run it with --engine memory (or engine.kind: memory)")
                for p in problems
            ])
    return EngineChoice(kind, reason, address if kind == "ray" else None, engine.workers if kind == "ray" else None)


def _auto(loaded: LoadedSpec) -> tuple[str, str]:
    if not loaded.data_is_one_file:
        return "stream", "the data is a query or a set of partitions"
    limit = loaded.spec.engine.stream_above_mb
    try:
        size = loaded.data_path.stat().st_size
    except OSError:
        return "memory", "one data file"
    if size > limit * 2**20:
        return "stream", f"the data file is {size / 2**20:,.0f} MiB, above engine.stream_above_mb ({limit:,})"
    return "memory", "one data file"


def _whole_data_needs(loaded: LoadedSpec, planned: Sequence[PlannedAudit]) -> list[Problem]:
    """Why this spec needs every row in memory (empty: it does not)."""
    spec = loaded.spec
    problems = []
    if spec.model is None:
        problems.append(Problem("the spec has no model, and the streaming engines score one batch by batch",
                                loaded.document.where(("data",))))
    if spec.data.task == "regression":
        problems.append(Problem("a regression target's error intervals resample rows", loaded.document.where(("data", "task"))))
    for i, plan in enumerate(planned):
        if plan.use in WHOLE_DATA_AUDITS:
            problems.append(Problem(f"audit {plan.audit_id!r} (use: {plan.use}): {WHOLE_DATA_AUDITS[plan.use]}",
                                    loaded.document.where(("audits", i, "use"))))
        custom = getattr(getattr(plan.auditor, "params", None), "custom_metrics", None)
        if plan.use == "fairness" and custom:
            problems.append(Problem(f"audit {plan.audit_id!r}: custom_metrics run on every row through fairlearn",
                                    loaded.document.where(("audits", i, "params", "custom_metrics"))))
    return problems


def scan_plan(loaded: LoadedSpec, planned: Sequence[PlannedAudit], source: Source, columns: Sequence[str],
              n_cells: int, scored: bool) -> ScanPlan:
    """What the pass keeps: the count table of every grouping a fairness audit reports and of
    each sensitive column alone (so every sensitive column meets the in-memory engine's checks:
    missing values, label length, number of groups, ``data.groups``), the score table of every
    calibration-bin count, and the sample."""
    from guardrail.auditors.fairness import groupings_of
    from guardrail.scale.stream import ScanPlan

    spec = loaded.spec
    feature_sets: list[tuple[str, ...]] = []
    bins: list[int] = []
    for plan in planned:
        if plan.use not in TABLE_AUDITS or plan.auditor is None:
            continue
        params: Any = getattr(plan.auditor, "params")
        for features in groupings_of(params.sensitive or spec.data.sensitive, params.groupings):
            if features not in feature_sets:
                feature_sets.append(features)
        if scored and params.score_metrics and params.calibration_bins not in bins:
            bins.append(params.calibration_bins)
    feature_sets += [(column,) for column in spec.data.sensitive if (column,) not in feature_sets]
    return ScanPlan(
        columns=tuple(columns),
        feature_sets=tuple(feature_sets),
        n_cells=n_cells,
        calibration_bins=tuple(bins),
        strata=tuple(spec.data.sensitive),
        sample_capacity=spec.engine.sample_rows,
        seed=spec.seed,
        missing=spec.data.missing_sensitive,
        where=source.where,
    )


def read_columns(loaded: LoadedSpec, planned: Sequence[PlannedAudit], header: Sequence[str],
                 model: ModelAdapter | None, baseline: ModelAdapter | None) -> tuple[str, ...]:
    """The columns the pass reads: every column when an audit other than fairness reads rows,
    else the target, the sensitive columns and what the model (and baseline) read."""
    if any(plan.use not in TABLE_AUDITS for plan in planned):
        return tuple(header)
    spec = loaded.spec
    wanted = [spec.data.target, *spec.data.sensitive]
    for adapter in (model, baseline):
        if adapter is None:
            continue
        reads = _model_columns(adapter)
        if reads is None:
            return tuple(header)
        wanted += reads
    return tuple(column for column in dict.fromkeys(wanted) if column in header)


def _model_columns(adapter: ModelAdapter) -> list[str] | None:
    """The columns ``adapter`` reads; None when it does not say (read every column)."""
    from guardrail.adapters.predictions import PredictionsAdapter

    if isinstance(adapter, PredictionsAdapter):
        return [adapter.column, *([adapter.score_column] if adapter.score_column else [])]
    features = list(adapter.features)
    return features or None


class BatchScorer:
    """Scores one batch: the outcomes of :func:`~guardrail.run.outcomes.prepare_outcomes`,
    coded with the labels of every row, as count-table cells. Picklable (Ray sends it to
    the workers with the model)."""

    def __init__(self, loaded: LoadedSpec, model: ModelAdapter, baseline: ModelAdapter | None,
                 labels: tuple[Any, ...], n_classes: int, *, where: str) -> None:
        self.task = loaded.spec.data.task
        self.target = loaded.spec.data.target
        self.positive = loaded.spec.data.positive_label
        self.where = where
        self.model = model
        self.baseline = baseline
        self.labels = labels
        self.n_classes = n_classes

    @property
    def runs_on_device(self) -> bool:
        """Whether the model (or the baseline) is a torch model that may run on a GPU."""
        return any(_device_of(adapter) is not None for adapter in (self.model, self.baseline))

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled on a Ray worker: a torch model moves to that machine's device (CUDA when it
        has one), as loading it there would have placed it."""
        self.__dict__.update(state)
        for adapter in (self.model, self.baseline):
            _place_on_this_machine(adapter)

    def __call__(self, frame: pd.DataFrame) -> BatchOutcome:
        from guardrail.run.outcomes import prepare_outcomes
        from guardrail.scale.stream import BatchOutcome

        model, baseline = self.model, self.baseline
        outcomes = prepare_outcomes(
            self.task,
            frame[self.target],
            lambda positive: model.predict(frame, positive),
            (lambda positive: baseline.predict(frame, positive)) if baseline is not None else None,
            declared_positive=self.positive,
            where=self.where,
            labels=self.labels,
        )
        width = 2 if self.task == "binary" else self.n_classes
        cells = np.asarray(outcomes.y_true, dtype=np.int64) * width + np.asarray(outcomes.y_pred, dtype=np.int64)
        if outcomes.y_pred_baseline is not None:
            cells = cells * 2 + np.asarray(outcomes.y_pred_baseline, dtype=np.int64)
        truth = np.asarray(outcomes.y_true, dtype=bool) if self.task == "binary" else np.zeros(len(frame), dtype=bool)
        return BatchOutcome(cells=cells, y_true=truth, y_score=outcomes.y_score)


def head_rows(source: Source, header: Sequence[str]) -> pd.DataFrame:
    """The first :data:`HEAD_ROWS` rows, for the checks made before the pass (the pass checks every row)."""
    import pandas as pd

    from guardrail.scale.sources import iter_batches

    for batch in iter_batches(source, list(header), HEAD_ROWS):
        if len(batch.frame):
            return batch.frame.head(HEAD_ROWS).reset_index(drop=True)
    return pd.DataFrame(columns=list(header))


def _class_labels(loaded: LoadedSpec, source: Source, model: ModelAdapter, labels: tuple[Any, ...], header: Sequence[str]) -> tuple[Any, ...]:
    """A multiclass target's classes as every batch codes them: the target's values over every
    row and the classes the model declares (read from its outcomes on the first rows)."""
    from guardrail.run.outcomes import prepare_outcomes

    head = head_rows(source, header)
    outcomes = prepare_outcomes(
        "multiclass", head[loaded.spec.data.target], lambda positive: model.predict(head, positive), None,
        declared_positive=None, where=source.where, labels=labels,
    )
    return outcomes.class_labels


def _device_of(adapter: object) -> str | None:
    """A torch adapter's device (``cpu``, ``cuda``, ...); None for other adapters."""
    from guardrail.adapters.torch import TorchAdapter

    return adapter.device if isinstance(adapter, TorchAdapter) else None


def _place_on_this_machine(adapter: object) -> None:
    """Move a torch adapter's model to this machine's device when it differs (CUDA when present)."""
    device = _device_of(adapter)
    if device is None:
        return
    from guardrail.adapters.torch import TorchAdapter, pick_device

    assert isinstance(adapter, TorchAdapter)
    here = pick_device()
    if here != device:
        adapter.model.to(here)
        adapter.device = here


def target_labels(loaded: LoadedSpec, source: Source) -> tuple[Any, ...]:
    """The target's distinct values over every row (at most :data:`MAX_TARGET_VALUES`)."""
    from guardrail.scale.pushdown import distinct_values

    spec = loaded.spec
    values = distinct_values(source, spec.data.target, MAX_TARGET_VALUES)
    if any(_missing(v) for v in values):
        raise DataError(
            f"target column {spec.data.target!r} has missing values",
            where=source.where,
            hint="drop rows without a label before auditing",
        )
    if len(values) > MAX_TARGET_VALUES:
        raise DataError(
            f"target column {spec.data.target!r} has more than {MAX_TARGET_VALUES:,} distinct values",
            where=source.where,
            hint="a classification audit needs a label column; check data.target",
        )
    return tuple(values)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def stream_rows(
    loaded: LoadedSpec,
    planned: Sequence[PlannedAudit],
    source: Source,
    engine: EngineChoice,
    model: ModelAdapter,
    baseline: ModelAdapter | None,
    header: Sequence[str],
    *,
    progress: ProgressFn | None = None,
) -> AuditRows:
    """One pass of the streaming or Ray engine: the tables of every row and the sample."""
    from guardrail.scale.stream import stream_scan, tables_of

    spec = loaded.spec
    labels = target_labels(loaded, source)
    columns = read_columns(loaded, planned, header, model, baseline)
    if spec.data.task == "binary":  # an undeclared or absent positive label stops the run before the pass
        import pandas as pd

        from guardrail.run.outcomes import positive_label_of

        positive_label_of(pd.Series(list(labels), name=spec.data.target), spec.data.positive_label, where=source.where)
    n_classes = len(_class_labels(loaded, source, model, labels, header)) if spec.data.task == "multiclass" else 2
    scorer = BatchScorer(loaded, model, baseline, labels, n_classes, where=source.where)
    n_cells = (4 if spec.data.task == "binary" else n_classes * n_classes) * (2 if baseline is not None else 1)
    scored = spec.data.task == "binary"
    plan = scan_plan(loaded, planned, source, columns, n_cells, scored)
    batch_rows = spec.engine.batch_rows
    started = time.perf_counter()
    if engine.kind == "stream" and pushed_down(model, baseline, planned):
        rows = _pushdown_rows(loaded, source, engine, plan, scorer, header, labels, progress=progress)
        if rows is not None:
            return rows
    if engine.kind == "ray":
        from guardrail.scale.ray_engine import ray_scan

        partial = ray_scan(source, plan, scorer, batch_rows=batch_rows, address=engine.address, workers=engine.workers,
                           progress=progress, gpu=scorer.runs_on_device)
    else:
        partial = stream_scan(source, plan, scorer, batch_rows=batch_rows, progress=progress)
    seconds = time.perf_counter() - started
    if partial.rows == 0:
        raise DataError("the data has no rows", where=source.where)
    tables = tables_of(partial)
    _check_declared_groups(loaded, tables, where=source.where)
    sample, sampled = partial.sample.draw(spec.engine.sample_rows, min_per_stratum=MIN_PER_STRATUM)
    info = {
        "engine": engine.kind,
        "reason": engine.reason,
        "source": source.where,
        "rows": partial.rows,
        "partitions": max(1, len(source.partitions)),
        "columns": list(columns),
        "batch_rows": batch_rows,
        "seconds": round(seconds, 3),
        "sample": sampled.to_dict(),
        **({"workers": engine.workers, "cluster": "address" if engine.address else "local (loopback)"} if engine.kind == "ray" else {}),
    }
    return AuditRows(data=sample, tables=tables, labels=labels, info=info)


def pushed_down(model: ModelAdapter, baseline: ModelAdapter | None, planned: Sequence[PlannedAudit]) -> bool:
    """Whether the count tables can be computed inside DuckDB: a predictions-only audit whose
    every audit reads tables (no model to run, no row to sample)."""
    from guardrail.adapters.predictions import PredictionsAdapter

    if not isinstance(model, PredictionsAdapter) or baseline is not None:
        return False
    return all(plan.use in TABLE_AUDITS for plan in planned)


MAX_PUSHED_DOWN = 1_000_000
"""Most (sensitive values, label, decision) combinations a ``GROUP BY`` may return; beyond, the
rows are streamed instead (whose count tables stop an ID-like sensitive column at once)."""


def _pushdown_rows(
    loaded: LoadedSpec,
    source: Source,
    engine: EngineChoice,
    plan: ScanPlan,
    scorer: BatchScorer,
    header: Sequence[str],
    labels: tuple[Any, ...],
    *,
    progress: ProgressFn | None,
) -> AuditRows | None:
    """The predictions-only pass: one ``GROUP BY`` in DuckDB gives the count tables (a row per
    combination of the sensitive values, the label and the decision, weighted by its rows),
    and the scores, when there are any, stream through the score tables; no row is sampled,
    because no audit reads rows (the audits' context holds the first rows for their checks).

    None when the ``GROUP BY`` is not the way: a key column named like its count column, a
    sensitive column with more values in its first batch than a grouping may have (ID-like:
    the streaming pass refuses it at once), more than :data:`MAX_PUSHED_DOWN` combinations."""
    from guardrail.adapters.predictions import PredictionsAdapter
    from guardrail.scale.pushdown import COUNT, grouped_counts
    from guardrail.scale.sources import count_rows, iter_batches
    from guardrail.scale.stream import ScanProgress, ScanTables
    from guardrail.scale.tables import GroupCounts, ScoreCounts

    spec = loaded.spec
    model = scorer.model
    assert isinstance(model, PredictionsAdapter)
    started = time.perf_counter()
    keys = list(dict.fromkeys([*spec.data.sensitive, spec.data.target, model.column]))
    if COUNT in keys or _id_like(source, spec.data.sensitive, spec.engine.batch_rows):
        return None
    grouped = grouped_counts(source, keys, limit=MAX_PUSHED_DOWN + 1)
    if len(grouped) > MAX_PUSHED_DOWN:
        return None
    decisions = PredictionsAdapter(model.column, where=model.where)
    outcome = BatchScorer(loaded, decisions, None, labels, scorer.n_classes, where=source.where)(grouped)
    counts = GroupCounts(plan.feature_sets, plan.n_cells, missing=plan.missing, where=plan.where)
    weights = grouped["n"].to_numpy(dtype=np.int64)
    counts.add(grouped, outcome.cells, weights=weights)
    rows = int(weights.sum())
    scores = None
    if model.score_column is not None and plan.calibration_bins:
        scores = ScoreCounts(plan.feature_sets, plan.calibration_bins, missing=plan.missing, where=plan.where)
        columns = list(dict.fromkeys([*spec.data.sensitive, spec.data.target, model.column, model.score_column]))
        seen, done, total = 0, set(), count_rows(source)
        partitions = max(1, len(source.partitions))
        for batch in iter_batches(source, columns, spec.engine.batch_rows):
            scored = scorer(batch.frame)
            assert scored.y_score is not None
            scores.add(batch.frame, scored.y_score, scored.y_true)
            seen += len(batch.frame)
            done.add(batch.partition)
            if progress is not None:
                progress(ScanProgress(seen, len(done) - 1, partitions, total, time.perf_counter() - started))
    if progress is not None:
        progress(ScanProgress(rows, max(1, len(source.partitions)), max(1, len(source.partitions)), rows, time.perf_counter() - started))
    if rows == 0:
        raise DataError("the data has no rows", where=source.where)
    tables = ScanTables(counts=counts.tables(), scores=scores.tables() if scores is not None else {}, n_cells=plan.n_cells)
    _check_declared_groups(loaded, tables, where=source.where)
    info = {
        "engine": engine.kind,
        "reason": engine.reason,
        "source": source.where,
        "rows": rows,
        "partitions": max(1, len(source.partitions)),
        "columns": keys + ([model.score_column] if scores is not None else []),
        "pushdown": f"count tables computed in DuckDB (GROUP BY {', '.join(keys)}: {len(grouped):,} combinations)",
        "seconds": round(time.perf_counter() - started, 3),
        "sample": None,
    }
    head = head_rows(source, header)
    return AuditRows(data=head, tables=tables, labels=labels, info=info)


def _id_like(source: Source, sensitive: Sequence[str], batch_rows: int) -> bool:
    """Whether a sensitive column has more values in the first batch than a grouping may have."""
    from guardrail.fairness.groups import MAX_GROUPS
    from guardrail.scale.sources import iter_batches

    for batch in iter_batches(source, list(sensitive), batch_rows):
        return any(batch.frame[column].nunique(dropna=False) > MAX_GROUPS for column in sensitive)
    return False


def _check_declared_groups(loaded: LoadedSpec, tables: ScanTables, *, where: str) -> None:
    """``data.groups``: every value declared, every declared value present (from the counts)."""
    from guardrail.fairness.groups import MISSING_GROUP, check_declared_groups

    for column, expected in (loaded.spec.data.groups or {}).items():
        grouping, counts = tables.counts[(column,)]  # every sensitive column is counted alone (scan_plan)
        rows = {
            label: int(n)
            for label, n in zip(grouping.labels, counts.sum(axis=1), strict=True)
            if not (label == MISSING_GROUP and loaded.spec.data.missing_sensitive == "group")  # as in memory: missing is no value
        }
        check_declared_groups(rows, column, expected, where=where)


def memory_info(loaded: LoadedSpec, data: pd.DataFrame, engine: EngineChoice, partitions: int, seconds: float) -> dict[str, Any]:
    """The run record's ``scan`` for the in-memory engine."""
    return {
        "engine": "memory",
        "reason": engine.reason,
        "source": display_path(loaded.data_path),
        "rows": len(data),
        "partitions": partitions,
        "seconds": round(seconds, 3),
        "sample": None,
    }


__all__ = ["AuditRows", "BatchScorer", "EngineChoice", "choose_engine", "memory_info", "source_of", "stream_rows"]
