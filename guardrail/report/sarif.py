"""SARIF 2.1.0 for code scanning: each rule outcome that does not pass is a result located
at the line of the policy file where the rule is written.

GitHub code scanning (``github/codeql-action/upload-sarif``) then shows every violated or
inconclusive rule as an alert on that line, with the rule's rationale as its help text.

Mapping (documented so that a reviewer can check it against the SARIF specification):

* ``tool.driver.rules``: one reporting descriptor per rule id seen in the verdict (passing
  ones included, so the rule set is complete); ``defaultConfiguration.level`` follows the
  severity (deny → ``error``, warn → ``warning``, info → ``note``).
* ``results``: one per outcome whose status is fail, inconclusive, error or waived. Passing
  and skipped outcomes are not results. A waived outcome carries an accepted external
  ``suppression`` whose justification is the waiver, so code scanning shows it dismissed.
* ``locations``: the policy file, relative to the working folder (``%SRCROOT%``) when it
  lies below it, and the line of the rule's ``id``.
* ``partialFingerprints["guardrail/v1"]``: SHA-256 of policy, rule and metric, so an alert
  keeps its identity across runs while the observed value changes.
* ``invocations``: whether every audit ran; an audit that crashed is a tool execution
  notification of level ``error``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from guardrail.core.types import AuditStatus, OutcomeStatus, RuleOutcome, RunRecord, Severity
from guardrail.core.verdict import Verdict
from guardrail.report import _format

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0-rtm.5.json"
INFORMATION_URI = "https://github.com/guardrail-audit/guardrail"
SRCROOT = "%SRCROOT%"

LEVELS: dict[Severity, str] = {Severity.DENY: "error", Severity.WARN: "warning", Severity.INFO: "note"}
"""SARIF level of a rule outcome by the rule's severity."""

REPORTED = (OutcomeStatus.FAIL, OutcomeStatus.INCONCLUSIVE, OutcomeStatus.ERROR, OutcomeStatus.WAIVED)
"""Outcome statuses that become SARIF results."""


def render_sarif(record: RunRecord, fail_on: Severity = Severity.DENY, *, root: Path | None = None) -> str:
    """Render ``record`` as a SARIF 2.1.0 log (JSON text).

    Parameters
    ----------
    record:
        The run to report.
    fail_on:
        Decides the run's verdict in the run's properties; result levels follow each
        rule's severity.
    root:
        The folder that ``%SRCROOT%`` stands for; default: the working folder, which is
        the repository root when an audit runs in CI.
    """
    verdict = record.judged(fail_on)
    base = (root or Path.cwd()).resolve()
    rule_ids = list(dict.fromkeys(o.rule_id for o in record.verdict.outcomes))
    first = {rule_id: next(o for o in record.verdict.outcomes if o.rule_id == rule_id) for rule_id in rule_ids}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "guardrail",
                "version": record.provenance.guardrail_version,
                "informationUri": INFORMATION_URI,
                "rules": [_descriptor(first[rule_id]) for rule_id in rule_ids],
            }
        },
        "automationDetails": {"id": f"guardrail/{record.name}/{record.run_id}"},
        "originalUriBaseIds": {SRCROOT: {"uri": base.as_uri() + "/"}},
        "invocations": [_invocation(record, verdict)],
        "results": [
            _result(o, rule_ids.index(o.rule_id), base) for o in record.verdict.outcomes if o.status in REPORTED
        ],
        "properties": {
            "run_id": record.run_id,
            "spec_sha256": record.spec_sha256,
            "verdict": verdict.word,
            "verdict_sentence": verdict.sentence,
            "exit_code": int(verdict.code),
            "gated": record.gated,
        },
    }
    if record.provenance.git_commit:
        run["versionControlProvenance"] = [{"repositoryUri": base.as_uri(), "revisionId": record.provenance.git_commit}]
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _descriptor(outcome: RuleOutcome) -> dict[str, Any]:
    base_id = outcome.rule_id.split(":", 1)[0]
    summary = f"{base_id} ({outcome.policy}): {outcome.expected}"
    if outcome.rule_id.endswith(":power"):
        summary = f"{base_id} ({outcome.policy}): the data can detect a gap as small as the rule's limit"
    help_text = outcome.rationale or summary
    if outcome.reference:
        help_text += f"\nReference: {outcome.reference}"
    descriptor: dict[str, Any] = {
        "id": outcome.rule_id,
        "name": outcome.rule_id.replace(":", "-"),
        "shortDescription": {"text": summary},
        "fullDescription": {"text": outcome.rationale or summary},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": LEVELS[outcome.severity]},
        "properties": {"policy": outcome.policy, "tags": ["responsible-ai", "guardrail", outcome.policy]},
    }
    if outcome.reference:
        descriptor["properties"]["reference"] = outcome.reference
    return descriptor


