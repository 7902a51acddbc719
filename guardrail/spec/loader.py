"""Load and validate audit specs and policy files, with errors that name file, line and key."""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from guardrail.errors import SpecError
from guardrail.spec.models import (
    AuditSpec,
    PolicySpec,
    SklearnModelSpec,
    TorchModelSpec,
)
from guardrail.spec.yamlsource import Location, YamlDocument, display_path, read_yaml

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class LoadedSpec:
    """A validated audit spec with its paths resolved against the spec file's folder."""

    path: Path
    spec: AuditSpec
    sha256: str
    raw: dict[str, Any]
    document: YamlDocument
    model_path: Path | None
    baseline_path: Path | None
    data_path: Path
    policy_paths: tuple[Path, ...]
    out_dir: Path
    history_path: Path | None = None
    """The audit history database that records the run (None: no history)."""


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy with its inherited rules resolved (``policy.rules`` is the flattened set)."""

    path: Path
    policy: PolicySpec
    sha256: str
    document: YamlDocument
    sources: tuple[Path, ...] = ()
    """This file and every file it extends, directly or not."""
    rule_lines: Mapping[str, tuple[Path, int]] = field(default_factory=dict)
    """For each rule id of the flattened policy, the file and line where that rule is written."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_spec(
    path: str | Path,
    *,
    out: str | Path | None = None,
    history: str | Path | bool | None = None,
    inputs_must_exist: bool = True,
) -> LoadedSpec:
    """Read, validate and resolve an audit spec.

    ``out`` replaces the spec's ``report.out``; ``history`` replaces ``report.history``
    (a database path, or ``False`` for none). ``inputs_must_exist=False`` resolves the
    model and data paths without requiring them (``guardrail train`` writes them).

    Raises
    ------
    SpecError
        For malformed YAML, unknown keys, wrong types, missing files; the message names the
        file, the line and the key.
    """
    spec_path = Path(path).resolve()
    document = read_yaml(spec_path)
    spec = _validate(AuditSpec, document, kind="audit")
    base = spec_path.parent

    model_path = None
    if not inputs_must_exist:
        relative = getattr(spec.model, "path", None) or getattr(spec.model, "weights", None)
        model_path = (base / relative).resolve() if relative is not None else None
    elif isinstance(spec.model, SklearnModelSpec):
        model_path = _existing(document, base, spec.model.path, ("model", "path"), "model file")
    elif isinstance(spec.model, TorchModelSpec):
        model_path = _torch_model_path(document, base, spec.model, "model")
    baseline_path = None
    if isinstance(spec.baseline, SklearnModelSpec):
        baseline_path = _existing(document, base, spec.baseline.path, ("baseline", "path"), "baseline model file")
    elif isinstance(spec.baseline, TorchModelSpec):
        baseline_path = _torch_model_path(document, base, spec.baseline, "baseline")
    if inputs_must_exist:
        data_path = _existing(document, base, spec.data.path, ("data", "path"), "data file")
    else:
        data_path = (base / spec.data.path).resolve()
    policy_paths = tuple(
        _existing(document, base, p, ("policies", i), "policy file") for i, p in enumerate(spec.policies)
    )
    out_dir = Path(out).resolve() if out is not None else (base / spec.report.out).resolve()
    wanted = spec.report.history if history is None else history
    history_path = None
    if wanted is True:
        history_path = out_dir / "history.sqlite"
    elif wanted is not False:
        history_path = Path(wanted).resolve() if history is not None else (base / str(wanted)).resolve()
        if history_path.is_dir():
            history_path = history_path / "history.sqlite"
    return LoadedSpec(
        path=spec_path,
        spec=spec,
        sha256=sha256_file(spec_path),
        raw=document.data,
        document=document,
        model_path=model_path,
        baseline_path=baseline_path,
        data_path=data_path,
        policy_paths=policy_paths,
        out_dir=out_dir,
        history_path=history_path,
    )


def load_policy(path: str | Path, *, _chain: tuple[Path, ...] = ()) -> LoadedPolicy:
    """Read and validate a policy file, resolving ``extends:`` (see :mod:`guardrail.spec.compose`)."""
    from guardrail.spec.compose import compose

    policy_path = Path(path).resolve()
    if policy_path in _chain:
        cycle = " → ".join(display_path(p) for p in (*_chain, policy_path))
        raise SpecError(f"policies extend each other in a cycle: {cycle}", where=display_path(policy_path))
    document = read_yaml(policy_path)
    policy = _validate(PolicySpec, document, kind="policy")
    parents = [
        load_policy(_existing(document, policy_path.parent, parent, ("extends", i), "policy file"), _chain=(*_chain, policy_path))
        for i, parent in enumerate(policy.extends)
    ]
    flattened = compose(policy, parents, document)
    sources = tuple(dict.fromkeys([policy_path, *(source for parent in parents for source in parent.sources)]))
    own = {rule.id: (policy_path, document.line_of(("rules", i, "id"))) for i, rule in enumerate(policy.rules)}
    inherited = {rule_id: at for parent in reversed(parents) for rule_id, at in parent.rule_lines.items()}
    rule_lines = {rule.id: own.get(rule.id) or inherited[rule.id] for rule in flattened.rules}
    return LoadedPolicy(
        path=policy_path,
        policy=flattened,
        sha256=sha256_file(policy_path),
        document=document,
        sources=sources,
        rule_lines=rule_lines,
    )


