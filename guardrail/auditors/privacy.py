"""Privacy audit: membership-inference risk (overall, per group, per site), the privacy
ledger's ε, and the one-run check of the DP claim when training ran it.

The data names which rows trained the model (``params.membership_column``: true for a
training row, false for a held-out row). Two attacks score every audited row:

* ``loss``: the loss-threshold attack (Yeom et al. 2018), from the model's own outputs;
* ``lira``: offline LiRA (Carlini et al. 2022) with reference models retrained by the same
  recipe on a population split of the held-out rows. Those population rows are then not
  audited (a reference model must never have seen an audited row), so both attacks are
  judged on the same rows: every member and the remaining held-out rows.

Each attack gives ROC AUC, TPR at 0.1% and 1% FPR and the attack advantage with intervals,
per group of each grouping (the value of a grouping is its most exposed group); see
:func:`guardrail.privacy.mia_metrics.attack_metrics`, the one place those figures and their
intervals are computed.

Model outputs. Both attacks read the model on the log scale, in float64, whenever the model
allows it (:func:`guardrail.privacy.model_logits.model_logits`): a torch model's logits; a
scikit-learn model's ``decision_function`` when it is the log-odds of its ``predict_proba``
(logistic regression, gradient boosting), else its ``predict_log_proba`` when that keeps
digits the probabilities lost (naive Bayes). Other models (a forest, whose probabilities are
vote shares; a predictions table) are read through the positive-class probability, whose
``1 − p`` underflows on confident predictions (float32 softmax: beyond a log-odds of
≈ 16.6); the metrics' ``details.model_output`` says which was used. LiRA needs its reference
models read the same way as the target: when the retrained models give only probabilities,
the target's confidences come from its probabilities too, and the details say so.

The auditor orchestrates: the computation is the privacy engine's, in :mod:`guardrail.privacy`
(:mod:`~guardrail.privacy.mia_audit` for the rows and the attacks' scores,
:mod:`~guardrail.privacy.mia_metrics` for their figures, :mod:`~guardrail.privacy.dp_metrics`
for the ledger and the DP-claim check).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import numpy as np
from pydantic import Field, field_validator

from guardrail.auditors.base import (
    AuditContext,
    AuditorParams,
    audit_result,
    coerce_params,
    no_repeats,
)
from guardrail.core.errors import AuditError, DataError
from guardrail.core.types import MetricResult
from guardrail.privacy.attack_report import mia_key
from guardrail.privacy.dp_metrics import DP_AUDIT_KEYS, LEDGER_KEYS
from guardrail.privacy.mia_metrics import METRIC_NAMES

if TYPE_CHECKING:
    from guardrail.auditors.catalog import MetricCatalog
    from guardrail.core.types import AuditResult
    from guardrail.spec.models import AuditSpec


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


ATTACK_FIGURES = tuple(METRIC_NAMES.values())
"""The figures of each attack: ``privacy.mia.<attack>.<figure>``."""


class PrivacyAuditor:
    name: ClassVar[str] = "privacy"
    extra: ClassVar[str] = "privacy"
    Params: ClassVar[type[AuditorParams]] = PrivacyParams
    METRIC_KEYS: ClassVar[tuple[str, ...]] = (
        *(mia_key(attack, name) for attack in get_args(Attack) for name in ATTACK_FIGURES),
        *LEDGER_KEYS,
        *DP_AUDIT_KEYS,
    )

    def __init__(self, params: AuditorParams | None = None) -> None:
        self.params = coerce_params(PrivacyParams, params)

    def metric_catalog(self, spec: AuditSpec) -> MetricCatalog:
        """The attack figures overall and per grouping, the ledger's ε and δ, and the DP-claim
        check when the spec's ``train:`` section can run it."""
        from guardrail.auditors.catalog import UNSCOPED, MetricCatalog

        p = self.params
        scopes = {UNSCOPED, *(p.groupings if p.groupings is not None else spec.data.sensitive)}
        keys = [(mia_key(attack, name), scopes) for attack in p.attacks for name in ATTACK_FIGURES]
        keys += [(key, {UNSCOPED}) for key in LEDGER_KEYS]
        if spec.train is not None:
            keys += [(key, {UNSCOPED}) for key in DP_AUDIT_KEYS]
        return MetricCatalog.of(keys, possible=self.METRIC_KEYS)

    def run(self, ctx: AuditContext) -> AuditResult:
        from guardrail.privacy.attacks import train_reference_models
        from guardrail.privacy.dp_metrics import dp_audit_metrics, ledger_metrics
        from guardrail.privacy.mia_audit import AuditedRows, fit_on_rows, membership_flags, split_rows
        from guardrail.privacy.mia_metrics import attack_metrics
        from guardrail.privacy.model_logits import model_logits

        started = time.perf_counter()
        p = self.params
        if ctx.task != "binary":
            raise AuditError(f"the privacy audit supports binary targets; this spec's task is {ctx.task}")
        if ctx.y_score is None:
            raise AuditError(
                "membership inference needs the model's predicted probabilities, and this model gives none",
                hint="use a model with predict_proba, or a predictions table with score_column",
            )
        member = membership_flags(ctx.data, p.membership_column, ctx.where)
        labels = ctx.y_true.astype(np.int64)
        read = model_logits(ctx.model, ctx.data, ctx.positive_label)
        lira_fraction = p.population_fraction if "lira" in p.attacks else None
        audited, population = split_rows(member, lira_fraction, np.random.default_rng(ctx.seed))
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
        rows = AuditedRows.of(audited, member, labels, np.asarray(ctx.y_score, dtype=np.float64), read)

        metrics: list[MetricResult] = []
        artifacts: dict[str, Any] = {}
        for attack in p.attacks:
            if attack == "loss":
                scores, source = rows.loss_scores()
            else:
                if ctx.retrain is None:
                    raise AuditError(
                        "LiRA retrains reference models by the audited model's recipe, which this adapter cannot do",
                        hint="use the sklearn adapter or a model trained by `guardrail train`, or keep to attacks: [loss]",
                    )
                fit = fit_on_rows(ctx.retrain, ctx.data)
                references = train_reference_models(
                    fit, population, audited, labels, n_models=p.reference_models, fraction=0.5, seed=ctx.seed
                )
                scores, source = rows.lira_scores(references)
            report = attack_metrics(
                scores,
                rows.member,
                groups,
                attack=attack,
                bootstrap=p.bootstrap,
                confidence=p.confidence,
                seed=ctx.seed,
                min_group_size=p.min_group_size,
                details={"model_output": source},
            )
            metrics += report.metrics
            artifacts[f"roc.{attack}"] = report.artifacts()
        ledger, ledger_view = ledger_metrics(ctx.model_path)
        claim, claim_view = dp_audit_metrics(ctx.model_path)
        metrics += [*ledger, *claim]
        if ledger_view is not None:
            artifacts["ledger"] = ledger_view
        if claim_view is not None:
            artifacts["dp_audit"] = claim_view
        artifacts["rows"] = {**rows.counts(), "population": int(population.size)}
        return audit_result(ctx, self.name, p, metrics, started, artifacts)
