"""What is wrong with a spec or policy file, in a person's words: every problem, one line each.

pydantic finds the problems; this module says them. Each of pydantic's error types becomes
a sentence that names the key, the form expected and what was found (``policies: expected a
list of policy files, got a mapping``), located at its file and line. Nothing of pydantic's
own vocabulary reaches the user: no "Input should be", no union member names such as
``tuple[float, float]`` in a location, no error-type names.

A file of the wrong kind (a policy file where an audit spec is needed, ``kind: audit`` on a
file of rules) is said as such in one line (:func:`wrong_kind`), never as the unknown keys and
missing keys it would otherwise produce.
"""

from __future__ import annotations

import datetime
import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from guardrail.core.errors import Problem
from guardrail.spec.yamlsource import Location, YamlDocument, dotted

KINDS = ("audit", "policy")
"""The values of ``kind:``."""
_MARKS = {
    "audit": ("model", "data", "audits", "report", "train", "federate", "baseline"),
    "policy": ("rules", "extends", "disable", "inconclusive", "correction"),
}
"""Top-level keys that only one kind of file has: what a file holds, whatever its ``kind:`` says."""
_WHAT = {"audit": "an audit spec", "policy": "a policy"}

_TYPE_WORDS: dict[str, str] = {
    **dict.fromkeys(("string_type", "string_unicode", "string_sub_type"), "text"),
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float", "int_parsing_size"), "a whole number"),
    **dict.fromkeys(("float_type", "float_parsing", "finite_number"), "a number"),
    **dict.fromkeys(("bool_type", "bool_parsing"), "true/false"),
    **dict.fromkeys(("dict_type", "model_type", "model_attributes_type", "dataclass_type", "mapping_type"), "a mapping"),
    **dict.fromkeys(("tuple_type", "list_type", "set_type", "frozen_set_type", "iterable_type"), "a list"),
    **dict.fromkeys(
        ("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact", "date_future", "date_past"),
        "a date (YYYY-MM-DD)",
    ),
    "none_required": "nothing",
}
"""The form each of pydantic's type errors expects, when the field's own type cannot say it better."""
_BOUNDS = {
    "greater_than": ("gt", "greater than {}"),
    "greater_than_equal": ("ge", "of at least {}"),
    "less_than": ("lt", "less than {}"),
    "less_than_equal": ("le", "of at most {}"),
}
_ITEM_NOUNS = {
    "policies": "policy files",
    "extends": "policy files",
    "sensitive": "column names",
    "features": "column names",
    "formats": "report formats",
    "trusted_types": "type names",
    "audits": "audits (each a mapping with id and use)",
    "rules": "rules (each a mapping with id, metric, op and rationale)",
    "disable": "mappings with id and reason",
    "classes": "class labels",
    "metrics": "metric names",
}
"""What the items of a list are called, by the list's key (better than "a list of texts")."""
_PATTERNS = {
    r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$": "a name of letters, digits, '_', '.' and '-' that starts with a letter or digit",
    r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$": "an import path such as 'package.module:Name'",
}
"""Sentences for the patterns the spec's models use."""


def shape_kind(data: object) -> str | None:
    """The kind of file ``data``'s top-level keys say it is (``"audit"`` or ``"policy"``),
    whatever its ``kind:`` says; ``None`` when its keys do not tell."""
    keys = set(data) if isinstance(data, dict) else set()
    found = [kind for kind, marks in _MARKS.items() if keys.intersection(marks)]
    return found[0] if len(found) == 1 else None


def wrong_kind(data: dict[str, Any], kind: str, document: YamlDocument) -> Problem | None:
    """The one problem to report when ``data`` is not a file of ``kind`` at all (a policy file
    passed as a spec, a spec named as a policy) or its ``kind:`` contradicts its keys; ``None``
    otherwise (a misspelt ``kind:`` on a file of the right shape is one problem among others)."""
    found = data.get("kind")
    shape = shape_kind(data)
    other = next(k for k in KINDS if k != kind)
    where = document.where(("kind",) if "kind" in data else ())
    holds = f"this file holds {_WHAT[shape]} ({', '.join(k + ':' for k in _MARKS[shape] if k in data)})" if shape else ""
    if found == kind and shape == other or found == other and shape == kind:
        return Problem(f"kind: {found}, but {holds}", where, f"set `kind: {shape}`")
    if found is None and shape == other:
        return Problem(f"this file has no `kind:` and {holds[len('this file '):]}, {_NEEDED[kind]}", where, _NEEDED_HINT[kind])
    if found == other or isinstance(found, str) and found not in KINDS and shape == other:
        return Problem(f"this is {_FILE[other]} (kind: {found}), {_NEEDED[kind]}", where, _NEEDED_HINT[kind])
    return None


