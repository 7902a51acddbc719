"""Mitigation what-if: what fixing the disparity would cost, on the audit data.

fairlearn's ThresholdOptimizer (per-group thresholds on the model's scores, under
demographic parity or equalized odds) and ExponentiatedGradient (retraining a clone of the
model under the same constraints) are fitted and evaluated **on the audit data itself**, so
the trade-off they show is in-sample and optimistic; the report says so. Each method's
accuracy, selection rate and disparities come from the fairness audit's own result builder
(:mod:`guardrail.fairness.results`): one construction per quantity, so the original model's
disparities and intervals here equal the fairness audit's for the same grouping and seed.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import numpy as np
from pydantic import Field, field_validator

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
from guardrail.core.errors import AuditError, MissingExtraError
from guardrail.core.types import AuditResult, MetricResult
from guardrail.fairness.metrics import DisparityName, RateName

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.auditors.catalog import MetricCatalog
    from guardrail.spec.models import AuditSpec

Method = Literal[
    "threshold_demographic_parity",
    "threshold_equalized_odds",
    "expgrad_demographic_parity",
    "expgrad_equalized_odds",
]
ORIGINAL = "original"
"""The label of the audited model's own decisions among the mitigations."""
REPORTED_RATES: tuple[RateName, ...] = ("accuracy", "selection_rate")
REPORTED_DISPARITIES: tuple[DisparityName, ...] = ("demographic_parity_difference", "equalized_odds_difference")


class MitigationParams(AuditorParams):
    methods: tuple[Method, ...] = Field(
        default=("threshold_demographic_parity", "threshold_equalized_odds"),
        min_length=1,
        description="Mitigations to fit; the expgrad_* ones retrain the model several times (slow).",
    )
    sensitive: tuple[str, ...] | None = Field(
        default=None, description="Sensitive columns to mitigate for (their intersection); default data.sensitive."
    )
    max_iter: int = Field(default=20, ge=1, le=200, description="ExponentiatedGradient iterations.")
    bootstrap: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="Bootstrap resamples for the intervals (as in the fairness audit, so that the original "
        "model's intervals equal its); 0 for none.",
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_group_size: int = Field(
        default=30, ge=1, description="Groups smaller than this are flagged as too small (never dropped)."
    )

    _no_repeats = field_validator("methods", "sensitive")(no_repeats)


def _score_model() -> Any:
    """A pre-fitted 'model' whose input is the score column, so that ThresholdOptimizer can
    post-process any model's stored scores (the predictions adapter). Built on demand: it
    subclasses scikit-learn's ``BaseEstimator``, which is not imported until needed."""
    from sklearn.base import BaseEstimator

    class ScoreColumn(BaseEstimator):  # type: ignore[misc]
        def fit(self, X: Any, y: Any) -> Any:
            return self

        def predict(self, X: Any) -> np.ndarray:
            return np.asarray(X, dtype=float)[:, 0]

    return ScoreColumn()


