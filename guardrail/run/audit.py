"""Run an audit spec: load, predict, run every auditor, judge the policies, build the record.

The runner never prints and never exits. Errors in the inputs (spec, policies, data, model)
raise before any auditor runs; an auditor that fails becomes an ``AuditResult`` with status
``error`` and the run goes on.
"""

from __future__ import annotations

import shlex
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from guardrail.auditors.catalog import MetricCatalog, check_rules, with_regression
from guardrail.auditors.registry import AuditorRegistry, default_registry
from guardrail.core.atomic import check_output_dir
from guardrail.core.errors import DataError, GuardrailError, MissingExtraError, Problem, SpecError
from guardrail.core.types import AuditResult, AuditStatus, ErrorInfo, RunRecord, Severity
from guardrail.policy.engine import Policy, evaluate
from guardrail.run.context import context_factory
from guardrail.run.preflight import absent_column, audit_data_problems, audit_input_files, audit_input_problems, audit_model_problems
from guardrail.run.provenance import InputFiles, collect, digest
from guardrail.run.scan import AuditRows, EngineChoice, choose_engine, head_rows, memory_info, source_of, stream_rows
from guardrail.spec.loader import LoadedPolicy, LoadedSpec, load_policy, load_spec, validate_params
from guardrail.spec.yamlsource import display_path

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.adapters.base import ModelAdapter
    from guardrail.auditors.base import AuditContext, Auditor
    from guardrail.history import ApprovedRun
    from guardrail.scale.sources import Source
    from guardrail.scale.stream import ProgressFn as ScanProgressFn
    from guardrail.spec.models import AuditSpec

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class PlannedAudit:
    audit_id: str
    use: str
    auditor: Auditor | None
    unavailable: ErrorInfo | None = None


def run(
    spec_path: str | Path,
    *,
    out: str | Path | None = None,
    history: str | Path | bool | None = None,
    registry: AuditorRegistry | None = None,
    command: str | None = None,
    progress: ProgressFn | None = None,
    gated: bool = True,
    engine: str | None = None,
    scan_progress: ScanProgressFn | None = None,
) -> AuditRun:
    """Run the audits of ``spec_path`` and judge its policies.

    ``gated=False`` asks for measurements without a gate: the record says so, and its
    verdict is ``NO GATE`` instead of a pass (see :mod:`guardrail.core.verdict`).

    Returns the judged run, not yet written (:meth:`AuditRun.publish` writes it).
    Raises :class:`GuardrailError` subclasses for invalid inputs.

    ``engine`` (memory, stream, ray or auto) replaces the spec's ``engine.kind``; a streaming
    engine reports where its pass stands to ``scan_progress`` (see :mod:`guardrail.run.scan`).

    ``history`` replaces the spec's ``report.history`` (a database path, or ``False``).
    When the history holds an approved run of this spec's name, the record gains the
    ``regression.*`` metrics against it (see :mod:`guardrail.history.regression`).
    """
    say = progress or (lambda _message: None)
    started = datetime.now(timezone.utc)
    inputs = InputFiles()  # the digest of every input is of the bytes read (see guardrail.run.provenance)
    loaded = inputs.read("spec", _spec_file(spec_path), lambda: load_spec(spec_path, out=out, history=history))
    check_output_dir(loaded.out_dir)
    approved = _approved_run(loaded)
    spec = loaded.spec
    loaded_policies = [_read_policy(inputs, path) for path in loaded.policy_paths]
    policies = [Policy.from_loaded(p) for p in loaded_policies]
    registry = registry or default_registry()
    planned = plan_audits(loaded, registry)
    check_rules(loaded_policies, spec_catalog(loaded, planned, registry))

    choice = choose_engine(loaded, planned, engine)
    if choice.kind == "memory":
        rows = _read_in_memory(loaded, inputs, choice, say)
        data = rows.data
        checked = data
    else:
        source = source_of(loaded)
        header = _stream_header(loaded, source)
        checked = head_rows(source, header)
    problems = audit_input_problems(loaded, planned, tuple(str(c) for c in checked.columns))
    problems += audit_data_problems(loaded, planned, checked)
    if problems:
        raise DataError.of(problems)
    for path in audit_input_files(loaded, planned):
        inputs.add([digest("reference", path)])
    model = baseline = None
    if spec.model is not None:
        say(f"loading model ({spec.model.adapter})")
        model = _read_model(inputs, loaded)
        baseline = _read_model(inputs, loaded, baseline=True) if loaded.spec.baseline is not None else None
        problems = audit_model_problems(loaded, planned, model, checked)
        if problems:
            raise DataError.of(problems)
    if choice.kind != "memory":
        assert model is not None  # choose_engine refuses a spec without a model for the streaming engines
        say(f"scanning {source.where} ({choice.kind} engine)")
        scan_model, scan_baseline = model, baseline

        def scan() -> AuditRows:
            return stream_rows(loaded, planned, source, choice, scan_model, scan_baseline, header, progress=scan_progress)

        rows = inputs.read_all("data", _data_files(source), scan)
        data = rows.data
    elif model is not None:
        say(f"predicting on {len(data):,} rows")
    ctx_for = context_factory(loaded, data, model, baseline, tables=rows.tables, labels=rows.labels)

    results = []
    for plan in planned:
        say(f"running audit {plan.audit_id!r} ({plan.use})")
        results.append(_run_one(plan, ctx_for))
    if approved is not None:
        from guardrail.history import regression_result

        say(f"comparing with approved run {approved.record.run_id}")
        results.append(regression_result(approved, results))
    verdict = evaluate(policies, results)

    for role, folder in (("model", loaded.model_path), ("baseline", loaded.baseline_path)):
        if folder is not None and folder.is_dir():  # auditors read model folders while they run
            inputs.check_unchanged(role, folder)
    provenance = collect(
        files=inputs.of("spec", "model", "model-code", "baseline-code", "baseline", "data", "reference", "policy"),
        seeds={"seed": spec.seed},
        command=command or f"guardrail audit {shlex.quote(str(loaded.path))}",
        folder=loaded.path.parent,
    )
    record = RunRecord(
        run_id=f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        name=spec.name,
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        spec_path=str(loaded.path),
        spec_sha256=loaded.sha256,
        spec=loaded.raw,
        results=tuple(results),
        verdict=verdict,
        provenance=provenance,
        gated=gated,
        scan=rows.info,
    )
    return AuditRun(record, loaded)


