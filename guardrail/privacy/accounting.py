"""ε from a DP-SGD history, computed by Opacus' own accountants (imported lazily).

A history is a sequence of ``(noise_multiplier, sample_rate, steps)`` segments, exactly
the shape of Opacus' ``accountant.history``; feeding it to Opacus' ``RDPAccountant`` or
``PRVAccountant`` makes guardrail's ε equal Opacus' by construction. Consecutive segments
with the same σ and q are merged first (the same composition, fewer terms). For RDP the
per-step RDP vector of each (σ, q) is cached and scaled by the step count — exactly what
Opacus' ``compute_rdp`` does — and summed and converted by Opacus' own
``get_privacy_spent``, so the value is bit-identical to ``RDPAccountant.get_epsilon`` and
100,000 steps cost one evaluation (~15 ms on 2 CPU cores; microseconds when cached, which
makes per-epoch ε and the ``max_epsilon`` search cheap).

PRV is tighter but slower for long histories: at Opacus' default ``eps_error=0.01`` the
PRV ε of 100,000 steps took 5–7 s here; ``eps_error=0.1`` takes ~0.4 s. The PRV value is
Opacus' *upper* bound, so a coarser ``eps_error`` only loosens it by at most that amount.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from guardrail.core.errors import DataError, MissingExtraError
from guardrail.privacy._search import crossing

Accountant = Literal["rdp", "prv"]
ACCOUNTANTS: tuple[Accountant, ...] = ("rdp", "prv")
DEFAULT_EPS_ERROR = 0.01
"""Opacus' default accuracy for PRV's ε (an upper bound within this much of the estimate)."""

HistoryEntry = tuple[float, float, int]
_ALPHA_WARNING = "Optimal order is the"
"""Opacus' RDP warns when the best Rényi order is at the end of its grid: the ε it returns is
then a valid but looser upper bound (this happens for very small or very large ε)."""


def merge_history(history: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    """Merge consecutive entries with equal σ and q and drop zero-step entries.

    >>> merge_history([(1.0, 0.01, 10), (1.0, 0.01, 5), (2.0, 0.01, 0), (1.5, 0.01, 3)])
    [(1.0, 0.01, 15), (1.5, 0.01, 3)]
    """
    merged: list[HistoryEntry] = []
    for sigma, rate, steps in history:
        if steps <= 0:
            continue
        if merged and merged[-1][0] == sigma and merged[-1][1] == rate:
            merged[-1] = (sigma, rate, merged[-1][2] + steps)
        else:
            merged.append((float(sigma), float(rate), int(steps)))
    return merged


def check_entry(noise_multiplier: float, sample_rate: float, steps: int) -> None:
    """Raise :class:`DataError` unless σ ≥ 0 (finite), 0 < q ≤ 1 and steps ≥ 0 (an int)."""
    if not (
        isinstance(noise_multiplier, (int, float))
        and math.isfinite(noise_multiplier)
        and noise_multiplier >= 0
    ):
        raise DataError(
            f"noise_multiplier must be a finite number ≥ 0, got {noise_multiplier!r}"
        )
    if not (isinstance(sample_rate, (int, float)) and 0 < sample_rate <= 1):
        raise DataError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise DataError(f"steps must be an integer ≥ 0, got {steps!r}")


def epsilon(
    history: Sequence[HistoryEntry],
    delta: float,
    accountant: Accountant = "rdp",
    *,
    eps_error: float = DEFAULT_EPS_ERROR,
) -> float:
    """ε spent by ``history`` at ``delta``, by Opacus' RDP or PRV accountant.

    Returns 0.0 for an empty history and ``math.inf`` if any segment has σ = 0 (no noise).
    ``eps_error`` applies to PRV only.
    """
    if not 0 < delta < 1:
        raise DataError(f"delta must be in (0, 1), got {delta!r}")
    if accountant not in ACCOUNTANTS:
        raise DataError(
            f"unknown accountant {accountant!r}",
            hint=f"use one of {', '.join(ACCOUNTANTS)}",
        )
    return _epsilon(
        tuple(merge_history(history)), float(delta), accountant, float(eps_error)
    )


@functools.lru_cache(maxsize=1024)
def _epsilon(
    merged: tuple[HistoryEntry, ...],
    delta: float,
    accountant: Accountant,
    eps_error: float,
) -> float:
    """Cached: the ledger asks for the same history's ε several times (history, JSON, result)."""
    if not merged:
        return 0.0
    if any(sigma == 0 for sigma, _, _ in merged):
        return math.inf
    try:
        from opacus.accountants import PRVAccountant, RDPAccountant
    except ImportError:
        raise MissingExtraError("opacus", "privacy") from None
    if accountant == "rdp":
        from opacus.accountants.analysis import rdp as analysis

        # Opacus' RDPAccountant.get_privacy_spent, with each (σ, q)'s per-step RDP vector
        # cached: compute_rdp(q, σ, steps) is exactly unit_rdp(q, σ) * steps.
        rdp = sum([_unit_rdp(sigma, rate) * steps for sigma, rate, steps in merged])
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=_ALPHA_WARNING, category=UserWarning
            )
            eps, _ = analysis.get_privacy_spent(
                orders=RDPAccountant.DEFAULT_ALPHAS, rdp=rdp, delta=delta
            )
        return float(eps)
    prv = PRVAccountant()
    prv.history = list(merged)
    with warnings.catch_warnings():
        # PRV sizes its domain with an internal RDP bound, which warns the same way
        warnings.filterwarnings("ignore", message=_ALPHA_WARNING, category=UserWarning)
        return float(prv.get_epsilon(delta, eps_error=eps_error))


