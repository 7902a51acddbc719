"""Simulated coverage of every fairness interval guardrail reports.

For each construction (a group's rate with tiny and zero counts, an overall rate, a
difference and a ratio between groups, the mitigation what-if's disparities, and
candidate − baseline), data sets are drawn from groups with known rates, the intervals are
built by the same functions the audits use, and the script prints how often they hold the
true value at the nominal level and how often they exclude their own estimate (target 0).

Usage: ``python benchmarks/coverage_fairness.py [--trials 2000] [--resamples 1000] [--seed 0]``
"""

from __future__ import annotations

import argparse
import sys
import time

from guardrail.fairness.coverage import CONSTRUCTIONS, scenarios, simulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="data sets per scenario")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per data set")
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=CONSTRUCTIONS, help="one construction")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"nominal level {args.level:.0%}, {args.trials} data sets per scenario, {args.resamples} resamples, seed {args.seed}")
    print(f"{'construction':<22} {'scenario':<48} {'truth':>8} {'coverage':>9} {'± 2se':>6} {'excl. est.':>10} {'undef.':>6}")
    worst: dict[str, float] = {}
    for index, scenario in enumerate(scenarios()):
        if args.only and scenario.construction != args.only:
            continue
        found = simulate(scenario, args.trials, resamples=args.resamples, level=args.level, seed=args.seed + index)
        print(
            f"{scenario.construction:<22} {scenario.name:<48} {found.truth:8.4f} {found.coverage:9.4f} "
            f"{2 * found.monte_carlo_se:6.4f} {found.exclusion_share:10.4f} {found.trials - found.defined:6d}"
        )
        worst[scenario.construction] = min(worst.get(scenario.construction, 1.0), found.coverage)
    print("lowest coverage by construction: " + ", ".join(f"{k} {v:.4f}" for k, v in worst.items()))
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
