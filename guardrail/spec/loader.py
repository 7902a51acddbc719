"""Load and validate audit specs and policy files, with errors that name file, line and key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from guardrail.core.errors import SpecError, UsageError
from guardrail.core.files import describe, file_kind, resolve, sha256_and_size
from guardrail.core.vocab import HISTORY_FILE, REPORT_FILE_NAMES
from guardrail.spec.messages import misspelt_kind, problems_of, shown, wrong_kind
from guardrail.spec.models import (
    AuditSpec,
    PolicySpec,
    SklearnModelSpec,
    TorchModelSpec,
)
from guardrail.spec.packs import is_pack_reference, pack_path
from guardrail.spec.yamlsource import Location, YamlDocument, display_path, dotted, read_yaml

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
    data_query: str | None = None
    """``data.query``: SQL giving the rows (``data_path`` is then the database it runs in, or the spec file)."""
    data_partitioned: bool = False
    """``data.path`` names a folder or a glob of partitions rather than one file."""

    @property
    def data_is_one_file(self) -> bool:
        """The rows are one CSV or Parquet file, read as before partitions and queries existed."""
        return self.data_query is None and not self.data_partitioned


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
    """SHA-256 (hex) of the regular file ``path``.

    Raises
    ------
    UsageError
        If the file is gone, unreadable or was replaced by something that is not a regular
        file (a spec, policy, model or data file removed or swapped during the run).
    """
    return file_digest(path)[0]


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of the regular file ``path``, from one read (see :func:`sha256_file`)."""
    try:
        return sha256_and_size(path)
    except OSError as exc:
        raise UsageError(
            f"cannot record the SHA-256 of {display_path(path)}: it {describe(exc)}",
            where=display_path(path),
            hint="an input was removed or replaced while guardrail used it; "
            "keep the spec, policies, model and data in place until the run has finished, then rerun",
        ) from None


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
    spec_path = _resolve_argument(path)
    document = read_yaml(spec_path)
    spec = validate_document(AuditSpec, document, kind="audit")
    base = spec_path.parent

    model_path = None
    if not inputs_must_exist:
        relative = getattr(spec.model, "path", None) or getattr(spec.model, "weights", None)
        model_where = ("model", "path" if getattr(spec.model, "path", None) else "weights")
        model_path = _resolve_in(document, base, relative, model_where) if relative is not None else None
    elif isinstance(spec.model, SklearnModelSpec):
        model_path = _existing(document, base, spec.model.path, ("model", "path"), "model file")
    elif isinstance(spec.model, TorchModelSpec):
        model_path = _torch_model_path(document, base, spec.model, "model")
    baseline_path = None
    if isinstance(spec.baseline, SklearnModelSpec):
        baseline_path = _existing(document, base, spec.baseline.path, ("baseline", "path"), "baseline model file")
    elif isinstance(spec.baseline, TorchModelSpec):
        baseline_path = _torch_model_path(document, base, spec.baseline, "baseline")
    data_path, partitioned = _data_location(document, base, spec, inputs_must_exist=inputs_must_exist)
    policy_paths = tuple(
        _policy_file(document, base, p, ("policies", i)) for i, p in enumerate(spec.policies)
    )
    out_dir = (
        _resolve_argument(out, where="--out")
        if out is not None
        else _resolve_in(document, base, spec.report.out, ("report", "out"))
    )
    wanted = spec.report.history if history is None else history
    history_path = None
    if wanted is True:
        history_path = out_dir / HISTORY_FILE
    elif wanted is not False:
        history_path = (
            _resolve_argument(wanted, where="--history")
            if history is not None
            else _resolve_in(document, base, str(wanted), ("report", "history"))
        )
        if history_path.is_dir():
            history_path = history_path / HISTORY_FILE
    inputs = [spec_path, model_path, baseline_path, data_path, *policy_paths]
    _check_out_dir(out_dir, inputs, document.where(("report", "out")) if out is None else "--out")
    if history_path is not None:
        _check_history_path(history_path, out_dir, inputs, document.where(("report", "history")) if history is None else "--history")
    return LoadedSpec(
        path=spec_path,
        spec=spec,
        sha256=sha256_file(spec_path),
        raw=document.data,
        document=document,
        model_path=model_path,
        baseline_path=baseline_path,
        data_path=data_path,
        data_query=spec.data.query,
        data_partitioned=partitioned,
        policy_paths=policy_paths,
        out_dir=out_dir,
        history_path=history_path,
    )


