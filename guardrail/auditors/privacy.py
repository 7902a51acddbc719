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
:func:`guardrail.privacy.membership.attack_metrics`, the one place those figures and their
intervals are computed.

Model outputs. Both attacks read the model on the log scale, in float64, whenever the model
allows it (:func:`model_logits`): a torch model's logits; a scikit-learn model's
``decision_function`` when it is the log-odds of its ``predict_proba`` (logistic
regression, gradient boosting), else its ``predict_log_proba`` when that keeps digits the
probabilities lost (naive Bayes). Other models (a forest, whose probabilities are vote
shares; a predictions table) are read through the positive-class probability, whose
``1 − p`` underflows on confident predictions (float32 softmax: beyond a log-odds of
≈ 16.6); the metrics' ``details.model_output`` says which was used. LiRA needs its reference models read
the same way as the target: when the retrained models give only probabilities, the target's
confidences come from its probabilities too, and the details say so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import numpy as np
from pydantic import Field, field_validator

from guardrail.auditors.base import (
    AuditContext,
    AuditorParams,
    coerce_params,
    no_repeats,
)
from guardrail.core.errors import AuditError, DataError
from guardrail.core.serialize import to_jsonable
from guardrail.core.types import AuditResult, AuditStatus, MetricResult
from guardrail.privacy.canary import DP_AUDIT_FILE, load_canary_report
from guardrail.privacy.membership import METRIC_NAMES

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from guardrail.auditors.catalog import MetricCatalog
    from guardrail.privacy.membership import Logits
    from guardrail.spec.models import AuditSpec

Attack = Literal["loss", "lira"]

FROM_PROBABILITY = (
    "positive-class probability (1 − p underflows on confident predictions: LiRA's confidence "
    "saturates at ±27.6 and the loss at 0)"
)
LIRA_FROM_PROBABILITY = (
    "positive-class probability, because the retrained reference models give only probabilities "
    "(LiRA must read target and references the same way); confidences saturate at ±27.6"
)


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
LEDGER_KEYS = ("privacy.dp.epsilon", "privacy.dp.delta")
DP_AUDIT_KEYS = ("privacy.dp_audit.epsilon_lower", "privacy.dp_audit.epsilon_claimed", "privacy.dp_audit.claim_excess")