@functools.lru_cache(maxsize=256)
def _unit_rdp(noise_multiplier: float, sample_rate: float) -> Any:
    """RDP of one step at every order of Opacus' default grid (read-only array)."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis import rdp as analysis

    unit = analysis.compute_rdp(
        q=sample_rate,
        noise_multiplier=noise_multiplier,
        steps=1,
        orders=RDPAccountant.DEFAULT_ALPHAS,
    )
    unit.setflags(write=False)
    return unit


def max_steps_within(
    history: Sequence[HistoryEntry],
    max_epsilon: float,
    delta: float,
    noise_multiplier: float,
    sample_rate: float,
    accountant: Accountant = "rdp",
    *,
    limit: int = 10_000_000,
    eps_error: float = DEFAULT_EPS_ERROR,
) -> int:
    """The largest ``k ≤ limit`` such that ``history`` plus ``k`` steps of (σ, q) keeps ε ≤ ``max_epsilon``.

    ε grows monotonically with steps, so a doubling then bisection search needs
    O(log k) accountant calls. Training that takes at most this many further steps never
    exceeds ``max_epsilon``; the step after it would.
    """
    check_entry(noise_multiplier, sample_rate, 0)

    def fits(k: int) -> bool:
        return (
            epsilon(
                [*history, (noise_multiplier, sample_rate, k)],
                delta,
                accountant,
                eps_error=eps_error,
            )
            <= max_epsilon
        )

    if not fits(0):
        return 0
    low, high = 0, 1
    while high <= limit and fits(high):
        low, high = high, high * 2
    if high > limit:
        return limit if fits(limit) else _bisect(fits, low, limit)
    return _bisect(fits, low, high)


def _bisect(fits: Callable[[int], bool], low: int, high: int) -> int:
    """Largest k in [low, high) with fits(k), given fits(low) and not fits(high)."""
    while high - low > 1:
        mid = (low + high) // 2
        if fits(mid):
            low = mid
        else:
            high = mid
    return low


def noise_for_epsilon(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: Accountant = "rdp",
) -> float:
    """The σ that spends ``target_epsilon`` in ``steps`` steps at rate q, from nothing spent.

    :func:`noise_for_budget` with an empty history; :class:`DataError` when even
    :data:`MAX_NOISE_MULTIPLIER` spends more than the target.
    """
    sigma = noise_for_budget((), target_epsilon, delta, sample_rate, steps, accountant)
    if sigma is None:
        raise DataError(
            f"target_epsilon={target_epsilon} is too small for {steps} steps at sample rate {sample_rate:.4g}: "
            f"even σ = {MAX_NOISE_MULTIPLIER:g} spends more",
            hint="raise target_epsilon, train fewer epochs, or use a smaller batch size",
        )
    return sigma


MAX_NOISE_MULTIPLIER = 100.0
"""The largest σ :func:`noise_for_budget` plans. Beyond it the noise swamps any clipped
gradient (at C = 1 and a batch of 1,000 the noise on the mean gradient has norm ≈ 0.1·√d)
and a planned run would train nothing, so a budget that needs more is refused instead."""

SPENT_BELOW = 0.01
"""A budget with less ε than this left is spent: it is the precision to which a planned run
meets its target (Opacus' ``get_noise_multiplier`` stops within 0.01 of it), so a run planned
for a target leaves less than this, and a resume must not squeeze more steps into the rest."""

SIGMA_PRECISION = 1e-3
"""Relative precision of a planned σ: the planned σ is at most this much above the smallest σ
that fits the budget."""


def noise_for_budget(
    history: Sequence[HistoryEntry],
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: Accountant = "rdp",
    *,
    max_noise: float = MAX_NOISE_MULTIPLIER,
    eps_error: float = DEFAULT_EPS_ERROR,
) -> float | None:
    """The smallest σ (to :data:`SIGMA_PRECISION`) for ``steps`` more steps at rate q such that
    ``history`` plus those steps spends at most ``target_epsilon``; ``None`` when the history
    has spent the budget (less than :data:`SPENT_BELOW` is left) or no σ up to ``max_noise``
    fits.

    The target bounds the whole history: ε is that of ``[*history, (σ, q, steps)]`` by the
    same accountant (and the same function, :func:`epsilon`) that reports the ledger's ε, so
    a ledger that takes exactly those steps ends at ε ≤ ``target_epsilon``. With an empty
    history this is the σ of a fresh run (what Opacus' ``get_noise_multiplier`` computes,
    to a tighter tolerance). ε decreases as σ grows, so σ is bracketed by doubling from 1
    and then bisected: about 10–15 accountant calls.

    >>> sigma = noise_for_budget([(1.0, 0.01, 1000)], 3.0, 1e-5, 0.01, 1000)
    >>> round(sigma, 2), epsilon([(1.0, 0.01, 1000), (sigma, 0.01, 1000)], 1e-5) <= 3.0
    (0.96, True)
    >>> noise_for_budget([(1.0, 0.01, 1000)], 1.0, 1e-5, 0.01, 1000) is None  # already spent
    True
    """
    if not (math.isfinite(target_epsilon) and target_epsilon > 0) or steps <= 0:
        raise DataError(
            f"target_epsilon and steps must be positive, got {target_epsilon!r} and {steps!r}"
        )
    check_entry(1.0, sample_rate, steps)
    spent = list(history)

    def fits(sigma: float) -> bool:
        total = epsilon([*spent, (sigma, sample_rate, steps)], delta, accountant, eps_error=eps_error)
        return total <= target_epsilon

    left = target_epsilon - epsilon(spent, delta, accountant, eps_error=eps_error)
    if left < SPENT_BELOW or not fits(max_noise):
        return None
    _, sigma = crossing(
        lambda sigma: not fits(sigma),
        min(1.0, max_noise),
        grow=lambda high: min(2 * high, max_noise),
        close=lambda low, high: high - low <= SIGMA_PRECISION * high,
    )
    return sigma