_FILE = {"audit": "an audit spec", "policy": "a policy file"}
_NEEDED = {
    "audit": "where an audit spec (kind: audit) is needed",
    "policy": "where a policy file (kind: policy) is needed",
}
_NEEDED_HINT = {
    "audit": "pass an audit spec; a policy file goes under `policies:` in the spec (see `guardrail schema audit`)",
    "policy": "`policies:` and `extends:` name policy files (kind: policy; see `guardrail schema policy`)",
}


def misspelt_kind(data: dict[str, Any], kind: str, document: YamlDocument) -> Problem | None:
    """A ``kind:`` that is no kind at all (``kind: polcy``), said with the closest kind."""
    found = data.get("kind")
    if not isinstance(found, str) or found in KINDS:
        return None
    close = difflib.get_close_matches(found, KINDS, n=1)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return Problem(f"kind: unknown kind {found!r}{guess} (kinds: {', '.join(KINDS)})", document.where(("kind",)), f"set `kind: {kind}`")


def problems_of(
    exc: ValidationError, document: YamlDocument, data: Any, prefix: Location, root: type[BaseModel]
) -> list[Problem]:
    """Every problem pydantic found in ``data`` (validated by ``root``, at ``prefix`` in
    ``document``), one sentence each, in the order of their lines."""
    errors = [_Located.of(error, data) for error in exc.errors()]
    errors = _merge_unions(errors, data)
    errors = _drop_echoes(errors)
    problems: list[tuple[int, Problem]] = []
    for error in errors:
        problem = _describe(error, document, data, prefix, root)
        if problem not in (p for _, p in problems):
            problems.append((document.line_of((*prefix, *error.loc)), problem))
    return [problem for _, problem in sorted(problems, key=lambda item: item[0])]


class _Located:
    """A pydantic error with its location in the data (union members' tags taken out)."""

    def __init__(self, error: dict[str, Any], loc: Location, union: tuple[Location, str] | None) -> None:
        self.error = error
        self.type: str = error["type"]
        self.loc = loc
        self.union = union
        """Where a union was validated and the member this error is about, if it is about one."""
        self.alternatives: list[_Located] = []
        """For an error that stands for a whole union: one error per member it tried."""

    @classmethod
    def of(cls, error: Any, data: Any) -> _Located:
        path: list[str | int] = []
        union: tuple[Location, str] | None = None
        current = data
        raw = tuple(error["loc"])
        for i, part in enumerate(raw):
            if isinstance(current, dict) and part in current or (
                isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
            ):
                current = current[part]
                path.append(part)
            elif i == len(raw) - 1 and error["type"] == "missing":
                path.append(part)  # the key that is missing
            elif union is None:
                union = (tuple(path), str(part))  # a union member's tag or name: not part of the data
        return cls(dict(error), tuple(path), union)


def _merge_unions(errors: list[_Located], data: Any) -> list[_Located]:
    """One error for a value that matched no member of a plain union (``float | tuple[float,
    float]``), instead of one per member; when the value has the shape of one member (a list
    for a tuple), that member's errors inside it are kept instead. A discriminated union's
    errors name one member only and stay as they are."""
    members: dict[Location, set[str]] = {}
    for error in errors:
        if error.union is not None:
            members.setdefault(error.union[0], set()).add(error.union[1])
    merged: list[_Located] = []
    seen: set[Location] = set()
    for error in errors:
        if error.union is None or len(members[error.union[0]]) < 2:
            merged.append(error)
            continue
        at = error.union[0]
        group = [e for e in errors if e.union is not None and e.union[0] == at]
        deeper = [e for e in group if len(e.loc) > len(at)]
        if deeper:
            if error in deeper:
                merged.append(error)
        elif at not in seen:
            seen.add(at)
            whole = _Located({"type": "union", "input": group[0].error.get("input")}, at, None)
            whole.alternatives = group
            merged.append(whole)
    return merged


def _drop_echoes(errors: list[_Located]) -> list[_Located]:
    """Leave out what only follows from another problem: a list "too short" because its items
    failed, and a required key missing because it was misspelt (the unknown key says so)."""
    kept = []
    unknown = {(e.loc[:-1], str(e.loc[-1])) for e in errors if e.type == "extra_forbidden" and e.loc}
    for error in errors:
        if error.type in ("too_short", "list_too_short", "tuple_too_short") and any(
            len(other.loc) > len(error.loc) and other.loc[: len(error.loc)] == error.loc for other in errors
        ):
            continue
        if error.type == "missing" and error.loc:
            parent, name = error.loc[:-1], str(error.loc[-1])
            typos = [key for at, key in unknown if at == parent]
            if difflib.get_close_matches(name, typos, n=1):
                continue
        kept.append(error)
    return kept