def _read_in_memory(loaded: LoadedSpec, inputs: InputFiles, choice: EngineChoice, say: ProgressFn) -> AuditRows:
    """Every row in one frame (the in-memory engine), its columns and sensitive values checked."""
    from guardrail.adapters.tables import read_table

    started = time.perf_counter()
    if loaded.data_is_one_file:
        say(f"reading {loaded.data_path.name}")
        data = inputs.read("data", loaded.data_path, lambda: read_table(loaded.data_path, where=display_path(loaded.data_path)))
        partitions = 1
    else:
        from guardrail.scale.sources import read_frame

        source = source_of(loaded)
        say(f"reading {source.where}")
        data = inputs.read_all("data", _data_files(source), lambda: read_frame(source))
        if data.empty:
            raise DataError("the data has no rows", where=source.where)
        partitions = max(1, len(source.partitions))
    _check_columns(loaded, data)
    return AuditRows(data=data, info=memory_info(loaded, data, choice, partitions, time.perf_counter() - started))


def _data_files(source: Source) -> list[Path]:
    """The files whose digests record the data read: each partition, or the database a query
    runs in (a query over files names none: its text is in the spec)."""
    if source.partitions:
        return [partition.path for partition in source.partitions]
    return [source.database] if source.database is not None else []


def _stream_header(loaded: LoadedSpec, source: Source) -> tuple[str, ...]:
    """The source's columns, with every column the spec names present (all absent ones reported)."""
    from guardrail.scale.sources import schema

    header = tuple(schema(source))
    spec = loaded.spec
    absent = [absent_column(role, column, header, source.where) for role, column in _named_columns(spec) if column not in header]
    if absent:
        raise DataError.of(absent)
    return header


