"""The data audit at scale: guardrail's count-table engine vs the same figures from pandas,
scipy and scikit-learn one by one.

Prints, in one run, on the same generated data (``--rows`` audit rows × 20 columns: two
sensitive columns of 4 and 3 groups, a binary label, 17 features — 12 numeric with missing
values that depend on the group, one shifted against the training data, one proxy of a
sensitive column, 5 small-integer codes — and a ``--reference-rows`` training table):

1. ``guardrail.audit_data`` with every metric and ``--bootstrap`` resamples: wall time, and
   the peak resident memory of the process as a multiple of the audit frame's bytes (the
   audit runs in a child process that builds the frames, so the figures are its own).
2. The same point figures (shares, base rates, missing rates by group, NMI of every feature
   with every sensitive column, JS distance and chi-square test of every feature, duplicate
   and leaked rows) computed the usual way, one by one, with pandas ``groupby``, scikit-learn's
   ``normalized_mutual_info_score`` on the rows, scipy's ``jensenshannon`` and
   ``chi2_contingency``, pandas ``duplicated`` and a merge; its time for one pass, and that
   pass × (1 + resamples) — what a row bootstrap of those figures costs (extrapolated; one
   pass is timed, not a thousand).
3. The largest difference between the two sets of point figures (they must agree).

Usage: ``python benchmarks/data_audit.py [--rows 10000000] [--reference-rows 2000000] [--bootstrap 1000]``
Targets (issue 17): ≤ 30 s and peak memory ≤ 2× the input frame at 10M rows × 20 columns,
B = 1,000, on 2 cores. Memory is the child's peak resident size above what it held after
importing every library the audit uses (measured on a tiny audit first): the input frames plus
everything the audit allocated, as a multiple of the input frames.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd

SENSITIVE = ("region", "age_band")
TARGET = "label"


def make_frames(rows: int, reference_rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The audit frame and the training (reference) frame."""
    return _frame(rows, seed, shift=0.3), _frame(reference_rows, seed + 1, shift=0.0)


