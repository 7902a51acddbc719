"""The one-run canary audit's result, as metrics and as the file ``dp_audit.json``.

:func:`~guardrail.privacy.canary.one_run_canary_audit` builds a :class:`CanaryAuditReport`;
``guardrail train`` writes it beside the model (:func:`save_canary_report`), and the
privacy audit reads it back (:func:`load_canary_report`) and reports
:meth:`CanaryAuditReport.to_metrics`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from guardrail.core.errors import DataError
from guardrail.core.serialize import from_jsonable, to_jsonable
from guardrail.core.types import MetricResult
from guardrail.privacy.ledger import Segment

__all__ = [
    "DP_AUDIT_FILE",
    "DP_AUDIT_KEYS",
    "CanaryAuditReport",
    "GuessOutcome",
    "load_canary_report",
    "save_canary_report",
]

Verdict = Literal["claim holds", "claim violated"]

DP_AUDIT_FILE = "dp_audit.json"
"""Where ``guardrail train`` writes a model's canary audit, beside the model; the privacy
audit reads it from there."""

DP_AUDIT_PREFIX = "privacy.dp_audit"
"""The keys of :meth:`CanaryAuditReport.to_metrics` start with this."""

DP_AUDIT_KEYS = tuple(f"{DP_AUDIT_PREFIX}.{figure}" for figure in ("epsilon_lower", "epsilon_claimed", "claim_excess"))
"""Every metric key :meth:`CanaryAuditReport.to_metrics` gives (with the default prefix)."""


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

    def to_metrics(self, prefix: str = DP_AUDIT_PREFIX) -> tuple[MetricResult, ...]:
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
