"""The Ray engine against the streaming engine on the same Parquet partitions (issue 19).

A generated decision log (``--partitions`` Parquet files of ``--rows`` rows in all; two
sensitive columns, a 0/1 label, a score and the decision) is scanned, predictions only, by
:func:`~guardrail.scale.stream.stream_scan` and by :func:`~guardrail.scale.ray_engine.ray_scan`
on a local Ray cluster of 1 and of 2 workers (started on loopback for the scan and stopped after
it, as ``--engine ray`` does without an address). The results are checked identical.

Printed for each: wall time and rows/s; for Ray also the overhead (cluster start until the
first partition is back, and shutdown) and the steady rate (rows per second between the first
and the last partition), the speed-up over the stream, and from the steady rate per worker a
projection of a billion-row scan on N nodes of ``--cores`` cores (overhead + rows / (rate ·
nodes · cores), the rate per core being the best steady rate per worker measured here; the projection assumes the data is spread over at least as many partitions as
cores and that reading scales with cores, as it does on local disks or object storage).

Usage: ``.venv/bin/python benchmarks/scale_ray.py [--rows 4000000] [--partitions 16] [--cores 16]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

from guardrail.scale.stream import BatchOutcome, Partial, ScanPlan, ScanProgress  # noqa: E402

PLAN = ScanPlan(
    columns=("sex", "race", "label", "decision", "score"),
    feature_sets=(("sex",), ("race",), ("sex", "race")),
    n_cells=4,
    calibration_bins=(10,),
    strata=("sex", "race"),
    sample_capacity=200,
    seed=0,
)
BILLION = 1_000_000_000


def score(frame: pd.DataFrame) -> BatchOutcome:
    """Predictions only: cell 2·label + decision."""
    label = frame["label"].to_numpy(dtype=np.int64)
    return BatchOutcome(
        cells=2 * label + frame["decision"].to_numpy(dtype=np.int64), y_true=label.astype(bool), y_score=frame["score"].to_numpy()
    )


def make_log(folder: Path, rows: int, partitions: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for index, n in enumerate(np.diff(np.linspace(0, rows, partitions + 1).astype(np.int64))):
        s = rng.random(n)
        frame = pd.DataFrame(
            {
                "sex": rng.choice(["Female", "Male"], size=n),
                "race": rng.choice(["Asian", "Black", "Other", "White"], size=n, p=[0.1, 0.2, 0.05, 0.65]),
                "label": (rng.random(n) < s).astype(np.int64),
                "decision": (s >= 0.5).astype(np.int64),
                "score": np.round(s, 3),
            }
        )
        (folder / f"part={index:04d}").mkdir(parents=True)
        frame.to_parquet(folder / f"part={index:04d}" / "data.parquet", index=False)


def same(a: Partial, b: Partial) -> bool:
    counts_a, counts_b = a.counts.tables(), b.counts.tables()
    if counts_a.keys() != counts_b.keys() or a.rows != b.rows:
        return False
    if not all(np.array_equal(counts_a[k][1], counts_b[k][1]) for k in counts_a):
        return False
    return bool(a.sample.draw(1000, min_per_stratum=10)[0].equals(b.sample.draw(1000, min_per_stratum=10)[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--batch-rows", type=int, default=65_536)
    parser.add_argument("--cores", type=int, default=16, help="cores per node in the projection")
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated log (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    from guardrail.scale.ray_engine import ray_scan
    from guardrail.scale.sources import resolve_source
    from guardrail.scale.stream import stream_scan

    work = args.work or Path(tempfile.mkdtemp(prefix="guardrail-scale-ray"))
    try:
        folder = work / "log"
        if not folder.exists():
            make_log(folder, args.rows, args.partitions)
        source = resolve_source("log", None, folder=work)
        print(f"{args.rows:,} rows in {args.partitions} Parquet partitions, {os.cpu_count()} CPUs here, batches of {args.batch_rows:,}")

        started = time.perf_counter()
        streamed = stream_scan(source, PLAN, score, batch_rows=args.batch_rows)
        stream_s = time.perf_counter() - started
        print(f"stream          {stream_s:7.2f} s  {streamed.rows / stream_s:12,.0f} rows/s")

        per_core, overheads = 0.0, []
        for workers in (1, 2):
            seen: list[tuple[float, ScanProgress]] = []
            started = time.perf_counter()
            partial = ray_scan(
                source,
                PLAN,
                score,
                batch_rows=args.batch_rows,
                address=None,
                workers=workers,
                progress=lambda p: seen.append((time.perf_counter() - started, p)),
            )
            total = time.perf_counter() - started
            (first_t, first), (last_t, last) = seen[0], seen[-1]
            steady = (last.rows - first.rows) / (last_t - first_t) if last_t > first_t else float("nan")
            overhead = first_t - first.rows / steady + (total - last_t)  # start until work began, plus shutdown
            per_core = max(per_core, steady / workers)
            overheads.append(overhead)
            print(
                f"ray, {workers} worker{'s' if workers > 1 else ' '} {total:7.2f} s  {partial.rows / total:12,.0f} rows/s"
                f"  (steady {steady:,.0f} rows/s, overhead {overhead:.1f} s; speed-up over stream {stream_s / total:.2f}×,"
                f" steady {steady / (streamed.rows / stream_s):.2f}×)  identical: {same(partial, streamed)}"
            )
        overhead = max(overheads)
        projection = ", ".join(
            f"{nodes} node{'s' if nodes > 1 else ''} {(overhead + BILLION / (per_core * nodes * args.cores)) / 60:.1f} min"
            for nodes in (1, 4, 16, 64)
        )
        print(f"1 billion rows at {per_core:,.0f} rows/s per core, {args.cores} cores per node (+{overhead:.0f} s overhead): {projection}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
