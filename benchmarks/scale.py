"""Audits at the scale of a decision log (issue 19): the streaming engine against the in-memory
engine and fairlearn's MetricFrame, each measured in the same run.

1. **Predictions-only, 100 million rows.** A generated decision log (Parquet partitions of
   ``--partition-rows`` rows; one sensitive column with 8 groups of unequal size, a 0/1 label,
   a score with far more distinct values than guardrail keeps exactly, and the decision) is
   audited by ``guardrail audit --engine stream`` (fairness with 1,000 bootstrap resamples,
   AUC and calibration error from the score histogram). Printed: wall time, rows/s and the peak
   resident memory of the audit process (target ≤ 1.5 GB whatever the row count).
2. **Against the in-memory engine** on the first ``--memory-rows`` rows (what fits here): the
   same audit with ``--engine memory`` (pyarrow → pandas, then guardrail's tables), and pandas'
   read of the same files alone; time and memory ratios against the stream on those rows.
3. **Against fairlearn's MetricFrame** on ``--fairlearn-rows`` rows already in memory:
   MetricFrame's selection rate, TPR, FPR and count per group (points only), against
   guardrail's stream of the same rows from disk (points and intervals).
4. **Model scoring, 10 million rows.** The demo scikit-learn model (``models/adult-gbm.skops``,
   trained by ``make demo``) scoring the Adult test rows resampled to ``--model-rows`` rows:
   ``--engine stream`` against ``--engine memory``.

Every audit runs as its own ``guardrail`` process, and its peak memory is that process's
``ru_maxrss`` (from ``os.wait4``), so one measurement never inherits another's.

Usage: ``.venv/bin/python benchmarks/scale.py [--quick] [--rows 100000000] [--work /tmp/guardrail-scale]``
(``--quick``: 2 million rows, for a smoke run). CPU only; the Ray engine is in ``scale_ray.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

REPO = Path(__file__).resolve().parent.parent
GROUP_SHARES = (0.30, 0.22, 0.15, 0.12, 0.08, 0.06, 0.04, 0.03)
"""Eight groups of unequal size, as in a real decision log."""


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mb: float
    code: int
    pass_seconds: float | None = None
    """The engine's own time to read (and, streaming, score and count) the rows: run.json's ``scan.seconds``."""


def make_log(folder: Path, rows: int, partition_rows: int, seed: int = 0) -> None:
    """``rows`` generated decisions in Parquet partitions (reused when already there)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    done = folder / f"_complete_{rows}_{partition_rows}"
    if done.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    rng = np.random.default_rng(seed)
    names = np.array([f"group-{i}" for i in range(len(GROUP_SHARES))])
    bias = np.linspace(-0.4, 0.4, len(GROUP_SHARES))
    for index, start in enumerate(range(0, rows, partition_rows)):
        n = min(partition_rows, rows - start)
        group = rng.choice(len(GROUP_SHARES), size=n, p=GROUP_SHARES)
        signal = rng.normal(size=n) + bias[group]
        label = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(np.int8)
        score = 1 / (1 + np.exp(-(signal + rng.normal(scale=0.8, size=n))))
        table = pa.table(
            {
                "group": pa.array(names[group]),
                "label": pa.array(label),
                "score": pa.array(score),
                "decision": pa.array((score >= 0.5).astype(np.int8)),
            }
        )
        pq.write_table(table, folder / f"part-{index:05d}.parquet", row_group_size=256 * 1024)
    done.touch()


def subset(folder: Path, into: Path, partitions: int) -> Path:
    """A folder of links to the first ``partitions`` partitions of ``folder``."""
    into.mkdir(parents=True, exist_ok=True)
    for old in into.glob("*.parquet"):
        old.unlink()
    for part in sorted(folder.glob("*.parquet"))[:partitions]:
        (into / part.name).symlink_to(part)
    return into


def spec(path: Path, data: Path, *, model: str, sensitive: str, target: str, bootstrap: int = 1000) -> Path:
    path.write_text(
        f"""schema_version: 1
kind: audit
name: scale-benchmark
model: {model}
data: {{path: {data}, target: {target}, sensitive: [{sensitive}]}}
audits:
  - {{id: fairness, use: fairness, params: {{bootstrap: {bootstrap}}}}}
report: {{out: {path.parent / ('out-' + path.stem)}, formats: [json]}}
"""
    )
    return path


def audit(spec_path: Path, engine: str) -> Measured:
    """``guardrail audit`` in its own process: wall time and that process's peak memory."""
    command = [sys.executable, "-m", "guardrail", "audit", str(spec_path), "--engine", engine, "--no-gate", "--no-history", "--quiet"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, "CI": "1"})
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"guardrail audit --engine {engine} exited {code}")
    record = json.loads((spec_path.parent / f"out-{spec_path.stem}" / "run.json").read_text())
    return Measured(seconds, usage.ru_maxrss / 1024, code, float(record["scan"]["seconds"]))


