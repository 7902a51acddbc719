"""The Ray engine: one pass over a partitioned source, a Ray task per partition.

Ray Data hands each partition (a data file of the :class:`~guardrail.scale.sources.Source`) to
a task that reads it with :func:`~guardrail.scale.sources.iter_batches` — the streaming engine's
reader, so parsing and dtypes are the same — scores each batch with the model and counts it into
a :class:`~guardrail.scale.stream.Partial`, which comes back pickled (one row per partition). The
driver merges each partial as it arrives (tables and sample are the same in any merge order, so
the driver holds one partial at a time): the result is the streaming engine's, table for
table and row for row of the sample.

* **Where it runs.** ``address=None`` starts a one-node Ray cluster in this process on loopback
  (:mod:`guardrail.scale.loopback`: :data:`~guardrail.scale.loopback.RAY_ENV` in the environment
  before Ray is imported, the node IP ``127.0.0.1``), with ``workers`` CPUs, and stops it at the
  end. An address joins an existing cluster (``engine.address`` or ``RAY_ADDRESS``; on loopback
  the driver stays on loopback too); every node needs guardrail installed, as here.
* **Errors are data.** A task that fails on its partition (a :class:`DataError` from the reader,
  an error of the model) returns the exception instead of a partial; the driver raises it as is,
  so the command line says what the streaming engine would have said (exit 3 for bad data),
  never a Ray traceback. Such errors are not retried: reading again gives the same error.
* **Workers that die** (the OOM killer, a crash, a lost node) are Ray's to recover: the task runs
  again, up to :data:`MAX_RETRIES` more times, and the result is the same. When the retries are
  spent the pass stops with :class:`EngineError` (exit 2) naming the partition.
* **Quiet.** Ray Data's progress bars and log lines are off (the command line prints its own
  progress through ``progress``); Ray's own logs stay in its session folder.

Plain tasks, not an actor pool: Ray Data restarts pool actors for ever by default, and an actor
pool that may restart prints an error line from Ray's core worker on every pass (Ray 2.55:
"has constructor arguments in the object store and max_restarts > 0"); a task's ``max_retries``
is the retry rule wanted here.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import pickle
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.errors import DataError, EngineError, FederationError, GuardrailError, MissingExtraError, UsageError, first_line
from guardrail.scale.loopback import LOOPBACK, RAY_ENV, check_ray_stays_on_loopback, ray_init_args
from guardrail.scale.stream import Partial, ProgressFn, ScanPlan, ScanProgress, ScoreBatch, partition_namer, scan_batches

if TYPE_CHECKING:
    from guardrail.scale.sources import Source

QUERY_REFUSED = "a query runs on one machine; use --engine stream"
"""Why the Ray engine refuses a ``data.query`` source."""

WORKER_DIED = "a Ray worker died reading"
"""How :class:`EngineError` begins when a partition's retries are spent."""

MAX_RETRIES = 2
"""Times a partition runs again after its worker died: three attempts in all."""

KV_NAMESPACE = "guardrail-scan"
"""Ray's key-value store namespace where tasks count their attempts (to name a partition that kills its worker)."""

_QUIET_DATA_CONTEXT: dict[str, bool] = {
    "enable_progress_bars": False,
    "enable_operator_progress_bars": False,
    "print_on_execution_start": False,
    "enable_auto_log_stats": False,
    "verbose_stats_logs": False,
    "log_internal_stack_trace_to_stdout": False,
}
"""Ray Data settings (``DataContext``, Ray 2.55) that keep it from printing during a pass."""

_RAY_TIP = "Tip: In future versions of Ray"
"""Start of a FutureWarning ``ray.init`` gives about GPU visibility (the audit uses no GPU)."""

_RAY_MODULES = r"ray(\.|$)"
"""Ray's modules, whose DeprecationWarnings are silenced while the engine runs."""


