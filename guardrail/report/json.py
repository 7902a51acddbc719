"""``run.json``: the canonical, lossless record of a run.

Every other report can be re-rendered from this file without any ML library installed.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from guardrail.core.errors import UsageError
from guardrail.core.serialize import from_jsonable, to_jsonable
from guardrail.core.types import SCHEMA_VERSION, RunRecord, Severity

_HOW_TO_FIX = (
    "pass the run.json that `guardrail audit` wrote in its output folder, unmodified; "
    "to regenerate it, rerun the audit"
)


def render_json(record: RunRecord, fail_on: Severity = Severity.DENY) -> str:
    """Serialise ``record`` as indented JSON, ending with a newline.

    ``fail_on`` is accepted as every renderer's is and changes nothing: run.json records each
    rule's severity, and any threshold is applied when it is read.

    Raises
    ------
    ValueError
        If the record holds a non-finite float (never valid JSON).
    """
    return json.dumps(to_jsonable(record), indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False) + "\n"


def parse_json(text: str, *, where: str | None = None) -> RunRecord:
    """Rebuild the :class:`RunRecord` that :func:`render_json` produced.

    Parameters
    ----------
    text:
        The content of a ``run.json`` file.
    where:
        Where ``text`` came from (a path), used in error messages.

    Raises
    ------
    UsageError
        If ``text`` is not JSON, has another ``schema_version``, or does not describe a run.
    """
    data = _loads(text, where)
    if not isinstance(data, dict):
        _fail(f"expected a JSON object at the top level, found {_json_type(data)}", where)
    _check_schema(data, where)
    try:
        return from_jsonable(RunRecord, data)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        _fail(f"not a valid guardrail run record ({exc})", where)


def _loads(text: str, where: str | None) -> Any:
    def reject_constant(name: str) -> NoReturn:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        place = f"{where or '<run.json>'}:{exc.lineno}:{exc.colno}"
        raise UsageError(f"not valid JSON: {exc.msg}", where=place, hint=_HOW_TO_FIX) from None
    except ValueError as exc:  # also Python's limit on the digits of an integer
        _fail(f"not valid JSON: {exc}", where)
    except RecursionError:
        _fail("not valid JSON: nested too deeply", where)


def _check_schema(data: dict[str, Any], where: str | None) -> None:
    version = data.get("schema_version")
    if version is None:
        _fail("no 'schema_version' field; this is not a guardrail run record", where)
    if isinstance(version, bool) or not isinstance(version, int):
        _fail(f"'schema_version' must be an integer, found {version!r}", where)
    if version != SCHEMA_VERSION:
        raise UsageError(
            f"run record has schema_version {version}, this guardrail reads schema_version {SCHEMA_VERSION}",
            where=where,
            hint="re-render it with the guardrail version that wrote it, or rerun the audit with this one",
        )


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _fail(message: str, where: str | None) -> NoReturn:
    raise UsageError(message, where=where, hint=_HOW_TO_FIX)
