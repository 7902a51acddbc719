"""JUnit XML for CI: one testcase per rule outcome, plus one per audit that crashed.

Blocking failures and blocking inconclusive outcomes become ``<failure>``; failures and
inconclusive outcomes that do not block under ``fail_on`` never fail the suite. Rules and
audits that could not be evaluated become ``<error>`` whatever their severity. A gated run
in which no blocking rule was judged gets one more testcase, ``policy gate``, as an
``<error>`` (``<skipped>`` under ``--no-gate``), so that a suite never reads as green when
nothing was checked. Under ``--no-gate`` no outcome blocks, so none is a failure. The output depends only on the record: the one timestamp is ``started_at``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from guardrail.core.types import AuditResult, AuditStatus, OutcomeStatus, RuleOutcome, RunRecord, Severity
from guardrail.report import _format

_NOT_XML = re.compile(r"[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold, even escaped."""


def xml_text(text: str) -> str:
    """``text`` with characters that XML 1.0 forbids replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def render_junit(record: RunRecord, fail_on: Severity = Severity.DENY) -> str:
    """Render ``record`` as a JUnit XML document (UTF-8, with XML declaration)."""
    cases = [_outcome_case(o, fail_on, gated=record.gated) for o in record.verdict.outcomes]
    cases += [_audit_case(r) for r in record.results if r.status is AuditStatus.ERROR]
    gate = _gate_case(record, fail_on)
    if gate is not None:
        cases.append(gate)
    duration = f"{sum(r.duration_s for r in record.results):.3f}"
    counts = _counts(cases)
    root = ET.Element("testsuites", _attrs(name=f"guardrail: {record.name}", time=duration, **counts))
    suite = ET.SubElement(
        root,
        "testsuite",
        _attrs(name=f"guardrail: {record.name}", timestamp=record.started_at, time=duration, **counts),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in _properties(record, fail_on):
        ET.SubElement(properties, "property", _attrs(name=name, value=value))
    suite.extend(cases)
    ET.indent(root, space="  ")
    # ElementTree escapes a carriage return in attributes but not in element text, where XML's
    # end-of-line handling would read it back as a line feed; every raw CR left is element text
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True).replace("\r", "&#13;")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _attrs(**values: str) -> dict[str, str]:
    return {key: xml_text(value) for key, value in values.items()}


def _child(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, _attrs(**attrs))
    if text:
        element.text = xml_text(text)
    return element


def _properties(record: RunRecord, fail_on: Severity) -> Iterable[tuple[str, str]]:
    yield "guardrail.run_id", record.run_id
    yield "guardrail.spec_sha256", record.spec_sha256
    yield "guardrail.fail_on", fail_on.value
    verdict = record.judged(fail_on)
    yield "guardrail.exit_code", str(int(verdict.code))
    yield "guardrail.verdict", verdict.word
    yield "guardrail.gated", "true" if record.gated else "false"


def _gate_case(record: RunRecord, fail_on: Severity) -> ET.Element | None:
    """A testcase for the gate itself when no blocking rule was judged: an error for a gated
    run (nothing was checked, so the suite must not read as green), skipped without a gate."""
    verdict = record.judged(fail_on)
    if verdict.checked:
        return None
    case = ET.Element("testcase", _attrs(classname="guardrail", name="policy gate", time="0.000"))
    if record.gated:
        _child(case, "error", verdict.sentence, message=verdict.sentence, type="no_rule_checked")
    else:
        _child(case, "skipped", message=verdict.sentence)
    return case


def _outcome_case(outcome: RuleOutcome, fail_on: Severity, *, gated: bool = True) -> ET.Element:
    case = ET.Element(
        "testcase", _attrs(classname=outcome.policy, name=f"{outcome.rule_id} {outcome.metric}", time="0.000")
    )
    detail = _detail(outcome)
    blocks = gated and outcome.blocks(fail_on)  # without a gate nothing blocks, and the suite is not red
    status = outcome.status
    if status is OutcomeStatus.FAIL and blocks:
        _child(case, "failure", detail, message=outcome.message, type=outcome.severity.value)
    elif status is OutcomeStatus.FAIL:
        _child(case, "system-out", f"{outcome.severity.value.upper()} (not blocking): {outcome.message}\n{detail}")
    elif status is OutcomeStatus.ERROR and blocks:
        _child(case, "error", detail, message=outcome.message, type="error")
    elif status is OutcomeStatus.ERROR:
        # consistent with the exit code: a non-blocking rule's missing evidence fails no build
        _child(case, "skipped", message=f"error (not blocking): {outcome.message}")
    elif status is OutcomeStatus.INCONCLUSIVE and blocks:
        _child(case, "failure", detail, message=outcome.message, type="inconclusive")
    elif status is OutcomeStatus.INCONCLUSIVE:
        _child(case, "skipped", message=f"inconclusive (not blocking): {outcome.message}")
    elif status in (OutcomeStatus.SKIPPED, OutcomeStatus.WAIVED):
        _child(case, "skipped", message=f"{status.value}: {outcome.message}")
    return case


def _detail(outcome: RuleOutcome) -> str:
    lines = [
        outcome.message,
        f"rule: {outcome.rule_id} (policy {outcome.policy}, severity {outcome.severity.value})",
        f"metric: {outcome.metric}",
        f"observed: {_format.number(outcome.observed)}",
        f"expected: {outcome.expected}",
        f"reason: {outcome.reason}",
    ]
    if outcome.rationale:
        lines.append(f"rationale: {outcome.rationale}")
    if outcome.reference:
        lines.append(f"reference: {outcome.reference}")
    return "\n".join(lines)


def _audit_case(result: AuditResult) -> ET.Element:
    case = ET.Element(
        "testcase", _attrs(classname="audit", name=f"audit {result.audit_id}", time=f"{result.duration_s:.3f}")
    )
    error = result.error
    message = error.message if error else "the audit could not be evaluated"
    text = f"auditor: {result.auditor}\n{message}"
    if error and error.hint:
        text += f"\nhint: {error.hint}"
    _child(case, "error", text, message=message, type=error.type if error else "error")
    return case


def _counts(cases: Iterable[ET.Element]) -> dict[str, str]:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in cases:
        totals["tests"] += 1
        for key, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            totals[key] += case.find(tag) is not None
    return {key: str(value) for key, value in totals.items()}