def _result(outcome: RuleOutcome, index: int, base: Path) -> dict[str, Any]:
    text = outcome.message
    if outcome.status is OutcomeStatus.INCONCLUSIVE:
        text = f"Inconclusive: {text}"
    result: dict[str, Any] = {
        "ruleId": outcome.rule_id,
        "ruleIndex": index,
        "level": LEVELS[outcome.severity],
        "kind": "fail",
        "message": {"text": text},
        "partialFingerprints": {"guardrail/v1": _fingerprint(outcome)},
        "properties": _properties(outcome),
    }
    if outcome.location is not None:
        result["locations"] = [
            {
                "physicalLocation": {
                    "artifactLocation": _artifact(Path(outcome.location.path), base),
                    "region": {"startLine": outcome.location.line},
                }
            }
        ]
    if outcome.status is OutcomeStatus.WAIVED:
        result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": outcome.message}]
    return result


def _properties(outcome: RuleOutcome) -> dict[str, Any]:
    properties: dict[str, Any] = {"status": outcome.status.value, "reason": outcome.reason, "metric": outcome.metric}
    if outcome.observed is not None:
        properties["observed"] = outcome.observed
    if outcome.ci is not None:
        properties["interval"] = _format.interval(outcome.ci)
    return properties


def _artifact(path: Path, base: Path) -> dict[str, str]:
    """The location of a policy file: relative to ``%SRCROOT%`` when below it, else absolute.
    A path no file system could hold (a NUL byte, from a tampered run.json) is kept as text."""
    try:
        resolved = path.resolve()
    except (ValueError, OSError):
        return {"uri": quote(path.as_posix(), safe="/")}
    try:
        return {"uri": resolved.relative_to(base).as_posix(), "uriBaseId": SRCROOT}
    except ValueError:
        return {"uri": resolved.as_uri()}


def _fingerprint(outcome: RuleOutcome) -> str:
    identity = "\x1f".join((outcome.policy, outcome.rule_id, outcome.metric))
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def _invocation(record: RunRecord, verdict: Verdict) -> dict[str, Any]:
    """The run as SARIF sees it: unsuccessful when an audit failed, or when a gated run
    checked nothing (an empty result list must never read as "no alerts")."""
    failed = [r for r in record.results if r.status is AuditStatus.ERROR]
    unchecked = record.gated and not verdict.checked
    invocation: dict[str, Any] = {
        "executionSuccessful": not failed and not unchecked,
        "commandLine": record.provenance.command,
        "startTimeUtc": _utc(record.started_at),
        "endTimeUtc": _utc(record.finished_at),
    }
    if failed:
        invocation["toolExecutionNotifications"] = [
            {
                "level": "error",
                "message": {
                    "text": f"audit {r.audit_id!r} ({r.auditor}) failed"
                    + (f": {r.error.type}: {r.error.message}" if r.error else "")
                },
                "descriptor": {"id": f"audit-error/{r.audit_id}"},
            }
            for r in failed
        ]
    if unchecked:
        notifications = invocation.setdefault("toolExecutionNotifications", [])
        notifications.append({"level": "error", "message": {"text": verdict.sentence}, "descriptor": {"id": "policy-gate"}})
    return invocation


def _utc(timestamp: str) -> str:
    """ISO 8601 with a ``Z`` suffix, as SARIF's ``date-time`` properties prefer."""
    return timestamp.replace("+00:00", "Z")
