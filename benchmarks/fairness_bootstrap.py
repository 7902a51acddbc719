"""Fairness audit with bootstrap intervals: guardrail's count-table engine vs fairlearn.

Prints, in one run, on the same data:

1. 100k rows, 8 intersectional groups, four metrics (selection rate, TPR, FPR, precision)
   with 100 bootstrap resamples: fairlearn ``MetricFrame(n_boot=100)`` vs
   ``guardrail.audit_fairness(bootstrap=100)`` (which also computes every other rate and
   disparity); the speed-up, and the largest difference of point estimates.
2. 10M rows, 8 groups, 1,000 resamples, every rate and disparity: guardrail's wall time and
   its peak traced memory as a multiple of the input arrays (y_true, y_pred, 3 features).

Usage: ``python benchmarks/fairness_bootstrap.py [--rows 100000] [--big-rows 10000000]``
(fairlearn at 100k rows takes about three minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame({name: rng.integers(0, 2, rows).astype(np.int8) for name in ("a", "b", "c")})
    y_true = rng.random(rows) < 0.3
    group_shift = 0.05 * features["a"].to_numpy()
    y_pred = np.where(rng.random(rows) < 0.8, y_true, rng.random(rows) < 0.3 + group_shift)
    return y_true, y_pred, features


def fairlearn_run(y_true: np.ndarray, y_pred: np.ndarray, features: pd.DataFrame, resamples: int) -> tuple[float, object]:
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import precision_score

    metrics = {
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "precision": lambda t, p: precision_score(t, p, zero_division=np.nan),
    }
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics=metrics,
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=features,
            n_boot=resamples,
            ci_quantiles=[0.025, 0.975],
            random_state=0,
        )
    return time.perf_counter() - started, frame


def guardrail_run(y_true: np.ndarray, y_pred: np.ndarray, features: pd.DataFrame, resamples: int) -> tuple[float, object]:
    from guardrail import audit_fairness

    started = time.perf_counter()
    result = audit_fairness(y_true, y_pred, sensitive_features=features, groupings="intersection", bootstrap=resamples)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    args = parser.parse_args()

    y_true, y_pred, features = make_data(args.rows)
    guardrail_run(y_true[:1000], y_pred[:1000], features.iloc[:1000], 10)  # warm imports
    ours_s, result = guardrail_run(y_true, y_pred, features, 100)
    theirs_s, frame = fairlearn_run(y_true, y_pred, features, 100)
    ours = {m.key.removeprefix("fairness."): m for m in result.metrics}  # type: ignore[attr-defined]
    worst = 0.0
    for name in ("selection_rate", "tpr", "fpr", "precision"):
        expected = frame.by_group[name]  # type: ignore[attr-defined]
        for group in ours[name].by_group:
            key = tuple(int(v) for v in group.group.split(" × "))
            worst = max(worst, abs(group.value - expected.loc[key]))
    print(f"[1] {args.rows:,} rows, 8 groups, 100 resamples")
    print(f"    fairlearn MetricFrame(n_boot=100), 4 metrics:        {theirs_s:9.3f} s")
    print(f"    guardrail audit_fairness(bootstrap=100), all metrics: {ours_s:9.3f} s")
    print(f"    speed-up: {theirs_s / ours_s:,.0f}x   (target >= 1,000x)")
    print(f"    largest point-estimate difference vs MetricFrame: {worst:.1e}   (target <= 1e-12)")

    y_true, y_pred, features = make_data(args.big_rows, seed=1)
    input_bytes = y_true.nbytes + y_pred.nbytes + sum(features[c].to_numpy().nbytes for c in features)
    tracemalloc.start()
    big_s, _ = guardrail_run(y_true, y_pred, features, 1000)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"[2] {args.big_rows:,} rows, 8 groups, 1,000 resamples, every rate and disparity")
    print(f"    guardrail wall time: {big_s:.2f} s   (target <= 10 s on 2 cores)")
    print(f"    peak traced memory: {peak / 1e6:.0f} MB = {peak / input_bytes:.2f}x the input arrays ({input_bytes / 1e6:.0f} MB)   (target <= 2x)")


if __name__ == "__main__":
    main()