def load_policy(path: str | Path, *, _chain: tuple[Path, ...] = ()) -> LoadedPolicy:
    """Read and validate a policy file, resolving ``extends:`` (see :mod:`guardrail.spec.compose`).

    ``path`` is a file, or a shipped pack's name such as ``"guardrail:baseline"``
    (see :mod:`guardrail.spec.packs`); so are the entries of ``extends:``."""
    from guardrail.spec.compose import compose

    policy_path = pack_path(str(path)) if is_pack_reference(path) else _resolve_argument(path)
    if policy_path in _chain:
        cycle = " → ".join(display_path(p) for p in (*_chain, policy_path))
        raise SpecError(f"policies extend each other in a cycle: {cycle}", where=display_path(policy_path))
    document = read_yaml(policy_path)
    policy = validate_document(PolicySpec, document, kind="policy")
    parents = [
        load_policy(_policy_file(document, policy_path.parent, parent, ("extends", i)), _chain=(*_chain, policy_path))
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


def validate_document(model: type[M], document: YamlDocument, *, kind: str) -> M:
    """``document`` validated by ``model``; every problem of the file in one :class:`SpecError`
    (see :mod:`guardrail.spec.messages`), a file of the wrong kind in one line."""
    data = document.data
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a mapping at the top level (schema_version: 1, kind: {kind}, name: ...), got {shown(data)}",
            where=document.where(()),
            hint=f"see `guardrail schema {kind}`",
        )
    wrong = wrong_kind(data, kind, document)
    if wrong is not None:
        raise SpecError.of([wrong])
    misspelt = misspelt_kind(data, kind, document)
    problems = [misspelt] if misspelt is not None else []
    try:
        validated = model.model_validate({**data, "kind": kind} if misspelt is not None else data)
    except ValidationError as exc:
        problems += problems_of(exc, document, data, (), model)
    else:
        if not problems:
            return validated
    raise SpecError.of(problems)


def _spec_error(
    exc: ValidationError, document: YamlDocument, data: Any, prefix: Location, root: type[BaseModel]
) -> SpecError:
    """Every problem ``exc`` found, one line each, in the order of the file."""
    return SpecError.of(problems_of(exc, document, data, prefix, root))


def _torch_model_path(document: YamlDocument, base: Path, model: TorchModelSpec, root: str) -> Path:
    """A torch model's folder, or a module's weights file, resolved and checked."""
    what = "model" if root == "model" else "baseline model"
    if model.path is not None:
        return _existing_folder(document, base, model.path, (root, "path"), f"{what} folder")
    assert model.weights is not None  # the spec requires weights with a module
    return _existing(document, base, model.weights, (root, "weights"), f"{what} weights file")


GLOB_CHARACTERS = frozenset("*?[")


def _data_location(document: YamlDocument, base: Path, spec: AuditSpec, *, inputs_must_exist: bool) -> tuple[Path, bool]:
    """Where the audit rows are (a file, a folder or glob of partitions, a database, or the
    spec file for a query over files) and whether that is partitions; a single file must exist
    when ``inputs_must_exist`` (partitions and queries are checked when they are read)."""
    relative = spec.data.path
    if relative is None:
        return document.path, False
    if GLOB_CHARACTERS & set(relative):
        return base / relative, True
    path = _resolve_in(document, base, relative, ("data", "path"))
    if spec.data.query is None and path.is_dir():
        return path, True
    if inputs_must_exist:
        return _existing(document, base, relative, ("data", "path"), "database file" if spec.data.query else "data file"), False
    return path, False


