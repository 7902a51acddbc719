"""The smallest gap between two groups' rates that a test set can detect."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from guardrail.fairness.metrics import DisparityName


def detectable_gap(rate: float, n_a: int, n_b: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest difference of two proportions detectable by a two-sided z-test.

    ``(z_{1-α/2} + z_{power}) · sqrt(p(1−p)(1/n_a + 1/n_b))`` with ``p`` the pooled rate.

    >>> round(detectable_gap(0.5, 100, 100), 4)
    0.1981
    """
    if n_a <= 0 or n_b <= 0:
        return math.inf
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return z * math.sqrt(rate * (1 - rate) * (1 / n_a + 1 / n_b))


def detectable_gap_details(name: DisparityName, counts: np.ndarray, labels: tuple[str, ...], confidence: float) -> dict[str, object]:
    """For a difference: the smallest gap the two smallest groups (by the rate's
    denominator) can show at 80% power with a two-sided test at 1 − ``confidence``
    (``details["detectable_gap"]`` and its basis; empty for a ratio or a single group).

    The pooled rate is shrunk as ``(x + ½) / (n + 1)``, so a rate of exactly 0 or 1 does
    not claim that any gap is detectable.
    """
    import numpy as np

    from guardrail.fairness.metrics import based_on, denominator_array, rate

    if not name.endswith("difference") or len(labels) < 2:
        return {}
    alpha = 1 - confidence
    gaps = []
    for rate_name in based_on(name):
        denominators = denominator_array(counts, rate_name)
        first, second = (int(i) for i in np.argsort(denominators, kind="stable")[:2])
        overall, total = rate(counts, rate_name).overall, int(denominators.sum())
        if math.isnan(overall):
            continue
        pooled = (overall * total + 0.5) / (total + 1)
        gap = detectable_gap(pooled, int(denominators[first]), int(denominators[second]), alpha=alpha)
        gaps.append((gap, rate_name, labels[first], labels[second], int(denominators[first]), int(denominators[second])))
    if not gaps:
        return {}
    gap, rate_name, a, b, n_a, n_b = max(gaps)
    return {
        "detectable_gap": None if math.isinf(gap) else gap,
        "detectable_gap_basis": {
            "rate": rate_name, "groups": [a, b], "n": [n_a, n_b], "power": 0.8, "alpha": alpha,
        },
    }
