"""The exception tree. Every guardrail error says what went wrong, where, and how to fix it.

::

    GuardrailError                 (exit 4 unless a subclass says otherwise)
    ├── UsageError                 (exit 3) bad command-line use
    ├── SpecError                  (exit 3) invalid spec or policy file: file, line, key (every problem of the file)
    ├── DataError                  (exit 3) data file unreadable or inconsistent with the spec
    ├── UnsafeModelError           (exit 3) model file in an unsafe format (pickle) or with untrusted types
    ├── ModelError                 (exit 3) model cannot be loaded or does not match its data
    ├── MissingExtraError          (exit 2) an optional dependency is not installed
    ├── AuditError                 (exit 2) an auditor could not evaluate (becomes an AuditResult)
    └── FederationError            (exit 2) federated training failed or ran past its time limit

Violations of policies are data (:class:`guardrail.core.types.RuleOutcome`), never exceptions.

An error's text is one printable line (:func:`printable`): a file name, a column header or a
library's message that holds a newline or a terminal escape sequence is shown, not obeyed.
A library's own exception is quoted by its first line (:func:`first_line`).

An error may carry several :class:`Problem`\\ s (a spec file with three mistakes reports all
three in one run); the command line prints one line per problem (:attr:`GuardrailError.problems`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from guardrail.core.exitcodes import ExitCode

_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 controls (newline, tab and ESC included), DEL, C1 controls (CSI, OSC, NEL)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks, embeddings, overrides, isolates
    "\u2028\u2029\ufeff]"  # line and paragraph separators (they end a line too), the byte-order mark
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` as one line that a terminal shows as written: every control character, escape
    sequence introducer and bidirectional override is spelt out (``\\x1b``, ``\\n``, ``\\u202e``).

    Idempotent: the result holds no character it would change.

    Examples
    --------
    >>> printable("income\\n\\x1b]0;pwned\\x07")
    'income\\\\n\\\\x1b]0;pwned\\\\x07'
    >>> printable("déjà vu → ≥ 0.8")
    'déjà vu → ≥ 0.8'
    """
    return _UNPRINTABLE.sub(_spell, text)


def _spell(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (libraries' messages span lines),
    or the exception's type name when the message is empty.

    Examples
    --------
    >>> first_line(ValueError("\\n  Error(s) in loading state_dict:\\n\\tsize mismatch"))
    'Error(s) in loading state_dict:'
    >>> first_line(KeyError())
    'KeyError'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: what, where (file and line) and how to fix it."""

    message: str
    where: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        """``where: message Hint: hint``, as one printable line (see :func:`printable`)."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" Hint: {self.hint}"
        return printable(text)


class GuardrailError(Exception):
    """Root of guardrail's errors.

    Parameters
    ----------
    message:
        What went wrong, in one sentence.
    where:
        The file (and line) or object concerned, if any.
    hint:
        How to fix it, if known.
    """

    exit_code: ClassVar[ExitCode] = ExitCode.INTERNAL

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(cls.__dict__.get("exit_code", cls.exit_code), ExitCode):
            raise TypeError(f"{cls.__name__}.exit_code must be an ExitCode")

    def __init__(
        self, message: str, *, where: str | None = None, hint: str | None = None, more: Sequence[Problem] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint
        self.more = tuple(more)
        """Further problems found with the same input, after this error's own."""

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> Self:
        """One error for every problem in ``problems`` (at least one): the first is its own
        ``message``, ``where`` and ``hint``, the rest are :attr:`more`."""
        first, *rest = problems
        return cls(first.message, where=first.where, hint=first.hint, more=rest)

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every problem this error reports, its own first; the command line prints one line each."""
        return (Problem(self.message, self.where, self.hint), *self.more)

    def __str__(self) -> str:
        """``where: message Hint: hint``, as one printable line (see :func:`printable`); further
        problems follow, separated by `` | ``."""
        return " | ".join(str(problem) for problem in self.problems)


class UsageError(GuardrailError):
    exit_code = ExitCode.USAGE


class SpecError(GuardrailError):
    exit_code = ExitCode.USAGE


class DataError(GuardrailError):
    exit_code = ExitCode.USAGE


class UnsafeModelError(GuardrailError):
    exit_code = ExitCode.USAGE


class ModelError(GuardrailError):
    exit_code = ExitCode.USAGE


class MissingExtraError(GuardrailError):
    exit_code = ExitCode.INCOMPLETE

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"the optional dependency {package!r} is not installed",
            hint=f"pip install 'guardrail[{extra}]'",
        )
        self.package = package
        self.extra = extra


class AuditError(GuardrailError):
    exit_code = ExitCode.INCOMPLETE


class EngineError(GuardrailError):
    """A scale-out engine could not finish the pass over the data (a Ray worker died and its
    retries were spent, the cluster went away): the evaluation is incomplete, nothing is written."""

    exit_code = ExitCode.INCOMPLETE


class FederationError(GuardrailError):
    """Federated training failed (the simulation backend crashed) or ran past its time limit."""

    exit_code = ExitCode.INCOMPLETE
