"""Every interval the membership-inference audit reports covers the truth in simulation and
contains its own estimate (the defence of issue 14), by ``benchmarks/coverage_privacy.py``.

Scores come from a binormal model with a known ROC curve. The default run is small (a few
seconds): seeded, so its figures never change from run to run, and judged with wide
tolerances. The slow run is the benchmark's own size with tighter ones.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import numpy as np
import pytest

from tests.conftest import REPO


def _benchmark() -> ModuleType:
    path = REPO / "benchmarks" / "coverage_privacy.py"
    spec = importlib.util.spec_from_file_location("coverage_privacy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("coverage_privacy", module)
    spec.loader.exec_module(module)
    return module


coverage_privacy = _benchmark()
Setting = coverage_privacy.Setting

FAST = (
    Setting("no leak", (0.0,), 300, 1000),
    Setting("strong leak", (2.5,), 200, 1000),
    Setting("3 groups", (0.3, 0.6, 1.0), 100, 200),
)


@pytest.mark.parametrize("setting", FAST, ids=lambda s: s.name)
def test_every_interval_covers_and_contains_its_estimate(setting: object) -> None:
    results = coverage_privacy.simulate(setting, replicates=40, bootstrap=200, seed=1)
    print("\n" + coverage_privacy.table(results))
    for result in results:
        if result.defined == 0:
            continue
        assert result.defined == 40, result
        assert result.excluded_estimate == 0, result
        # 40 replicates: a 95% interval covers 36 or more with probability ≈ 0.9, 33 or more ≈ 0.998
        assert result.coverage >= 33 / 40, result


@pytest.mark.slow
def test_coverage_at_the_benchmarks_size() -> None:
    results = [
        r for s in coverage_privacy.SETTINGS for r in coverage_privacy.simulate(s, replicates=400, bootstrap=400)
    ]
    print("\n" + coverage_privacy.table(results))
    for result in results:
        if result.defined:
            assert result.excluded_estimate == 0, result
            assert result.coverage >= 0.92, result  # 400 replicates: ±0.011 around 0.95


def test_the_advantage_of_a_useless_attack_is_covered_at_zero() -> None:
    """The percentile bootstrap of a maximum never reaches down to its truth at 0."""
    from guardrail.privacy.membership import attack_metrics

    covered = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        member = np.arange(600) < 200
        report = attack_metrics(rng.normal(size=600), member, bootstrap=200, seed=seed)
        ci = report.metric("advantage").ci
        assert ci is not None
        covered += ci.low == 0.0
    assert covered >= 17
