"""Process exit codes, one enum for the whole tool.

The CLI computes the exit code of a run in exactly one place,
:meth:`guardrail.core.types.RunRecord.exit_code`; errors carry theirs as a class attribute.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a ``guardrail`` process exit status means.

    Precedence when several apply: ``INTERNAL`` > ``INCOMPLETE`` > ``VIOLATION`` > ``OK``.
    """

    OK = 0
    """Every blocking rule passed."""
    VIOLATION = 1
    """A blocking rule failed or was inconclusive."""
    INCOMPLETE = 2
    """Evaluation incomplete: an auditor crashed, an extra is missing, evidence is missing."""
    USAGE = 3
    """Usage error, or an invalid spec, policy, model or data file found before any audit ran."""
    INTERNAL = 4
    """A bug in guardrail; the message asks to report it."""
