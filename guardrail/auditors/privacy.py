"""Privacy audit: membership-inference risk (overall, per group, per site), the privacy
ledger's ε, and the one-run check of the DP claim when training ran it.

The data names which rows trained the model (``params.membership_column``: true for a
training row, false for a held-out row). Two attacks score every audited row:

* ``loss``: the loss-threshold attack (Yeom et al. 2018), from the model's own outputs;
* ``lira``: offline LiRA (Carlini et al. 2022) with reference models retrained by the same
  recipe on a population split of the held-out rows. Those population rows are then not
  audited (a reference model must never have seen an audited row), so both attacks are
  judged on the same rows: every member and the remaining held-out rows.

Each attack gives ROC AUC, TPR at 0.1% and 1% FPR and the attack advantage with bootstrap
intervals, per group of each grouping (the value of a grouping is its most exposed group);
see :func:`guardrail.privacy.membership.attack_metrics`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from guardrail.auditors.base import (
    AuditContext,
    AuditorParams,
    coerce_params,
    no_repeats,
)
from guardrail.core.serialize import to_jsonable
from guardrail.core.types import AuditResult, AuditStatus, MetricResult
from guardrail.errors import AuditError, DataError
from guardrail.privacy.canary import DP_AUDIT_FILE, load_canary_report

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

Attack = Literal["loss", "lira"]


class PrivacyParams(AuditorParams):
    membership_column: str = Field(
        min_length=1,
        description="Column that is true (1) for rows the model was trained on and false (0) for held-out rows.",
    )
    attacks: tuple[Attack, ...] = Field(default=("loss", "lira"), min_length=1)
    groupings: tuple[str, ...] | None = Field(
        default=None,
        description="Columns to break the risk down by (e.g. sex, site); default: data.sensitive.",
    )
    reference_models: int = Field(default=4, ge=2, le=64, description="LiRA reference models to retrain.")
    population_fraction: float = Field(
        default=0.5, gt=0, lt=1, description="Share of held-out rows set aside to train LiRA's reference models."
    )
    bootstrap: int = Field(default=1000, ge=0, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_group_size: int = Field(default=30, ge=1)

    _no_repeats = field_validator("attacks", "groupings")(no_repeats)


class PrivacyAuditor:
    name: ClassVar[str] = "privacy"
    extra: ClassVar[str] = "privacy"
    Params: ClassVar[type[AuditorParams]] = PrivacyParams

    def __init__(self, params: AuditorParams | None = None) -> None:
        self.params = coerce_params(PrivacyParams, params)

    def run(self, ctx: AuditContext) -> AuditResult:
        from guardrail.privacy.membership import (
            attack_metrics,
            cross_entropy_loss,
            lira_offline_attack,
            logit_confidence,
            loss_threshold_attack,
            train_reference_models,
        )

        started = time.perf_counter()
        p = self.params
        if ctx.task != "binary":
            raise AuditError(f"the privacy audit supports binary targets; this spec's task is {ctx.task}")
        if ctx.y_score is None:
            raise AuditError(
                "membership inference needs the model's predicted probabilities, and this model gives none",
                hint="use a model with predict_proba, or a predictions table with score_column",
            )
        member = _membership(ctx.data, p.membership_column, ctx.where)
        labels = ctx.y_true.astype(np.int64)
        proba = np.asarray(ctx.y_score, dtype=np.float64)
        rng = np.random.default_rng(ctx.seed)
        held_out = np.flatnonzero(~member)
        population = np.empty(0, dtype=np.int64)
        if "lira" in p.attacks:
            population = np.sort(rng.choice(held_out, size=max(2, round(p.population_fraction * held_out.size)), replace=False))
        audited = np.setdiff1d(np.arange(len(member)), population)
        if member[audited].all() or not member[audited].any():
            raise DataError(
                f"params.membership_column {p.membership_column!r} must mark both training and held-out rows",
                where=ctx.where,
            )
        groupings = p.groupings if p.groupings is not None else ctx.sensitive
        absent = [c for c in groupings if c not in ctx.data.columns]
        if absent:
            raise DataError(f"params.groupings names column(s) {', '.join(map(repr, absent))} the data does not have", where=ctx.where)
        groups = {c: ctx.data[c].astype(str).to_numpy()[audited] for c in groupings}

        metrics: list[MetricResult] = []
        artifacts: dict[str, Any] = {}
        common = dict(bootstrap=p.bootstrap, confidence=p.confidence, seed=ctx.seed, min_group_size=p.min_group_size)
        for attack in p.attacks:
            if attack == "loss":
                scores = loss_threshold_attack(cross_entropy_loss(proba[audited], labels[audited]))
            else:
                retrain = ctx.retrain
                if retrain is None:
                    raise AuditError(
                        "LiRA retrains reference models by the audited model's recipe, which this adapter cannot do",
                        hint="use the sklearn adapter or a model trained by `guardrail train`, or keep to attacks: [loss]",
                    )
                references = train_reference_models(
                    _fit_by(retrain, ctx.data),
                    population,
                    audited,
                    labels,
                    n_models=p.reference_models,
                    fraction=0.5,
                    seed=ctx.seed,
                )
                scores = lira_offline_attack(logit_confidence(proba[audited], labels[audited]), references.confidence)
            report = attack_metrics(scores, member[audited], groups, attack=attack, **common)  # type: ignore[arg-type]
            metrics += report.metrics
            artifacts[f"roc.{attack}"] = report.artifacts()
        ledger_metrics, ledger_view = _ledger_metrics(ctx.model_path)
        metrics += ledger_metrics
        if ledger_view is not None:
            artifacts["ledger"] = ledger_view
        audit_file = None if ctx.model_path is None else ctx.model_path / DP_AUDIT_FILE
        if audit_file is not None and audit_file.is_file():
            canary = load_canary_report(audit_file)
            metrics += canary.to_metrics()
            artifacts["dp_audit"] = {"message": canary.message, **to_jsonable(canary)}
        artifacts["rows"] = {
            "members": int(member[audited].sum()),
            "non_members": int((~member[audited]).sum()),
            "population": int(population.size),
        }
        return AuditResult(
            audit_id=ctx.audit_id,
            auditor=self.name,
            status=AuditStatus.OK,
            metrics=tuple(metrics),
            params=p.model_dump(mode="json"),
            artifacts=artifacts,
            duration_s=time.perf_counter() - started,
        )


LEDGER_FILE = "ledger.json"
NO_LEDGER = "the model folder has no privacy ledger (ledger.json): it was not trained with DP-SGD by `guardrail train`"


def _ledger_metrics(model_path: Path | None) -> tuple[list[MetricResult], dict[str, Any] | None]:
    """ε and δ from the model's privacy ledger, recomputed by Opacus' accountants."""
    ledger_file = None if model_path is None or not model_path.is_dir() else model_path / LEDGER_FILE
    if ledger_file is None or not ledger_file.is_file():
        return [
            MetricResult("privacy.dp.epsilon", None, reason=NO_LEDGER, higher_is_better=False),
            MetricResult("privacy.dp.delta", None, reason=NO_LEDGER, higher_is_better=False),
        ], None
    from guardrail.privacy.ledger import load_ledger

    ledger = load_ledger(ledger_file)
    by_accountant = {name: ledger.epsilon(accountant=name) for name in ("rdp", "prv")} if ledger.steps else {}
    # the accountant training used for its budget; otherwise the tighter of two valid upper bounds
    accountant = str(ledger.extra.get("accountant") or min(by_accountant, key=by_accountant.__getitem__, default="rdp"))
    details = {
        "accountant": accountant,
        "epsilon_rdp": by_accountant.get("rdp"),
        "epsilon_prv": by_accountant.get("prv"),
        "steps": ledger.steps,
        "history": [list(entry) for entry in ledger.history],
        "max_grad_norm": ledger.max_grad_norm,
        "sampling": ledger.sampling,
        "stopped_reason": ledger.stopped_reason,
        "data_sha256": ledger.data_sha256,
        "notes": list(ledger.notes),
    }
    value = by_accountant.get(accountant, 0.0)
    epsilon = MetricResult("privacy.dp.epsilon", value, higher_is_better=False, details=details)
    delta = MetricResult("privacy.dp.delta", ledger.delta, higher_is_better=False)
    return [epsilon, delta], {"delta": ledger.delta, **details}


def _membership(data: pd.DataFrame, column: str, where: str) -> np.ndarray:
    if column not in data.columns:
        raise DataError(f"params.membership_column names column {column!r}, which the data does not have", where=where)
    values = data[column]
    if values.isna().any():
        raise DataError(f"membership column {column!r} has {int(values.isna().sum())} missing value(s)", where=where)
    allowed = {True, False, 0, 1, "0", "1", "true", "false", "True", "False"}
    unknown = sorted({str(v) for v in values.unique() if v not in allowed})
    if unknown:
        raise DataError(
            f"membership column {column!r} must hold true/false or 1/0; found {', '.join(unknown[:5])}",
            where=where,
        )
    return values.map(lambda v: str(v).lower() in ("1", "true")).to_numpy(dtype=bool)


def _fit_by(retrain: Any, data: pd.DataFrame) -> Any:
    """``fit(train_idx) -> predict(idx) -> P(positive)`` over rows of ``data`` for LiRA."""

    def fit(train_idx: np.ndarray) -> Any:
        predict_proba = retrain(data.iloc[train_idx])
        return lambda idx: predict_proba(data.iloc[idx])

    return fit