@dataclass(frozen=True)
class PublishedRun:
    """A run as written: its record (with the digests of the reports written beside it), each
    report format's file, and the history it was recorded in (``None``: none)."""

    record: RunRecord
    reports: dict[str, Path]
    history_path: Path | None


@dataclass(frozen=True)
class AuditRun:
    """What :func:`run` returns: the judged record, and the loaded spec, which says where the
    reports and the history go."""

    record: RunRecord
    spec: LoadedSpec

    @property
    def formats(self) -> tuple[str, ...]:
        """The report formats the spec asks for (``report.formats``)."""
        return tuple(self.spec.spec.report.formats)

    def publish(self, formats: Sequence[str] | None = None, *, fail_on: Severity = Severity.DENY) -> PublishedRun:
        """Write the reports (``formats``, default the spec's) and record the run in the
        history, all or nothing (:func:`publish_run`)."""
        record, written = publish_run(self.record, self.spec, formats or self.formats, fail_on=fail_on)
        return PublishedRun(record, written, self.spec.history_path)


def publish_run(
    record: RunRecord, loaded: LoadedSpec, formats: Sequence[str], *, fail_on: Severity = Severity.DENY
) -> tuple[RunRecord, dict[str, Path]]:
    """Write the reports of ``record`` and record the run in the audit history, all or nothing.

    The report files are staged in full beside the output folder's files, under the
    folder's lock (see :mod:`guardrail.core.atomic`); the run is then committed to the
    history and, in the same step that signals cannot interrupt, the staged files are
    renamed over the old ones, ``run.json`` last. The history's commit is the one point
    that decides: a run stopped before it changes nothing, a run stopped after it completes
    the folder (SIGINT and SIGTERM wait for the renames; after a SIGKILL the next write into
    the folder removes the staged files or finishes the renames, as the history says).
    So the folder never holds a report of a run the history lacks, and a history's newest
    run into a folder is the report that folder holds. A failure before the commit leaves
    neither the staged files nor a folder this run created; a history this run created is
    kept (empty, valid): guardrail never deletes a history, which another audit may have
    recorded into meanwhile.

    Raises
    ------
    SpecError
        If a text of the record cannot be written as UTF-8 (a lone surrogate in the spec).
    UsageError
        If the reports or the history cannot be written.
    """
    from guardrail.core.atomic import staged_files
    from guardrail.report import FILE_NAMES, prepare_reports

    _check_encodable(record, loaded)
    record, files = prepare_reports(record, loaded.out_dir, formats, fail_on=fail_on)
    index = loaded.out_dir / FILE_NAMES["json"]
    files = {path: text for path, text in files.items() if path != index} | ({index: files[index]} if index in files else {})
    written = {fmt: loaded.out_dir / name for fmt, name in FILE_NAMES.items() if loaded.out_dir / name in files}
    with staged_files(files) as staged:
        if loaded.history_path is None:
            staged.commit()
            return record, written
        from guardrail.history import HistoryStore

        with HistoryStore(loaded.history_path) as store, store.recording(record, record.exit_code(fail_on)) as commit:
            staged.commit(decide=commit, witness=store.witness(record.run_id))
    return record, written


def _check_encodable(record: RunRecord, loaded: LoadedSpec) -> None:
    """Every text of the record can be written as UTF-8, or a :class:`SpecError` names the field.

    YAML's ``"\\udc80"`` escape gives half a character (a lone surrogate), which no UTF-8
    file or SQLite text can hold.
    """
    from guardrail.core.serialize import to_jsonable

    def walk(value: object, path: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], str] | None:
        if isinstance(value, str):
            return None if value.isascii() or _utf8(value) else (path, value)
        if isinstance(value, dict):
            for key, item in value.items():
                found = walk(key, path) or walk(item, (*path, key))
                if found:
                    return found
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                found = walk(item, (*path, i))
                if found:
                    return found
        return None

    found = walk(to_jsonable(record), ())
    if found is None:
        return
    path, text = found
    bad = next(char for char in text if not _utf8(char))
    field = ".".join(str(part) for part in path) or "the record"
    in_spec = path[:1] == ("spec",)
    raise SpecError(
        f"{field} holds text that cannot be written as UTF-8: {bad!a} is half of a character (a lone surrogate)",
        where=loaded.document.where(path[1:]) if in_spec else display_path(loaded.path),
        hint="write the whole character (e.g. \\U0001F600, or the character itself) instead of a \\uD800-\\uDFFF escape",
    )


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _approved_run(loaded: LoadedSpec) -> ApprovedRun | None:
    """The approved run of this spec's name in its history, if there is a history and one."""
    if loaded.history_path is None or not loaded.history_path.is_file():
        return None
    from guardrail.history import HistoryStore

    with HistoryStore(loaded.history_path, create=False) as store:
        return store.approved(loaded.spec.name)


