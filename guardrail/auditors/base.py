"""The auditor contract: ``Auditor(params).run(ctx) -> AuditResult``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from guardrail.core.types import AuditResult, MetricResult
    from guardrail.scale.stream import ScanTables


class AuditorParams(BaseModel):
    """Base of every auditor's ``params``: unknown keys are spec errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def no_repeats(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Params validator for lists of names: each name at most once. Use it as
    ``_no_repeats = field_validator("methods", "sensitive")(no_repeats)``."""
    if value is not None and len(set(value)) != len(value):
        raise ValueError("list each name once")
    return value


@dataclass(frozen=True)
class AuditContext:
    """What an auditor may look at: the audit data, labels, model outputs and the model.

    What ``y_true`` and ``y_pred`` hold depends on ``task``:

    * ``"binary"``: booleans (is the label the positive class); ``y_score`` is the
      predicted probability of the positive class when known;
    * ``"multiclass"``: integer indices into ``class_labels``;
    * ``"regression"``: floats.
    """

    audit_id: str
    data: pd.DataFrame
    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None
    sensitive: tuple[str, ...]
    missing_sensitive: str
    positive_label: Any
    seed: int
    where: str
    model: Any = None
    features: tuple[str, ...] = ()
    y_pred_baseline: np.ndarray | None = None
    """A baseline model's decisions on the same rows (booleans), when the spec has one."""
    task: str = "binary"
    class_labels: tuple[Any, ...] = ()
    model_path: Path | None = None
    """The model file or folder (a torch model folder holds its privacy ledger)."""
    retrain: Callable[[pd.DataFrame], Callable[[pd.DataFrame], Any]] | None = None
    """Trains a fresh model by the audited model's recipe on the given rows (their target
    column) and returns what it outputs on any rows: float64 ``Logits`` where the model has
    them (:func:`guardrail.privacy.model_logits.reference_output`), else ``P(positive)``; None
    when the adapter cannot."""
    target: str | None = None
    """The target column's name (``data.target``)."""
    spec_folder: Path | None = None
    """The spec file's folder: paths in params are relative to it."""
    tables: ScanTables | None = None
    """The count and score tables of every row, when a streaming or Ray engine read the data
    (:mod:`guardrail.scale`): ``data`` and the outcomes are then the pass's row-keyed sample,
    and group metrics come from these tables, which hold every row."""


class Auditor(Protocol):
    """An auditor stores its validated params in ``__init__`` and computes in ``run``.

    Class attributes declare the registry ``name`` and the pydantic ``Params`` model that
    validates ``params`` in the spec (the registry's row names the pip extra).
    """

    name: ClassVar[str]
    Params: ClassVar[type[AuditorParams]]

    def __init__(self, params: AuditorParams) -> None: ...

    def run(self, ctx: AuditContext) -> AuditResult: ...


ParamProblem = tuple[tuple[str | int, ...], str]


def undeclared_sensitive(names: tuple[str, ...] | None, declared: tuple[str, ...]) -> list[ParamProblem]:
    """``params.sensitive`` entries that are not among the spec's ``data.sensitive``."""
    return [
        (("sensitive", i), f"{name!r} is not one of data.sensitive ({', '.join(declared)})")
        for i, name in enumerate(names or ())
        if name not in declared
    ]


P = TypeVar("P", bound=AuditorParams)


def coerce_params(model: type[P], params: AuditorParams | None) -> P:
    """``params`` as ``model`` (validated again if it is another params type; defaults if None)."""
    if isinstance(params, model):
        return params
    return model.model_validate(params.model_dump() if params is not None else {})


def audit_result(
    ctx: AuditContext,
    auditor: str,
    params: AuditorParams,
    metrics: Sequence[MetricResult],
    started: float,
    artifacts: Mapping[str, Any] | None = None,
) -> AuditResult:
    """The result of an audit that ran to the end: its metrics, its parameters as JSON, its
    artifacts and the seconds since ``started`` (a :func:`time.perf_counter` reading)."""
    import time

    from guardrail.core.types import AuditResult, AuditStatus

    return AuditResult(
        audit_id=ctx.audit_id,
        auditor=auditor,
        status=AuditStatus.OK,
        metrics=tuple(metrics),
        params=params.model_dump(mode="json"),
        artifacts=dict(artifacts or {}),
        duration_s=time.perf_counter() - started,
    )


def audited_sensitive(names: tuple[str, ...] | None, ctx: AuditContext) -> tuple[str, ...]:
    """The sensitive columns an auditor audits: its ``params.sensitive``, else all declared.

    Raises :class:`DataError` for a name the spec does not declare (the runner finds this at
    plan time; this guards direct calls).
    """
    from guardrail.core.errors import DataError

    problems = undeclared_sensitive(names, ctx.sensitive)
    if problems:
        raise DataError(f"params.{problems[0][0][0]}: {problems[0][1]}", where=ctx.audit_id)
    return names or ctx.sensitive