def _describe(error: _Located, document: YamlDocument, data: Any, prefix: Location, root: type[BaseModel]) -> Problem:
    loc = error.loc
    full = (*prefix, *loc)
    key = dotted(full) or "(top level)"
    name = str(loc[-1]) if loc else ""
    kind = error.type
    ctx = error.error.get("ctx") or {}
    value = error.error.get("input")
    annotation = _annotation_at(root, data, loc)
    hint: str | None = None
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, data, loc)
        message = f"unknown key {name!r}" + _did_you_mean(name, allowed)
        if allowed:
            hint = f"allowed keys here: {', '.join(sorted(allowed))}"
    elif kind == "missing":
        message = "required key missing"
        hint = _add_key(name, annotation)
    elif kind == "union":
        expected = _or([_expected_one(member, name) for member in _members(annotation)]) or "another form"
        message = f"expected {expected}, got {shown(value)}"
    elif kind == "literal_error":
        options = _options(annotation) or _parse_options(str(ctx.get("expected", "")))
        message = f"expected {_one_of(options)}, got {shown(value)}"
        if isinstance(value, str):
            message += _did_you_mean(value, [str(o) for o in options])
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = str(ctx.get("discriminator", "")).strip("'")
        full = (*full, tag)
        key = dotted(full)
        tags = _tags(annotation, tag)
        if kind == "union_tag_not_found":
            message = "required key missing"
            hint = f"add `{tag}:` with {_one_of(tags)}"
        else:
            found = str(ctx.get("tag", ""))
            message = f"expected {_one_of(tags)}, got {found!r}" + _did_you_mean(found, tags)
    elif kind in _TYPE_WORDS:
        expected = _expected(annotation, name) if annotation is not None else _TYPE_WORDS[kind]
        message = f"expected {expected}, got {shown(value)}"
        if _TYPE_WORDS[kind] == "a list" and isinstance(value, str | int | float) and name:
            hint = f"write a list: `{name}: [{value}]`, or one `- ...` line per item"
    elif kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        noun = "a whole number" if int in _members(annotation) else "a number"
        limit = ctx.get(bound)
        limit = int(limit) if isinstance(limit, float) and limit.is_integer() else limit
        message = f"expected {noun} {words.format(limit)}, got {shown(value)}"
    elif kind in ("too_short", "list_too_short", "tuple_too_short"):
        message = f"needs at least {ctx.get('min_length', 1)} item(s)"
        hint = "an empty list here would make the run check nothing"
    elif kind in ("too_long", "list_too_long", "tuple_too_long"):
        message = f"expected at most {ctx.get('max_length')} item(s), got {ctx.get('actual_length', 'more')}"
    elif kind == "string_too_short":
        minimum = ctx.get("min_length", 1)
        message = "must not be empty" if minimum == 1 else f"expected at least {minimum} characters, got {len(str(value))}"
    elif kind == "string_too_long":
        message = f"expected at most {ctx.get('max_length')} characters, got {len(str(value))}"
    elif kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        described = _PATTERNS.get(pattern)
        message = f"expected {described}, got {shown(value)}" if described else f"{shown(value)} is not in the expected form"
        if not described:
            hint = f"it must match the regular expression {pattern}"
    elif kind in ("value_error", "assertion_error"):
        message = str(error.error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    else:  # a type of error no spec model raises today: pydantic's sentence, reworded
        text = str(error.error["msg"])
        for old, new in (("Input should be ", "expected "), ("Value error, ", ""), ("String should ", "the text should ")):
            text = text.replace(old, new)
        message = f"{text}, got {shown(value)}"
    return Problem(f"{key}: {message}" if full else message, document.where(full), hint)


def _add_key(name: str, annotation: Any) -> str:
    """How to add a missing key: its only value, or the keys a missing section needs."""
    options = _options(annotation)
    if len(options) == 1:
        return f"add `{name}: {_one_of(options).strip(chr(39))}`"
    models = [m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) == 1:
        required = [f"{field}:" for field, info in models[0].model_fields.items() if info.is_required()]
        return f"add `{name}:` with {', '.join(required)}" if required else f"add `{name}:`"
    return f"add `{name}:` with {_expected(annotation, name)}" if annotation is not None else f"add `{name}:`"


def shown(value: Any) -> str:
    """What was found, in words: ``a mapping``, ``a list of 3 items``, ``the text 'x'``."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}" if value else "an empty list"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}" if value else "empty text"
    if isinstance(value, datetime.date):
        return f"the date {value.isoformat()}"
    return repr(value) if isinstance(value, int | float) else type(value).__name__


def _expected(annotation: Any, name: str) -> str:
    return _or([_expected_one(member, name) for member in _members(annotation)]) or "another form"


def _members(annotation: Any) -> list[Any]:
    return [member for member in _flatten(annotation) if member is not type(None)]


def _expected_one(annotation: Any, name: str) -> str:
    """The form a value of ``annotation`` takes, in words."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return _one_of(list(args))
    if origin in (tuple, list, set, frozenset):
        items = [a for a in args if a is not Ellipsis]
        if origin is tuple and args and Ellipsis not in args:
            return f"a list of {len(args)} {_plural(args[0])}"
        noun = _ITEM_NOUNS.get(name) or (_plural(items[0]) if items else "items")
        return f"a list of {noun}"
    if origin is dict or isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping of keys"
    return _SCALARS.get(annotation, "a value")


_SCALARS: dict[Any, str] = {
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true/false",
    datetime.date: "a date (YYYY-MM-DD)",
}
_PLURALS: dict[Any, str] = {str: "texts", int: "whole numbers", float: "numbers", bool: "true/false values"}


def _plural(annotation: Any) -> str:
    members = _members(annotation)
    if len(members) == 1 and members[0] in _PLURALS:
        return _PLURALS[members[0]]
    if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], BaseModel):
        return "mappings"
    return "values"


