"""Does the DP claim hold? A canary audit of one training run (Steinke, Nasr & Jagielski, 2023).

The audit inserts ``m`` canaries into the training data, each independently with
probability 1/2, trains once, scores every canary (higher = "looks included"), guesses
"in" for the ``k+`` highest scores and "out" for the ``k−`` lowest (abstaining on the
rest), and counts the correct guesses. If the training run were (ε, δ)-DP, many correct
guesses would be unlikely; :func:`epsilon_lower_bound` turns the count into the largest ε
that the observation rejects at the chosen confidence. An ε lower bound above the ε the
accountant claims means the claim is false (a bug in the DP implementation or its
accounting): an error-level finding.

References
----------
T. Steinke, M. Nasr, M. Jagielski. *Privacy Auditing with One (1) Training Run.*
NeurIPS 2023 (arXiv:2305.08846). The p-value below is their main theorem for approximate
DP (Theorem 3 of the arXiv version) as evaluated numerically in their paper's appendix code.

M. Nasr, J. Hayes, T. Steinke, B. Balle, F. Tramèr, M. Jagielski, N. Carlini, A. Terzis.
*Tight Auditing of Differentially Private Machine Learning.* USENIX Security 2023
(white-box "Dirac" gradient canaries).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from guardrail.privacy._checks import scores_and_flags
from guardrail.privacy._search import crossing
from guardrail.privacy.canary_report import (
    DP_AUDIT_FILE,
    CanaryAuditReport,
    GuessOutcome,
    load_canary_report,
    save_canary_report,
)
from guardrail.privacy.ledger import Segment

# the report and its file (guardrail.privacy.canary_report) are re-exported: callers import the
# whole canary audit from here
__all__ = [
    "DP_AUDIT_FILE",
    "CanaryAuditReport",
    "CanaryRun",
    "GuessOutcome",
    "audit_canary_scores",
    "default_guess_grid",
    "epsilon_lower_bound",
    "load_canary_report",
    "one_run_canary_audit",
    "p_value",
    "save_canary_report",
]

GUESS_FRACTIONS = (0.05, 0.1, 0.2)
"""Default ``k+ = k−`` as fractions of the number of canaries (see :func:`default_guess_grid`)."""


def p_value(
    correct: int, guesses: int, epsilon: float, delta: float, *, canaries: int
) -> float:
    """Probability of at least ``correct`` right guesses out of ``guesses`` under (ε, δ)-DP.

    Steinke et al.'s bound: with ``q = e^ε / (1 + e^ε)`` (the accuracy of ε-DP randomized
    response), ``W ~ Binomial(r, q)``, ``r`` = ``guesses``, ``v`` = ``correct`` and ``m`` =
    ``canaries``,

    ``p = P[W ≥ v] + 2 m δ · max_{i = 1..v} P[v − i ≤ W < v] / i``,

    capped at 1. The second term is what δ costs; with ``delta = 0`` it vanishes.

    Parameters
    ----------
    correct, guesses:
        ``v`` and ``r``, with ``0 ≤ v ≤ r ≤ m``.
    epsilon, delta:
        The null hypothesis: the training run is (ε, δ)-DP.
    canaries:
        ``m``, the number of canaries (included or not): the δ term grows with it.

    Examples
    --------
    >>> round(p_value(50, 100, 0.0, 0.0, canaries=100), 3)  # coin flipping: half right
    0.54
    >>> p_value(10, 10, 0.0, 0.0, canaries=10) == 0.5 ** 10
    True
    """
    from scipy.special import expit
    from scipy.stats import binom

    _check_counts(correct, guesses, canaries)
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(f"epsilon must be finite and ≥ 0, got {epsilon!r}")
    if not 0 <= delta <= 1:
        raise ValueError(f"delta must be in [0, 1], got {delta!r}")
    q = float(expit(epsilon))
    tail = float(binom.sf(correct - 1, guesses, q))  # P[W ≥ v]
    if delta == 0 or correct == 0:
        return min(1.0, tail)
    below = binom.pmf(
        np.arange(correct - 1, -1, -1), guesses, q
    )  # P[W = v−1], P[W = v−2], …, P[W = 0]
    alpha = float(np.max(np.cumsum(below) / np.arange(1, correct + 1)))
    return min(1.0, tail + 2 * canaries * delta * alpha)


def epsilon_lower_bound(
    correct: int, guesses: int, delta: float, confidence: float = 0.95, *, canaries: int
) -> float:
    """The largest ε that ``correct`` right guesses out of ``guesses`` refute at ``confidence``.

    ``ε_lower = sup {ε ≥ 0 : p_value(correct, guesses, ε, δ) ≤ 1 − confidence}``, 0 when even
    ε = 0 is not rejected. The p-value grows with ε, so the supremum is found by doubling
    and then bisection to 1e-9 (as in the authors' code). With probability at least
    ``confidence`` over the canaries' random inclusion, a run that really is (ε, δ)-DP
    gives ``ε_lower ≤ ε``.

    Parameters
    ----------
    correct, guesses:
        Right guesses ``v`` and guesses made ``r`` (abstentions excluded).
    delta:
        The δ of the claim being audited.
    confidence:
        ``1 −`` the p-value threshold (0.95: reject when p ≤ 0.05).
    canaries:
        The number of canaries ``m`` (every one, guessed or not).

    Examples
    --------
    All guesses right: the bound grows with the number of guesses; half right proves nothing.

    >>> [round(epsilon_lower_bound(r, r, 1e-5, canaries=1000), 2) for r in (10, 100, 1000)]
    [1.01, 3.47, 5.78]
    >>> epsilon_lower_bound(500, 1000, 1e-5, canaries=1000)
    0.0
    """
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence!r}")
    threshold = 1 - confidence

    def rejects(epsilon: float) -> bool:
        return p_value(correct, guesses, epsilon, delta, canaries=canaries) <= threshold

    def doubled(high: float) -> float:
        if 2 * high > 1e4:  # unreachable for finite counts: P[W ≥ v] → 1 as ε grows
            raise AssertionError("epsilon search diverged")
        return 2 * high

    if not rejects(0.0):
        return 0.0
    low, _ = crossing(rejects, 1.0, grow=doubled, close=lambda low, high: high - low <= 1e-9)
    return low


@dataclass(frozen=True)
class CanaryRun:
    """What the caller's training function returns: per-canary scores and the claimed ε.

    ``scores[i]`` is canary ``i``'s score after training, higher meaning "more likely
    included" (for example −loss, or the trained weight along a Dirac canary's direction);
    ``epsilon_claimed`` is the accountant's ε for this very run at the audit's δ (the
    dataset size, hence the sample rate, depends on which canaries were included).
    ``history`` is that run's ledger, ``(σ, q, steps)`` segments, when the caller keeps one;
    ``replayed`` says whether the run replayed a trained model's ledger (each segment's σ and
    step count) rather than a σ from the recipe.
    """

    scores: npt.ArrayLike
    epsilon_claimed: float
    history: tuple[Segment, ...] = ()
    replayed: bool = False


def default_guess_grid(canaries: int) -> tuple[tuple[int, int], ...]:
    """``(k+, k−)`` pairs tried by default: ``k+ = k− = ⌈f·m⌉`` for f in 5%, 10%, 20%.

    Fixed before seeing any score, so the only correction needed for taking the best of
    them is Bonferroni's (each is judged at p ≤ (1 − confidence) / 3).

    >>> default_guess_grid(1000)
    ((50, 50), (100, 100), (200, 200))
    """
    return tuple(
        dict.fromkeys((max(1, math.ceil(f * canaries)),) * 2 for f in GUESS_FRACTIONS)
    )


def audit_canary_scores(
    scores: npt.ArrayLike,
    included: npt.ArrayLike,
    *,
    epsilon_claimed: float,
    delta: float,
    confidence: float = 0.95,
    guess_grid: Sequence[tuple[int, int]] | None = None,
    seed: int = 0,
) -> CanaryAuditReport:
    """Guess membership from canary scores, count the right guesses, bound ε.

    For each ``(k+, k−)`` in ``guess_grid`` the ``k+`` highest scores are guessed "in" and
    the ``k−`` lowest "out" (ties at a cut broken at random with ``seed``, never by index).
    Each entry's ε lower bound is computed at confidence ``1 − (1 − confidence)/len(grid)``
    (Bonferroni), so reporting the largest is valid at ``confidence``.

    Parameters
    ----------
    scores:
        ``(m,)`` scores after training; higher means "more likely included".
    included:
        ``(m,)`` booleans: whether each canary was in the training data. For the
        guarantee to hold, these must have been drawn independently with probability 1/2
        before training (as :func:`one_run_canary_audit` does).
    epsilon_claimed, delta:
        The accountant's (ε, δ) for the training run.
    confidence:
        Confidence of the lower bound (default 95%).
    guess_grid:
        ``(k+, k−)`` pairs, fixed in advance; default :func:`default_guess_grid`.
    seed:
        Seeds the tie-breaking.
    """
    score, member = scores_and_flags(scores, included, flags_name="included", what="canary scores")
    if not (math.isfinite(epsilon_claimed) and epsilon_claimed >= 0):
        raise ValueError(
            f"epsilon_claimed must be finite and ≥ 0, got {epsilon_claimed!r}"
        )
    m = score.size
    grid = tuple(guess_grid) if guess_grid is not None else default_guess_grid(m)
    if not grid:
        raise ValueError("guess_grid is empty")
    for k_plus, k_minus in grid:
        if k_plus < 0 or k_minus < 0 or k_plus + k_minus > m or k_plus + k_minus == 0:
            raise ValueError(
                f"guess ({k_plus}, {k_minus}): need k+, k− ≥ 0 with 0 < k+ + k− ≤ {m}"
            )
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(m), score))  # ascending score, random among ties
    corrected = 1 - (1 - confidence) / len(grid)
    outcomes = []
    for k_plus, k_minus in grid:
        guessed_in = order[m - k_plus :] if k_plus else order[:0]
        guessed_out = order[:k_minus]
        right = int(member[guessed_in].sum() + (~member[guessed_out]).sum())
        r = k_plus + k_minus
        outcomes.append(
            GuessOutcome(
                k_plus,
                k_minus,
                r,
                right,
                epsilon_lower_bound(right, r, delta, corrected, canaries=m),
            )
        )
    best = max(outcomes, key=lambda o: o.epsilon_lower)
    return CanaryAuditReport(
        epsilon_lower=best.epsilon_lower,
        epsilon_claimed=float(epsilon_claimed),
        delta=delta,
        confidence=confidence,
        canaries=m,
        included=int(member.sum()),
        k_plus=best.k_plus,
        k_minus=best.k_minus,
        guesses=best.guesses,
        correct=best.correct,
        grid=tuple(outcomes),
        verdict="claim violated"
        if best.epsilon_lower > epsilon_claimed
        else "claim holds",
    )


def one_run_canary_audit(
    train_fn: Callable[[npt.NDArray[np.bool_]], CanaryRun],
    *,
    canaries: int,
    delta: float,
    confidence: float = 0.95,
    guess_grid: Sequence[tuple[int, int]] | None = None,
    seed: int = 0,
) -> CanaryAuditReport:
    """Draw the canaries' inclusion, train once through ``train_fn``, audit the claim.

    Parameters
    ----------
    train_fn:
        Called once with ``included``, a ``(canaries,)`` boolean array (canary ``i`` goes
        into the training data iff ``included[i]``); trains with DP and returns a
        :class:`CanaryRun`: every canary's score (included or not) and the accountant's ε
        at ``delta`` for that run. Canaries should be easy to memorise, so the audit has
        power: mislabeled or out-of-distribution inputs for a black-box audit, or, with
        white-box access, "Dirac" gradient canaries (a gradient along one coordinate no
        other example touches) scored by the trained weight on that coordinate.
    canaries:
        ``m``, the number of canaries.
    delta:
        The δ of the claim.
    confidence, guess_grid, seed:
        See :func:`audit_canary_scores`; ``seed`` also draws the inclusion (each canary
        independently with probability 1/2, as the theorem requires).

    Returns
    -------
    CanaryAuditReport
        ``verdict == "claim violated"`` when ε_lower > ε_claimed.
    """
    if canaries < 1:
        raise ValueError(f"canaries must be ≥ 1, got {canaries!r}")
    rng = np.random.default_rng(seed)
    included = rng.random(canaries) < 0.5
    run = train_fn(included.copy())
    report = audit_canary_scores(
        run.scores,
        included,
        epsilon_claimed=run.epsilon_claimed,
        delta=delta,
        confidence=confidence,
        guess_grid=guess_grid,
        seed=int(rng.integers(2**32)),
    )
    return dataclasses.replace(report, history=tuple(run.history), replayed=run.replayed)


def _check_counts(correct: int, guesses: int, canaries: int) -> None:
    if not (0 <= correct <= guesses <= canaries):
        raise ValueError(
            f"need 0 ≤ correct ≤ guesses ≤ canaries, got {correct}, {guesses}, {canaries}"
        )
