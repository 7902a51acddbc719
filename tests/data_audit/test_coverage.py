"""Simulated coverage of the data audit's intervals: group shares, base rates per group, and
the between-groups differences of base rates and missing rates (the fairness engine's hybrid
interval on the data audit's tables).

Data sets are drawn from known truths with fixed seeds; each case checks how often the
interval holds the truth. The default cases draw the count tables the functions read (a
multinomial of group sizes, binomial label or missing counts per group), which is what drawing
the rows and tabulating them gives; the slow cases go through the whole public functions on
row-level frames. Measured with the seeds below: group shares 0.953 per group (Clopper–Pearson)
and 0.985 for the smallest share's Bonferroni box (conservative by design); base rates per
group 0.963 and their difference (two groups of 300 and 600) 0.950; missing rates per group
0.963 and their difference over three groups (200, 500, 1000) 0.985 (the simultaneous pairwise
bound is conservative when a middle group adds pairs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.data_audit.completeness import missingness_metrics
from guardrail.data_audit.labels import label_metrics, rate_metrics
from guardrail.data_audit.representation import group_share_metric
from guardrail.fairness.groups import Grouping, tabulate

LEVEL = 0.95
FLOOR, CEILING = 0.93, 0.99
"""Where an exact or hybrid interval's coverage must fall over the simulated data sets (the
Monte Carlo standard error at 400 data sets is about 0.011)."""


def _grouping(labels: list[str]) -> Grouping:
    grouping, _ = tabulate(pd.DataFrame({"g": labels}), ["g"], [])
    return grouping


def _coverage(hits: list[bool]) -> float:
    return float(np.mean(hits))


def test_group_share_intervals_cover() -> None:
    shares = np.array([0.2, 0.3, 0.5])
    grouping = _grouping(["a", "b", "c"])
    rng = np.random.default_rng(11)
    per_group, smallest = [], []
    for _ in range(400):
        sizes = rng.multinomial(1000, shares)
        metric = group_share_metric(grouping, sizes, level=LEVEL, min_group_size=30)
        per_group += [g.ci is not None and g.ci.low <= s <= g.ci.high for g, s in zip(metric.by_group, shares, strict=True)]
        smallest.append(metric.ci is not None and metric.ci.low <= shares.min() <= metric.ci.high)
    assert FLOOR <= _coverage(per_group) <= CEILING, _coverage(per_group)
    assert _coverage(smallest) >= FLOOR, _coverage(smallest)  # a Bonferroni box: conservative, above nominal


def _rate_case(
    name: str, sizes: list[int], rates: list[float], datasets: int, seed: int, resamples: int
) -> tuple[float, float]:
    """Coverage of the per-group rate intervals and of the difference's interval."""
    grouping = _grouping([chr(ord("A") + i) for i in range(len(sizes))])
    truth = max(rates) - min(rates)
    rng = np.random.default_rng(seed)
    per_group, difference = [], []
    for i in range(datasets):
        hits = rng.binomial(sizes, rates)
        counts = np.stack([np.array(sizes) - hits, hits], axis=1)
        rate, gap = rate_metrics(
            grouping, counts, name=name, scope="g", level=LEVEL, min_group_size=30, bootstrap=resamples, seed=i, ratio=False
        )
        per_group += [g.ci is not None and g.ci.low <= p <= g.ci.high for g, p in zip(rate.by_group, rates, strict=True)]
        difference.append(gap.ci is not None and gap.ci.low <= truth <= gap.ci.high)
    return _coverage(per_group), _coverage(difference)


def test_base_rate_intervals_cover() -> None:
    per_group, difference = _rate_case("base_rate", [300, 600], [0.3, 0.45], datasets=400, seed=12, resamples=300)
    assert FLOOR <= per_group <= CEILING, per_group
    assert FLOOR <= difference <= CEILING, difference


def test_missing_rate_difference_covers() -> None:
    per_group, difference = _rate_case("missing_rate", [200, 500, 1000], [0.2, 0.25, 0.35], datasets=400, seed=13, resamples=300)
    assert FLOOR <= per_group <= CEILING, per_group
    assert FLOOR <= difference <= CEILING, difference


def _frames(
    seed: int, datasets: int, sizes: tuple[int, int], rates: tuple[float, float]
) -> list[tuple[pd.DataFrame, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(datasets):
        group = np.repeat(["A", "B"], sizes)
        p = np.repeat(rates, sizes)
        x = rng.standard_normal(sum(sizes))
        x[rng.random(sum(sizes)) < p] = np.nan
        out.append((pd.DataFrame({"g": group, "x": x}), rng.random(sum(sizes)) < p))
    return out


@pytest.mark.slow
def test_end_to_end_coverage_of_base_rate_and_missing_rate_differences() -> None:
    truth = 0.15
    base, missing = [], []
    for i, (data, y) in enumerate(_frames(14, 1000, (400, 800), (0.25, 0.4))):
        labels = label_metrics(data, [("g",)], y, level=LEVEL, min_group_size=30, bootstrap=500, seed=i)
        gap = next(m for m in labels if m.key == "data.base_rate_difference")
        base.append(gap.ci is not None and gap.ci.low <= truth <= gap.ci.high)
        found, _ = missingness_metrics(data, [("g",)], ["x"], level=LEVEL, min_group_size=30, bootstrap=500, seed=i)
        gap = next(m for m in found if m.key == "data.missing_rate_difference")
        missing.append(gap.ci is not None and gap.ci.low <= truth <= gap.ci.high)
    assert FLOOR <= _coverage(base) <= CEILING, _coverage(base)
    assert FLOOR <= _coverage(missing) <= CEILING, _coverage(missing)
