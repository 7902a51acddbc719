"""Group fairness of a classifier's decisions: rates per group and disparities between groups.

Every number comes from one per-(group, y_true, y_pred) count table per grouping, and every
rate and disparity, with its interval, from the one result builder
(:mod:`guardrail.fairness.results`, shared with the mitigation what-if and the federated
builder): exact Clopper–Pearson intervals for rates, the stratified bootstrap of the table
within exact per-group bounds for gaps, paired intervals for candidate − baseline
(:mod:`guardrail.fairness.paired`). fairlearn's ``MetricFrame`` is the oracle in the tests.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from guardrail.auditors.base import (
    AuditContext,
    AuditorParams,
    ParamProblem,
    audited_sensitive,
    coerce_params,
    undeclared_sensitive,
)
from guardrail.core.errors import AuditError, MissingExtraError
from guardrail.core.types import AuditResult, AuditStatus, GroupValue, Interval, MetricResult
from guardrail.fairness.metrics import (
    DISPARITIES,
    HIGHER_IS_BETTER,
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
    extra: ClassVar[str] = "fairness"
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
        from guardrail.fairness.groups import tabulate
        from guardrail.fairness.paired import candidate_table

        started = time.perf_counter()
        params = self.params
        feature_sets = groupings_of(audited_sensitive(params.sensitive, ctx), params.groupings)

        rng = np.random.default_rng(ctx.seed)
        if ctx.task == "regression":
            regression = [m for features in feature_sets for m in self._regression_metrics(ctx, features, rng)]
            return self._result(ctx, regression, started)
        if ctx.task == "multiclass":
            if ctx.y_pred_baseline is not None:
                raise AuditError(
                    "baseline comparison is available for binary targets only",
                    hint="remove `baseline` from the spec, or audit one class versus the rest as a binary target",
                )
            return self._result(ctx, self._multiclass_metrics(ctx, feature_sets), started)

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
            grouping, flat = tabulate(ctx.data, features, digits, missing=ctx.missing_sensitive, where=ctx.where)
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
        return self._result(ctx, metrics, started)

    def _custom_metrics(self, ctx: AuditContext, features: tuple[str, ...]) -> list[MetricResult]:
        """User metric callables per group, through fairlearn's MetricFrame (the general path)."""
        import importlib
        import warnings

        try:
            from fairlearn.metrics import MetricFrame
        except ImportError:
            raise MissingExtraError("fairlearn", "fairness") from None
        from guardrail.fairness.groups import encode

        params = self.params
        functions = {}
        for name, target in params.custom_metrics.items():
            module, _, attr = target.partition(":")
            try:
                functions[name] = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise AuditError(f"custom metric {name!r}: cannot import {target!r} ({exc})") from None
        grouping = encode(ctx.data, features, missing=ctx.missing_sensitive, where=ctx.where)
        assert grouping.codes is not None
        labels = np.asarray(grouping.labels, dtype=object)[grouping.codes]
        boot = min(params.bootstrap, 200)  # MetricFrame resamples rows: keep it affordable
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = MetricFrame(
                metrics=functions,
                y_true=np.asarray(ctx.y_true).astype(int),
                y_pred=np.asarray(ctx.y_pred).astype(int),
                sensitive_features=labels,
                n_boot=boot or None,
                ci_quantiles=[(1 - params.confidence) / 2, (1 + params.confidence) / 2] if boot else None,
                random_state=ctx.seed if boot else None,
            )
        sizes = np.bincount(grouping.codes, minlength=grouping.n_groups)
        results = []
        for name in functions:
            overall = float(frame.overall[name])
            per_group = frame.by_group[name]
            ci_overall = ci_groups = None
            if boot:
                low, high = frame.overall_ci[0][name], frame.overall_ci[1][name]
                ci_overall = Interval(float(low), float(high), params.confidence, f"percentile (fairlearn MetricFrame, {boot} resamples)")
                ci_groups = (frame.by_group_ci[0][name], frame.by_group_ci[1][name])
            by_group = tuple(
                GroupValue(
                    label,
                    None if math.isnan(float(per_group[label])) else float(per_group[label]),
                    int(sizes[i]),
                    small=bool(sizes[i] < params.min_group_size),
                    reason="undefined" if math.isnan(float(per_group[label])) else None,
                    ci=Interval(float(ci_groups[0][label]), float(ci_groups[1][label]), params.confidence, "percentile (fairlearn MetricFrame)")
                    if ci_groups is not None and not math.isnan(float(ci_groups[0][label]))
                    else None,
                )
                for i, label in enumerate(grouping.labels)
            )
            results.append(
                MetricResult(
                    key=f"fairness.custom.{name}",
                    scope=grouping.scope,
                    value=None if math.isnan(overall) else overall,
                    reason="undefined overall" if math.isnan(overall) else None,
                    ci=ci_overall if ci_overall is not None and math.isfinite(ci_overall.low) else None,
                    by_group=by_group,
                    n=int(sizes.sum()),
                    details={"function": params.custom_metrics[name], "engine": "fairlearn MetricFrame"},
                )
            )
        return results

    def _result(self, ctx: AuditContext, metrics: list[MetricResult], started: float) -> AuditResult:
        return AuditResult(
            audit_id=ctx.audit_id,
            auditor=self.name,
            status=AuditStatus.OK,
            metrics=tuple(metrics),
            params=self.params.model_dump(mode="json"),
            artifacts=_task_artifacts(ctx),
            duration_s=time.perf_counter() - started,
        )

    def _multiclass_metrics(
        self,
        ctx: AuditContext,
        feature_sets: list[tuple[str, ...]],
    ) -> list[MetricResult]:
        """One-vs-rest per class: every binary metric for "class c versus the others", from one
        (group, true class, predicted class) table per grouping, resampled once for all classes."""
        from guardrail.core.scopes import scope_part
        from guardrail.fairness.bootstrap import grouping_rng, resample_counts
        from guardrail.fairness.groups import tabulate

        k = len(ctx.class_labels)
        metrics: list[MetricResult] = []
        for features in feature_sets:
            grouping, flat = tabulate(
                ctx.data, features, [(ctx.y_true, k), (ctx.y_pred, k)], missing=ctx.missing_sensitive, where=ctx.where
            )
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

    def _regression_metrics(
        self, ctx: AuditContext, features: tuple[str, ...], rng: np.random.Generator
    ) -> list[MetricResult]:
        """Per group: mean error (prediction − truth), mean absolute error, mean prediction;
        and the gap (max − min) of each between groups, with stratified row-bootstrap intervals."""
        from guardrail.fairness.bootstrap import BootstrapSpec, gap_interval, interval
        from guardrail.fairness.groups import encode
        from guardrail.fairness.regression import bootstrap_group_means

        params = self.params
        grouping = encode(ctx.data, features, missing=ctx.missing_sensitive, where=ctx.where)
        assert grouping.codes is not None
        truth = np.asarray(ctx.y_true, dtype=float)
        predicted = np.asarray(ctx.y_pred, dtype=float)
        columns = {
            "mean_error": predicted - truth,
            "mean_absolute_error": np.abs(predicted - truth),
            "mean_prediction": predicted,
        }
        sizes = np.bincount(grouping.codes, minlength=grouping.n_groups)
        small = sizes < params.min_group_size
        spec = BootstrapSpec(resamples=params.bootstrap, level=params.confidence)
        common = {"sensitive_features": list(grouping.features), "min_group_size": params.min_group_size}
        results: list[MetricResult] = []
        for name, values in columns.items():
            per_group = np.bincount(grouping.codes, weights=values, minlength=grouping.n_groups) / sizes
            boot = (
                bootstrap_group_means(values, grouping.codes, grouping.n_groups, params.bootstrap, rng)
                if params.bootstrap
                else None
            )
            by_group = tuple(
                GroupValue(
                    label,
                    float(per_group[i]),
                    int(sizes[i]),
                    small=bool(small[i]),
                    ci=interval(boot[0][:, i], spec, table=False) if boot is not None else None,
                )
                for i, label in enumerate(grouping.labels)
            )
            results.append(
                MetricResult(
                    key=f"fairness.{name}",
                    scope=grouping.scope,
                    value=float(values.mean()),
                    ci=interval(boot[1], spec) if boot is not None else None,
                    by_group=by_group,
                    n=int(sizes.sum()),
                    higher_is_better=False if name == "mean_absolute_error" else None,  # a signed error has no better side
                    details=common,
                )
            )
            two = grouping.n_groups > 1
            results.append(
                MetricResult(
                    key=f"fairness.{name}_difference",
                    scope=grouping.scope,
                    value=float(per_group.max() - per_group.min()) if two else None,
                    reason=None if two else "fewer than two groups to compare",
                    ci=gap_interval({name: per_group}, {name: boot[0]}, "difference", spec, limit=None)
                    if boot is not None and two
                    else None,
                    by_group=by_group,
                    n=int(sizes.sum()),
                    higher_is_better=False,
                    details={
                        **common,
                        "aggregation": "difference",
                        "min_group": grouping.labels[int(per_group.argmin())] if two else None,
                        "max_group": grouping.labels[int(per_group.argmax())] if two else None,
                    },
                )
            )
        results.append(_min_group_size(grouping.scope, grouping.labels, sizes, small, common))
        return results

    def _metrics_for(
        self, grouping: Grouping, counts: np.ndarray, boot: np.ndarray | None, scope: str | None = None
    ) -> list[MetricResult]:
        """Every rate and disparity of one grouping's ``(G, 2, 2)`` table, built by the one
        result builder (:mod:`guardrail.fairness.results`)."""
        from guardrail.fairness.results import GroupTable, disparity_metric, rate_metric

        params = self.params
        table = GroupTable(grouping.labels, counts, boot, params.confidence, params.min_group_size)
        labels, sizes, small = grouping.labels, table.sizes, table.small
        scope = scope or grouping.scope
        common = {"sensitive_features": list(grouping.features), "min_group_size": params.min_group_size}
        small_groups = [labels[i] for i in range(len(labels)) if small[i]]
        results = [
            rate_metric(table, name, key=f"fairness.{name}", scope=scope, details={**common, "small_groups": small_groups})
            for name in params.metrics
        ]
        results += [
            disparity_metric(
                table,
                name,
                key=f"fairness.{name}",
                scope=scope,
                details={**common, **self._power(name, counts, labels)},
            )
            for name in params.disparities or ()
        ]
        results.append(_min_group_size(scope, labels, sizes, small, common))
        return results

    def _deltas(self, grouping: Grouping, paired: np.ndarray, boot: np.ndarray | None) -> list[MetricResult]:
        """Candidate − baseline for every rate and disparity of a paired ``(G, 2, 2, 2)``
        table (both models judged on the same rows and the same resamples of them), with the
        intervals of :mod:`guardrail.fairness.paired`."""
        from guardrail.fairness.paired import disparity_delta, rate_delta

        params = self.params
        level = params.confidence
        names: list[RateName] = [n for n in params.metrics if n != "count"]
        sizes = paired.sum(axis=(1, 2, 3))
        common = {"sensitive_features": list(grouping.features), "comparison": "candidate − baseline, paired bootstrap"}

        def value(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        results: list[MetricResult] = []
        for name in names:
            overall = rate_delta(paired.sum(axis=0), boot.sum(axis=1) if boot is not None else None, name, level)
            groups = [rate_delta(paired[i], boot[:, i] if boot is not None else None, name, level, table=False) for i in range(len(sizes))]
            by_group = tuple(
                GroupValue(
                    group=label,
                    value=value(found.value),
                    n=int(sizes[i]),
                    reason="undefined for a model" if math.isnan(found.value) else None,
                    ci=found.ci,
                )
                for i, (label, found) in enumerate(zip(grouping.labels, groups, strict=True))
            )
            results.append(
                MetricResult(
                    key=f"fairness.delta.{name}",
                    scope=grouping.scope,
                    value=value(overall.value),
                    reason="undefined for the candidate or the baseline" if math.isnan(overall.value) else None,
                    ci=overall.ci,
                    by_group=by_group,
                    n=int(sizes.sum()),
                    higher_is_better=HIGHER_IS_BETTER[name],
                    details={**common, "candidate": value(overall.candidate), "baseline": value(overall.baseline)},
                )
            )
        for disparity_name in params.disparities or ():
            found = disparity_delta(paired, boot, disparity_name, grouping.labels, level)
            results.append(
                MetricResult(
                    key=f"fairness.delta.{disparity_name}",
                    scope=grouping.scope,
                    value=value(found.value),
                    reason="undefined for the candidate or the baseline" if math.isnan(found.value) else None,
                    ci=found.ci,
                    n=int(sizes.sum()),
                    higher_is_better=HIGHER_IS_BETTER[disparity_name],
                    details={**common, "candidate": value(found.candidate), "baseline": value(found.baseline)},
                )
            )
        return results

    def _score_metrics(self, ctx: AuditContext, features: tuple[str, ...], rng: np.random.Generator) -> list[MetricResult]:
        """ROC AUC and calibration error per group, their gaps, with stratified bootstrap intervals."""
        from guardrail.fairness.bootstrap import BootstrapSpec, gap_interval, interval
        from guardrail.fairness.groups import encode
        from guardrail.fairness.scores import auc, bootstrap_score_metrics, ece, score_table

        params = self.params
        assert ctx.y_score is not None
        grouping = encode(ctx.data, features, missing=ctx.missing_sensitive, where=ctx.where)
        assert grouping.codes is not None
        table = score_table(grouping.codes, grouping.n_groups, ctx.y_score, ctx.y_true)
        sizes = table.counts.sum(axis=(1, 2))
        small = sizes < params.min_group_size
        spec = BootstrapSpec(resamples=params.bootstrap, level=params.confidence)
        boot = bootstrap_score_metrics(table, params.bootstrap, rng, params.calibration_bins) if params.bootstrap else {}
        values = {"auc": auc(table.counts), "ece": ece(table.counts, table.scores, params.calibration_bins)}
        pooled = table.counts.sum(axis=0)
        overall = {"auc": float(auc(pooled)), "ece": float(ece(pooled, table.scores, params.calibration_bins))}
        reasons = {"auc": "needs both positive and negative labels", "ece": "no rows"}
        common = {
            "sensitive_features": list(grouping.features),
            "min_group_size": params.min_group_size,
            "calibration_bins": params.calibration_bins,
        }
        results: list[MetricResult] = []
        for name, higher in (("auc", True), ("ece", False)):
            by_group = tuple(
                GroupValue(
                    group=label,
                    value=None if math.isnan(values[name][i]) else float(values[name][i]),
                    n=int(sizes[i]),
                    small=bool(small[i]),
                    reason=reasons[name] if math.isnan(values[name][i]) else None,
                    ci=interval(boot[name][:, i], spec, table=False) if boot else None,
                )
                for i, label in enumerate(grouping.labels)
            )
            results.append(
                MetricResult(
                    key=f"fairness.{name}",
                    scope=grouping.scope,
                    value=None if math.isnan(overall[name]) else overall[name],
                    reason=f"undefined overall ({reasons[name]})" if math.isnan(overall[name]) else None,
                    ci=interval(boot[f"{name}_overall"], spec) if boot else None,
                    by_group=by_group,
                    n=int(sizes.sum()),
                    higher_is_better=higher,
                    details=common,
                )
            )
            undefined = [grouping.labels[i] for i in np.flatnonzero(np.isnan(values[name]))]
            why: str | None
            gap = float(values[name].max() - values[name].min()) if not undefined and grouping.n_groups > 1 else math.nan
            if undefined:
                why = f"{name} undefined for group {', '.join(map(repr, undefined[:3]))} ({reasons[name]})"
            else:
                why = "fewer than two groups to compare" if grouping.n_groups < 2 else None
            gap_ci = (
                gap_interval({name: values[name]}, {name: boot[name]}, "difference", spec) if boot and why is None else None
            )
            results.append(
                MetricResult(
                    key=f"fairness.{name}_difference",
                    scope=grouping.scope,
                    value=None if why else gap,
                    reason=why,
                    ci=gap_ci,
                    by_group=by_group,
                    n=int(sizes.sum()),
                    higher_is_better=False,
                    details={
                        **common,
                        "aggregation": "difference",
                        "min_group": None if why else grouping.labels[int(np.argmin(values[name]))],
                        "max_group": None if why else grouping.labels[int(np.argmax(values[name]))],
                    },
                )
            )
        return results

    def _power(self, name: DisparityName, counts: np.ndarray, labels: tuple[str, ...]) -> dict[str, object]:
        """For a difference: the smallest gap the two smallest groups (by the rate's
        denominator) can show at 80% power with a two-sided test at 1 − confidence.

        The pooled rate is shrunk as ``(x + ½) / (n + 1)``, so a rate of exactly 0 or 1 does
        not claim that any gap is detectable.
        """
        from guardrail.fairness.metrics import based_on, denominator_array, rate
        from guardrail.fairness.power import detectable_gap

        if not name.endswith("difference") or len(labels) < 2:
            return {}
        alpha = 1 - self.params.confidence
        gaps = []
        for rate_name in based_on(name):
            denominators = denominator_array(counts, rate_name)
            first, second = (int(i) for i in np.argsort(denominators, kind="stable")[:2])
            overall, total = rate(counts, rate_name).overall, int(denominators.sum())
            if math.isnan(overall):
                continue
            pooled = (overall * total + 0.5) / (total + 1)
            gap = detectable_gap(pooled, int(denominators[first]), int(denominators[second]), alpha=alpha)
            gaps.append((gap, rate_name, labels[first], labels[second], int(denominators[first]), int(denominators[second])))
        if not gaps:
            return {}
        gap, rate_name, a, b, n_a, n_b = max(gaps)
        return {
            "detectable_gap": None if math.isinf(gap) else gap,
            "detectable_gap_basis": {
                "rate": rate_name, "groups": [a, b], "n": [n_a, n_b], "power": 0.8, "alpha": alpha,
            },
        }


def one_vs_rest(table: np.ndarray, index: int) -> np.ndarray:
    """The 2×2 "class ``index`` versus the rest" tables of ``(..., K, K)`` confusion tables
    (rows: true class, columns: predicted class)."""
    tp = table[..., index, index]
    fn = table[..., index, :].sum(axis=-1) - tp
    fp = table[..., :, index].sum(axis=-1) - tp
    tn = table.sum(axis=(-1, -2)) - tp - fn - fp
    return np.stack([np.stack([tn, fp], axis=-1), np.stack([fn, tp], axis=-1)], axis=-2)


def _min_group_size(
    scope: str, labels: tuple[str, ...], sizes: np.ndarray, small: np.ndarray, details: dict[str, object]
) -> MetricResult:
    """The smallest group's size, with every group's size."""
    return MetricResult(
        key="fairness.min_group_size",
        scope=scope,
        value=float(sizes.min()),
        by_group=tuple(GroupValue(label, float(sizes[i]), int(sizes[i]), bool(small[i])) for i, label in enumerate(labels)),
        n=int(sizes.sum()),
        higher_is_better=True,
        details={**details, "smallest_group": labels[int(sizes.argmin())]},
    )


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