def ray_scan(
    source: Source,
    plan: ScanPlan,
    score_batch: ScoreBatch,
    *,
    batch_rows: int,
    address: str | None,
    workers: int | None,
    progress: ProgressFn | None,
    gpu: bool = False,
) -> Partial:
    """Scan every partition of ``source`` on a Ray cluster: the streaming engine's :class:`Partial`.

    Parameters
    ----------
    source:
        Files (one or many partitions); a query is refused (:data:`QUERY_REFUSED`).
    plan, score_batch, batch_rows:
        As for :func:`~guardrail.scale.stream.stream_scan`. ``score_batch`` travels to the workers
        pickled: a module-level function, a :func:`functools.partial` of one, or an object of an
        importable class.
    address:
        An existing cluster (``host:port`` of its head); ``None`` starts a local one on loopback
        for the pass.
    workers:
        Partitions read at once (``None``: one per CPU of the cluster); also the CPUs of a local cluster.
    progress:
        Called as partitions finish.
    gpu:
        The model runs on CUDA where a worker has it: each task then asks for its share of the
        cluster's GPUs (all of them shared by the tasks that run at once), and ``score_batch``
        places the model on the worker's device when it arrives there.

    Raises
    ------
    DataError
        The source is a query, or a partition cannot be read (the reader's own error).
    EngineError
        The cluster cannot be reached or started off loopback, or a partition's worker died
        :data:`MAX_RETRIES` + 1 times.
    """
    if source.kind == "query":
        raise DataError(QUERY_REFUSED, where=source.where, hint="the Ray engine reads Parquet or CSV partitions (data.path)")
    if batch_rows < 1:
        raise UsageError(f"batch_rows must be at least 1, not {batch_rows}")
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be at least 1, not {workers}", hint="leave it unset to use every CPU of the cluster")
    from guardrail.scale.sources import count_rows

    count = len(source.partitions)
    total_rows = count_rows(source)
    started = time.perf_counter()
    merged = Partial(plan)
    if count == 0:
        return merged
    scan_id = uuid.uuid4().hex
    try:
        import ray.data  # noqa: F401  (Ray Data needs pyarrow, pandas and fsspec besides Ray)
    except ImportError as exc:
        raise MissingExtraError(exc.name or "ray", "scale") from None
    with _connected(address, workers):
        import ray.data
        from ray.exceptions import RayError

        task = _ScanPartition(source, plan, score_batch, batch_rows, scan_id)
        compute = ray.data.TaskPoolStrategy(size=workers) if workers else None
        finished: set[int] = set()
        rows = 0
        with _quiet(ray.data.DataContext.get_current()):
            items = ray.data.from_items([{"partition": i} for i in range(count)], override_num_blocks=count)
            cluster: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
            gpus = gpu_share(cluster, workers) if gpu else 0.0
            results = items.map_batches(
                task, batch_size=1, num_cpus=1, num_gpus=gpus or None, compute=compute, max_retries=MAX_RETRIES
            )
            try:
                for row in results.iter_rows():
                    index, kind, payload = int(row["partition"]), str(row["kind"]), bytes(row["payload"])
                    if kind == "error":
                        raise _unpickled_error(payload, index, source)
                    partial: Partial = pickle.loads(payload)
                    finished.add(index)
                    rows += partial.rows
                    merged.merge(partial)  # as it arrives: tables and sample are the same in any merge order
                    if progress is not None:
                        progress(ScanProgress(rows, len(finished), count, total_rows, time.perf_counter() - started))
            except GuardrailError:
                raise
            except RayError as exc:
                raise _died(exc, scan_id, finished, source) from None
            finally:
                _forget_attempts(scan_id)
    if len(finished) != count:
        missing = sorted(set(range(count)) - finished)
        raise EngineError(
            f"the Ray engine returned {len(finished)} of {count} partitions",
            where=_partition_names(source, missing),
            hint="run again; report this with your Ray version if it persists",
        )
    return merged


def gpu_share(resources: dict[str, float], workers: int | None) -> float:
    """The GPUs each task asks for: the cluster's GPUs shared by the tasks that run at once (one
    per CPU, or ``workers``), at most one; 0 on a cluster without GPUs.

    >>> gpu_share({"CPU": 16.0, "GPU": 2.0}, None), gpu_share({"CPU": 4.0, "GPU": 8.0}, None), gpu_share({"CPU": 8.0}, 2)
    (0.125, 1.0, 0.0)
    """
    gpus = float(resources.get("GPU", 0.0))
    if gpus <= 0:
        return 0.0
    at_once = workers or max(1, int(resources.get("CPU", 1)))
    return min(1.0, gpus / at_once)


class _ScanPartition:
    """What a Ray task runs on one partition: read, score and count it; an error comes back as data."""

    def __init__(self, source: Source, plan: ScanPlan, score_batch: ScoreBatch, batch_rows: int, scan_id: str) -> None:
        self.source = source
        self.plan = plan
        self.score_batch = score_batch
        self.batch_rows = batch_rows
        self.scan_id = scan_id

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        """``batch``: one row, ``{"partition": [i]}``; the result: that row with the partial or the error."""
        from guardrail.scale.sources import iter_batches

        index = int(batch["partition"][0])
        _count_attempt(self.scan_id, index)
        try:
            frames = ((b.partition, b.frame) for b in iter_batches(self.source, self.plan.columns, self.batch_rows, partitions=[index]))
            partial = scan_batches(self.plan, frames, self.score_batch, where=partition_namer(self.source))
            kind, payload = "partial", pickle.dumps(partial, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # any error of the partition goes back to the driver, which raises it
            kind, payload = "error", _pickled_error(exc)
        return {"partition": np.array([index]), "kind": np.array([kind]), "payload": np.array([payload], dtype=object)}


def _pickled_error(exc: Exception) -> bytes:
    """``exc`` pickled, or a description of it where it does not survive pickling."""
    try:
        payload = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)
        return payload
    except Exception:
        return pickle.dumps((type(exc).__name__, first_line(exc)))


def _unpickled_error(payload: bytes, index: int, source: Source) -> Exception:
    """The exception a task sent back (as the streaming engine would have raised it)."""
    error = pickle.loads(payload)
    if isinstance(error, Exception):
        return error
    name, message = error
    return EngineError(f"{name}: {message}", where=_partition_names(source, [index]))