class MitigationAuditor:
    """Fits fairlearn mitigations on the audit data and reports the fairness–accuracy trade-off."""

    name: ClassVar[str] = "mitigation"
    Params: ClassVar[type[AuditorParams]] = MitigationParams
    METRIC_KEYS: ClassVar[tuple[str, ...]] = tuple(
        f"mitigation.{method}.{name}"
        for method in (ORIGINAL, *get_args(Method))
        for name in (*REPORTED_RATES, *REPORTED_DISPARITIES)
    )

    def __init__(self, params: AuditorParams | None = None) -> None:
        self.params = coerce_params(MitigationParams, params)

    def check_spec(self, data_sensitive: tuple[str, ...]) -> list[ParamProblem]:
        """Problems with these params given the spec's sensitive columns, as (params location, message)."""
        return undeclared_sensitive(self.params.sensitive, data_sensitive)

    def metric_catalog(self, spec: AuditSpec) -> MetricCatalog:
        """The original model's and each mitigation's keys, in the intersection of the sensitive columns."""
        from guardrail.auditors.catalog import MetricCatalog
        from guardrail.core.scopes import scope_name

        scope = scope_name(self.params.sensitive or spec.data.sensitive)
        return MetricCatalog.of(
            (
                (f"mitigation.{method}.{name}", {scope})
                for method in (ORIGINAL, *self.params.methods)
                for name in (*REPORTED_RATES, *REPORTED_DISPARITIES)
            ),
            possible=self.METRIC_KEYS,
        )

    def run(self, ctx: AuditContext) -> AuditResult:
        try:
            import fairlearn  # noqa: F401
        except ImportError:
            raise MissingExtraError("fairlearn", "fairness") from None
        from guardrail.fairness.groups import check_missing

        started = time.perf_counter()
        if ctx.task != "binary":
            raise AuditError(
                f"the mitigation what-if needs a binary target (this audit's task is {ctx.task})",
                hint="audit one class versus the rest as a binary target",
            )
        params = self.params
        sensitive = audited_sensitive(params.sensitive, ctx)
        for column in sensitive:
            check_missing(ctx.data[column], column, where=ctx.where)
        groups = ctx.data[list(sensitive)].astype(str)
        decisions: dict[str, np.ndarray] = {ORIGINAL: np.asarray(ctx.y_pred, dtype=bool)}
        for method in params.methods:
            decisions[method] = self._fit_predict(method, ctx, groups)
        metrics: list[MetricResult] = []
        tradeoff: list[dict[str, Any]] = []
        for label, y_pred in decisions.items():
            results = self._evaluate(label, ctx, list(sensitive), y_pred)
            metrics += results
            tradeoff.append({"method": label, **{m.key.rsplit(".", 1)[1]: m.value for m in results}})
        artifacts = {
            "tradeoff": tradeoff,
            "in_sample": True,
            "note": "Mitigations were fitted and evaluated on the audit data: the trade-off is optimistic.",
        }
        return audit_result(ctx, self.name, params, metrics, started, artifacts)

    def _fit_predict(self, method: str, ctx: AuditContext, groups: pd.DataFrame) -> np.ndarray:
        family, constraint = method.split("_", 1)
        if family == "threshold":
            return self._threshold(constraint, ctx, groups)
        return self._expgrad(constraint, ctx, groups)

    def _inputs(self, ctx: AuditContext) -> tuple[Any, Any, str]:
        """What ThresholdOptimizer post-processes: the probability of the positive class.

        ``ctx.y_score`` already is that probability (whichever column of ``predict_proba``
        holds the positive class), so it is used whenever present; a model without scores is
        thresholded on its own output only when its second class is the positive one.
        """
        if ctx.y_score is not None:
            return _score_model(), np.asarray(ctx.y_score, dtype=float).reshape(-1, 1), "predict"
        estimator = getattr(ctx.model, "estimator", None)
        classes = list(getattr(estimator, "classes_", []))
        if estimator is not None and len(classes) == 2 and classes[1] == ctx.positive_label:
            return estimator, ctx.data.loc[:, list(ctx.features)], "auto"
        raise AuditError(
            "the mitigation what-if needs the probability of the positive class",
            hint="use a model with predict_proba, or give model.score_column with the predictions adapter",
        )

    def _threshold(self, constraint: str, ctx: AuditContext, groups: pd.DataFrame) -> np.ndarray:
        from fairlearn.postprocessing import ThresholdOptimizer

        estimator, X, predict_method = self._inputs(ctx)
        optimizer = ThresholdOptimizer(
            estimator=estimator, constraints=constraint, prefit=True, predict_method=predict_method
        )
        _check_both_labels(ctx, groups)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimizer.fit(X, ctx.y_true.astype(int), sensitive_features=groups)
            predicted = optimizer.predict(X, sensitive_features=groups, random_state=ctx.seed)
        return np.asarray(predicted, dtype=bool)

    def _expgrad(self, constraint: str, ctx: AuditContext, groups: pd.DataFrame) -> np.ndarray:
        from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
        from sklearn.base import clone
        from sklearn.pipeline import Pipeline

        estimator = getattr(ctx.model, "estimator", None)
        if estimator is None:
            raise AuditError(
                "ExponentiatedGradient retrains the model: it needs the model itself, not stored predictions",
                hint="use the sklearn adapter, or keep to the threshold_* methods",
            )
        X = ctx.data.loc[:, list(ctx.features)]
        weight_name = f"{estimator.steps[-1][0]}__sample_weight" if isinstance(estimator, Pipeline) else "sample_weight"
        moment = DemographicParity() if constraint == "demographic_parity" else EqualizedOdds()
        reduction = ExponentiatedGradient(
            clone(estimator), moment, max_iter=self.params.max_iter, sample_weight_name=weight_name
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reduction.fit(X, ctx.y_true.astype(int), sensitive_features=groups)
            predicted = reduction.predict(X, random_state=ctx.seed)
        return np.asarray(predicted, dtype=bool)

    def _evaluate(self, method: str, ctx: AuditContext, sensitive: list[str], y_pred: np.ndarray) -> list[MetricResult]:
        """Accuracy, selection rate and disparities of one set of decisions, built by the same
        result builder as the fairness audit (:mod:`guardrail.fairness.results`), on the same
        resamples: the original model's numbers and intervals equal the fairness audit's for
        the same grouping, bootstrap and seed."""
        from guardrail.fairness.bootstrap import grouping_rng, resample_counts
        from guardrail.fairness.groups import tabulate
        from guardrail.fairness.results import GroupTable, disparity_metric, rate_metric

        params = self.params
        grouping, flat = tabulate(ctx.data, sensitive, [(ctx.y_true, 2), (y_pred, 2)], missing="error", where=ctx.where)
        counts = flat.reshape(grouping.n_groups, 2, 2)
        rng = grouping_rng(ctx.seed, grouping.scope)
        boot = resample_counts(counts, params.bootstrap, rng) if params.bootstrap else None
        table = GroupTable(grouping.labels, counts, boot, params.confidence, params.min_group_size)
        details = {"method": method, "in_sample": True}
        key = f"mitigation.{method}"
        results = [rate_metric(table, name, key=f"{key}.{name}", scope=grouping.scope, details=details) for name in REPORTED_RATES]
        results += [
            disparity_metric(table, name, key=f"{key}.{name}", scope=grouping.scope, details=details)
            for name in REPORTED_DISPARITIES
        ]
        return results


def _check_both_labels(ctx: AuditContext, groups: pd.DataFrame) -> None:
    """ThresholdOptimizer needs positives and negatives in every group; say which group lacks them."""
    keys = groups.astype(str).agg(" × ".join, axis=1).to_numpy()
    for key in np.unique(keys):
        labels = np.unique(np.asarray(ctx.y_true)[keys == key])
        if labels.size < 2:
            raise AuditError(
                f"group {key!r} has only {'positive' if labels[0] else 'negative'} labels: per-group "
                "thresholds cannot be fitted for it",
                hint="audit data where every group has both outcomes, or drop the threshold_* methods",
            )