def validate_params(model: type[M], params: dict[str, Any], document: YamlDocument, loc: Location) -> M:
    """Validate an auditor's ``params`` mapping, locating errors inside the spec file."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise _spec_error(exc, document, params, loc, model) from None


def _validate(model: type[M], document: YamlDocument, *, kind: str) -> M:
    data = document.data
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a mapping at the top level, got {type(data).__name__}",
            where=document.where(()),
            hint=f"see `guardrail schema {kind}`",
        )
    found_kind = data.get("kind")
    if found_kind is not None and found_kind != kind:
        raise SpecError(
            f"kind: expected {kind!r} here, got {found_kind!r} (kinds: audit, policy)",
            where=document.where(("kind",)),
            hint=f"set `kind: {kind}` or pass the right file",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc, document, data, (), model) from None


def _spec_error(
    exc: ValidationError, document: YamlDocument, data: Any, prefix: Location, root: type[BaseModel]
) -> SpecError:
    # unknown keys first: a misspelt key also shows up as the required key it was meant to be
    errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
    problems = [_describe(error, document, data, prefix, root) for error in errors]
    first_where, first_message, first_hint = problems[0]
    message = first_message
    if len(problems) > 1:
        others = "; ".join(f"{where}: {msg}" for where, msg, _ in problems[1:4])
        message += f" (and {len(problems) - 1} more: {others})"
    return SpecError(message, where=first_where, hint=first_hint)


def _describe(
    error: Any, document: YamlDocument, data: Any, prefix: Location, root: type[BaseModel]
) -> tuple[str, str, str | None]:
    loc = _data_location(data, tuple(error["loc"]))
    full = (*prefix, *loc)
    key = _dotted(full) or "(top level)"
    kind = error["type"]
    hint: str | None = None
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _allowed_keys(root, data, loc)
        message = f"{key}: unknown key {name!r}"
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        if allowed:
            hint = f"allowed keys here: {', '.join(sorted(allowed))}"
    elif kind == "missing":
        message = f"{key}: required key missing"
        hint = f"add `{loc[-1]}:`"
    elif kind in ("too_short", "tuple_too_short", "list_too_short"):
        message = f"{key}: needs at least {(error.get('ctx') or {}).get('min_length', 1)} item(s)"
        hint = "an empty list here would make the run check nothing"
    else:
        message = f"{key}: {error['msg']}"
        expected = (error.get("ctx") or {}).get("expected")
        value = error.get("input")
        if expected and isinstance(value, str):
            options = [o.strip(" '") for o in str(expected).replace(" or ", ",").split(",")]
            close = difflib.get_close_matches(value, [o for o in options if o], n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
    return document.where(full), message, hint


def _data_location(data: Any, loc: tuple[Any, ...]) -> Location:
    """Drop pydantic's union tags from ``loc`` so it follows the actual data."""
    path: list[str | int] = []
    current = data
    for i, part in enumerate(loc):
        if isinstance(current, dict) and part in current or isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            path.append(part)
        elif i == len(loc) - 1:
            path.append(part)
        # otherwise: a discriminator tag or union member name; skip it
    return tuple(path)


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
            if isinstance(part, int):
                annotation = _item_type(annotation)
                current = current[part]
                continue
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        current = current[part] if isinstance(current, dict) else None
    return _as_model(annotation, current)


def _as_model(annotation: Any, value: Any) -> type[BaseModel] | None:
    for candidate in _flatten(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            adapter = candidate.model_fields.get("adapter")
            tag = value.get("adapter") if isinstance(value, dict) else None
            if adapter is None or tag is None or tag in typing.get_args(adapter.annotation):
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


def _dotted(loc: Location) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _torch_model_path(document: YamlDocument, base: Path, model: TorchModelSpec, root: str) -> Path:
    """A torch model's folder, or a module's weights file, resolved and checked."""
    what = "model" if root == "model" else "baseline model"
    if model.path is not None:
        return _existing_folder(document, base, model.path, (root, "path"), f"{what} folder")
    assert model.weights is not None  # the spec requires weights with a module
    return _existing(document, base, model.weights, (root, "weights"), f"{what} weights file")


def _existing_folder(document: YamlDocument, base: Path, relative: str, loc: Location, what: str) -> Path:
    path = (base / relative).resolve()
    if not path.is_dir():
        raise SpecError(
            f"{_dotted(loc)}: {what} not found: {display_path(path)}",
            where=document.where(loc),
            hint="train it first (`guardrail train SPEC`, or `guardrail federate SPEC` for a federate: section); "
            "paths in a spec are relative to the spec file's folder",
        )
    return path


def _existing(document: YamlDocument, base: Path, relative: str, loc: Location, what: str) -> Path:
    path = (base / relative).resolve()
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "not found"
        raise SpecError(
            f"{_dotted(loc)}: {what} {problem}: {display_path(path)}",
            where=document.where(loc),
            hint="paths in a spec are relative to the spec file's folder",
        )
    return path