def _count_attempt(scan_id: str, index: int) -> None:
    """Count one more attempt at partition ``index`` in Ray's key-value store (best effort:
    the count only names the partition when its worker keeps dying)."""
    try:
        from ray.experimental import internal_kv

        key = f"{scan_id}/{index}"
        seen = internal_kv._internal_kv_get(key, namespace=KV_NAMESPACE)
        internal_kv._internal_kv_put(key, str(int(seen or 0) + 1), namespace=KV_NAMESPACE)
    except Exception:  # nosec: a missing count never fails the pass
        pass


def _attempts(scan_id: str, indices: list[int]) -> dict[int, int]:
    """How many times each of ``indices`` was started (0 where unknown)."""
    counts = {}
    for index in indices:
        try:
            from ray.experimental import internal_kv

            seen = internal_kv._internal_kv_get(f"{scan_id}/{index}", namespace=KV_NAMESPACE)
            counts[index] = int(seen or 0)
        except Exception:
            counts[index] = 0
    return counts


def _forget_attempts(scan_id: str) -> None:
    try:
        from ray.experimental import internal_kv

        internal_kv._internal_kv_del(f"{scan_id}/", del_by_prefix=True, namespace=KV_NAMESPACE)
    except Exception:  # the cluster may be gone; a local one goes with its keys
        pass


def _died(exc: Exception, scan_id: str, finished: set[int], source: Source) -> EngineError:
    """The error for a pass Ray gave up on: the partitions whose workers died every time."""
    unfinished = [i for i in range(len(source.partitions)) if i not in finished]
    attempts = _attempts(scan_id, unfinished)
    spent = [i for i in unfinished if attempts[i] > MAX_RETRIES]
    if spent:
        message = f"{WORKER_DIED} {_partition_names(source, spent)} ({MAX_RETRIES + 1} attempts each)"
        where = source.where
    else:
        message = f"the Ray cluster failed the pass ({type(exc).__name__}: {first_line(exc)})"
        where = f"partitions not finished: {_partition_names(source, unfinished)}"
    return EngineError(
        message,
        where=where,
        hint="a worker that dies is often out of memory: lower engine.batch_rows or give each worker more memory "
        "(Ray's logs are in its session folder, under session_latest/logs); or use --engine stream",
    )


def _partition_names(source: Source, indices: list[int]) -> str:
    """``partition 3 (data/month=2026-07/part-0.parquet)``, several joined by commas (at most 5 shown)."""
    shown = [f"partition {i} ({source.partitions[i].path})" for i in indices[:5]]
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    return ", ".join(shown) + more


def _on_loopback(address: str) -> bool:
    """Whether a cluster address (``host:port``) names this machine's loopback."""
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _connected(address: str | None, workers: int | None) -> Iterator[None]:
    """Ray connected to the cluster at ``address`` (or a local one on loopback) until the block ends."""
    loopback = address is None or _on_loopback(address)
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    if loopback:
        os.environ.update(RAY_ENV)  # before ray is imported: it reads the multi-node switch once
    try:
        with warnings.catch_warnings():
            # Ray's own deprecations (Ray Data's DataContext sets a deprecated option itself) and its
            # GPU tip are for Ray's developers, not for the audit's reader
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=_RAY_MODULES)
            warnings.filterwarnings("ignore", message=_RAY_TIP, category=FutureWarning)
            if loopback:
                try:
                    check_ray_stays_on_loopback()
                except FederationError as exc:
                    raise EngineError(exc.message, where=exc.where, hint=exc.hint) from None
            import ray

            if ray.is_initialized():
                raise EngineError(
                    "Ray is already running in this process", hint="call ray.shutdown() first, or use the guardrail command line"
                )
            options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
            if address is None:  # "local": a new cluster even where RAY_ADDRESS names one
                options |= {"address": "local", "num_cpus": workers or os.cpu_count() or 1, **ray_init_args()}
            elif loopback:
                options |= {"address": address, "_node_ip_address": LOOPBACK}
            else:
                options |= {"address": address}
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise EngineError(
                    f"cannot {'start a local Ray cluster' if address is None else 'join the Ray cluster'}: {first_line(exc)}",
                    where=address or "ray.init",
                    hint="check engine.address (or RAY_ADDRESS) and that the cluster runs the same Ray version",
                ) from None
            try:
                yield
            finally:
                ray.shutdown()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _quiet(context: Any) -> Iterator[None]:
    """Ray Data without progress bars or console log lines (its log file keeps them) until the block ends."""
    saved = {name: getattr(context, name) for name in _QUIET_DATA_CONTEXT}
    for name, value in _QUIET_DATA_CONTEXT.items():
        setattr(context, name, value)
    console = [
        handler
        for handler in logging.getLogger("ray.data").handlers
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
    ]
    levels = [handler.level for handler in console]
    for handler in console:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, level in zip(console, levels, strict=True):
            handler.setLevel(level)
        for name, value in saved.items():
            setattr(context, name, value)