class PrivacyAuditor:
    name: ClassVar[str] = "privacy"
    extra: ClassVar[str] = "privacy"
    Params: ClassVar[type[AuditorParams]] = PrivacyParams
    METRIC_KEYS: ClassVar[tuple[str, ...]] = (
        *(f"privacy.mia.{attack}.{name}" for attack in get_args(Attack) for name in ATTACK_FIGURES),
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
        keys = [(f"privacy.mia.{attack}.{name}", scopes) for attack in p.attacks for name in ATTACK_FIGURES]
        keys += [(key, {UNSCOPED}) for key in LEDGER_KEYS]
        if spec.train is not None:
            keys += [(key, {UNSCOPED}) for key in DP_AUDIT_KEYS]
        return MetricCatalog.of(keys, possible=self.METRIC_KEYS)

    def run(self, ctx: AuditContext) -> AuditResult:
        from guardrail.privacy.membership import (
            Logits,
            ModelOutput,
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
        read = model_logits(ctx.model, ctx.data, ctx.positive_label)
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
            source = FROM_PROBABILITY if read is None else read.source
            target: ModelOutput = proba[audited] if read is None else Logits(read.logits.array[audited])
            if attack == "loss":
                scores = loss_threshold_attack(cross_entropy_loss(target, labels[audited]))
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
                if not references.from_logits:
                    target, source = proba[audited], LIRA_FROM_PROBABILITY
                scores = lira_offline_attack(logit_confidence(target, labels[audited]), references.confidence)
            report = attack_metrics(
                scores, member[audited], groups, attack=attack, details={"model_output": source}, **common  # type: ignore[arg-type]
            )
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


@dataclass(frozen=True)
class ReadLogits:
    """A binary model's float64 outputs on the log scale, columns ``(not positive, positive)``,
    and a phrase saying where they came from (for the metrics' details)."""

    logits: Logits
    source: str


def model_logits(model: Any, data: pd.DataFrame, positive_label: Any) -> ReadLogits | None:
    """Read a binary model on the log scale in float64, or ``None`` when it offers only probabilities.

    * torch (:class:`~guardrail.adapters.torch.TorchAdapter`): its logits, cast to float64
      before any softmax;
    * scikit-learn: ``decision_function`` when ``expit`` of it reproduces ``predict_proba``
      on these rows (it is then the exact log-odds: logistic regression, gradient boosting);
      otherwise ``predict_log_proba`` when it is finite where ``predict_proba`` rounds to 0
      (it then carries digits the probabilities lost, e.g. naive Bayes); otherwise ``None``:
      the probabilities are all there is (a forest's ``predict_log_proba`` is the log of
      its vote shares, and reading it instead would only change ties in the last bit);
    * anything else (a predictions table): ``None``.

    Columns are ordered (not positive, positive), matching labels ``y_true`` as 0/1.
    """
    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.adapters.torch import TorchAdapter
    from guardrail.privacy.membership import Logits

    if isinstance(model, TorchAdapter):
        classes = list(model.classes)
        if len(classes) != 2 or positive_label not in classes:
            return None
        values = model.logits(data)
        positive = classes.index(positive_label)
        return ReadLogits(Logits(values[:, [1 - positive, positive]]), "float64 logits of the torch model")
    if isinstance(model, SklearnAdapter):
        return _sklearn_logits(model, data, positive_label)
    return None


def _sklearn_logits(model: Any, data: pd.DataFrame, positive_label: Any) -> ReadLogits | None:
    import warnings

    from scipy.special import expit

    from guardrail.privacy.membership import Logits

    estimator = model.estimator
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(estimator, "classes_", [])]
    if len(classes) != 2 or positive_label not in classes:
        return None
    positive = classes.index(positive_label)
    inputs = data.loc[:, list(model.features)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
        proba = np.asarray(estimator.predict_proba(inputs), dtype=np.float64) if hasattr(estimator, "predict_proba") else None
        if proba is not None and hasattr(estimator, "decision_function"):
            decision = np.asarray(estimator.decision_function(inputs), dtype=np.float64)
            if decision.ndim == 1 and np.allclose(expit(decision), proba[:, 1], rtol=1e-9, atol=1e-12):
                log_odds = decision if positive == 1 else -decision
                return ReadLogits(Logits(log_odds), "decision_function (the exact log-odds of predict_proba)")
        if proba is not None and hasattr(estimator, "predict_log_proba"):
            with np.errstate(divide="ignore"):
                log_proba = np.asarray(estimator.predict_log_proba(inputs), dtype=np.float64)
            if np.any((proba == 0) & np.isfinite(log_proba)):
                return ReadLogits(
                    Logits(log_proba[:, [1 - positive, positive]]),
                    "predict_log_proba (finite where predict_proba rounds to 0)",
                )
    return None


def reference_output(model: Any, data: pd.DataFrame, positive_label: Any) -> Any:
    """What a retrained reference model should hand LiRA: :class:`~guardrail.privacy.membership.Logits`
    read by :func:`model_logits` when the model allows it, else its positive-class probability.

    For the runner's ``retrain`` (``AuditContext.retrain``): ``predict(frame)`` returning this
    keeps LiRA's reference confidences as precise as the target's.
    """
    read = model_logits(model, data, positive_label)
    if read is not None:
        return read.logits
    scores = model.predict(data, positive_label).scores
    if scores is None:
        raise DataError("the retrained model gives no probability for the positive class")
    return np.asarray(scores, dtype=np.float64)