def spec_catalog(loaded: LoadedSpec, planned: Sequence[PlannedAudit], registry: AuditorRegistry) -> MetricCatalog:
    """Every metric the planned audits may produce for this spec (see :mod:`guardrail.auditors.catalog`),
    and, as optional evidence, every key a registered auditor produces under other params."""
    catalog = MetricCatalog()
    for plan in planned:
        declare = getattr(plan.auditor, "metric_catalog", None)
        catalog += declare(loaded.spec) if declare is not None else MetricCatalog(complete=False)
    vocabulary = registry.metric_keys()
    catalog += MetricCatalog(possible=vocabulary if vocabulary is not None else ("*",))
    return with_regression(catalog, recorded=loaded.history_path is not None)


def plan_audits(loaded: LoadedSpec, registry: AuditorRegistry) -> list[PlannedAudit]:
    """Resolve and validate every audit entry before anything runs (spec errors first).

    An auditor whose optional dependencies are missing is planned as unavailable: it
    becomes an errored result naming the pip command, and the other audits still run.
    """
    planned = []
    problems: list[Problem] = []  # every audit entry's problems, reported together
    for i, entry in enumerate(loaded.spec.audits):
        try:
            registry.target(entry.use)
        except SpecError as exc:
            problems.append(Problem(exc.message, loaded.document.where(("audits", i, "use")), exc.hint))
            continue
        try:
            cls = registry.resolve(entry.use)
        except ImportError as exc:
            missing = MissingExtraError(exc.name or str(exc), registry.extra(entry.use))
            info = ErrorInfo(type="MissingExtraError", message=missing.message, hint=missing.hint)
            planned.append(PlannedAudit(entry.id, entry.use, None, info))
            continue
        try:
            params = validate_params(cls.Params, entry.params, loaded.document, ("audits", i, "params"))
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        if loaded.spec.model is None and getattr(cls, "NEEDS_MODEL", True):
            problems.append(
                Problem(
                    f"audit {entry.id!r} (use: {entry.use}) needs a model, and the spec has no model section",
                    loaded.document.where(("audits", i, "use")),
                    "add a model: section, or keep only audits that need no model (use: data)",
                )
            )
            continue
        auditor = cls(params)
        check = getattr(auditor, "check_spec", None)  # optional hook: params against the data spec
        checked = [
            Problem(f"audits[{i}].params.{'.'.join(map(str, loc))}: {message}", loaded.document.where(("audits", i, "params", *loc)))
            for loc, message in (check(loaded.spec.data.sensitive) if check else ())
        ]
        if checked:
            problems.extend(checked)
            continue
        planned.append(PlannedAudit(entry.id, entry.use, auditor))
    if problems:
        raise SpecError.of(problems)
    return planned


def _named_columns(spec: AuditSpec) -> list[tuple[str, str]]:
    """The data columns the spec names, each with the key naming it (``data.target``, …)."""
    wanted = [("data.target", spec.data.target)]
    wanted += [("data.sensitive", column) for column in spec.data.sensitive]
    wanted += [("data.features", column) for column in spec.data.features or ()]
    return wanted


