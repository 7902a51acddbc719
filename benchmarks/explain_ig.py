"""guardrail's integrated gradients vs calling Captum directly, at equal ``n_steps`` and batch size.

Run: ``.venv/bin/python benchmarks/explain_ig.py [--instances 256] [--steps 50] [--batch 4096]``

Setup: a torch MLP on the UCI Adult test file's features, one-hot encoded as ``guardrail
train`` encodes them (13 features → 103 columns, hidden 64 → 32, untrained weights: the cost
is what matters), ``torch.set_num_threads(2)``, CPU. Both attribute ``P(positive)`` of the
first ``--instances`` rows from the same baseline (median / mode row), with the same
``n_steps`` and ``internal_batch_size``, returning the convergence delta:

* captum: ``IntegratedGradients(forward).attribute(inputs, baselines, n_steps, internal_batch_size,
  return_convergence_delta=True)``;
* guardrail: :func:`guardrail.explain.attribution.integrated_gradients` with a tolerance every
  instance meets, so no step is added (the step-raising loop is measured separately:
  ``--tolerance``);
* guardrail end to end: :meth:`guardrail.explain.engine.Explainer.attribute`, i.e. also
  encoding the rows from the table and summing one-hot attributions back to features.

Each timing is the best of ``--repeats`` runs after one warm-up; ``ratio`` = guardrail / captum.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _best(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each function, run in turn (so all see the same machine load)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: min(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--tolerance", type=float, default=0.05, help="for the step-raising run")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    import numpy as np
    import pandas as pd
    import torch
    from captum.attr import IntegratedGradients

    from guardrail.adapters.torch import TorchAdapter
    from guardrail.datasets import load_adult
    from guardrail.explain.attribution import integrated_gradients
    from guardrail.explain.engine import ExplainConfig, Explainer
    from guardrail.explain.tabular import TabularView, gradient_model, proba_function
    from guardrail.training.data import TabularEncoder

    torch.set_num_threads(2)
    torch.manual_seed(0)
    frame: pd.DataFrame = load_adult("test")
    features = tuple(c for c in frame.columns if c not in ("income", "income_over_50k", "fnlwgt"))
    encoder = TabularEncoder.fit(frame, features)
    net = torch.nn.Sequential(
        torch.nn.Linear(encoder.width, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)
    ).eval()
    adapter = TorchAdapter(net, {"classes": [False, True], "features": list(features), "encoder": encoder.to_dict()})
    view = TabularView.from_frame(frame, features)
    model = gradient_model(adapter, view, True)
    codes = view.codes[: args.instances]
    inputs = model.encode(codes)
    baseline = model.encode(view.baseline[None, :])

    def captum() -> object:
        return IntegratedGradients(model.forward).attribute(
            inputs, baselines=baseline, n_steps=args.steps, internal_batch_size=args.batch, return_convergence_delta=True
        )

    def ours() -> object:
        return integrated_gradients(
            model.forward, inputs, baseline, n_steps=args.steps, max_steps=args.steps, tolerance=float("inf"), internal_batch_size=args.batch
        )

    config = ExplainConfig(
        methods=("integrated_gradients",), batch_size=args.batch, ig_steps=args.steps, ig_max_steps=args.steps, ig_tolerance=1e9
    )
    explainer = Explainer(view, proba_function(adapter, view, True, args.batch), model, np.arange(100), config)

    def end_to_end() -> object:
        return explainer.attribute("integrated_gradients", codes, seed=0)

    def raising_run() -> object:
        return integrated_gradients(
            model.forward, inputs, baseline, n_steps=args.steps, max_steps=16 * args.steps, tolerance=args.tolerance,
            internal_batch_size=args.batch,
        )

    best = _best({"captum": captum, "ours": ours, "e2e": end_to_end, "raising": raising_run}, args.repeats)
    captum_s, ours_s, e2e_s, raising_s = best["captum"], best["ours"], best["e2e"], best["raising"]
    raising = integrated_gradients(
        model.forward, inputs, baseline, n_steps=args.steps, max_steps=16 * args.steps, tolerance=args.tolerance, internal_batch_size=args.batch
    )
    steps, counts = np.unique(raising.steps, return_counts=True)
    report = {
        "instances": args.instances,
        "encoded_columns": int(inputs.shape[1]),
        "n_steps": args.steps,
        "internal_batch_size": args.batch,
        "captum_s": round(captum_s, 4),
        "guardrail_s": round(ours_s, 4),
        "ratio": round(ours_s / captum_s, 3),
        "guardrail_end_to_end_s": round(e2e_s, 4),
        "end_to_end_ratio": round(e2e_s / captum_s, 3),
        "with_step_raising": {
            "tolerance": args.tolerance,
            "seconds": round(raising_s, 4),
            "steps_used": {str(int(s)): int(c) for s, c in zip(steps, counts, strict=True)},
            "max_relative_delta": round(float(raising.relative.max()), 4),
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