def _or(phrases: Sequence[str]) -> str:
    unique = list(dict.fromkeys(phrases))
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " or " + unique[-1] if unique else ""


def _one_of(options: Sequence[object]) -> str:
    shown = [repr(o) if isinstance(o, str) else str(o).lower() if isinstance(o, bool) else str(o) for o in options]
    if len(shown) == 1:
        return shown[0]
    return "one of " + ", ".join(shown) if shown else "another value"


def _options(annotation: Any) -> list[object]:
    """The values a Literal annotation (or a list of them) allows."""
    for member in _members(annotation):
        if typing.get_origin(member) is typing.Literal:
            return list(typing.get_args(member))
    return []


def _parse_options(expected: str) -> list[object]:
    """pydantic's ``"'a', 'b' or 'c'"`` as ``['a', 'b', 'c']`` (a number stays a number)."""
    parts = [p.strip() for p in expected.replace(" or ", ",").split(",") if p.strip()]
    return [p.strip("'") if p.startswith("'") else int(p) if p.lstrip("-").isdigit() else p for p in parts]


def _tags(annotation: Any, discriminator: str) -> list[str]:
    """The values of a discriminated union's tag (``adapter: sklearn | torch | predictions``)."""
    tags: list[str] = []
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel) and discriminator in member.model_fields:
            tags.extend(str(t) for t in typing.get_args(member.model_fields[discriminator].annotation))
    return tags


def _did_you_mean(found: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(found, [o for o in options if o], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _annotation_at(root: type[BaseModel], data: Any, loc: Location) -> Any:
    """The type the value at ``loc`` must have (``None`` when it cannot be told)."""
    if not loc:
        return root
    parent = _model_at(root, data, loc[:-1])
    if parent is not None and isinstance(loc[-1], str):
        field = parent.model_fields.get(loc[-1])
        return field.annotation if field is not None else None
    outer = _annotation_at(root, data, loc[:-1])
    if outer is None:
        return None
    if isinstance(loc[-1], int):
        return _item_type(outer)
    for candidate in _flatten(outer):
        if typing.get_origin(candidate) is dict:
            return typing.get_args(candidate)[1]
    return None


def _allowed_keys(root: type[BaseModel], data: Any, loc: Location) -> list[str]:
    """Field names of the model that validates the mapping holding the unknown key."""
    model = _model_at(root, data, loc[:-1])
    return sorted(model.model_fields) if model is not None else []


def _model_at(root: type[BaseModel], data: Any, loc: Location) -> type[BaseModel] | None:
    annotation: Any = root
    current = data
    for part in loc:
        model = _as_model(annotation, current)
        if model is None:
            if isinstance(part, int) and isinstance(current, list) and 0 <= part < len(current):
                annotation = _item_type(annotation)
                current = current[part]
                continue
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        current = current.get(part) if isinstance(current, dict) else None
    return _as_model(annotation, current)


def _as_model(annotation: Any, value: Any) -> type[BaseModel] | None:
    """The model that validates ``value``; of a union of models, the one its tag names
    (``adapter:`` of a model section, ``kind:`` of a training model)."""
    models = [c for c in _flatten(annotation) if isinstance(c, type) and issubclass(c, BaseModel)]
    if len(models) <= 1:
        return models[0] if models else None
    for candidate in models:
        tags = [name for name in ("adapter", "kind") if name in candidate.model_fields]
        found = value.get(tags[0]) if isinstance(value, dict) and tags else None
        if found is None or found in typing.get_args(candidate.model_fields[tags[0]].annotation):
            return candidate
    return None


def _item_type(annotation: Any) -> Any:
    for candidate in _flatten(annotation):
        args = typing.get_args(candidate)
        if typing.get_origin(candidate) in (tuple, list) and args:
            return args[0]
    return None


def _flatten(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [leaf for arg in typing.get_args(annotation) for leaf in _flatten(arg)]
    return [annotation]
