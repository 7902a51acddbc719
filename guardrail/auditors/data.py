"""The data audit (EU AI Act Art. 10): bias, gaps and leakage in the data itself.

Needs no model: a spec may leave ``model:`` out and run data audits alone, or run them beside
the model's audits. It examines who is represented (against a declared population), whose
labels carry a different base rate, whose records are incomplete, which columns stand in for
a sensitive attribute, whether the audit data resembles the training data, and which rows
are duplicated or leaked from training (:mod:`guardrail.data_audit`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from guardrail.auditors.base import (
    AuditContext,
    AuditorParams,
    ParamProblem,
    audit_result,
    audited_sensitive,
    coerce_params,
    no_repeats,
    undeclared_sensitive,
)
from guardrail.auditors.fairness import groupings_of
from guardrail.core.errors import DataError, Problem
from guardrail.core.types import AuditResult
from guardrail.spec.models import Number

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from guardrail.auditors.catalog import MetricCatalog
    from guardrail.data_audit.engine import DataAudit
    from guardrail.data_audit.representation import Population
    from guardrail.spec.models import AuditSpec

class PopulationParams(AuditorParams):
    """One sensitive column's share of each group in the population the data should represent."""

    shares: dict[str, Number] = Field(
        min_length=1, description="Each group's share of the population, e.g. {Female: 0.513, Male: 0.487}; they sum to 1."
    )
    source: str = Field(min_length=1, description="Where the shares come from (publication, table, year).")

    def declared(self) -> Population:
        """These shares as the data audit's :class:`~guardrail.data_audit.representation.Population`."""
        from guardrail.data_audit.representation import Population

        return Population(dict(self.shares), self.source)

    @field_validator("shares", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            from guardrail.fairness.groups import group_label

            return {group_label(k): v for k, v in value.items()}
        return value


class DataParams(AuditorParams):
    sensitive: tuple[str, ...] | None = Field(default=None, description="Subset of data.sensitive to examine; default all of them.")
    groupings: Literal["each", "intersection", "both"] = Field(
        default="both", description="With several sensitive columns: each alone, their intersection, or both."
    )
    features: tuple[str, ...] | None = Field(
        default=None,
        description="Columns examined for missingness, proxies, shift and duplicates; default every column "
        "except the target, the sensitive columns and those in ignore.",
    )
    ignore: tuple[str, ...] = Field(default=(), description="Columns left out of the default features (row ids, split markers).")
    reference_data: str | None = Field(
        default=None,
        description="The training data (CSV or Parquet), relative to the spec file: shift between it and the "
        "audit data, and audit rows leaked from it.",
    )
    reference_column: str | None = Field(
        default=None,
        description="Instead of reference_data: a boolean column of the data marking the model's training rows "
        "(the `member` column `guardrail train` and `guardrail federate` write); those rows are the reference, "
        "the others are examined.",
    )
    population: dict[str, PopulationParams] = Field(
        default_factory=dict,
        description="Declared population shares per sensitive column, each with its source: "
        "representation is the ratio of each group's share of the data to its population share.",
    )
    min_group_size: int = Field(default=30, ge=1, description="Groups and intersectional cells below this are flagged.")
    bootstrap: int = Field(default=1000, ge=0, le=100_000, description="Resamples of the count tables for the intervals; 0 for none.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Confidence level of the intervals.")
    bins: int = Field(default=10, ge=2, le=100, description="Quantile bins of a numeric column (proxies and shift).")
    proxy_threshold: float = Field(
        default=0.1, gt=0, le=1, description="Normalised mutual information at which a column is a proxy of a sensitive one."
    )
    shift_threshold: float = Field(
        default=0.1, gt=0, le=1, description="Jensen–Shannon distance at which a significant shift counts as a shifted column."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of the shift tests (after Holm's correction).")

    _no_repeats = field_validator("sensitive", "features", "ignore")(no_repeats)

    @model_validator(mode="after")
    def _shares_are_shares(self) -> DataParams:
        """Each population's shares in (0, 1], summing to 1 within the rounding of published
        shares: the data audit's own check (:func:`guardrail.data_audit.representation.check_shares`),
        here so that ``guardrail validate`` finds a bad population before any data is read."""
        from guardrail.data_audit.representation import check_shares

        for column, declared in self.population.items():
            try:
                check_shares(column, declared.declared(), declared.shares, where="")
            except DataError as exc:
                raise ValueError(f"{exc.message}; {exc.hint}" if exc.hint else exc.message) from None
        return self

    @model_validator(mode="after")
    def _one_reference(self) -> DataParams:
        if self.reference_data is not None and self.reference_column is not None:
            raise ValueError("give reference_data or reference_column, not both")
        return self


SCOPED = ("group_share", "base_rate", "base_rate_difference", "base_rate_ratio", "max_missing_rate_difference")
PER_COLUMN = ("missing_rate", "missing_rate_difference")
PER_SENSITIVE = ("max_proxy_nmi", "proxy_nmi", "representation_ratio", "shift_js")
UNSCOPED = ("conflicting_labels", "duplicate_rows", "leaked_rows", "max_shift_js", "shifted_features")


class DataAuditor:
    """Representation, label base rates, missingness, proxies, shift and duplicates of the
    audit data, each figure with an interval and per group where it has groups."""

    name: ClassVar[str] = "data"
    Params: ClassVar[type[AuditorParams]] = DataParams
    NEEDS_MODEL: ClassVar[bool] = False
    METRIC_KEYS: ClassVar[tuple[str, ...]] = tuple(
        f"data.{key}" for key in (*SCOPED, *PER_COLUMN, *PER_SENSITIVE, *UNSCOPED, "small_cells")
    )

    def __init__(self, params: AuditorParams | None = None) -> None:
        self.params = coerce_params(DataParams, params)

    def check_spec(self, data_sensitive: tuple[str, ...]) -> list[ParamProblem]:
        """Problems with these params given the spec's sensitive columns, as (params location, message)."""
        problems = undeclared_sensitive(self.params.sensitive, data_sensitive)
        audited = self.params.sensitive or data_sensitive
        problems += [
            (("population", column), f"{column!r} is not one of the examined sensitive columns ({', '.join(audited)})")
            for column in self.params.population
            if column not in audited
        ]
        return problems

    def metric_catalog(self, spec: AuditSpec) -> MetricCatalog:
        """The keys this audit may produce for ``spec``."""
        from guardrail.auditors.catalog import UNSCOPED as NO_SCOPE
        from guardrail.auditors.catalog import MetricCatalog
        from guardrail.core.scopes import scope_name, scope_part

        p = self.params
        sensitive = p.sensitive or spec.data.sensitive
        scopes = [scope_name(s) for s in groupings_of(sensitive, p.groupings)]
        singles = [scope_part(s) for s in sensitive]
        has_reference = p.reference_data is not None or p.reference_column is not None
        binary = spec.data.task == "binary"
        rows: list[tuple[str, list[str]]] = [
            ("data.group_share", scopes),
            ("data.max_missing_rate_difference", scopes),
            ("data.missing_rate", [f"{s}/column=*" for s in scopes]),
            ("data.missing_rate_difference", [f"{s}/column=*" for s in scopes]),
            ("data.max_proxy_nmi", singles),
            ("data.proxy_nmi", [f"{s}/column=*" for s in singles]),
            ("data.duplicate_rows", [NO_SCOPE]),
        ]
        if len(sensitive) > 1 and p.groupings != "each":
            rows.append(("data.small_cells", [scope_name(sensitive)]))
        if p.population:
            rows.append(("data.representation_ratio", [scope_part(c) for c in p.population]))
        if binary:
            rows += [(f"data.{k}", scopes) for k in ("base_rate", "base_rate_difference", "base_rate_ratio")]
            rows.append(("data.conflicting_labels", [NO_SCOPE]))
        if has_reference:
            rows += [
                ("data.shift_js", ["column=*", *(f"{s}/column=*" for s in singles)]),
                ("data.max_shift_js", [NO_SCOPE]),
                ("data.shifted_features", [NO_SCOPE]),
                ("data.leaked_rows", [NO_SCOPE]),
            ]
        return MetricCatalog.of(rows, possible=self.METRIC_KEYS)

    def check_inputs(self, spec: AuditSpec, spec_folder: Path, header: tuple[str, ...], *, where: str) -> list[Problem]:
        """What ``guardrail validate`` can check from the data file's header alone: the
        reference column or file exists, and the reference file has the columns compared."""
        p = self.params
        problems: list[Problem] = []
        named = [("features", f) for f in p.features or ()]
        named += [("reference_column", p.reference_column)] if p.reference_column is not None else []
        problems += [
            Problem(f"params.{role} names column {column!r}, which the data file does not have", where, "see the data file's header")
            for role, column in named
            if column not in header
        ]
        if p.reference_data is not None:
            from guardrail.adapters.tables import read_header

            path = reference_path(p.reference_data, spec_folder)
            if not path.is_file():
                return [*problems, _no_reference_file(p.reference_data, path)]
            try:
                theirs = read_header(path, where=str(path))
            except DataError as exc:
                return [*problems, *exc.problems]
            sensitive = p.sensitive or spec.data.sensitive
            compared = [*self.features_of_header(header, sensitive, spec.data.target), *sensitive, spec.data.target]
            absent = [column for column in compared if column not in theirs]
            if absent:
                problems.append(reference_lacks(absent, where=str(path)))
        return problems

    def check_data(self, data: pd.DataFrame, sensitive: tuple[str, ...], *, where: str) -> list[Problem]:
        """What the runner checks of the loaded data before any audit runs (exit 3): the declared
        population against the data's groups, and the reference column's marks."""
        from guardrail.data_audit.representation import check_population

        problems: list[Problem] = []
        examined = data
        if self.params.reference_column is not None:
            try:
                examined = data.loc[~training_rows(data, self.params.reference_column, where=where)]
            except DataError as exc:
                return list(exc.problems)  # the population is judged on the examined rows, unknown until then
        population = {column: pop.declared() for column, pop in self.params.population.items()}
        try:
            check_population(examined, population, sensitive=self.params.sensitive or sensitive, where=where)
        except DataError as exc:
            problems += exc.problems
        return problems

    def input_files(self, spec_folder: Path) -> list[Path]:
        """The reference data file, an input of the run (its digest goes into the provenance)."""
        path = reference_path(self.params.reference_data, spec_folder) if self.params.reference_data else None
        return [path] if path is not None and path.is_file() else []

    def run(self, ctx: AuditContext) -> AuditResult:
        started = time.perf_counter()
        p = self.params
        data, reference, source = ctx.data, None, None
        labels = ctx.y_true if ctx.task == "binary" and len(ctx.y_true) == len(ctx.data) else None
        if p.reference_column is not None:
            training = training_rows(ctx.data, p.reference_column, where=ctx.where)
            data, reference = (ctx.data.loc[~training].reset_index(drop=True), ctx.data.loc[training].reset_index(drop=True))
            labels = None if labels is None else labels[~training]
            source = {"column": p.reference_column, "rows": len(reference)}
        elif p.reference_data is not None:
            reference, source = read_reference(p.reference_data, ctx.spec_folder)
        target = ctx.target if ctx.target is not None and ctx.target in ctx.data.columns else None
        found = self.examine(
            data,
            sensitive=audited_sensitive(p.sensitive, ctx),
            target=target,
            labels=labels,
            reference=reference,
            missing_sensitive=ctx.missing_sensitive,
            seed=ctx.seed,
            where=ctx.where,
        )
        artifacts = {**found.artifacts, "reference": source}
        return audit_result(ctx, self.name, p, found.metrics, started, artifacts)

    def examine(
        self,
        data: pd.DataFrame,
        *,
        sensitive: tuple[str, ...],
        target: str | None,
        labels: np.ndarray | None,
        reference: pd.DataFrame | None,
        missing_sensitive: str = "error",
        seed: int = 0,
        where: str = "data",
    ) -> DataAudit:
        """The data audit of ``data`` (and of ``reference`` beside it) under these params."""
        from guardrail.data_audit.engine import DataAuditOptions, DataTables, audit_tables

        p = self.params
        features = self.features_of(data, sensitive, target)
        if reference is not None:
            if reference.empty:
                raise DataError(
                    "the reference (training) data has no rows: nothing to compare the audit data with",
                    where=where,
                    hint="give the training table the model learned from, or leave reference data out",
                )
            absent = [c for c in (*features, *sensitive, *([target] if target else [])) if c not in reference.columns]
            if absent:
                raise DataError.of([reference_lacks(absent, where=where)])
        tables = DataTables(
            data=data,
            sensitive=sensitive,
            features=features,
            feature_sets=tuple(groupings_of(sensitive, p.groupings)),
            target=target,
            labels=labels,
            reference=reference,
            population={column: pop.declared() for column, pop in p.population.items()},
            missing_sensitive=missing_sensitive,
            where=where,
        )
        options = DataAuditOptions(
            min_group_size=p.min_group_size, bootstrap=p.bootstrap, confidence=p.confidence, bins=p.bins,
            proxy_threshold=p.proxy_threshold, shift_threshold=p.shift_threshold, alpha=p.alpha,
        )  # fmt: skip
        return audit_tables(tables, options, seed=seed)

    def features_of(self, data: pd.DataFrame, sensitive: tuple[str, ...], target: str | None) -> tuple[str, ...]:
        """The examined columns: ``params.features`` (each must exist), else every column but the
        target, the sensitive columns, the reference column and ``params.ignore``."""
        header = tuple(str(c) for c in data.columns)
        absent = [f for f in self.params.features or () if f not in header]
        if absent:
            raise DataError(
                f"params.features names column(s) {', '.join(map(repr, absent))} that the data does not have",
                hint=f"the data's columns are {', '.join(header[:20])}",
            )
        return self.features_of_header(header, sensitive, target)

    def features_of_header(self, header: tuple[str, ...], sensitive: tuple[str, ...], target: str | None) -> tuple[str, ...]:
        """:meth:`features_of` given the column names only."""
        p = self.params
        if p.features is not None:
            return tuple(p.features)
        left_out = {*sensitive, *p.ignore, *([target] if target else []), *([p.reference_column] if p.reference_column else [])}
        return tuple(c for c in header if c not in left_out)


def training_rows(data: pd.DataFrame, column: str, *, where: str) -> np.ndarray:
    """Which rows of ``data`` the boolean ``column`` marks as training rows (the reference); the
    others are examined. Raises :class:`DataError` unless it marks some rows of each."""
    import pandas as pd

    if column not in data.columns:
        raise DataError(
            f"params.reference_column names {column!r}, which the data does not have",
            where=where,
            hint="name the boolean column that marks training rows (e.g. member), or give params.reference_data",
        )
    marks = data[column]
    if not (pd.api.types.is_bool_dtype(marks.dtype) or set(pd.unique(marks.dropna())) <= {0, 1}) or marks.isna().any():
        raise DataError(
            f"params.reference_column {column!r} must be true/false (or 1/0) in every row",
            where=where,
            hint="mark training rows true and audited rows false",
        )
    member: np.ndarray = marks.to_numpy(dtype=bool)
    if member.all() or not member.any():
        which = "every" if member.all() else "no"
        raise DataError(
            f"params.reference_column {column!r} marks {which} row as training data: nothing to compare",
            where=where,
            hint="the column must mark some rows as training (true) and some as audited (false)",
        )
    return member


def reference_path(relative: str, spec_folder: Path | None) -> Path:
    """The file ``params.reference_data`` names: relative to the spec file's folder."""
    from guardrail.core.files import resolve

    path = Path(relative) if spec_folder is None else spec_folder / relative
    try:
        return resolve(path)
    except OSError:
        return path


def _no_reference_file(relative: str, path: Path) -> Problem:
    return Problem(
        f"params.reference_data names {relative!r}, which does not exist",
        str(path),
        "params.reference_data is relative to the spec file; give the training table's path",
    )


def reference_lacks(absent: list[str], *, where: str) -> Problem:
    """The reference (training) data lacks columns the audit compares."""
    shown = ", ".join(map(repr, absent[:10])) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
    return Problem(
        f"the reference (training) data lacks column(s) {shown} that the audit data has",
        where,
        "give training data with the same columns as the audit data, or leave those columns out (params.features, params.ignore)",
    )


def read_reference(relative: str, spec_folder: Path | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The reference table named by ``params.reference_data`` (relative to the spec file), and
    its provenance (path, SHA-256 of the bytes read, rows)."""
    import hashlib

    from guardrail.adapters.tables import read_table

    path = reference_path(relative, spec_folder)
    if not path.is_file():
        raise DataError.of([_no_reference_file(relative, path)])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    frame = read_table(path, where=str(path))
    if hashlib.sha256(path.read_bytes()).hexdigest() != before:  # the digest must be of the bytes the frame came from
        raise DataError("the reference data file changed while it was read", where=str(path), hint="run the audit again")
    return frame, {"path": str(path), "sha256": before, "rows": len(frame)}
