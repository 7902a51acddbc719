"""The closed vocabularies: every fixed set of words guardrail reads or writes, defined once.

Standard library only, so that the command line, the spec models, the renderers and the
history can all name them without importing one another.

- :class:`AuditStatus`, :class:`Severity`, :class:`OutcomeStatus` — the states of an audit and
  of a rule outcome, and how much a rule may block;
- :data:`TASKS` — what a model predicts;
- the reason codes a metric or an outcome carries (:data:`SMALL_GROUP`, :data:`UNDEFINED`,
  :data:`UNDERPOWERED`, :data:`MISSING_EVIDENCE`);
- :data:`VERDICT_WORDS` — the word a run's verdict is (:mod:`guardrail.core.verdict` decides which),
  and :data:`DISPLAY_STATUSES`, how an outcome shows;
- :data:`HISTORY_FILE` — the audit history's file name;
- :data:`REPORT_FORMATS` — each report format, the file it writes and the function that renders
  it: adding a format is writing its renderer and adding one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, get_args


class AuditStatus(str, Enum):
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


class Severity(str, Enum):
    DENY = "deny"
    WARN = "warn"
    INFO = "info"


class OutcomeStatus(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    SKIPPED = "skipped"
    WAIVED = "waived"


Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = get_args(Task)
"""``binary`` (rates of the positive class), ``multiclass`` (one-vs-rest per class), ``regression``."""

SMALL_GROUP = "small_group"
"""Reason code of a metric left undefined by groups too small to judge: a metric whose
``reason`` starts with it makes a policy outcome inconclusive rather than an error."""
UNDEFINED = "undefined"
"""Reason code of a rate whose denominator is zero (no member of the group to count)."""
UNDERPOWERED = "underpowered"
"""Reason code of a passing outcome on groups too small to have detected the limit."""
MISSING_EVIDENCE = "missing_evidence"
"""Reason code of an outcome whose metric is absent or undefined (see the policy engine)."""

PASS, FAIL, INCOMPLETE, NO_GATE = "PASS", "FAIL", "INCOMPLETE", "NO GATE"
VERDICT_WORDS: tuple[str, ...] = (PASS, FAIL, INCOMPLETE, NO_GATE)
"""The four verdict words."""
WARNING, NOTE = "warning", "note"
"""Display statuses of outcomes that did not pass and cannot block (:func:`guardrail.core.verdict.display_status`)."""
DISPLAY_STATUSES: tuple[str, ...] = ("pass", "fail", "inconclusive", "error", WARNING, NOTE, "waived", "skipped")
"""Every display status of an outcome, in the order the counts are shown."""


FormatName = Literal["html", "json", "junit", "markdown", "sarif", "card-md", "card-json"]
"""The report formats' names, for the spec's ``report.formats`` (each has one row in :data:`REPORT_FORMATS`)."""


@dataclass(frozen=True)
class ReportFormat:
    """One report format: its name (``--format``, ``report.formats``), the file it writes in
    the output folder, its renderer (``module:function`` taking the record and ``fail_on``,
    imported only when used) and whether a spec that names no formats gets it."""

    name: FormatName
    file_name: str
    renderer: str
    default: bool = False


REPORT_FORMATS: tuple[ReportFormat, ...] = (
    ReportFormat("html", "report.html", "guardrail.report.html:render_html", default=True),
    ReportFormat("json", "run.json", "guardrail.report.json:render_json", default=True),
    ReportFormat("junit", "junit.xml", "guardrail.report.junit:render_junit", default=True),
    ReportFormat("markdown", "summary.md", "guardrail.report.markdown:render_markdown", default=True),
    ReportFormat("sarif", "results.sarif", "guardrail.report.sarif:render_sarif"),
    ReportFormat("card-md", "model_card.md", "guardrail.report.modelcard:render_model_card_markdown"),
    ReportFormat("card-json", "model_card.json", "guardrail.report.modelcard:render_model_card_json"),
)
"""Every report format, in the order they are listed to users."""
REPORT_FILE_NAMES: frozenset[str] = frozenset(f.file_name for f in REPORT_FORMATS)
"""The files a run may write into its output folder (the history database must not be one of them)."""
HISTORY_FILE = "history.sqlite"
"""The audit history's file name in a folder (``report.history: true``, or a folder given as the history)."""
FORMAT_NAMES: tuple[FormatName, ...] = tuple(f.name for f in REPORT_FORMATS)
DEFAULT_FORMATS: tuple[FormatName, ...] = tuple(f.name for f in REPORT_FORMATS if f.default)
