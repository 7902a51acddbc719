"""Robustness probing: guardrail's batched scoring vs a plain loop that perturbs and scores one
example at a time (the way CheckList-style suites are usually written).

Two comparisons, each printed as a table with the ratio measured in the same run:

1. **Tabular** — the demo scikit-learn model (``models/adult-gbm.skops``, gradient boosting in
   a pipeline) on the Adult test file (target ``income_over_50k``, sensitive ``sex``, ``race``).
   Probes: counterfactual (``sex`` and ``race`` set to each other value) and perturbation
   (every movable numeric input moved by each default strength × its spread).
2. **Text** — guardrail's bert-tiny (2 layers, hidden 128, WordPiece vocabulary trained
   locally, nothing downloaded) that guesses a drug review's condition, on the 979 drug
   reviews (grouped by ``rating``). Probes: counterfactual (identity terms swapped with the
   shipped lexicon) and perturbation (typos). The model is ``models/drug-reviews`` when
   ``guardrail train audits/drug-reviews.yaml`` has written it, else one trained here (≈ 10 s).

guardrail: ``guardrail.audit_robustness`` with ``bootstrap=0`` (the probing, not the
intervals), timed as a whole (building the changed inputs, scoring them and the originals,
the flip rates); then again with ``--bootstrap`` resamples so the total cost is visible.
Examples probed = changed inputs scored (the originals, scored too, are not counted).

Loop: for each row, the original scored once, then each change built on its own (a copy of
the row with one other sensitive value, or with every movable feature shifted; a review with
its identity terms swapped, or with typos) and scored with ``adapter.predict`` on a one-row
frame. Statistics of the data (each attribute's values, each feature's spread, range and
random signs) are computed once, over the rows probed, with guardrail's own functions, so the
loop builds exactly the inputs guardrail builds. The loop is timed on the first
``--loop-rows`` rows and its rate per example extrapolated (it is linear in the rows).

Threads: both paths run with ``--threads`` (default 1) OpenMP/BLAS/torch threads, so that the
ratio measures batching and nothing else. One-row calls gain nothing from threads, and on a
busy 2-core machine OpenMP threads waiting on each other cost each parallel region ~10 ms (the
gradient boosting's 100 trees × 2 calls: ~2.4 s per scoring call, whatever its size), which would
distort both paths; ``--threads 2`` shows that effect.

Agreement: guardrail is run on the loop's rows too, and the two paths' flip counts and
changed-input counts compared probe by probe (they must be equal).

Usage: ``.venv/bin/python benchmarks/robustness.py [--quick] [--rows N] [--loop-rows 300] [--bootstrap 1000]``
Target (issue 18): batched ≥ 10× the loop's examples per second on the tiny BERT and on the
demo scikit-learn model. CPU only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ADULT_MODEL = REPO / "models" / "adult-gbm.skops"
ADULT_DATA = REPO / "data" / "adult-test.csv.gz"
ADULT_TARGET = "income_over_50k"
ADULT_SENSITIVE = ("sex", "race")
TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
TEXT_MODEL = REPO / "models" / "drug-reviews"
TEXT_TARGET = "condition_group"
TEXT_SENSITIVE = "rating"
SEED = 0
TARGET_RATIO = 10.0


@dataclass
class Batched:
    """One ``audit_robustness`` call: wall time, what it scored, and its flip counts by probe."""

    rows: int
    seconds: float
    changed: int
    flips: dict[str, int]
    scoring_seconds: float


@dataclass
class Loop:
    """The one-at-a-time loop: wall time, changed inputs scored, flip counts by probe."""

    rows: int
    seconds: float = 0.0
    changed: int = 0
    applicable: dict[str, int] = field(default_factory=dict)
    flips: dict[str, int] = field(default_factory=dict)


def run_guardrail(adapter: Any, frame: pd.DataFrame, flip_scopes: dict[str, str], **params: Any) -> Batched:
    """``audit_robustness`` on ``frame``, timed; ``flip_scopes`` maps a probe name to the
    (key suffix, scope) whose flip rate × rows gives its flip count."""
    import guardrail

    started = time.perf_counter()
    result = guardrail.audit_robustness(adapter, frame, seed=SEED, **params)
    seconds = time.perf_counter() - started
    scoring = result.artifacts["scoring"]
    rows = int(result.artifacts["sample"]["rows"])
    flips: dict[str, int] = {}
    for probe, spec in flip_scopes.items():
        key, scope = spec.split("@", 1)
        metric = next(m for m in result.metrics if m.key == f"robustness.{key}" and m.scope == scope)
        probed = int(metric.details.get("rows", metric.n or 0))
        flips[probe] = 0 if metric.value is None else round(metric.value * probed)
    originals = 0 if scoring.get("originals") == "from the run" else rows  # the run's own predictions are reused
    return Batched(rows, seconds, int(scoring["inputs"]) - originals, flips, float(scoring["seconds"]))


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """OpenMP, BLAS and torch (when imported) limited to ``count`` threads, restored after."""
    from threadpoolctl import threadpool_limits

    torch: Any = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(count):
        if torch is not None:
            torch.set_num_threads(count)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(before)


# -- tabular -----------------------------------------------------------------------------


def tabular_loop(adapter: Any, data: pd.DataFrame, strengths: tuple[float, ...]) -> Loop:
    """Perturb and score one row and one change at a time."""
    from guardrail.robustness.tabular import movable, spread

    inputs = data.loc[:, list(adapter.features)].reset_index(drop=True)
    started = time.perf_counter()
    # data-level statistics, once (as guardrail.robustness.tabular computes them over the rows probed)
    values = {a: tuple(pd.unique(inputs[a].dropna())) for a in ADULT_SENSITIVE}
    features = movable(inputs, [c for c in inputs.columns if c not in ADULT_SENSITIVE])
    moves: dict[str, tuple[float, np.ndarray, float, float]] = {}
    for name in features:
        column = inputs[name].to_numpy(dtype=float, na_value=np.nan)
        signs = np.random.default_rng([SEED, zlib.crc32(f"shift/{name}".encode())]).choice((-1.0, 1.0), size=len(column))
        moves[name] = (spread(column), signs, float(np.nanmin(column)), float(np.nanmax(column)))
    loop = Loop(rows=len(inputs))
    for i in range(len(inputs)):
        row = inputs.iloc[[i]]
        before = adapter.predict(row, 1).labels[0]
        for attribute, options in values.items():
            flipped = False
            for value in options:
                if value == row[attribute].iloc[0]:
                    continue
                changed = row.copy()
                changed[attribute] = pd.Series([value], index=changed.index, dtype=inputs[attribute].dtype)
                flipped |= bool(adapter.predict(changed, 1).labels[0] != before)
                loop.changed += 1
            loop.flips[attribute] = loop.flips.get(attribute, 0) + flipped
        for strength in strengths:
            changed = row.copy()
            for name, (width, signs, low, high) in moves.items():
                value = float(row[name].iloc[0])
                changed[name] = np.array([np.clip(value + signs[i] * strength * width, low, high)])
            probe = f"strength={strength:g}"
            loop.flips[probe] = loop.flips.get(probe, 0) + bool(adapter.predict(changed, 1).labels[0] != before)
            loop.changed += 1
    loop.seconds = time.perf_counter() - started
    return loop


def tabular(args: argparse.Namespace) -> list[Row]:
    import guardrail
    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.robustness.engine import DEFAULT_STRENGTHS

    if not ADULT_MODEL.exists():
        print(f"tabular: {ADULT_MODEL.relative_to(REPO)} is missing: run `make demo` (or .venv/bin/python scripts/train_adult_demo.py)")
        return []
    adapter = SklearnAdapter.load(ADULT_MODEL, trusted_types=TRUSTED)
    data = pd.read_csv(ADULT_DATA)
    if args.rows is not None:
        data = data.iloc[: args.rows].reset_index(drop=True)
    params: dict[str, Any] = {"target": ADULT_TARGET, "sensitive": list(ADULT_SENSITIVE), "max_rows": max(len(data), 1)}
    scopes = {a: f"counterfactual_flip_rate@{a}" for a in ADULT_SENSITIVE}
    scopes |= {f"strength={s:g}": f"perturbation_flip_rate@{ADULT_SENSITIVE[0]}/strength={s:g}" for s in DEFAULT_STRENGTHS}
    subset = data.iloc[: args.loop_rows].reset_index(drop=True)
    with threads(args.threads):
        guardrail.audit_robustness(adapter, data.iloc[:200], bootstrap=0, **params)  # warm-up: imports, first-call costs
        full = run_guardrail(adapter, data, scopes, bootstrap=0, **params)
        with_ci = run_guardrail(adapter, data, scopes, bootstrap=args.bootstrap, **params)
        same = run_guardrail(adapter, subset, scopes, bootstrap=0, **params)
        loop = tabular_loop(adapter, subset, DEFAULT_STRENGTHS)
    return report("demo scikit-learn model (adult-gbm.skops, Adult test file)", full, with_ci, same, loop, args.bootstrap)


# -- text --------------------------------------------------------------------------------


def text_model(args: argparse.Namespace, reviews: pd.DataFrame, folder: Path) -> tuple[Any, str]:
    """``models/drug-reviews`` if it is there, else a bert-tiny trained here in ``folder``."""
    from guardrail.adapters.torch import TorchAdapter

    if TEXT_MODEL.joinpath("guardrail-model.json").exists() and not args.train:
        return TorchAdapter.load(TEXT_MODEL), str(TEXT_MODEL.relative_to(REPO))
    from sklearn.model_selection import train_test_split

    from guardrail.training.api import TrainConfig, train_text

    train, _ = train_test_split(reviews, test_size=0.25, random_state=SEED, stratify=reviews[TEXT_TARGET])
    config = TrainConfig(epochs=args.epochs, batch_size=32, lr=1e-3, optimizer="adam", device="cpu", seed=SEED)
    result = train_text(train, TEXT_TARGET, "review", folder / "model", config, max_length=128)
    return TorchAdapter.load(folder / "model"), f"bert-tiny trained here ({args.epochs} epochs, {result.seconds:.0f} s)"


def text_loop(adapter: Any, data: pd.DataFrame, column: str) -> Loop:
    """Perturb and score one review and one change at a time."""
    from guardrail.robustness.lexicon import DEFAULT_LEXICON, swap_terms
    from guardrail.robustness.text import PERTURBATIONS

    inputs = data.loc[:, list(dict.fromkeys([*adapter.features, column]))].reset_index(drop=True)
    typos = PERTURBATIONS["typos"]
    stream = zlib.crc32(b"typos")
    loop = Loop(rows=len(inputs), flips={"terms": 0, "typos": 0}, applicable={"terms": 0, "typos": 0})
    started = time.perf_counter()
    for i in range(len(inputs)):
        row = inputs.iloc[[i]]
        value = row[column].iloc[0]
        text = "" if value is None or value != value else str(value)
        before = adapter.predict(row, None).labels[0]
        swapped, count = swap_terms(text, DEFAULT_LEXICON)
        typed = typos(text, np.random.default_rng([SEED, stream, i]))
        for probe, new in (("terms", swapped if count else None), ("typos", typed)):
            if new is None or new == text:
                continue
            changed = row.copy()
            changed[column] = [new]
            loop.flips[probe] += bool(adapter.predict(changed, None).labels[0] != before)
            loop.applicable[probe] += 1
            loop.changed += 1
    loop.seconds = time.perf_counter() - started
    return loop


def notes(args: argparse.Namespace) -> list[Row]:
    """The federated heart demo's bert-tiny (64 hidden units, 96 tokens) on its 920 notes:
    identity terms (Man/Woman, male/female) and typos, as for the drug reviews."""
    from guardrail.adapters.torch import TorchAdapter

    folder = REPO / "models" / "heart-federated"
    if not folder.joinpath("guardrail-model.json").exists():
        print("\nnotes: models/heart-federated is missing: run `guardrail federate audits/heart-federated.yaml` first")
        return []
    adapter = TorchAdapter.load(folder)
    data = pd.read_csv(folder / "audit-data.csv.gz")
    column = str(adapter.description["text_column"])
    params: dict[str, Any] = {"target": "heart_disease", "sensitive": "hospital", "perturbations": ["typos"], "max_rows": len(data)}
    scopes = {"terms": "counterfactual_flip_rate@hospital/swap=terms", "typos": "perturbation_flip_rate@hospital/perturbation=typos"}
    subset = data.iloc[: args.loop_rows].reset_index(drop=True)
    with threads(args.threads):
        run_guardrail(adapter, data.iloc[:50], scopes, bootstrap=0, **params)  # warm-up
        full = run_guardrail(adapter, data, scopes, bootstrap=0, **params)
        with_ci = run_guardrail(adapter, data, scopes, bootstrap=args.bootstrap, **params)
        same = run_guardrail(adapter, subset, scopes, bootstrap=0, **params)
        loop = text_loop(adapter, subset, column)
    return report("tiny BERT (models/heart-federated, 64 hidden, 96 tokens), heart notes", full, with_ci, same, loop, args.bootstrap)


def text(args: argparse.Namespace) -> list[Row]:
    import torch

    import guardrail
    from guardrail.core.errors import DataError
    from guardrail.datasets.drug_reviews import load_drug_reviews

    torch.set_num_threads(2)  # training, when the model is trained here
    try:
        reviews = load_drug_reviews()
    except DataError as exc:
        print(f"text: {exc.message} ({exc.hint})")
        return []
    if args.reviews is not None:
        reviews = reviews.iloc[: args.reviews].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as folder:
        adapter, origin = text_model(args, reviews, Path(folder))
        column = str(adapter.description["text_column"])
        params: dict[str, Any] = {"target": TEXT_TARGET, "sensitive": TEXT_SENSITIVE, "perturbations": ["typos"], "max_rows": len(reviews)}
        scopes = {"terms": f"counterfactual_flip_rate@{TEXT_SENSITIVE}/swap=terms",
                  "typos": f"perturbation_flip_rate@{TEXT_SENSITIVE}/perturbation=typos"}  # fmt: skip
        subset = reviews.iloc[: args.loop_rows].reset_index(drop=True)
        with threads(args.threads):
            guardrail.audit_robustness(adapter, reviews.iloc[:50], bootstrap=0, **params)  # warm-up
            full = run_guardrail(adapter, reviews, scopes, bootstrap=0, **params)
            with_ci = run_guardrail(adapter, reviews, scopes, bootstrap=args.bootstrap, **params)
            same = run_guardrail(adapter, subset, scopes, bootstrap=0, **params)
            loop = text_loop(adapter, subset, column)
    return report(f"tiny BERT ({origin}), drug reviews", full, with_ci, same, loop, args.bootstrap)


# -- report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    model: str
    ratio_all: float
    ratio_same: float
    agree: bool


def report(title: str, full: Batched, with_ci: Batched, same: Batched, loop: Loop, bootstrap: int) -> list[Row]:
    loop_rate = loop.changed / loop.seconds
    full_rate, same_rate, ci_rate = full.changed / full.seconds, same.changed / same.seconds, with_ci.changed / with_ci.seconds
    print(f"\n== {title}")
    print(f"{'path':<44} {'rows':>7} {'changed inputs':>15} {'wall s':>8} {'examples/s':>11} {'vs loop':>8}")
    lines = [
        ("guardrail, bootstrap=0 (all rows)", full.rows, full.changed, full.seconds, full_rate),
        (f"guardrail, bootstrap={bootstrap} (all rows)", with_ci.rows, with_ci.changed, with_ci.seconds, ci_rate),
        ("guardrail, bootstrap=0 (the loop's rows)", same.rows, same.changed, same.seconds, same_rate),
        ("loop, one at a time (measured)", loop.rows, loop.changed, loop.seconds, loop_rate),
    ]
    for name, rows, changed, seconds, rate in lines:
        print(f"{name:<44} {rows:>7,} {changed:>15,} {seconds:>8.2f} {rate:>11,.0f} {rate / loop_rate:>7.1f}×")
    scale = full.changed / max(loop.changed, 1)
    print(f"loop at all {full.rows:,} rows, extrapolated from its {loop.rows:,} rows: ≈ {loop.seconds * scale:.0f} s "
          f"for {full.changed:,} changed inputs ({loop_rate:,.0f} examples/s); guardrail's scoring itself took "
          f"{full.scoring_seconds:.2f} s of its {full.seconds:.2f} s")  # fmt: skip
    agree = same.flips == loop.flips and same.changed == loop.changed
    counts = ", ".join(f"{probe} {same.flips[probe]}/{loop.flips.get(probe)}" for probe in same.flips)
    print(f"agreement on the loop's {loop.rows:,} rows (flips guardrail/loop): {counts}; changed inputs "
          f"{same.changed:,}/{loop.changed:,} — {'identical' if agree else 'DIFFERENT'}")  # fmt: skip
    ratio_all, ratio_same = full_rate / loop_rate, same_rate / loop_rate
    for label, ratio in (("all rows", ratio_all), ("the loop's rows", ratio_same)):
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(f"examples/s, guardrail ÷ loop ({label}): {ratio:.1f}× (target ≥ {TARGET_RATIO:g}×: {verdict})")
    return [Row(title, ratio_all, ratio_same, agree)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows: 3,000 Adult rows, 300 reviews, a 100-row loop, B = 200")
    parser.add_argument("--rows", type=int, default=None, help="Adult test rows probed by guardrail (default all 16,281)")
    parser.add_argument("--reviews", type=int, default=None, help="drug reviews probed by guardrail (default all 979)")
    parser.add_argument("--loop-rows", type=int, default=300, help="rows (and reviews) the one-at-a-time loop is timed on")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples of the run that also computes intervals")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP/BLAS/torch threads of both paths")
    parser.add_argument("--epochs", type=int, default=3, help="bert-tiny training epochs when it is trained here")
    parser.add_argument("--train", action="store_true", help="train the bert-tiny here even if models/drug-reviews exists")
    parser.add_argument("--only", choices=("tabular", "text"), default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = args.rows or 3000
        args.reviews = args.reviews or 300
        args.loop_rows = min(args.loop_rows, 100)
        args.bootstrap = min(args.bootstrap, 200)
    started = time.perf_counter()
    load = os.getloadavg()[0]
    rows: list[Row] = []
    if args.only in (None, "tabular"):
        rows += tabular(args)
    if args.only in (None, "text"):
        rows += text(args)
        rows += notes(args)
    if rows:
        print(f"\n== summary (issue 18 target: ≥ {TARGET_RATIO:g}× the loop's examples per second)")
        print(f"{'model':<60} {'all rows':>9} {'same rows':>10} {'agreement':>10}")
        for row in rows:
            print(f"{row.model[:60]:<60} {row.ratio_all:>8.1f}× {row.ratio_same:>9.1f}× {'identical' if row.agree else 'DIFFERENT':>10}")
    print(f"\nbenchmark wall time: {time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs, {args.threads} thread(s) "
          f"per path; load average "
          f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other work on the machine slows both paths)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
