"""The smallest gap between two groups' rates that a test set can detect."""

from __future__ import annotations

import math
from statistics import NormalDist


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
