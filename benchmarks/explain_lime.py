"""Batched LIME vs a plain per-instance ``lime`` loop on the demo model, at equal ``num_samples``.

Run: ``.venv/bin/python benchmarks/explain_lime.py [--instances 50] [--samples 1000]``

Setup: ``--model gbm`` is the demo pipeline (one-hot + HistGradientBoosting on UCI Adult,
``make demo`` trains it into ``models/adult-gbm.skops``; trained into a temporary folder when
absent); ``--model mlp`` a torch MLP (one-hot encoding, 32 hidden units, untrained weights:
the cost is what matters) scored through guardrail's torch adapter. Then the first
``--instances`` rows of the Adult test file, both explainers built by
:func:`guardrail.explain.lime_batch.lime_explainer` on the same 1,000 background rows
(quartile discretisation), and both scoring through the same ``predict_proba`` of the
pipeline on decoded rows.

* plain: ``LimeTabularExplainer.explain_instance(row, predict_fn, num_features=d,
  num_samples=S)`` for each instance (one model call per instance), ``predict_fn`` decoding
  the samples to a table and calling the model's public ``predict_proba`` (the pipeline's,
  or the torch adapter's);
* guardrail: :func:`guardrail.explain.lime_batch.lime_attributions` on all instances (lime's
  sampling for all, one model call, the ridge fits solved together) through
  :func:`guardrail.explain.tabular.proba_function` (for the MLP: the adapter's encoding
  built from codes by array indexing, :func:`~guardrail.explain.tabular.direct_encoder`).

Both draw the same samples from the same seed, so the explanations agree exactly.

``throughput ratio`` = plain wall time / guardrail wall time (best of ``--repeats``);
``top-5 Jaccard`` = mean over instances of the Jaccard index of the two top-5 feature sets
(by ``|weight|``). Both use ``sklearn``'s default threads on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _demo_model() -> tuple[Path, Path]:
    model, data = REPO / "models" / "adult-gbm.skops", REPO / "data" / "adult-test.csv.gz"
    if model.exists() and data.exists():
        return model, data
    root = Path(tempfile.mkdtemp(prefix="guardrail-bench-"))
    sys.path.insert(0, str(REPO / "scripts"))
    import train_adult_demo

    train_adult_demo.main(["--root", str(root)])
    return root / "models" / "adult-gbm.skops", root / "data" / "adult-test.csv.gz"


def _mlp(frame: object, features: tuple[str, ...]) -> object:
    import torch

    from guardrail.adapters.torch import TorchAdapter
    from guardrail.training.data import TabularEncoder

    torch.set_num_threads(2)
    torch.manual_seed(0)
    encoder = TabularEncoder.fit(frame, features)  # type: ignore[arg-type]
    net = torch.nn.Sequential(torch.nn.Linear(encoder.width, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)).eval()
    return TorchAdapter(net, {"classes": [False, True], "features": list(features), "encoder": encoder.to_dict()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", choices=("gbm", "mlp"), default="gbm")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    import numpy as np
    import pandas as pd

    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.explain.lime_batch import lime_attributions, lime_explainer, reseed
    from guardrail.explain.quality import top_k_overlap
    from guardrail.explain.tabular import TabularView, proba_function

    model_path, data_path = _demo_model()
    trusted = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    adapter = SklearnAdapter.load(model_path, trusted_types=trusted)
    frame = pd.read_csv(data_path)
    view = TabularView.from_frame(frame, adapter.features)
    model: object = adapter
    if args.model == "mlp":
        model = _mlp(frame, adapter.features)
    proba = proba_function(model, view, True, batch_size=1_000_000)
    rows = view.codes[: args.instances]
    background = view.codes[np.random.default_rng(0).choice(len(frame), 1000, replace=False)]
    d = len(view.features)

    def two_columns(x: np.ndarray) -> np.ndarray:
        """What a plain-lime user writes: decode the rows to a table, call the model's predict_proba."""
        table = view.to_frame(x)
        if isinstance(model, SklearnAdapter):
            return np.asarray(model.estimator.predict_proba(table))
        return np.asarray(model.predict_proba(table))  # type: ignore[attr-defined]

    def plain() -> np.ndarray:
        explainer = lime_explainer(view, background, seed=0)
        out = np.zeros((len(rows), d))
        for i, row in enumerate(rows):
            explanation = explainer.explain_instance(row, two_columns, num_features=d, num_samples=args.samples)
            for j, w in explanation.local_exp[1]:
                out[i, j] = w
        return out

    def batched() -> np.ndarray:
        explainer = lime_explainer(view, background, seed=0)
        reseed(explainer, 0)
        return lime_attributions(explainer, proba, rows, args.samples)

    timings: dict[str, list[float]] = {"plain": [], "guardrail": []}
    results = {}
    for _ in range(args.repeats):
        for name, fn in (("plain", plain), ("guardrail", batched)):
            started = time.perf_counter()
            results[name] = fn()
            timings[name].append(time.perf_counter() - started)
    best = {k: min(v) for k, v in timings.items()}
    report = {
        "model": args.model,
        "instances": args.instances,
        "num_samples": args.samples,
        "features": d,
        "plain_s": round(best["plain"], 3),
        "guardrail_s": round(best["guardrail"], 3),
        "plain_instances_per_s": round(args.instances / best["plain"], 1),
        "guardrail_instances_per_s": round(args.instances / best["guardrail"], 1),
        "throughput_ratio": round(best["plain"] / best["guardrail"], 2),
        "top5_jaccard": round(float(top_k_overlap(results["guardrail"], results["plain"], 5).mean()), 3),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
