"""ε from a history equals Opacus' own accountants (the independent oracle) and pinned values."""

from __future__ import annotations

import math

import pytest

from guardrail.core.errors import DataError
from guardrail.privacy.accounting import (
    epsilon,
    max_steps_within,
    merge_history,
    noise_for_budget,
    noise_for_epsilon,
)

pytest.importorskip("opacus")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:opacus.*")

DELTA = 1e-5


@pytest.mark.parametrize(
    ("steps", "rdp", "prv"),
    [
        (128, 1.11, 0.61),
        (1000, 1.68, 1.41),
    ],  # measured in ENVIRONMENT.md (σ=1, q=1/128)
)
def test_pinned_values(steps: int, rdp: float, prv: float) -> None:
    history = [(1.0, 1 / 128, steps)]
    assert epsilon(history, DELTA, "rdp") == pytest.approx(rdp, abs=0.01)
    assert epsilon(history, DELTA, "prv") == pytest.approx(prv, abs=0.01)


def test_equals_opacus_accountants_stepped_one_step_at_a_time() -> None:
    from opacus.accountants import PRVAccountant, RDPAccountant

    schedule = [(1.1, 0.02, 30), (0.8, 0.05, 12), (1.1, 0.02, 7)]
    rdp, prv = RDPAccountant(), PRVAccountant()
    for sigma, rate, steps in schedule:
        for _ in range(steps):
            rdp.step(noise_multiplier=sigma, sample_rate=rate)
            prv.step(noise_multiplier=sigma, sample_rate=rate)
    assert epsilon(schedule, DELTA, "rdp") == rdp.get_epsilon(DELTA)
    # PRV is numerical: the same history may differ in the last digits (1e-10 seen under load)
    assert epsilon(schedule, DELTA, "prv") == pytest.approx(prv.get_epsilon(DELTA), rel=1e-6)


def test_merge_is_the_same_composition() -> None:
    split = [(1.0, 0.01, 50), (1.0, 0.01, 50)]
    assert merge_history(split) == [(1.0, 0.01, 100)]
    assert epsilon(split, DELTA) == epsilon([(1.0, 0.01, 100)], DELTA)


def test_edge_cases() -> None:
    assert epsilon([], DELTA) == 0.0
    assert epsilon([(0.0, 0.1, 1)], DELTA) == math.inf
    with pytest.raises(DataError, match="delta"):
        epsilon([(1.0, 0.1, 1)], 1.5)


def test_max_steps_within_is_the_boundary() -> None:
    k = max_steps_within([], 1.5, DELTA, 1.0, 1 / 128)
    assert (
        epsilon([(1.0, 1 / 128, k)], DELTA)
        <= 1.5
        < epsilon([(1.0, 1 / 128, k + 1)], DELTA)
    )
    assert max_steps_within([(1.0, 1 / 128, 1000)], 1.5, DELTA, 1.0, 1 / 128) == 0


def test_noise_for_epsilon_hits_the_target() -> None:
    sigma = noise_for_epsilon(2.0, DELTA, 0.05, 200)
    assert epsilon([(sigma, 0.05, 200)], DELTA) == pytest.approx(2.0, abs=0.02)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_noise_for_budget_fits_the_whole_history_into_the_target(accountant: str) -> None:
    from opacus.accountants import PRVAccountant, RDPAccountant

    spent = [(1.2, 0.05, 100)]
    sigma = noise_for_budget(spent, 4.0, DELTA, 0.05, 100, accountant)  # type: ignore[arg-type]
    assert sigma is not None
    oracle = PRVAccountant() if accountant == "prv" else RDPAccountant()
    oracle.history = [*spent, (sigma, 0.05, 100)]
    assert 4.0 - 0.02 <= oracle.get_epsilon(DELTA) <= 4.0
    # the smallest σ that fits, to its stated precision: a little less spends too much
    assert epsilon([*spent, (sigma * 0.995, 0.05, 100)], DELTA, accountant) > 4.0  # type: ignore[arg-type]


def test_noise_for_budget_refuses_a_spent_budget_and_beyond_the_cap() -> None:
    spent = epsilon([(1.0, 0.05, 200)], DELTA)
    assert noise_for_budget([(1.0, 0.05, 200)], spent + 0.005, DELTA, 0.05, 100) is None  # < 0.01 left
    assert noise_for_budget([(1.0, 0.05, 200)], spent + 0.5, DELTA, 0.05, 100) is not None
    assert noise_for_budget([], 0.5, DELTA, 0.5, 10_000, max_noise=2.0) is None  # would need σ > 2
