"""Coverage of the fairness intervals, by simulation from known group rates.

Each :class:`Scenario` fixes every group's size and confusion-cell probabilities (and, for
a candidate − baseline comparison, how often the candidate flips the baseline's decision),
so the true value of every rate and disparity is known. :func:`simulate` draws count
tables from it, builds the intervals with the same functions the audits use
(:mod:`guardrail.fairness.results`), and counts how often they contain the truth and how
often they exclude their own estimate (which must never happen).

``benchmarks/coverage_fairness.py`` prints the table; ``tests/fairness/test_coverage.py``
asserts it (a quick version in the default suite, a larger one marked slow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

from guardrail.core.types import Interval
from guardrail.fairness.bootstrap import resample_counts
from guardrail.fairness.metrics import DISPARITIES, RateName, disparity_array, rate_array
from guardrail.fairness.paired import disparity_delta, rate_delta
from guardrail.fairness.results import GroupTable, disparity_estimate, rate_estimate

Construction = Literal["group rate", "overall rate", "difference", "ratio", "mitigation disparity", "delta"]
CONSTRUCTIONS: tuple[Construction, ...] = ("group rate", "overall rate", "difference", "ratio", "mitigation disparity", "delta")


@dataclass(frozen=True)
class Scenario:
    """Groups with known rates. Each group's rows are positive with probability ``positives``
    and predicted positive with probability ``tpr`` (positives) or ``fpr`` (negatives); for a
    ``delta`` the candidate flips the baseline's decision with probability ``flip``."""

    name: str
    construction: Construction
    metric: str
    sizes: tuple[int, ...]
    positives: tuple[float, ...]
    tpr: tuple[float, ...]
    fpr: tuple[float, ...]
    flip: tuple[float, ...] = ()

    def cells(self) -> np.ndarray:
        """Cell probabilities ``(G, 2, 2)``: ``[g, y_true, y_pred]`` of the baseline decision."""
        pi, tpr, fpr = (np.asarray(v, dtype=float) for v in (self.positives, self.tpr, self.fpr))
        return np.stack([np.stack([(1 - pi) * (1 - fpr), (1 - pi) * fpr], -1), np.stack([pi * (1 - tpr), pi * tpr], -1)], -2)

    def paired_cells(self) -> np.ndarray:
        """Cell probabilities ``(G, 2, 2, 2)``: ``[g, y_true, candidate, baseline]``."""
        base = self.cells()
        flip = np.asarray(self.flip, dtype=float)[:, None]
        out = np.zeros((len(self.sizes), 2, 2, 2))
        out[:, :, 1, 1] = base[:, :, 1] * (1 - flip)
        out[:, :, 0, 1] = base[:, :, 1] * flip
        out[:, :, 0, 0] = base[:, :, 0] * (1 - flip)
        out[:, :, 1, 0] = base[:, :, 0] * flip
        return out


@dataclass(frozen=True)
class Coverage:
    """How often a scenario's intervals held the truth and their own estimate."""

    scenario: Scenario
    truth: float
    trials: int
    defined: int
    covered: int
    excluded_estimate: int

    @property
    def coverage(self) -> float:
        return self.covered / self.defined if self.defined else math.nan

    @property
    def exclusion_share(self) -> float:
        return self.excluded_estimate / self.defined if self.defined else math.nan

    @property
    def monte_carlo_se(self) -> float:
        """Standard error of :attr:`coverage` at the nominal level's coverage."""
        return math.sqrt(0.95 * 0.05 / self.defined) if self.defined else math.inf