def in_child(code: str) -> Measured:
    """Python ``code`` in its own process (pandas' read alone): time and peak memory."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code])
    _, status, usage = os.wait4(process.pid, 0)
    return Measured(time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))


def row(name: str, rows: int, measured: Measured) -> str:
    read = f"{measured.pass_seconds:>9.1f} {rows / measured.pass_seconds:>13,.0f}" if measured.pass_seconds else f"{'':>9} {'':>13}"
    return f"{name:<36} {rows:>13,} {measured.seconds:>9.1f} {rows / measured.seconds:>11,.0f} {read} {measured.peak_mb:>9,.0f}"


HEADER = f"{'run':<36} {'rows':>13} {'seconds':>9} {'rows/s':>11} {'pass s':>9} {'pass rows/s':>13} {'peak MB':>9}"
NOTE = (
    "seconds: the whole audit in its own process (start, read, score, count, the bootstrap of every interval, the "
    "record); pass: the engine's read (streaming: read, score and count) alone, from run.json's scan.seconds"
)


def predictions_only(work: Path, rows: int, partition_rows: int, memory_rows: int, fairlearn_rows: int) -> None:
    log = work / "log"
    print(f"generating {rows:,} rows in partitions of {partition_rows:,} (cached) …", flush=True)
    make_log(log, rows, partition_rows)
    model = "{adapter: predictions, column: decision, score_column: score}"
    print(NOTE)
    print("\n1. predictions-only audit of the whole log, streaming engine")
    print(HEADER)
    whole = audit(spec(work / "whole.yaml", log, model=model, sensitive="group", target="label"), "stream")
    print(row("guardrail --engine stream", rows, whole))
    verdict = "met" if whole.peak_mb <= 1536 else "MISSED"
    print(f"peak memory {whole.peak_mb:,.0f} MB against the 1,536 MB target: {verdict}")

    parts = max(1, memory_rows // partition_rows)
    few = subset(log, work / "first", parts)
    n = min(rows, parts * partition_rows)
    print(f"\n2. the first {n:,} rows: streaming engine against pandas + the in-memory engine")
    print(HEADER)
    small = spec(work / "first.yaml", few, model=model, sensitive="group", target="label")
    stream = audit(small, "stream")
    memory = audit(small, "memory")
    read = in_child(f"import pandas as pd, pathlib; frames = [pd.read_parquet(p) for p in sorted(pathlib.Path({str(few)!r}).glob('*.parquet'))]; pd.concat(frames)")
    print(row("guardrail --engine stream", n, stream))
    print(row("guardrail --engine memory", n, memory))
    print(row("pandas read_parquet + concat alone", n, read))
    print(f"memory engine / stream: time {memory.seconds / stream.seconds:.2f}×, peak memory {memory.peak_mb / stream.peak_mb:.1f}×")

    parts = max(1, fairlearn_rows // partition_rows)
    few = subset(log, work / "fairlearn", parts)
    n = min(rows, parts * partition_rows)
    print(f"\n3. the first {n:,} rows: fairlearn MetricFrame (points, data in memory) against guardrail's stream (points and intervals, from disk)")
    code = f"""
import pathlib, time, pandas as pd
from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate
frame = pd.concat([pd.read_parquet(p) for p in sorted(pathlib.Path({str(few)!r}).glob('*.parquet'))], ignore_index=True)
started = time.perf_counter()
MetricFrame(metrics={{"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate, "count": count}},
            y_true=frame["label"], y_pred=frame["decision"], sensitive_features=frame["group"]).by_group
print(f"{{time.perf_counter() - started:.3f}}")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    fairlearn_seconds = float(done.stdout.strip().splitlines()[-1])
    ours = audit(spec(work / "fairlearn.yaml", few, model=model, sensitive="group", target="label", bootstrap=0), "stream")
    print(f"fairlearn MetricFrame (data already in memory, points): {fairlearn_seconds:.1f} s = {n / fairlearn_seconds:,.0f} rows/s")
    print(f"guardrail --engine stream (from disk, points and exact per-group intervals, no bootstrap): {ours.seconds:.1f} s "
          f"= {n / ours.seconds:,.0f} rows/s (pass {ours.pass_seconds:.1f} s); "
          f"fairlearn / guardrail time {fairlearn_seconds / ours.seconds:.2f}×")


def model_scoring(work: Path, rows: int, partition_rows: int) -> None:
    import numpy as np
    import pandas as pd

    model = REPO / "models" / "adult-gbm.skops"
    data = REPO / "data" / "adult-test.csv.gz"
    if not model.exists() or not data.exists():
        print("\n4. skipped: run `make demo` first (it trains models/adult-gbm.skops)")
        return
    folder = work / "adult"
    done = folder / f"_complete_{rows}"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        adult = pd.read_csv(data)
        rng = np.random.default_rng(0)
        for index, start in enumerate(range(0, rows, partition_rows)):
            n = min(partition_rows, rows - start)
            adult.iloc[rng.integers(0, len(adult), size=n)].to_parquet(folder / f"part-{index:05d}.parquet", index=False)
        done.touch()
    trusted = "[sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor]"
    spec_path = spec(work / "adult.yaml", folder, model=f"{{adapter: sklearn, path: {model}, trusted_types: {trusted}}}",
                     sensitive="sex, race", target="income_over_50k")
    print(f"\n4. model-scoring audit of {rows:,} rows (the demo gradient boosting model)")
    print(HEADER)
    stream = audit(spec_path, "stream")
    print(row("guardrail --engine stream", rows, stream))
    memory = audit(spec_path, "memory")
    print(row("guardrail --engine memory", rows, memory))
    print(f"memory engine / stream: time {memory.seconds / stream.seconds:.2f}×, peak memory {memory.peak_mb / stream.peak_mb:.1f}×")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--partition-rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=10_000_000)
    parser.add_argument("--fairlearn-rows", type=int, default=10_000_000)
    parser.add_argument("--model-rows", type=int, default=10_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/guardrail-scale"))
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 million rows, 1 million for the comparisons")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.partition_rows, args.memory_rows, args.fairlearn_rows, args.model_rows = 2_000_000, 250_000, 1_000_000, 1_000_000, 1_000_000
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}; work folder {args.work}")
    predictions_only(args.work, args.rows, args.partition_rows, args.memory_rows, args.fairlearn_rows)
    if not args.skip_model:
        model_scoring(args.work, args.model_rows, args.partition_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
