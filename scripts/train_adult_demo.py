"""Train the demo model: gradient boosting on UCI Adult train, saved with skops.

Writes (paths relative to the repository root, or to --root):
  data/adult-train.csv.gz   the original Adult training file, readable columns
  data/adult-test.csv.gz    the original Adult test file: the audit data
  models/adult-gbm.skops    the fitted scikit-learn pipeline (safe format)

Idempotent: files are rewritten atomically; with --if-missing nothing is redone when all exist.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from guardrail.core.atomic import write_atomic
from guardrail.datasets import load_adult

SEED = 0
TARGET = "income_over_50k"
EXCLUDED = ("income", TARGET, "fnlwgt")
CATEGORICAL = ("workclass", "education", "marital_status", "occupation", "relationship", "race", "sex", "native_country")


def build_pipeline(numeric: list[str]) -> Pipeline:
    encode = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL)),
            ("numeric", "passthrough", numeric),
        ]
    )
    return Pipeline([("encode", encode), ("model", HistGradientBoostingClassifier(random_state=SEED))])


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False, compression={"method": "gzip", "mtime": 0})
    write_atomic(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--if-missing", action="store_true", help="do nothing when all outputs exist")
    args = parser.parse_args(argv)
    train_path = args.root / "data" / "adult-train.csv.gz"
    test_path = args.root / "data" / "adult-test.csv.gz"
    model_path = args.root / "models" / "adult-gbm.skops"
    if args.if_missing and all(p.exists() for p in (train_path, test_path, model_path)):
        print(f"demo model and data already present in {args.root}", file=sys.stderr)
        return 0
    started = time.perf_counter()
    for split, path in (("train", train_path), ("test", test_path)):
        write_csv(load_adult(split), path)
    train = pd.read_csv(train_path)
    features = [c for c in train.columns if c not in EXCLUDED]
    numeric = [c for c in features if c not in CATEGORICAL]
    pipeline = build_pipeline(numeric).fit(train[features], train[TARGET])
    write_atomic(model_path, sio.dumps(pipeline))
    test = pd.read_csv(test_path)
    accuracy = (pipeline.predict(test[features]) == test[TARGET]).mean()
    print(
        f"trained {model_path.name} on {len(train):,} rows in {time.perf_counter() - started:.1f}s; "
        f"test accuracy {accuracy:.4f} on {len(test):,} rows",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
