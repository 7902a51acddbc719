"""Interval coverage of the robustness figures in simulation (fixed seeds): rows are fragile
(their decision turns on the attribute) with a known probability per group, so the true flip
rates, their gap and the mean score change are known and every interval can be checked
against them over many simulated audits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from guardrail.robustness.engine import ProbeData, RobustnessOptions, audit
from tests.robustness.models import RuleModel

FRAGILE = {"F": 0.12, "M": 0.05}
SHARE_F = 0.4
JUMP = 0.6
"""How far a fragile row's score moves when the attribute changes."""


def _simulated(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    sex = np.where(rng.random(rows) < SHARE_F, "F", "M")
    fragile = rng.random(rows) < np.vectorize(FRAGILE.get)(sex)
    return pd.DataFrame({"sex": sex, "fragile": fragile, "y": rng.integers(0, 2, rows)})


def _model() -> RuleModel:
    # a fragile row is positive exactly when it is F: swapping the sex flips it, and moves its score by JUMP
    return RuleModel(lambda f: 0.2 + JUMP * (f["fragile"] & (f["sex"] == "F")).to_numpy(dtype=float), ("sex", "fragile"))


def test_flip_rate_gap_and_score_change_intervals_cover_the_truth_at_95_percent() -> None:
    rng = np.random.default_rng(20261203)
    runs, rows = 300, 300
    truth_overall = SHARE_F * FRAGILE["F"] + (1 - SHARE_F) * FRAGILE["M"]
    truth_gap = FRAGILE["F"] - FRAGILE["M"]
    hits = {"overall": 0, "F": 0, "M": 0, "gap": 0, "score": 0}
    for run in range(runs):
        data = _simulated(rng, rows)
        probe = ProbeData(data=data, rows=np.arange(rows), correct=None, sensitive=("sex",), feature_sets=(("sex",),), inputs=("sex", "fragile"))
        found = audit(_model(), 1, probe, RobustnessOptions(probes=("counterfactual",), bootstrap=400, min_group_size=1), seed=run)
        metrics = {m.ref: m for m in found.metrics}
        flip = metrics["robustness.counterfactual_flip_rate[sex]"]
        assert flip.ci is not None
        hits["overall"] += flip.ci.low <= truth_overall <= flip.ci.high
        for group in flip.by_group:
            assert group.ci is not None
            hits[group.group] += group.ci.low <= FRAGILE[group.group] <= group.ci.high
        gap = metrics["robustness.counterfactual_flip_rate_difference[sex]"].ci
        assert gap is not None
        hits["gap"] += gap.low <= truth_gap <= gap.high
        score = metrics["robustness.counterfactual_score_change[sex]"].ci
        assert score is not None
        hits["score"] += score.low <= JUMP * truth_overall <= score.high
    coverage = {name: count / runs for name, count in hits.items()}
    # exact (Clopper–Pearson) bounds are conservative; the bootstrap ones near nominal; with
    # 300 runs the standard error of a 95% coverage is 1.3 points
    assert all(value >= 0.92 for value in coverage.values()), coverage
    assert coverage["score"] <= 0.99, coverage