def _frame(rows: int, seed: int, *, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(4, size=rows, p=[0.4, 0.3, 0.2, 0.1]).astype(np.int8)
    age = rng.choice(3, size=rows, p=[0.5, 0.3, 0.2]).astype(np.int8)
    columns: dict[str, object] = {
        "region": pd.Categorical.from_codes(region, ["north", "south", "east", "west"]),
        "age_band": pd.Categorical.from_codes(age, ["<40", "40-65", ">65"]),
        TARGET: rng.random(rows) < 0.2 + 0.05 * region,
    }
    for j in range(12):
        values = rng.normal(size=rows)
        if j == 0:
            values += shift  # shifted against training
        if j == 1:
            values += region  # a proxy of region
        values[rng.random(rows) < 0.02 + 0.03 * (region == j % 4)] = np.nan  # missingness depends on the group
        columns[f"num_{j}"] = values
    for j in range(5):
        columns[f"code_{j}"] = rng.integers(0, 6, rows).astype(np.int8)
    return pd.DataFrame(columns)


def guardrail_child(rows: int, reference_rows: int, resamples: int, compare_rows: int, compare_reference_rows: int) -> dict[str, object]:
    """Run in a child process: build the frames, audit, report time and memory."""
    import guardrail

    small, small_reference = make_frames(2000, 1000)  # every library the audit imports, loaded before measuring
    guardrail.audit_data(small, sensitive=list(SENSITIVE), target=TARGET, reference=small_reference, bootstrap=10)
    baseline = _resident()
    audit, reference = make_frames(rows, reference_rows)
    frame_bytes = int(audit.memory_usage(deep=True).sum())
    reference_bytes = int(reference.memory_usage(deep=True).sum())
    before = _resident()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # the peak (VmHWM) restarts here: building the frames is not the audit's
    started = time.perf_counter()
    result = guardrail.audit_data(audit, sensitive=list(SENSITIVE), target=TARGET, reference=reference, bootstrap=resamples)
    seconds = time.perf_counter() - started
    peak = _peak()
    del audit, reference
    small, small_reference = make_frames(compare_rows, compare_reference_rows)
    started = time.perf_counter()
    compared = guardrail.audit_data(small, sensitive=list(SENSITIVE), target=TARGET, reference=small_reference, bootstrap=resamples)
    compare_seconds = time.perf_counter() - started
    return {
        "compare_seconds": compare_seconds,
        "compare_values": {m.ref: m.value for m in compared.metrics if m.value is not None},
        "seconds": seconds,
        "metrics": len(result.metrics),
        "frame_bytes": frame_bytes,
        "reference_bytes": reference_bytes,
        "rss_baseline": baseline,
        "rss_before": before,
        "rss_peak": peak,
    }


def _resident() -> int:
    """The process's resident memory now, in bytes (Linux)."""
    import os

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    """The process's peak resident memory since the last reset, in bytes (Linux's VmHWM)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def one_by_one(audit: pd.DataFrame, reference: pd.DataFrame, bins: int = 10) -> dict[str, float]:
    """The point figures the usual way: pandas, scikit-learn and scipy, one by one."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency
    from sklearn.metrics import normalized_mutual_info_score

    features = [c for c in audit.columns if c not in (*SENSITIVE, TARGET)]
    out: dict[str, float] = {}
    for column in SENSITIVE:
        shares = audit[column].value_counts(normalize=True)
        out[f"data.group_share[{column}]"] = float(shares.min())
        rates = audit[TARGET].groupby(audit[column], observed=True).mean()
        out[f"data.base_rate_difference[{column}]"] = float(rates.max() - rates.min())
        gaps = [audit[f].isna().groupby(audit[column], observed=True).mean() for f in features]
        out[f"data.max_missing_rate_difference[{column}]"] = float(max(g.max() - g.min() for g in gaps))
        for f in features:
            labels = _binned(audit[f], bins)
            out[f"data.proxy_nmi[{column}/column={f}]"] = float(normalized_mutual_info_score(audit[column], labels))
    for f in features:
        edges = _edges(reference[f], bins)
        ref_counts = _histogram(reference[f], edges)
        audit_counts = _histogram(audit[f], edges)
        out[f"data.shift_js[column={f}]"] = float(jensenshannon(ref_counts, audit_counts, base=2))
        table = np.stack([ref_counts, audit_counts])
        chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
    compared = [*features, *SENSITIVE, TARGET]
    out["data.duplicate_rows"] = float(audit.duplicated(subset=compared).mean())
    merged = audit[compared].merge(reference[compared].drop_duplicates(), how="left", indicator=True)
    out["data.leaked_rows"] = float((merged["_merge"] == "both").mean())
    return out


def _binned(column: pd.Series, bins: int) -> np.ndarray:
    if column.dtype.kind == "f":
        edges = np.unique(np.nanquantile(column, np.linspace(0, 1, bins + 1)[1:-1]))
        codes = np.digitize(column, edges)
        return np.where(column.isna(), -1, codes)
    return column.to_numpy()


def _edges(column: pd.Series, bins: int) -> np.ndarray | None:
    if column.dtype.kind != "f":
        return None
    return np.unique(np.nanquantile(column, np.linspace(0, 1, bins + 1)[1:-1]))


def _histogram(column: pd.Series, edges: np.ndarray | None) -> np.ndarray:
    if edges is None:
        return column.value_counts().reindex(range(6), fill_value=0).to_numpy(dtype=float)
    codes = np.where(column.isna(), len(edges) + 1, np.digitize(column, edges))
    return np.bincount(codes, minlength=len(edges) + 2).astype(float)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reference-rows", type=int, default=2_000_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--compare-rows", type=int, default=1_000_000, help="rows of the one-by-one comparison (it is slow)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        compare_reference = max(1, args.compare_rows * args.reference_rows // args.rows)
        print(json.dumps(guardrail_child(args.rows, args.reference_rows, args.bootstrap, args.compare_rows, compare_reference)))
        return 0
    command = [sys.executable, __file__, "--child", "--rows", str(args.rows), "--reference-rows", str(args.reference_rows),
               "--bootstrap", str(args.bootstrap), "--compare-rows", str(args.compare_rows)]  # fmt: skip
    child = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    gib = 1024**3
    print(f"data: {args.rows:,} audit rows × 20 columns ({child['frame_bytes'] / gib:.2f} GiB), "
          f"{args.reference_rows:,} training rows ({child['reference_bytes'] / gib:.2f} GiB); B = {args.bootstrap:,}")  # fmt: skip
    print(f"guardrail.audit_data: {child['seconds']:.1f} s for {child['metrics']} metrics, every one with its interval "
          f"(target ≤ 30 s: {'met' if child['seconds'] <= 30 else 'MISSED'})")  # fmt: skip
    inputs = child["frame_bytes"] + child["reference_bytes"]
    held = child["rss_peak"] - child["rss_baseline"]  # the frames and everything the audit allocated
    added = child["rss_peak"] - child["rss_before"]
    print(f"  peak memory above the interpreter and its libraries: {held / gib:.2f} GiB = {held / inputs:.2f}× the input "
          f"frames (target ≤ 2×: {'met' if held <= 2 * inputs else 'MISSED'}); the audit itself added {added / 2**20:.0f} MiB "
          f"= {added / inputs:.2f}× the input frames")  # fmt: skip
    compare_reference = max(1, args.compare_rows * args.reference_rows // args.rows)
    audit, reference = make_frames(args.compare_rows, compare_reference)
    started = time.perf_counter()
    reference_values = one_by_one(audit, reference)
    seconds = time.perf_counter() - started
    ours = child["compare_seconds"]
    scale = args.rows / args.compare_rows
    print(f"at {args.compare_rows:,} rows: guardrail {ours:.1f} s with every interval; pandas/scipy/scikit-learn one by one, "
          f"point figures only, {seconds:.1f} s ({seconds / ours:.1f}× guardrail); a row bootstrap of {args.bootstrap:,} "
          f"resamples of those ≈ {seconds * (1 + args.bootstrap) / ours:,.0f}× guardrail (extrapolated from the one pass)")  # fmt: skip
    if scale != 1:
        print(f"at {args.rows:,} rows, the one-by-one pass extrapolated linearly: ≈ {seconds * scale:.0f} s, "
              f"{seconds * scale / child['seconds']:.1f}× guardrail's measured {child['seconds']:.1f} s")  # fmt: skip
    values = child["compare_values"]
    differences = {key: abs(values[key] - value) for key, value in reference_values.items() if key in values}
    missing = sorted(set(reference_values) - set(values))
    worst = max(differences, key=lambda k: differences[k])
    print(f"agreement at {args.compare_rows:,} rows: {len(differences)} figures compared, largest difference "
          f"{differences[worst]:.2e} ({worst})" + (f"; not reported by guardrail: {', '.join(missing)}" if missing else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
