"""Batched LIME vs a plain per-instance ``lime`` loop on the demo model, at equal ``num_samples``.

Run: ``.venv/bin/python benchmarks/explain_lime.py [--model gbm|mlp] [--instances 100] [--samples 1000 10000]``

Setup: ``--model gbm`` is the demo pipeline (one-hot + HistGradientBoosting on UCI Adult,
``make demo`` trains it into ``models/adult-gbm.skops``; trained into a temporary folder when
absent); ``--model mlp`` a torch MLP (one-hot encoding, 32 hidden units, untrained weights:
the cost is what matters) scored through guardrail's torch adapter. Then the first
``--instances`` rows of the Adult test file, every explainer built by
:func:`guardrail.explain.lime_batch.lime_explainer` on the same 1,000 background rows
(quartile discretisation), all scoring through the model's ``predict_proba`` on decoded rows.

* plain: ``LimeTabularExplainer.explain_instance(row, predict_fn, num_features=d,
  num_samples=S)`` for each instance (one model call per instance), ``predict_fn`` decoding
  the samples to a table and calling the model's public ``predict_proba`` (the pipeline's,
  or the torch adapter's);

guardrail's runs go through the audit's own settings: its default ``batch_size`` (rows per
model call) and its chunks of rows (:meth:`guardrail.explain.engine.Explainer.chunk_size`),
drawing from one random stream as plain lime's loop does;

* guardrail, ``pool_rows=1``: :func:`guardrail.explain.lime_batch.lime_attributions` drawing
  one pool per instance (lime's own draws, in lime's order), one model call for all
  samples, the ridge fits solved together: the same draws as plain, so the same
  explanations;
* guardrail, ``pool_rows=8`` (the audit's default): one pool of ``S − 1`` draws per 8
  instances (lime's distribution does not depend on the instance; each instance gets
  exactly plain lime's explanation for its pool's draws), so the model scores about
  ``m × S / 8`` rows instead of ``m × S``. Other draws than plain's, so the explanations
  differ by LIME's own Monte Carlo noise.

``throughput_ratio`` = plain wall time / guardrail wall time (best of ``--repeats``);
``top5_jaccard`` = mean over instances of the Jaccard index of the top-5 feature sets (by
``|weight|``) against plain lime. ``plain_reseeded_top5_jaccard`` is plain lime against
itself with another seed: the agreement LIME's sampling noise allows at this ``S``, which
no method drawing other samples can beat on average. Both use ``sklearn``'s default
threads on this machine.
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
    parser.add_argument("--samples", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", choices=("gbm", "mlp"), default="gbm")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    import numpy as np
    import pandas as pd

    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.auditors.explainability import ExplainabilityParams
    from guardrail.explain.engine import ExplainConfig, Explainer
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
    defaults = ExplainabilityParams()
    proba = proba_function(model, view, True, batch_size=defaults.batch_size)
    rows = view.codes[: args.instances]
    background = view.codes[np.random.default_rng(0).choice(len(frame), 1000, replace=False)]
    d = len(view.features)

    def two_columns(x: np.ndarray) -> np.ndarray:
        """What a plain-lime user writes: decode the rows to a table, call the model's predict_proba."""
        table = view.to_frame(x)
        if isinstance(model, SklearnAdapter):
            return np.asarray(model.estimator.predict_proba(table))
        return np.asarray(model.predict_proba(table))  # type: ignore[attr-defined]

    def plain(samples: int, seed: int = 0) -> np.ndarray:
        explainer = lime_explainer(view, background, seed=seed)
        out = np.zeros((len(rows), d))
        for i, row in enumerate(rows):
            explanation = explainer.explain_instance(row, two_columns, num_features=d, num_samples=samples)
            for j, w in explanation.local_exp[1]:
                out[i, j] = w
        return out

    def guardrail(samples: int, pool_rows: int) -> np.ndarray:
        """The audit's path: its batch size, its chunks (one random stream, as plain lime's loop)."""
        config = ExplainConfig(methods=("lime",), lime_samples=samples, lime_pool_rows=pool_rows, batch_size=defaults.batch_size)
        explainer = Explainer(view, proba, None, np.arange(1), config)
        chunk = explainer.chunk_size()
        lime = lime_explainer(view, background, seed=0)
        reseed(lime, 0)
        return np.concatenate(
            [lime_attributions(lime, proba, rows[i : i + chunk], samples, pool_rows) for i in range(0, len(rows), chunk)]
        )

    def jaccard(a: np.ndarray, b: np.ndarray) -> float:
        return round(float(top_k_overlap(a, b, 5).mean()), 3)

    reports = []
    for samples in args.samples:
        runs = {
            "plain": lambda s=samples: plain(s),
            "pool_rows=1": lambda s=samples: guardrail(s, 1),
            "pool_rows=8": lambda s=samples: guardrail(s, 8),
        }
        timings: dict[str, list[float]] = {name: [] for name in runs}
        results = {}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                started = time.perf_counter()
                results[name] = fn()
                timings[name].append(time.perf_counter() - started)
        best = {k: min(v) for k, v in timings.items()}
        reports.append(
            {
                "model": args.model,
                "instances": args.instances,
                "num_samples": samples,
                "features": d,
                "plain_s": round(best["plain"], 3),
                "plain_instances_per_s": round(args.instances / best["plain"], 1),
                "plain_reseeded_top5_jaccard": jaccard(plain(samples, seed=1), results["plain"]),
                **{
                    name: {
                        "seconds": round(best[name], 3),
                        "instances_per_s": round(args.instances / best[name], 1),
                        "throughput_ratio": round(best["plain"] / best[name], 2),
                        "top5_jaccard": jaccard(results[name], results["plain"]),
                    }
                    for name in ("pool_rows=1", "pool_rows=8")
                },
            }
        )
    print(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
