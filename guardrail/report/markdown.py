"""A short GitHub-flavoured Markdown summary, sized for ``$GITHUB_STEP_SUMMARY``.

Every value that comes from data is escaped so that it can neither break the table nor
inject HTML or formatting.
"""

from __future__ import annotations

import re

from guardrail.core.types import AuditResult, AuditStatus, RuleOutcome, RunRecord, Severity
from guardrail.core.verdict import display_status
from guardrail.core.vocab import FAIL, INCOMPLETE, NO_GATE, NOTE, PASS, WARNING
from guardrail.report import _format
from guardrail.report.scan_view import scan_sentence

MAX_OUTCOMES = 200
"""Outcome rows shown before the table is cut; the rest are counted."""
MAX_AUDITS = 100
"""Audit lines shown before the list is cut."""
CELL_LIMIT = 240
"""Longest text shown in one cell, in characters."""

VERDICT_EMOJI = {PASS: "✅", FAIL: "❌", INCOMPLETE: "⚠️", NO_GATE: "ℹ️"}
STATUS_EMOJI = {
    "pass": "✅",
    "fail": "❌",
    "inconclusive": "❔",
    "error": "💥",
    WARNING: "⚠️",
    NOTE: "ℹ️",
    "skipped": "⏭️",
    "waived": "🔕",
}
AUDIT_EMOJI = {AuditStatus.OK: "✅", AuditStatus.ERROR: "💥", AuditStatus.SKIPPED: "⏭️"}

_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029]")


def escape_cell(text: str, limit: int = CELL_LIMIT) -> str:
    """Escape ``text`` for one GFM table cell (or inline text) and cut it to ``limit``.

    ``&``, ``<`` and ``>`` become entities, Markdown punctuation (including ``|`` and
    backticks) is backslash-escaped and line breaks become spaces.
    """
    text = _LINE_BREAKS.sub(" ", _format.shorten(text, limit))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def render_markdown(record: RunRecord, fail_on: Severity = Severity.DENY) -> str:
    """Render the run's verdict, rule outcomes, audits and rerun command as Markdown."""
    verdict = record.judged(fail_on)
    lines = [
        f"# {VERDICT_EMOJI[verdict.word]} guardrail: {escape_cell(record.name)} — {verdict.word}",
        "",
        verdict.sentence,
        "",
        f"Run `{_code_span_text(record.run_id)}` · started {escape_cell(record.started_at)} · "
        f"exit code {int(verdict.code)} · "
        + (f"blocking severity: {fail_on.value}" if record.gated else "no gate applied"),
        "",
    ]
    if verdict.counts:
        lines += [" · ".join(f"{STATUS_EMOJI[s]} {s}: {n}" for s, n in verdict.counts), ""]
    lines += _outcomes(record.verdict.outcomes, fail_on)
    lines += _audits(record.results)
    scan = scan_sentence(record.scan)
    if scan:
        lines += ["## Data read", "", escape_cell(scan), ""]
    lines += ["## Rerun", "", *_code_block(record.provenance.command), ""]
    return "\n".join(lines)


def _outcomes(outcomes: tuple[RuleOutcome, ...], fail_on: Severity) -> list[str]:
    if not outcomes:
        return ["No policy rules were evaluated.", ""]
    lines = [
        "| Status | Rule | Severity | Metric | Observed | Expected | Message |",
        "| --- | --- | --- | --- | ---: | --- | --- |",
    ]
    for outcome in outcomes[:MAX_OUTCOMES]:
        lines.append(
            "| "
            + " | ".join(
                [
                    _status(outcome, fail_on),
                    escape_cell(outcome.rule_id),
                    outcome.severity.value,
                    escape_cell(outcome.metric),
                    _format.number(outcome.observed),
                    escape_cell(outcome.expected),
                    escape_cell(outcome.message),
                ]
            )
            + " |"
        )
    if len(outcomes) > MAX_OUTCOMES:
        lines += ["", f"… and {len(outcomes) - MAX_OUTCOMES} more outcomes; see report.html or run.json."]
    return [*lines, ""]


def _status(outcome: RuleOutcome, fail_on: Severity) -> str:
    shown = display_status(outcome, fail_on)
    if shown in (WARNING, NOTE):
        return f"{STATUS_EMOJI[shown]} {shown} ({outcome.status.value}, not blocking)"
    return f"{STATUS_EMOJI[shown]} {shown}"


def _audits(results: tuple[AuditResult, ...]) -> list[str]:
    lines = ["## Audits", ""]
    if not results:
        return [*lines, "No audits ran.", ""]
    for result in results[:MAX_AUDITS]:
        line = (
            f"- {AUDIT_EMOJI[result.status]} **{escape_cell(result.audit_id)}** ({escape_cell(result.auditor)}): "
            f"{result.status.value}, {_format.duration(result.duration_s)}, {len(result.metrics)} metrics"
        )
        if result.error is not None:
            line += f" — {escape_cell(result.error.type)}: {escape_cell(result.error.message)}"
            if result.error.hint:
                line += f" (fix: {escape_cell(result.error.hint)})"
        lines.append(line)
    if len(results) > MAX_AUDITS:
        lines.append(f"- … and {len(results) - MAX_AUDITS} more audits; see report.html.")
    return [*lines, ""]


def _code_block(text: str) -> list[str]:
    """A fenced code block whose fence is longer than any backtick run inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "sh", text, fence]


def _code_span_text(text: str) -> str:
    """Text safe inside a single-backtick code span on one line."""
    return _LINE_BREAKS.sub(" ", text).replace("`", "'")
