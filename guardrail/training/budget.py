"""σ for a DP run under ``target_epsilon``, planned so that the whole ledger stays within it.

``target_epsilon`` bounds the whole ledger, not one run: σ is planned for the steps a trainer
will still take so that the ledger's history so far plus those steps spends at most the
target (:func:`guardrail.privacy.accounting.noise_for_budget`, by the configured accountant).
A fresh run gets the usual σ; a resumed run (a ledger with steps) gets the σ that fits the
remaining steps into what is left of the budget, and the ledger says so in a note. When
nothing fits (less than ``SPENT_BELOW`` of the budget is left, or the remaining steps would
need σ > ``MAX_NOISE_MULTIPLIER``) the run is refused before a step, saying what was spent
and how to go on.
"""

from __future__ import annotations

from guardrail.core.errors import UsageError
from guardrail.privacy.accounting import MAX_NOISE_MULTIPLIER, SPENT_BELOW, epsilon, noise_for_budget
from guardrail.privacy.ledger import Ledger
from guardrail.training.config import DPConfig

BEYOND_TARGET = "no noise multiplier keeps this training within target_epsilon"
"""Start of the refusal when the ledger plus the planned steps cannot fit the target."""

RESUMED_WITHIN_TARGET = (
    "resumed after {spent_steps} steps that spent ε = {spent:.4g} ({accountant}): target_epsilon = {target:g} "
    "bounds the whole ledger, so the {steps} further steps were planned at σ = {sigma:.4g} (previous segment: σ = {previous:.4g})"
)
"""Ledger note of a resumed run whose σ was re-planned within the target."""


def plan_within_target(
    dp: DPConfig, ledger: Ledger, sample_rate: float, steps: int
) -> tuple[float, Ledger]:
    """σ for ``steps`` more steps so that the whole ledger stays within ``dp.target_epsilon``.

    Returns σ and the ledger, with a note when it continues a history (a resumed run).
    Raises :class:`UsageError` when no σ up to ``MAX_NOISE_MULTIPLIER`` fits.
    """
    assert dp.target_epsilon is not None
    history = ledger.history
    if steps <= 0:  # nothing left to train: keep the last σ (or any σ: no step will use it)
        return (history[-1][0] if history else 1.0), ledger
    sigma = noise_for_budget(history, dp.target_epsilon, dp.delta, sample_rate, steps, dp.accountant)
    spent = ledger.epsilon(accountant=dp.accountant)
    if sigma is None:
        raise beyond_target(dp, ledger, spent, sample_rate, steps)
    if history:
        ledger = ledger.with_notes(
            RESUMED_WITHIN_TARGET.format(
                spent_steps=ledger.steps,
                spent=spent,
                accountant=dp.accountant,
                target=dp.target_epsilon,
                steps=steps,
                sigma=sigma,
                previous=history[-1][0],
            )
        )
    return sigma, ledger


def beyond_target(
    dp: DPConfig, ledger: Ledger, spent: float, sample_rate: float, steps: int
) -> UsageError:
    """The refusal when ``steps`` more steps cannot fit into ``dp.target_epsilon``."""
    assert dp.target_epsilon is not None
    history = ledger.history
    budget = f"target_epsilon = {dp.target_epsilon:g} ({dp.accountant}, δ = {dp.delta:g})"
    if not history:
        return UsageError(
            f"{BEYOND_TARGET}: {budget} is too small for {steps} steps at sample rate {sample_rate:.4g} "
            f"(even σ = {MAX_NOISE_MULTIPLIER:g} spends more)",
            hint="raise target_epsilon, train fewer epochs, or use a smaller batch size",
        )
    previous = history[-1][0]
    continued = epsilon([*history, (previous, sample_rate, steps)], dp.delta, dp.accountant)
    left = dp.target_epsilon - spent
    why = (
        f"only {max(0.0, left):.2g} of it is left (a budget with less than {SPENT_BELOW:g} left is spent)"
        if left < SPENT_BELOW
        else f"the {steps} further steps would need σ > {MAX_NOISE_MULTIPLIER:g}"
    )
    return UsageError(
        f"{BEYOND_TARGET}: the ledger to continue already spent ε = {spent:.4g} in {ledger.steps} steps, "
        f"{budget} bounds the whole ledger, and {why}",
        hint=(
            f"raise target_epsilon to the ε the whole run may spend (continuing at the last σ = {previous:.4g} "
            f"would end at ε = {continued:.3g}), set noise_multiplier instead, or train from scratch into a new "
            "folder with the final number of epochs"
        ),
    )
