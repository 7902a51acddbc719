"""A scikit-learn audit in a folder: a skops model trained on UCI Adult rows, its data, a
fairness-only spec and a policy, for the tests that run ``guardrail`` on a real sklearn model."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC = ["age", "education_num", "hours_per_week", "capital_gain"]
CATEGORICAL = ["workclass", "occupation"]
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
SPEC = """\
schema_version: 1
kind: audit
name: credit
model: {{adapter: sklearn, path: {model}{trusted}}}
data: {{path: {data}, target: income_over_50k, sensitive: [sex]}}
audits:
  - {{id: fairness, use: fairness, params: {{bootstrap: 50}}}}
policies: [policy.yaml]
report: {{out: out, history: false}}
"""
POLICY = """\
schema_version: 1
kind: policy
name: credit-team
rules:
  - id: FOUR-FIFTHS-LOOSE
    metric: fairness.demographic_parity_ratio
    op: ge
    threshold: 0.05
    rationale: Selection rates of the sexes may not differ twentyfold.
"""
PROBE = """
import json, sys
from guardrail.cli import main
code = main({argv!r})
print(json.dumps({{"code": code, "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}}), file=sys.stderr)
"""


@dataclass(frozen=True)
class SklearnFolder:
    root: Path
    data: pd.DataFrame
    """The audit data as written to data.csv."""
    predictions: np.ndarray
    """The pipeline's predictions on ``data`` (the oracle for the audit's numbers)."""

    def spec(self, *, model: str = "model.skops", data: str = "data.csv", trusted: tuple[str, ...] = (), name: str = "spec.yaml") -> Path:
        listed = f", trusted_types: [{', '.join(trusted)}]" if trusted else ""
        path = self.root / name
        path.write_text(SPEC.format(model=model, data=data, trusted=listed))
        return path


@dataclass(frozen=True)
class Probed:
    code: int
    stdout: str
    stderr: str
    """stderr without the probe's own last line."""
    torch: list[str]
    """The torch modules the command imported."""


def build(root: Path, rows: int = 600) -> SklearnFolder:
    """A logistic-regression pipeline (model.skops, types skops trusts) and a histogram
    gradient-boosting classifier (hgb.skops, which holds a TreePredictor), on ``rows`` rows."""
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from guardrail.datasets import load_adult

    adult = load_adult("test").dropna().head(rows).reset_index(drop=True)
    features = adult[NUMERIC + CATEGORICAL].astype({c: str for c in CATEGORICAL})
    target = adult["income_over_50k"]
    encode = ColumnTransformer([("n", StandardScaler(), NUMERIC), ("c", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])
    model = make_pipeline(encode, LogisticRegression(max_iter=500)).fit(features, target)
    sio.dump(model, root / "model.skops")
    sio.dump(HistGradientBoostingClassifier(max_iter=5).fit(adult[NUMERIC], target), root / "hgb.skops")
    data = features.assign(sex=adult["sex"].astype(str), income_over_50k=target)
    data.to_csv(root / "data.csv", index=False)
    (root / "policy.yaml").write_text(POLICY)
    return SklearnFolder(root, data, np.asarray(model.predict(features)))


def probe(argv: list[str], cwd: Path) -> Probed:
    """Run ``guardrail argv`` in a fresh interpreter; its exit code, output and the torch
    modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )
    *lines, last = done.stderr.strip().splitlines() or [""]
    found = json.loads(last)
    return Probed(found["code"], done.stdout, "\n".join(lines), found["torch"])