def _existing_folder(document: YamlDocument, base: Path, relative: str, loc: Location, what: str) -> Path:
    path = _resolve_in(document, base, relative, loc)
    if not path.is_dir():
        kind = file_kind(path)
        problem = "not found" if kind == "missing" else f"is {kind}, not a folder"
        raise SpecError(
            f"{dotted(loc)}: {what} {problem}: {display_path(path)}",
            where=document.where(loc),
            hint="train it first (`guardrail train SPEC`, or `guardrail federate SPEC` for a federate: section); "
            "paths in a spec are relative to the spec file's folder",
        )
    return path


def _policy_file(document: YamlDocument, base: Path, reference: str, loc: Location) -> Path:
    """A policy named in ``policies:`` or ``extends:``: a shipped pack (``guardrail:<name>``,
    see :mod:`guardrail.spec.packs`) or a file relative to ``base``."""
    if is_pack_reference(reference):
        return pack_path(reference, where=document.where(loc), key=dotted(loc))
    return _existing(document, base, reference, loc, "policy file")


def _existing(document: YamlDocument, base: Path, relative: str, loc: Location, what: str) -> Path:
    """``relative`` resolved against ``base``; it must be a regular file (never opened here:
    a FIFO or a device is refused before anything reads it)."""
    path = _resolve_in(document, base, relative, loc)
    kind = file_kind(path)
    if kind is not None:
        problem = (
            "not found"
            if kind == "missing"
            else "is a folder, not a file"
            if kind == "a folder"
            else f"is {kind}, not a regular file"
        )
        raise SpecError(
            f"{dotted(loc)}: {what} {problem}: {display_path(path)}",
            where=document.where(loc),
            hint="paths in a spec are relative to the spec file's folder",
        )
    return path


def _resolve_in(document: YamlDocument, base: Path, relative: str, loc: Location) -> Path:
    """``base / relative``, resolved; a symlink loop is a spec error at ``loc``."""
    try:
        return resolve(base / relative)
    except OSError as exc:
        raise SpecError(
            f"{dotted(loc)}: {relative!r} {describe(exc)}",
            where=document.where(loc),
            hint="paths in a spec are relative to the spec file's folder",
        ) from None


def _resolve_argument(path: str | Path, *, where: str | None = None) -> Path:
    """A path given on the command line (or to the API), resolved; a symlink loop is an error."""
    try:
        return resolve(path)
    except OSError as exc:
        raise SpecError(f"{str(path)!r} {describe(exc)}", where=where or str(path), hint="check the path") from None


def _check_out_dir(out_dir: Path, inputs: list[Path | None], where: str) -> None:
    """No report may overwrite an input of the run (a spec or policy named summary.md in the
    output folder would be replaced by the reports it produced)."""
    clash = sorted(p for p in inputs if p is not None and p.parent == out_dir and p.name in REPORT_FILE_NAMES)
    if clash:
        raise SpecError(
            f"report.out {display_path(out_dir)} would overwrite an input of this run: {display_path(clash[0])}",
            where=where,
            hint="write the reports into a folder of their own",
        )


def _check_history_path(path: Path, out_dir: Path, inputs: list[Path | None], where: str) -> None:
    """The audit history must be a database of its own: never an input of the run, never one of
    the reports written beside it, never a FIFO or a device."""
    problem = None
    if path in {p for p in inputs if p is not None}:
        problem = "is an input of this run (the spec, a policy, the model or the data)"
    elif path.parent == out_dir and path.name in REPORT_FILE_NAMES:
        problem = f"is the {path.name} report this run writes"
    else:
        kind = file_kind(path)
        if kind not in (None, "missing"):
            problem = f"is {kind}, not a database file"
    if problem is not None:
        raise SpecError(
            f"report.history {display_path(path)} {problem}",
            where=where,
            hint="name a file of its own for the audit history, e.g. history.sqlite in the output folder",
        )
