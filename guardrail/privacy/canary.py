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
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from guardrail.core.errors import DataError
from guardrail.core.serialize import from_jsonable, to_jsonable
from guardrail.core.types import MetricResult
from guardrail.privacy.ledger import Segment

__all__ = [
    "DP_AUDIT_FILE",
    "CanaryAuditReport",
    "CanaryRun",
    "GuessOutcome",
    "audit_canary_scores",
    "default_guess_grid",
    "epsilon_lower_bound",
    "one_run_canary_audit",
    "p_value",
]

Verdict = Literal["claim holds", "claim violated"]

DP_AUDIT_FILE = "dp_audit.json"
"""Where ``guardrail train`` writes a model's canary audit, beside the model; the privacy
audit reads it from there."""

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

    if not rejects(0.0):
        return 0.0
    low, high = 0.0, 1.0
    while rejects(high):
        low, high = high, 2 * high
        if high > 1e4:  # unreachable for finite counts: P[W ≥ v] → 1 as ε grows
            raise AssertionError("epsilon search diverged")
    while high - low > 1e-9:
        middle = (low + high) / 2
        if rejects(middle):
            low = middle
        else:
            high = middle
    return low


@dataclass(frozen=True)
class GuessOutcome:
    """The guesses of one ``(k+, k−)`` choice and the ε lower bound they give.

    ``epsilon_lower`` is computed at the Bonferroni-corrected confidence
    ``1 − (1 − confidence) / len(grid)`` so that the maximum over the grid is valid.
    """

    k_plus: int
    k_minus: int
    guesses: int
    correct: int
    epsilon_lower: float


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


@dataclass(frozen=True)
class CanaryAuditReport:
    """The one-run audit of a DP claim: ε_lower next to ε_claimed, the counts, the verdict.

    ``verdict`` is ``"claim violated"`` when ``epsilon_lower > epsilon_claimed`` (an
    error-level finding: the training run leaks more than its accountant says), otherwise
    ``"claim holds"`` (which only means that this audit found no contradiction; one-run
    audits are far from tight). ``k_plus``, ``k_minus``, ``guesses`` and ``correct`` are
    those of the grid entry that gave ``epsilon_lower``; ``grid`` lists every entry.
    ``history`` is the audit run's own ledger (σ, q, steps per segment), whose ε is
    ``epsilon_claimed``; ``replayed`` is true when that run replayed the audited model's
    ledger (the σ and steps each segment was trained with), false when σ came from the
    recipe (see :func:`guardrail.training.canary_audit.canary_audit_tensors`).
    """

    epsilon_lower: float
    epsilon_claimed: float
    delta: float
    confidence: float
    canaries: int
    included: int
    k_plus: int
    k_minus: int
    guesses: int
    correct: int
    grid: tuple[GuessOutcome, ...]
    verdict: Verdict
    history: tuple[Segment, ...] = ()
    replayed: bool = False

    @property
    def violated(self) -> bool:
        """Whether the claim is refuted (``epsilon_lower > epsilon_claimed``)."""
        return self.verdict == "claim violated"

    @property
    def message(self) -> str:
        """One sentence for a report."""
        level = f"{self.confidence:.0%}"
        counts = f"{self.correct} of {self.guesses} guesses right on {self.canaries} canaries"
        if self.violated:
            return (
                f"DP claim violated: ε_lower = {self.epsilon_lower:.3g} at {level} confidence ({counts}) "
                f"exceeds the claimed ε = {self.epsilon_claimed:.3g} (δ = {self.delta:g})."
            )
        return (
            f"DP claim holds: ε_lower = {self.epsilon_lower:.3g} at {level} confidence ({counts}) "
            f"does not exceed the claimed ε = {self.epsilon_claimed:.3g} (δ = {self.delta:g})."
        )

    def to_metrics(self, prefix: str = "privacy.dp_audit") -> tuple[MetricResult, ...]:
        """The audit as metrics: ``epsilon_lower``, ``epsilon_claimed`` and ``claim_excess``.

        ``claim_excess = epsilon_lower − epsilon_claimed``; a policy rule
        ``claim_excess le 0`` (severity deny) turns a violated claim into a failed rule.
        """
        details = {
            "delta": self.delta,
            "confidence": self.confidence,
            "canaries": self.canaries,
            "included": self.included,
            "k_plus": self.k_plus,
            "k_minus": self.k_minus,
            "guesses": self.guesses,
            "correct": self.correct,
            "epsilon_claimed": self.epsilon_claimed,
            "epsilon_lower": self.epsilon_lower,
            "verdict": self.verdict,
            "grid": [
                {
                    "k_plus": g.k_plus,
                    "k_minus": g.k_minus,
                    "guesses": g.guesses,
                    "correct": g.correct,
                    "epsilon_lower": g.epsilon_lower,
                }
                for g in self.grid
            ],
            "method": "one-run canary audit (Steinke, Nasr & Jagielski 2023), Bonferroni over the guess grid",
            "history": [
                {"noise_multiplier": s.noise_multiplier, "sample_rate": s.sample_rate, "steps": s.steps}
                for s in self.history
            ],
            "replayed": self.replayed,
        }
        return (
            MetricResult(
                key=f"{prefix}.epsilon_lower",
                value=self.epsilon_lower,
                n=self.canaries,
                higher_is_better=False,
                details=details,
            ),
            MetricResult(
                key=f"{prefix}.epsilon_claimed",
                value=self.epsilon_claimed,
                n=self.canaries,
                higher_is_better=False,
                details={"delta": self.delta},
            ),
            MetricResult(
                key=f"{prefix}.claim_excess",
                value=self.epsilon_lower - self.epsilon_claimed,
                n=self.canaries,
                higher_is_better=False,
                details=details,
            ),
        )


CANARY_REPORT_KIND = "guardrail-dp-audit"


def save_canary_report(report: CanaryAuditReport, path: str | Path) -> Path:
    """Write ``report`` as JSON (atomically), for the privacy auditor to read beside the model."""
    from guardrail.core.atomic import write_atomic

    data = {"kind": CANARY_REPORT_KIND, **to_jsonable(report)}
    return write_atomic(path, json.dumps(data, indent=2) + "\n")


def load_canary_report(path: str | Path) -> CanaryAuditReport:
    """Read a report written by :func:`save_canary_report`; a foreign or broken file is a data error."""
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.pop("kind", None) != CANARY_REPORT_KIND:
            raise ValueError(f"not a {CANARY_REPORT_KIND} file")
        return from_jsonable(CanaryAuditReport, data)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(
            f"cannot read the DP audit report ({exc})",
            where=where,
            hint="it is written by `guardrail train` with privacy.dp.audit; retrain to regenerate it",
        ) from None


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
    score = np.asarray(scores, dtype=float)
    member = np.asarray(included, dtype=bool)
    if score.ndim != 1 or member.shape != score.shape:
        raise ValueError(
            f"scores and included must be 1-D of the same length, got {score.shape} and {member.shape}"
        )
    if not np.all(np.isfinite(score)):
        raise ValueError("canary scores must be finite")
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
