"""The verdict of a run: its word, its exit code and the sentence that explains it.

One place decides what a run's outcomes amount to, so that the CLI, every report format,
the audit history and the notebook view can never disagree. Missing evidence never passes:

* a run in which no blocking rule was judged on evidence (no policy, every rule skipped,
  or only rules that cannot block) is **incomplete**, never a pass, unless the caller asked
  for metrics without a gate (``gated=False``, the CLI's ``--no-gate``), in which case
  every output says that no gate was applied (word ``NO GATE``, shown neutrally);
* an outcome that cannot block under the chosen severity (a ``warn`` rule under
  ``--fail-on deny``, an ``info`` rule) is shown as a *warning* or a *note*, never as a
  failure, and is counted apart from the blocking outcomes.

Standard library only, like the rest of :mod:`guardrail.core`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guardrail.core.exitcodes import ExitCode
from guardrail.core.vocab import (
    DISPLAY_STATUSES,
    FAIL,
    INCOMPLETE,
    MISSING_EVIDENCE,
    NO_GATE,
    NOTE,
    PASS,
    WARNING,
    AuditStatus,
    OutcomeStatus,
    Severity,
)

if TYPE_CHECKING:
    from guardrail.core.types import AuditResult, PolicyVerdict, RuleOutcome


JUDGED = frozenset({OutcomeStatus.PASS, OutcomeStatus.FAIL, OutcomeStatus.INCONCLUSIVE, OutcomeStatus.WAIVED})
"""Outcomes reached on evidence (an ``error`` is missing evidence; ``skipped`` was not judged)."""



@dataclass(frozen=True)
class Verdict:
    """What a run amounts to under one blocking severity."""

    word: str
    """``PASS``, ``FAIL``, ``INCOMPLETE`` or ``NO GATE``."""
    code: ExitCode
    sentence: str
    """One sentence saying why, e.g. "No policy was applied: nothing was checked."."""
    gated: bool
    checked: bool
    """Whether at least one blocking rule was judged on evidence (pass, fail, inconclusive or waived)."""
    counts: tuple[tuple[str, int], ...]
    """Outcomes per display status (:data:`DISPLAY_STATUSES`), those with none left out."""

    @property
    def tone(self) -> str:
        """``pass``, ``fail``, ``incomplete`` or ``neutral`` (for styling)."""
        return {PASS: "pass", FAIL: "fail", INCOMPLETE: "incomplete"}.get(self.word, "neutral")


def word_of(code: int, *, gated: bool = True) -> str:
    """The verdict word of a recorded exit code (the audit history keeps the code, not the word)."""
    if code == ExitCode.OK:
        return PASS if gated else NO_GATE
    return {int(ExitCode.VIOLATION): FAIL, int(ExitCode.INCOMPLETE): INCOMPLETE}.get(int(code), f"exit {code}")


def display_status(outcome: RuleOutcome, fail_on: Severity = Severity.DENY) -> str:
    """How an outcome is shown: its own status when it passed, was waived or skipped, or
    can block under ``fail_on``; otherwise ``warning`` (a ``warn`` rule) or ``note``
    (an ``info`` rule), so that nothing which cannot block reads as a failure."""
    if outcome.status in (OutcomeStatus.PASS, OutcomeStatus.WAIVED, OutcomeStatus.SKIPPED) or outcome.blocks(fail_on):
        return outcome.status.value
    return NOTE if outcome.severity is Severity.INFO else WARNING


def status_counts(outcomes: Sequence[RuleOutcome], fail_on: Severity = Severity.DENY) -> tuple[tuple[str, int], ...]:
    """How many outcomes show each display status, in :data:`DISPLAY_STATUSES` order (zeros left out)."""
    shown = [display_status(o, fail_on) for o in outcomes]
    return tuple((status, shown.count(status)) for status in DISPLAY_STATUSES if status in shown)


def judge(
    results: Sequence[AuditResult],
    verdict: PolicyVerdict,
    *,
    gated: bool = True,
    fail_on: Severity = Severity.DENY,
) -> Verdict:
    """The verdict of a run's audit ``results`` and policy ``verdict``.

    Precedence: an audit that crashed or a blocking rule without evidence (2) over a
    blocking rule that failed or was inconclusive (1) over a pass (0). A gated run passes
    only when at least one blocking rule was judged on evidence.
    """
    counts = status_counts(verdict.outcomes, fail_on)
    crashed = sum(result.status is AuditStatus.ERROR for result in results)
    blocking = [o for o in verdict.outcomes if o.blocks(fail_on)]
    checked = any(_judged_on_evidence(o) for o in blocking)

    def make(word: str, code: ExitCode, sentence: str) -> Verdict:
        return Verdict(word, code, sentence, gated, checked, counts)

    if crashed:
        audits = f"{crashed} audit{'s' if crashed != 1 else ''}"
        unjudged = "" if gated else " No gate was applied."
        return make(
            INCOMPLETE,
            ExitCode.INCOMPLETE,
            f"Evaluation incomplete: {audits} crashed; the results below are not a complete judgement.{unjudged}",
        )
    if not gated:
        return make(
            NO_GATE,
            ExitCode.OK,
            "No gate was applied: these are measurements only, and no policy decides whether this model may ship.",
        )
    if any(o.status is OutcomeStatus.ERROR for o in blocking):
        return make(INCOMPLETE, ExitCode.INCOMPLETE, "Evaluation incomplete: a blocking rule could not be evaluated (its evidence is missing).")
    if any(o.status in (OutcomeStatus.FAIL, OutcomeStatus.INCONCLUSIVE) for o in blocking):
        return make(FAIL, ExitCode.VIOLATION, "At least one blocking rule failed or was inconclusive.")
    if not checked:
        return make(INCOMPLETE, ExitCode.INCOMPLETE, _nothing_checked(verdict, fail_on))
    return make(PASS, ExitCode.OK, "Every blocking rule passed.")


def _judged_on_evidence(outcome: RuleOutcome) -> bool:
    """Whether the rule was judged on evidence: a waiver of missing evidence waives a rule
    that was never checked, and checks nothing."""
    if outcome.status is OutcomeStatus.WAIVED:
        return not outcome.reason.startswith(f"waived:{MISSING_EVIDENCE}")
    return outcome.status in JUDGED


def _nothing_checked(verdict: PolicyVerdict, fail_on: Severity) -> str:
    """Why a gated run judged no blocking rule, as one sentence."""
    no_gate = "or pass --no-gate to measure without a gate"
    if not verdict.policies and not verdict.outcomes:
        return f"No policy was applied, so nothing was checked: apply a policy (spec `policies:`), {no_gate}."
    if not verdict.outcomes:
        return f"The policies hold no rules, so nothing was checked: add rules, {no_gate}."
    if all(o.status is OutcomeStatus.SKIPPED for o in verdict.outcomes):
        return (
            "Every rule was skipped (its evidence is missing and the rule says on_missing: skip), so nothing was "
            f"checked: add the audits that produce the rules' metrics, {no_gate}."
        )
    blocking = "deny" if fail_on is Severity.DENY else "deny or warn"
    return (
        f"No blocking ({blocking}) rule was judged on evidence, so nothing could stop this run: "
        "add a deny rule the audits can answer, run with --fail-on warn, or pass --no-gate to measure without a gate."
    )