def _check_columns(loaded: LoadedSpec, data: pd.DataFrame) -> None:
    spec = loaded.spec
    where = display_path(loaded.data_path)
    wanted = _named_columns(spec)
    header = tuple(str(c) for c in data.columns)
    absent = [absent_column(role, column, header, where) for role, column in wanted if column not in data.columns]
    if absent:  # every one, as `guardrail validate` reports them
        raise DataError.of(absent)
    for column, expected in (spec.data.groups or {}).items():
        _check_declared_groups(data[column], expected, where=where)
    from guardrail.fairness.groups import check_sensitive

    for column in spec.data.sensitive:  # missing values, over-long labels, ID-like columns: exit 3 before any audit
        check_sensitive(data[column], column, missing=spec.data.missing_sensitive, where=where)


def _check_declared_groups(column: pd.Series, expected: tuple[object, ...], *, where: str) -> None:
    """Every value of ``column`` is declared (no unseen group) and every declared value occurs."""
    from guardrail.fairness.groups import check_declared_groups, group_label

    counts = column.dropna().map(group_label).value_counts()
    check_declared_groups({str(label): int(n) for label, n in counts.items()}, str(column.name), expected, where=where)


def _load_model(loaded: LoadedSpec, *, baseline: bool = False) -> ModelAdapter:
    from guardrail.adapters.base import ModelSource
    from guardrail.adapters.loading import load_model

    model = loaded.spec.baseline if baseline else loaded.spec.model
    assert model is not None
    source = ModelSource(
        path=loaded.baseline_path if baseline else loaded.model_path,
        features=loaded.spec.data.features,
        spec_folder=loaded.path.parent,
        data_where=display_path(loaded.data_path),
    )
    return load_model(model, source)


def _spec_file(spec_path: str | Path) -> Path:
    """The spec file as :func:`load_spec` resolves it (as given when it cannot be resolved,
    a symlink loop: the loader then says so)."""
    from guardrail.core.files import resolve

    try:
        return resolve(spec_path)
    except OSError:
        return Path(spec_path)


def _read_policy(inputs: InputFiles, path: Path) -> LoadedPolicy:
    """Load a policy file, keeping the digests of it and of every file it extends."""

    def load() -> LoadedPolicy:
        return load_policy(path)

    def sources(policy: LoadedPolicy) -> tuple[Path, ...]:
        return policy.sources

    return inputs.read("policy", path, load, also=sources)


def _read_model(inputs: InputFiles, loaded: LoadedSpec, *, baseline: bool = False) -> ModelAdapter:
    """Load the model (or baseline), keeping the digests of the files it was loaded from."""
    role, path = ("baseline", loaded.baseline_path) if baseline else ("model", loaded.model_path)

    def load() -> ModelAdapter:
        return _load_model(loaded, baseline=baseline)

    adapter = load() if path is None else inputs.read(role, path, load)
    code = _model_code(adapter)
    if code is not None:  # the module's source, imported while loading
        inputs.add([digest(f"{role}-code", code)])
    return adapter


def _model_code(model: ModelAdapter) -> Path | None:
    """The source file of a torch module from the user's code (its provenance, beside the weights)."""
    from guardrail.adapters.model_folder import MODULE_ARCHITECTURE

    description = getattr(model, "description", None) or {}
    source = description.get("source") if description.get("architecture") == MODULE_ARCHITECTURE else None
    return Path(source) if source and Path(source).is_file() else None


def _run_one(plan: PlannedAudit, ctx_for: Callable[[str], AuditContext]) -> AuditResult:
    if plan.auditor is None:
        return AuditResult(plan.audit_id, plan.use, AuditStatus.ERROR, error=plan.unavailable)
    started = time.perf_counter()
    try:
        result = plan.auditor.run(ctx_for(plan.audit_id))
    except GuardrailError as exc:
        error = ErrorInfo(type=type(exc).__name__, message=str(exc.message), hint=exc.hint)
    except Exception as exc:  # an auditor's bug must not sink the other audits
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        error = ErrorInfo(
            type=type(exc).__name__,
            message=f"{exc} (at {Path(frame.filename).name}:{frame.lineno})",
            hint="this looks like a bug in the auditor; please report it with run.json",
        )
    else:
        return result
    return AuditResult(
        plan.audit_id, plan.use, AuditStatus.ERROR, error=error, duration_s=time.perf_counter() - started
    )


__all__ = ["AuditRun", "PlannedAudit", "PublishedRun", "plan_audits", "publish_run", "run"]
