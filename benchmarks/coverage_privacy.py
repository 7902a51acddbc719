"""Coverage of the intervals guardrail reports for membership-inference attacks, in simulation.

Attack scores are drawn from a binormal model with known ROC curve: members ~ N(μ, 1),
non-members ~ N(0, 1), so that

* AUC = Φ(μ / √2),
* TPR at FPR α = Φ(μ − z₁₋α),
* advantage = max_t (TPR − FPR) = 2 Φ(μ / 2) − 1.

Each replicate draws fresh scores, runs :func:`guardrail.privacy.membership.attack_metrics`
(the one place these figures and their intervals are computed) and checks whether each
interval covers the true value and whether it contains its own estimate. A grouped setting
draws several groups with different μ and judges the grouping's interval (that of the most
exposed group's value, i.e. of the largest group value) against the largest true value.

Printed per setting and figure: coverage (target: the nominal 95% or more), the share of
intervals that exclude their own estimate (target: 0), the mean width, and how many
replicates defined the figure.

Usage: ``python benchmarks/coverage_privacy.py [--replicates 400] [--bootstrap 400]``
(≈ 3 minutes on 2 cores at the defaults). ``tests/privacy/test_interval_coverage.py`` runs
a small version in the default suite and a larger one marked slow.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FIGURES = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr", "advantage")


@dataclass(frozen=True)
class Setting:
    """One simulated audit: a group per μ, each with ``members`` and ``nonmembers`` scores."""

    name: str
    mus: tuple[float, ...]
    members: int
    nonmembers: int

    @property
    def grouped(self) -> bool:
        return len(self.mus) > 1


@dataclass(frozen=True)
class Coverage:
    """How the intervals of one figure did over the replicates of one setting."""

    setting: str
    figure: str
    defined: int
    covered: int
    excluded_estimate: int
    mean_width: float

    @property
    def coverage(self) -> float:
        return self.covered / self.defined if self.defined else math.nan

    @property
    def excluded_share(self) -> float:
        return self.excluded_estimate / self.defined if self.defined else math.nan


SETTINGS = (
    Setting("no leak, 500 members / 1000 non-members", (0.0,), 500, 1000),
    Setting("moderate leak, 500 / 1000", (1.0,), 500, 1000),
    Setting("strong leak, 300 / 2000", (2.5,), 300, 2000),
    Setting("small sample, 40 / 40", (0.5,), 40, 40),
    Setting("3 groups (μ 0.3, 0.6, 1.0), 200 / 400 each", (0.3, 0.6, 1.0), 200, 400),
)


def truth(mu: float) -> dict[str, float]:
    """The true value of every figure for members ~ N(μ, 1) against non-members ~ N(0, 1)."""
    from scipy.stats import norm

    return {
        "auc": float(norm.cdf(mu / math.sqrt(2))),
        "tpr_at_1pct_fpr": float(norm.cdf(mu - norm.ppf(0.99))),
        "tpr_at_0_1pct_fpr": float(norm.cdf(mu - norm.ppf(0.999))),
        "advantage": float(2 * norm.cdf(mu / 2) - 1),
    }


def simulate(setting: Setting, replicates: int, bootstrap: int, seed: int = 0) -> list[Coverage]:
    """Coverage of every figure's interval over ``replicates`` seeded draws of ``setting``."""
    from guardrail.privacy.membership import attack_metrics

    true = {figure: max(truth(mu)[figure] for mu in setting.mus) for figure in FIGURES}
    tally = {figure: [0, 0, 0, 0.0] for figure in FIGURES}  # defined, covered, excluded, width sum
    for replicate in range(replicates):
        rng = np.random.default_rng([seed, replicate])
        scores, member, group = [], [], []
        for g, mu in enumerate(setting.mus):
            scores += [rng.normal(mu, 1.0, setting.members), rng.normal(0.0, 1.0, setting.nonmembers)]
            member += [np.ones(setting.members, bool), np.zeros(setting.nonmembers, bool)]
            group.append(np.full(setting.members + setting.nonmembers, f"g{g}"))
        report = attack_metrics(
            np.concatenate(scores),
            np.concatenate(member),
            {"group": np.concatenate(group)} if setting.grouped else None,
            bootstrap=bootstrap,
            seed=replicate,
        )
        for figure in FIGURES:
            metric = report.metric(figure, "group" if setting.grouped else None)
            if metric.value is None or metric.ci is None:
                continue
            counts = tally[figure]
            counts[0] += 1
            counts[1] += metric.ci.low <= true[figure] <= metric.ci.high
            counts[2] += not metric.ci.low <= metric.value <= metric.ci.high
            counts[3] += metric.ci.high - metric.ci.low
    return [
        Coverage(
            setting.name,
            figure,
            int(counts[0]),
            int(counts[1]),
            int(counts[2]),
            counts[3] / counts[0] if counts[0] else math.nan,
        )
        for figure, counts in tally.items()
    ]


def table(results: Sequence[Coverage]) -> str:
    """The results as a fixed-width text table."""
    lines = [f"{'setting':44} {'figure':18} {'coverage':>8} {'excl.est':>8} {'width':>7} {'n':>5}"]
    for r in results:
        lines.append(
            f"{r.setting:44} {r.figure:18} {r.coverage:8.3f} {r.excluded_share:8.3f} {r.mean_width:7.3f} {r.defined:5d}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--bootstrap", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = [r for s in SETTINGS for r in simulate(s, args.replicates, args.bootstrap, args.seed)]
    print(f"95% intervals, {args.replicates} replicates per setting, {args.bootstrap} bootstrap resamples")
    print(table(results))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
