"""Group fairness of a classifier's decisions: rates per group and disparities between groups.

Every number comes from one per-(group, y_true, y_pred) count table per grouping, and every
rate and disparity, with its interval, from the one result builder
(:mod:`guardrail.fairness.results`, shared with the mitigation what-if and the federated
builder): exact Clopper–Pearson intervals for rates, the stratified bootstrap of the table
within exact per-group bounds for gaps, paired intervals for candidate − baseline
(:mod:`guardrail.fairness.paired`). fairlearn's ``MetricFrame`` is the oracle in the tests.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from guardrail.auditors.base import (
    AuditContext,
    AuditorParams,
    ParamProblem,
    audit_result,
    audited_sensitive,
    coerce_params,
    undeclared_sensitive,
)
from guardrail.core.errors import AuditError
from guardrail.core.types import AuditResult, MetricResult
from guardrail.fairness.metrics import (
    DISPARITIES,
    RATES,
    DisparityName,
    RateName,
)

if TYPE_CHECKING:
    from guardrail.auditors.catalog import MetricCatalog
    from guardrail.fairness.groups import Grouping
    from guardrail.spec.models import AuditSpec


class FairnessParams(AuditorParams):
    metrics: tuple[RateName, ...] = Field(default=RATES, min_length=1, description="Rates computed per group.")
    disparities: tuple[DisparityName, ...] | None = Field(
        default=DISPARITIES, description="Between-group disparities; null for none."
    )
    groupings: Literal["each", "intersection", "both"] = Field(
        default="both",
        description="With several sensitive features: one grouping per feature ('each'), "
        "their intersection, or both.",
    )
    sensitive: tuple[str, ...] | None = Field(
        default=None, description="Subset of data.sensitive to audit; default all of them."
    )
    min_group_size: int = Field(
        default=30, ge=1, description="Groups smaller than this are flagged as too small (never dropped)."
    )
    bootstrap: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="Bootstrap resamples for the confidence intervals (stratified by group); 0 for none.",
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Confidence level of the intervals.")
    score_metrics: bool = Field(
        default=True,
        description="With scores (a score column or predict_proba): ROC AUC and expected calibration "
        "error per group, and their gaps between groups.",
    )
    calibration_bins: int = Field(default=10, ge=2, le=100, description="Equal-width bins for the calibration error.")
    custom_metrics: dict[str, str] = Field(
        default_factory=dict,
        description="Extra per-group metrics, name → 'module:function' taking (y_true, y_pred) and "
        "returning a number; computed through fairlearn's MetricFrame (with its bootstrap for "
        "intervals). The function is imported and run: name only code you trust.",
    )

    @field_validator("custom_metrics")
    @classmethod
    def _import_strings(cls, value: dict[str, str]) -> dict[str, str]:
        for name, target in value.items():
            module, _, attr = target.partition(":")
            if not name.isidentifier() or not module or not attr:
                raise ValueError(f"{name}: expected an identifier mapped to 'module:function', got {target!r}")
        return value

    @field_validator("metrics", "disparities", "sensitive")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("list each name once")
        if value is not None and len(value) == 0:
            raise ValueError("an empty list audits nothing; leave the key out for the default")
        return value


SCORE_METRICS = ("auc", "ece", "auc_difference", "ece_difference")
"""Keys computed from scores (``y_score``), per grouping."""
REGRESSION_METRICS = ("mean_error", "mean_absolute_error", "mean_prediction")
"""Per-group means of a regression target (each with its ``_difference`` between groups)."""


def groupings_of(sensitive: tuple[str, ...], groupings: str) -> list[tuple[str, ...]]:
    """The feature sets audited: each feature alone and/or their intersection, as ``groupings`` says."""
    feature_sets: list[tuple[str, ...]] = []
    if len(sensitive) == 1 or groupings in ("each", "both"):
        feature_sets += [(feature,) for feature in sensitive]
    if len(sensitive) > 1 and groupings in ("intersection", "both"):
        feature_sets.append(tuple(sensitive))
    return feature_sets


class FairnessAuditor:
    """Rates per sensitive group (count, selection rate, TPR, FPR, FNR, precision, accuracy)
    and disparities between groups (demographic parity, equalized odds, equal opportunity),
    each with a confidence interval that holds for small counts."""

    name: ClassVar[str] = "fairness"
    Params: ClassVar[type[AuditorParams]] = FairnessParams
    METRIC_KEYS: ClassVar[tuple[str, ...]] = tuple(
        f"fairness.{name}"
        for name in (
            *RATES,
            *DISPARITIES,
            "min_group_size",
            *SCORE_METRICS,
            *REGRESSION_METRICS,
            *(f"{m}_difference" for m in REGRESSION_METRICS),
            *(f"delta.{n}" for n in (*RATES, *DISPARITIES) if n != "count"),
            "custom.*",
        )
    )

    def __init__(self, params: AuditorParams | None = None) -> None:
        self.params = coerce_params(FairnessParams, params)

    def check_spec(self, data_sensitive: tuple[str, ...]) -> list[ParamProblem]:
        """Problems with these params given the spec's sensitive columns, as (params location, message)."""
        return undeclared_sensitive(self.params.sensitive, data_sensitive)

    def metric_catalog(self, spec: AuditSpec) -> MetricCatalog:
        """The keys this audit may produce for ``spec``, in the scopes of its groupings
        (``feature/class=*`` per class for a multiclass target)."""
        from guardrail.auditors.catalog import MetricCatalog
        from guardrail.core.scopes import scope_name

        p = self.params
        task = spec.data.task
        scopes = [scope_name(features) for features in groupings_of(p.sensitive or spec.data.sensitive, p.groupings)]
        if task == "multiclass":
            scopes = [f"{scope}/class=*" for scope in scopes]
        names: list[str] = ["min_group_size"]
        if task == "regression":
            names += [*REGRESSION_METRICS, *(f"{m}_difference" for m in REGRESSION_METRICS)]
        else:
            names += [*p.metrics, *(p.disparities or ())]
        if task == "binary":
            names += list(SCORE_METRICS) if p.score_metrics else []
            if spec.baseline is not None:
                names += [f"delta.{n}" for n in (*p.metrics, *(p.disparities or ())) if n != "count"]
            names += [f"custom.{n}" for n in p.custom_metrics]
        return MetricCatalog.of(((f"fairness.{name}", scopes) for name in names), possible=self.METRIC_KEYS)

    def run(self, ctx: AuditContext) -> AuditResult:
        from guardrail.fairness.bootstrap import grouping_rng, resample_counts
        from guardrail.fairness.paired import candidate_table

        started = time.perf_counter()
        params = self.params
        feature_sets = groupings_of(audited_sensitive(params.sensitive, ctx), params.groupings)

        rng = np.random.default_rng(ctx.seed)
        if ctx.task == "regression":
            regression = [m for features in feature_sets for m in self._regression_metrics(ctx, features, rng)]
            return audit_result(ctx, self.name, params, regression, started, _task_artifacts(ctx))
        if ctx.task == "multiclass":
            if ctx.y_pred_baseline is not None:
                raise AuditError(
                    "baseline comparison is available for binary targets only",
                    hint="remove `baseline` from the spec, or audit one class versus the rest as a binary target",
                )
            per_class = self._multiclass_metrics(ctx, feature_sets)
            return audit_result(ctx, self.name, params, per_class, started, _task_artifacts(ctx))

        # One table per grouping: cells (y_true, y_pred), plus the baseline's prediction when
        # there is one, so that candidate and baseline share every resample. Each grouping is
        # resampled on its own table, stratified by its own groups (summing the intersection's
        # resamples would hold each group's mix fixed and narrow the intervals), from a random
        # stream of its own (the seed and the scope), so the same table gets the same resamples
        # in every audit that reports on it.
        paired = ctx.y_pred_baseline is not None
        digits = [(ctx.y_true, 2), (ctx.y_pred, 2)]
        if ctx.y_pred_baseline is not None:
            digits.append((ctx.y_pred_baseline, 2))
        metrics: list[MetricResult] = []
        for features in feature_sets:
            grouping, flat = _count_table(ctx, features, digits)
            table = flat.reshape(grouping.n_groups, 2, 2, 2) if paired else flat.reshape(grouping.n_groups, 2, 2)
            boot = resample_counts(table, params.bootstrap, grouping_rng(ctx.seed, grouping.scope)) if params.bootstrap else None
            if not paired:
                metrics += self._metrics_for(grouping, table, boot)
                continue
            metrics += self._metrics_for(grouping, candidate_table(table), candidate_table(boot) if boot is not None else None)
            metrics += self._deltas(grouping, table, boot)
        if ctx.y_score is not None and params.score_metrics:
            for features in feature_sets:
                metrics += self._score_metrics(ctx, features, rng)
        for features in feature_sets if params.custom_metrics else ():
            metrics += self._custom_metrics(ctx, features)
        return audit_result(ctx, self.name, params, metrics, started, _task_artifacts(ctx))

    def _multiclass_metrics(
        self,
        ctx: AuditContext,
        feature_sets: list[tuple[str, ...]],
    ) -> list[MetricResult]:
        """One-vs-rest per class: every binary metric for "class c versus the others", from one
        (group, true class, predicted class) table per grouping, resampled once for all classes."""
        from guardrail.core.scopes import scope_part
        from guardrail.fairness.bootstrap import grouping_rng, resample_counts
        from guardrail.fairness.metrics import one_vs_rest

        k = len(ctx.class_labels)
        metrics: list[MetricResult] = []
        for features in feature_sets:
            grouping, flat = _count_table(ctx, features, [(ctx.y_true, k), (ctx.y_pred, k)])
            table = flat.reshape(grouping.n_groups, k, k)
            rng = grouping_rng(ctx.seed, grouping.scope)
            boot = resample_counts(table, self.params.bootstrap, rng) if self.params.bootstrap else None
            for index, label in enumerate(ctx.class_labels):
                metrics += self._metrics_for(
                    grouping,
                    one_vs_rest(table, index),
                    one_vs_rest(boot, index) if boot is not None else None,
                    scope=f"{grouping.scope}/class={scope_part(str(label))}",
                )
        return metrics


    def _metrics_for(
        self, grouping: Grouping, counts: np.ndarray, boot: np.ndarray | None, scope: str | None = None
    ) -> list[MetricResult]:
        from guardrail.fairness.results import grouping_metrics

        p = self.params
        return grouping_metrics(
            grouping, counts, boot, rates=p.metrics, disparities=p.disparities or (), confidence=p.confidence,
            min_group_size=p.min_group_size, scope=scope,
        )

    def _deltas(self, grouping: Grouping, paired: np.ndarray, boot: np.ndarray | None) -> list[MetricResult]:
        from guardrail.fairness.paired import delta_metrics

        p = self.params
        return delta_metrics(grouping, paired, boot, rates=p.metrics, disparities=p.disparities or (), confidence=p.confidence)

    def _regression_metrics(self, ctx: AuditContext, features: tuple[str, ...], rng: np.random.Generator) -> list[MetricResult]:
        from guardrail.fairness.groups import encode
        from guardrail.fairness.regression import regression_metrics

        p = self.params
        grouping = encode(ctx.data, features, missing=ctx.missing_sensitive, where=ctx.where)
        return regression_metrics(
            grouping, np.asarray(ctx.y_true), np.asarray(ctx.y_pred), bootstrap=p.bootstrap, confidence=p.confidence,
            min_group_size=p.min_group_size, rng=rng,
        )

    def _score_metrics(self, ctx: AuditContext, features: tuple[str, ...], rng: np.random.Generator) -> list[MetricResult]:
        from guardrail.fairness.groups import encode
        from guardrail.fairness.scores import score_table, table_score_metrics

        p = self.params
        assert ctx.y_score is not None
        if ctx.tables is not None:
            grouping, table = ctx.tables.score_table(features, p.calibration_bins)
        else:
            grouping = encode(ctx.data, features, missing=ctx.missing_sensitive, where=ctx.where)
            assert grouping.codes is not None
            table = score_table(
                grouping.codes, grouping.n_groups, np.asarray(ctx.y_score), np.asarray(ctx.y_true), calibration_bins=p.calibration_bins
            )
        return table_score_metrics(
            grouping, table, bootstrap=p.bootstrap, confidence=p.confidence, min_group_size=p.min_group_size,
            calibration_bins=p.calibration_bins, rng=rng,
        )

    def _custom_metrics(self, ctx: AuditContext, features: tuple[str, ...]) -> list[MetricResult]:
        from guardrail.fairness.custom import custom_metrics
        from guardrail.fairness.groups import encode

        p = self.params
        grouping = encode(ctx.data, features, missing=ctx.missing_sensitive, where=ctx.where)
        return custom_metrics(
            grouping, np.asarray(ctx.y_true), np.asarray(ctx.y_pred), p.custom_metrics, bootstrap=p.bootstrap,
            confidence=p.confidence, min_group_size=p.min_group_size, seed=ctx.seed,
        )


def _count_table(
    ctx: AuditContext, features: tuple[str, ...], digits: list[tuple[np.ndarray, int]]
) -> tuple[Grouping, np.ndarray]:
    """The grouping by ``features`` and its (group, cell) counts: from the pass's tables when an
    engine streamed the data (every row), else tabulated from the rows in memory."""
    if ctx.tables is not None:
        return ctx.tables.count_table(features, int(np.prod([width for _, width in digits])))
    from guardrail.fairness.groups import tabulate

    return tabulate(ctx.data, features, digits, missing=ctx.missing_sensitive, where=ctx.where)


def _task_artifacts(ctx: AuditContext) -> dict[str, object]:
    """What the report must say about how the target was read."""
    if ctx.task == "multiclass":
        classes = [str(c) for c in ctx.class_labels]
        return {
            "task": "multiclass",
            "classes": classes,
            "note": f"Multiclass target ({', '.join(classes)}): every metric is one class versus the rest, "
            "in scopes named feature/class=label.",
        }
    if ctx.task == "regression":
        return {"task": "regression", "note": "Regression target: errors are prediction − truth; gaps are max − min over groups."}
    return {}
