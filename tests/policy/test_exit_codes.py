"""The exit code is computed in one place, from the record, with precedence 2 > 1 > 0."""

from __future__ import annotations

import pytest

from guardrail.core.exitcodes import ExitCode
from guardrail.core.types import (
    AuditResult,
    AuditStatus,
    ErrorInfo,
    OutcomeStatus,
    PolicyVerdict,
    Provenance,
    RuleOutcome,
    RunRecord,
    Severity,
)


def _record(outcomes: list[tuple[str, str]], crashed: bool = False) -> RunRecord:
    results = [AuditResult("a", "fairness", AuditStatus.OK)]
    if crashed:
        results.append(AuditResult("b", "x", AuditStatus.ERROR, error=ErrorInfo("RuntimeError", "boom")))
    verdict = PolicyVerdict(
        tuple(
            RuleOutcome(f"R{i}", "p", "m", Severity(sev), OutcomeStatus(status), "r", "m ≥ 1", "msg")
            for i, (status, sev) in enumerate(outcomes)
        )
    )
    provenance = Provenance("0", "3.11", "linux", {}, {}, (), "guardrail audit x.yaml")
    return RunRecord("id", "n", "t0", "t1", "x.yaml", "0", {}, tuple(results), verdict, provenance)


@pytest.mark.parametrize(
    ("outcomes", "crashed", "fail_on", "code"),
    [
        ([("pass", "deny")], False, "deny", ExitCode.OK),
        ([("fail", "deny")], False, "deny", ExitCode.VIOLATION),
        ([("inconclusive", "deny")], False, "deny", ExitCode.VIOLATION),
        ([("pass", "deny"), ("fail", "warn")], False, "deny", ExitCode.OK),
        ([("fail", "warn")], False, "warn", ExitCode.VIOLATION),
        ([("pass", "deny"), ("fail", "info")], False, "warn", ExitCode.OK),
        ([("error", "deny")], False, "deny", ExitCode.INCOMPLETE),
        ([("pass", "deny"), ("error", "warn")], False, "deny", ExitCode.OK),
        # nothing that could block was judged: never a pass
        ([], False, "deny", ExitCode.INCOMPLETE),
        ([("fail", "warn")], False, "deny", ExitCode.INCOMPLETE),
        ([("fail", "info")], False, "warn", ExitCode.INCOMPLETE),
        ([("error", "warn")], False, "deny", ExitCode.INCOMPLETE),
        ([("skipped", "deny")], False, "deny", ExitCode.INCOMPLETE),
        ([("pass", "warn")], False, "deny", ExitCode.INCOMPLETE),
        ([("pass", "warn")], False, "warn", ExitCode.OK),
        ([("fail", "deny"), ("error", "deny")], False, "deny", ExitCode.INCOMPLETE),
        ([("fail", "deny")], True, "deny", ExitCode.INCOMPLETE),
        ([("skipped", "deny"), ("waived", "deny")], False, "deny", ExitCode.OK),
    ],
)
def test_exit_code(outcomes, crashed, fail_on, code) -> None:  # type: ignore[no-untyped-def]
    assert _record(outcomes, crashed).exit_code(Severity(fail_on)) is code