def simulate(scenario: Scenario, trials: int, *, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> Coverage:
    """Draw ``trials`` data sets from ``scenario`` and check each one's interval."""
    rng = np.random.default_rng(seed)
    truth = true_value(scenario)
    defined = covered = excluded = 0
    for _ in range(trials):
        found = _one_trial(scenario, rng, resamples, level)
        if found is None:
            continue
        estimate, ci = found
        defined += 1
        covered += ci.low <= truth <= ci.high
        excluded += not ci.low <= estimate <= ci.high
    return Coverage(scenario, truth, trials, defined, covered, excluded)


def true_value(scenario: Scenario) -> float:
    """The scenario's true value of its metric (rates of the population, groups weighted by size)."""
    if scenario.construction == "delta":
        cells = scenario.paired_cells()
        return _true(scenario, cells.sum(axis=-1)) - _true(scenario, cells.sum(axis=-2))
    return _true(scenario, scenario.cells())


def _true(scenario: Scenario, cells: np.ndarray) -> float:
    expected = cells * np.asarray(scenario.sizes, dtype=float)[:, None, None]
    if scenario.metric in DISPARITIES:
        return float(disparity_array({r: rate_array(expected, r) for r in ("selection_rate", "tpr", "fpr")}, scenario.metric))
    rate_name = cast(RateName, scenario.metric)
    if scenario.construction == "group rate":
        return float(rate_array(expected[0], rate_name))
    return float(rate_array(expected.sum(axis=0), rate_name))


def _draw(probabilities: np.ndarray, sizes: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    flat = probabilities.reshape(len(sizes), -1)
    counts = np.stack([rng.multinomial(n, p / p.sum()) for n, p in zip(sizes, flat, strict=True)])
    return counts.reshape(probabilities.shape).astype(np.int64)


def _one_trial(scenario: Scenario, rng: np.random.Generator, resamples: int, level: float) -> tuple[float, Interval] | None:
    """One data set's estimate and interval; ``None`` when the estimate is undefined."""
    labels = tuple(str(g) for g in range(len(scenario.sizes)))
    if scenario.construction == "delta":
        paired = _draw(scenario.paired_cells(), scenario.sizes, rng)
        boot = resample_counts(paired, resamples, rng)
        return _delta(scenario.metric, paired, boot, level)
    counts = _draw(scenario.cells(), scenario.sizes, rng)
    needs_boot = scenario.construction not in ("group rate", "overall rate")
    # rates need no resamples, only a table that asks for intervals (an empty resample array)
    boot = resample_counts(counts, resamples, rng) if needs_boot else np.zeros((0, *counts.shape), dtype=np.int64)
    table = GroupTable(labels, counts, boot, level)
    if scenario.metric in DISPARITIES:
        found = disparity_estimate(table, scenario.metric)
        estimate, ci = found.disparity.value, found.ci
    else:
        rate_name = cast(RateName, scenario.metric)
        rates = rate_estimate(table, rate_name)
        if scenario.construction == "group rate":
            estimate, ci = float(rates.by_group[0]), rates.group_ci[0]
        else:
            estimate, ci = rates.overall, rates.ci
    if ci is None or math.isnan(estimate):
        return None
    return estimate, ci


def _delta(metric: str, paired: np.ndarray, boot: np.ndarray, level: float) -> tuple[float, Interval] | None:
    if metric in DISPARITIES:
        labels = tuple(str(g) for g in range(paired.shape[0]))
        found = disparity_delta(paired, boot, metric, labels, level)
    else:
        rate_name = cast(RateName, metric)
        found = rate_delta(paired.sum(axis=0), boot.sum(axis=1), rate_name, level)
    return None if found.ci is None else (found.value, found.ci)


def _rate_grid() -> list[Scenario]:
    """A single group's rate at n ∈ {3, 10, 30, 200} and p ∈ {0, 0.02, 0.1, 0.5} (selection rate),
    and a true-positive rate with few positives."""
    grid = [
        Scenario(f"selection rate n={n} p={p}", "group rate", "selection_rate", (n,), (0.5,), (p,), (p,))
        for n in (3, 10, 30, 200)
        for p in (0.0, 0.02, 0.1, 0.5)
    ]
    grid.append(Scenario("TPR, 66 rows, 5% positive, TPR 0.1", "group rate", "tpr", (66,), (0.05,), (0.1,), (0.1,)))
    return grid


DEMO_SIZES = (66, 171, 753, 46, 4385, 93, 309, 808, 89, 9561)
DEMO_SELECTION = (0.015, 0.117, 0.036, 0.109, 0.088, 0.075, 0.304, 0.121, 0.067, 0.270)
"""The demo's sex × race groups (UCI Adult test file) and their selection rates."""


def scenarios() -> list[Scenario]:
    """Every construction, at tiny, small and large groups, rates near 0 and near parity."""
    g2 = (0.5, 0.5)
    out = _rate_grid()
    out += [
        Scenario("selection rate, groups 3 + 10, p 0.02/0.1", "overall rate", "selection_rate", (3, 10), g2, (0.02, 0.1), (0.02, 0.1)),
        Scenario("TPR, groups 30 + 200, 10% positive", "overall rate", "tpr", (30, 200), (0.1, 0.1), (0.3, 0.6), (0.1, 0.1)),
        Scenario("selection rate, demo sex × race", "overall rate", "selection_rate", DEMO_SIZES, (0.5,) * 10, DEMO_SELECTION, DEMO_SELECTION),
    ]
    for construction, metric in (("difference", "demographic_parity_difference"), ("ratio", "demographic_parity_ratio")):
        out += [
            Scenario("2 groups of 400, 0.30 vs 0.45", construction, metric, (400, 400), g2, (0.3, 0.45), (0.3, 0.45)),  # type: ignore[arg-type]
            Scenario("parity, 8 groups of 150, 0.3", construction, metric, (150,) * 8, (0.5,) * 8, (0.3,) * 8, (0.3,) * 8),  # type: ignore[arg-type]
            Scenario("groups 3/10/30/200, 0.02/0.1/0.5/0.1", construction, metric, (3, 10, 30, 200), (0.5,) * 4, (0.02, 0.1, 0.5, 0.1), (0.02, 0.1, 0.5, 0.1)),  # type: ignore[arg-type]
            Scenario("groups 30 + 2000, 0.02 vs 0.2", construction, metric, (30, 2000), g2, (0.02, 0.2), (0.02, 0.2)),  # type: ignore[arg-type]
            Scenario("demo sex × race selection rates", construction, metric, DEMO_SIZES, (0.5,) * 10, DEMO_SELECTION, DEMO_SELECTION),  # type: ignore[arg-type]
        ]
    out.append(Scenario("group never selected, 66 vs 1000", "ratio", "demographic_parity_ratio", (66, 1000), g2, (0.0, 0.3), (0.0, 0.3)))
    out += [
        Scenario("equalized odds, demo sex", "mitigation disparity", "equalized_odds_difference", (5421, 10860), (0.11, 0.30), (0.53, 0.65), (0.02, 0.09)),
        Scenario("demographic parity, demo sex", "mitigation disparity", "demographic_parity_difference", (5421, 10860), (0.11, 0.30), (0.53, 0.65), (0.02, 0.09)),
        Scenario("equalized odds, 3 positives in a group of 66", "mitigation disparity", "equalized_odds_difference", (66, 400, 900), (0.05, 0.2, 0.3), (0.1, 0.5, 0.6), (0.01, 0.05, 0.08)),
        Scenario("equalized odds, parity, 2 groups of 300", "mitigation disparity", "equalized_odds_difference", (300, 300), (0.3, 0.3), (0.6, 0.6), (0.1, 0.1)),
    ]
    flip = (0.05, 0.05, 0.15)
    three = (1000, 600, 400)
    out += [
        Scenario("Δ selection rate, 3 groups, flips 5–15%", "delta", "selection_rate", three, (0.4,) * 3, (0.8,) * 3, (0.2,) * 3, flip),
        Scenario("Δ TPR, 3 groups, flips 5–15%", "delta", "tpr", three, (0.4,) * 3, (0.8,) * 3, (0.2,) * 3, flip),
        Scenario("Δ demographic parity difference", "delta", "demographic_parity_difference", three, (0.4,) * 3, (0.8, 0.7, 0.6), (0.2,) * 3, flip),
        Scenario("Δ equalized odds difference", "delta", "equalized_odds_difference", three, (0.4,) * 3, (0.8, 0.7, 0.6), (0.2,) * 3, flip),
        Scenario("Δ selection rate, groups 30 + 100, flips 2%", "delta", "selection_rate", (30, 100), (0.4, 0.4), (0.8, 0.8), (0.2, 0.2), (0.02, 0.02)),
    ]
    return out
