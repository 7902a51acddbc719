"""Explainability audit of a tabular binary classifier: attributions, their quality, and proxies.

Methods (``params.methods``; default ``[integrated_gradients, lime]`` for a torch MLP,
``[feature_ablation, lime]`` otherwise): ``integrated_gradients`` and ``gradient_shap``
(Captum, torch MLPs from ``guardrail train`` only), ``feature_ablation`` and
``shapley_sampling`` (through ``predict_proba``, any model), ``lime`` (batched, see
:mod:`guardrail.explain.lime_batch`: ``params.lime_pool_rows`` rows share one draw of
samples; 1 reproduces a plain lime loop, and intervals of LIME's means resample whole
pools). Every method attributes the probability of the positive class to the source
features (one-hot columns summed back to their feature).

The rows explained are ``params.samples`` rows drawn round-robin over outcome (TP, FP, FN,
TN) × sensitive groups. Work stops between chunks once ``params.max_seconds`` is spent; the
metrics then describe the rows explained so far, ``explain.coverage`` says how many, and the
``note`` artifact says the budget stopped it.

Metric keys (``<m>`` is a method):

* ``explain.<m>.importance`` [scope: feature] — mean ``|attribution|``, bootstrap interval
  over instances, ``by_group`` per ``column=group``;
* ``explain.<m>.deletion_auc`` (lower is better) and ``explain.<m>.insertion_auc`` (higher
  is better) — faithfulness curves, features removed/inserted in attribution order;
* ``explain.<m>.faithfulness`` — insertion − deletion AUC per instance, mean, by group;
* ``explain.<m>.faithfulness_gap`` [scope: sensitive column] — largest difference of the
  group means of ``faithfulness`` among groups of at least ``min_group_size`` explained rows;
* ``explain.<m>.stability`` — mean top-k Jaccard across ``stability_seeds`` seeds (1.0 for
  deterministic methods);
* ``explain.<m>.infidelity`` and ``explain.<m>.sensitivity`` (``integrated_gradients`` and
  ``gradient_shap`` only; lower is better), on the first ``quality_instances`` explained rows,
  in the encoded (standardised, one-hot) input space:

  - ``infidelity`` — Captum's ``infidelity``, normalised: how badly the attributions predict
    the change of the model's output under Gaussian input noise (σ = 0.1, 10 draws per row);
    it scores the reported attributions and never re-explains;
  - ``sensitivity`` — Captum's ``sensitivity_max``: the largest relative change
    ``‖φ(x') − φ(x)‖ / ‖φ(x)‖`` of the explanation over 5 inputs ``x'`` drawn uniformly within
    ``radius`` = 0.02 (L∞, ``details.radius``) of ``x``, mean over rows. GradientShap is
    re-explained with one fixed draw of baselines, path points and noise
    (``details.explanation``), so the value reflects the input change, not its sampling
    noise. The sampled methods (``shapley_sampling``, ``lime``) get neither metric: their
    stability across seeds is ``explain.<m>.stability``;
* ``explain.integrated_gradients.max_relative_delta`` (lower is better) and
  ``explain.integrated_gradients.converged`` (share within ``ig_tolerance``) — completeness:
  ``|Σ attributions − (f(x) − f(baseline))| / max(|f(x) − f(baseline)|, 0.01)``;
* ``explain.agreement.spearman`` and ``explain.agreement.top_k_overlap`` [scope: ``a~b``]
  — rank correlation of two methods' global importance, mean per-instance top-k Jaccard;
* ``explain.proxy.sensitive_in_top_k`` / ``explain.proxy.proxy_in_top_k`` (1 when a
  sensitive feature / a sensitive feature or a proxy is among the top-k of any method; the
  details name them), ``explain.proxy.sensitive_share`` / ``explain.proxy.proxy_share``
  (largest share of total importance they hold, over methods);
* ``explain.coverage`` — explained rows / requested rows.

Artifacts: ``ranking`` (features by importance, per method), ``local`` (per-instance top-k
attributions of a stratified sample, false positives and negatives included), ``proxy``
(associations with sensitive columns), ``integrated_gradients`` (steps used), ``budget``,
``seeds`` and, when the budget stopped the run, ``note``.

Text models (a model with a tokenizer) take another path, :meth:`ExplainabilityAuditor._run_text`:
Layer Integrated Gradients (``integrated_gradients``, on the embeddings) and LIME text explain
``params.samples`` documents per word, and the keys are those of
:mod:`guardrail.explain.text_results`: ``explain.<m>.importance`` [scope: word] (bootstrap
interval over documents, by group), ``deletion_auc``, ``insertion_auc``, ``faithfulness``
(by group) and ``faithfulness_gap`` [scope: sensitive column] (words removed into / inserted
from the pad baseline in attribution order), ``stability`` (LIME rerun under
``stability_seeds`` seeds; 1.0 for ``layer_ig``), ``explain.layer_ig.max_relative_delta`` and
``converged``, ``explain.agreement.*[layer_ig~lime]``, the ``explain.proxy.*`` keys over words
(a proxy word's presence in a document has NMI ≥ ``proxy_threshold`` with a group, over every
document of the audit data) and ``explain.coverage``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, get_args

import numpy as np
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
from guardrail.core.errors import AuditError
from guardrail.explain.methods import GRADIENT_METHODS, Method

if TYPE_CHECKING:
    from guardrail.auditors.catalog import MetricCatalog
    from guardrail.core.types import AuditResult
    from guardrail.spec.models import AuditSpec


class ExplainabilityParams(AuditorParams):
    methods: tuple[Method, ...] | None = Field(
        default=None,
        min_length=1,
        description="Attribution methods; default: integrated_gradients and lime for a torch MLP, feature_ablation and lime otherwise.",
    )
    samples: int = Field(default=200, ge=1, le=1_000_000, description="Instances to explain (stratified by outcome and group).")
    max_seconds: float = Field(default=600.0, gt=0, description="Time budget; the audit stops between chunks when spent.")
    batch_size: int = Field(default=16384, ge=1, description="Most rows per model call (LIME samples are stacked up to this; 16,384 was fastest for the demo pipeline on 2 cores, 2x faster than 65,536).")
    background: int = Field(default=1000, ge=10, description="Rows for LIME's statistics and GradientShap's baselines.")
    lime_samples: int = Field(default=1000, ge=10, le=100_000, description="LIME neighbourhood size (num_samples).")
    lime_pool_rows: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Rows that share one draw of LIME samples (each row's explanation is still exactly lime's for "
        "that draw; the model scores S samples per pool instead of per row), lowered to keep at least 16 pools. "
        "1 reproduces a plain lime loop; LIME's intervals resample whole pools.",
    )
    ig_steps: int = Field(default=50, ge=2, description="Initial integrated-gradients steps.")
    ig_max_steps: int = Field(default=800, ge=2, description="Cap on the steps when the tolerance is not met.")
    ig_tolerance: float = Field(
        default=0.05, gt=0, description="Largest |delta| relative to |f(x) − f(baseline)| (floor 0.01) for IG to count as converged."
    )
    gradient_shap_samples: int = Field(default=20, ge=1)
    shapley_permutations: int = Field(default=20, ge=1)
    top_k: int = Field(default=5, ge=1, description="Size of the top sets for stability, agreement and the proxy check.")
    stability_seeds: int = Field(default=3, ge=3, le=20)
    stability_instances: int = Field(default=16, ge=1)
    quality_instances: int = Field(default=16, ge=1, description="Instances for Captum's infidelity and sensitivity.")
    bootstrap: int = Field(default=200, ge=0, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_group_size: int = Field(default=30, ge=1)
    proxy_threshold: float = Field(
        default=0.1, gt=0, le=1, description="Normalised mutual information at which a feature is a proxy of a sensitive column."
    )
    proxy_bins: int = Field(default=10, ge=2, le=100)
    local_per_stratum: int = Field(default=2, ge=0, le=100)
    sensitive: tuple[str, ...] | None = None

    _no_repeats = field_validator("methods", "sensitive")(no_repeats)

    @model_validator(mode="after")
    def _steps(self) -> ExplainabilityParams:
        if self.ig_max_steps < self.ig_steps:
            raise ValueError(f"ig_max_steps ({self.ig_max_steps}) must be at least ig_steps ({self.ig_steps})")
        return self


PER_METHOD = ("importance", "deletion_auc", "insertion_auc", "faithfulness", "faithfulness_gap", "stability")
GRADIENT_QUALITY = ("infidelity", "sensitivity")
COMPLETENESS = ("max_relative_delta", "converged")
PROXY = ("sensitive_in_top_k", "proxy_in_top_k", "sensitive_share", "proxy_share")
ALL_METHODS = (*get_args(Method), "layer_ig")


class ExplainabilityAuditor:
    name: ClassVar[str] = "explainability"
    Params: ClassVar[type[AuditorParams]] = ExplainabilityParams
    METRIC_KEYS: ClassVar[tuple[str, ...]] = (
        *(f"explain.{m}.{k}" for m in ALL_METHODS for k in PER_METHOD),
        *(f"explain.{m}.{k}" for m in GRADIENT_METHODS for k in GRADIENT_QUALITY),
        *(f"explain.{m}.{k}" for m in ("integrated_gradients", "layer_ig") for k in COMPLETENESS),
        "explain.agreement.spearman",
        "explain.agreement.top_k_overlap",
        *(f"explain.proxy.{k}" for k in PROXY),
        "explain.coverage",
    )

    def __init__(self, params: AuditorParams | None = None) -> None:
        self.params = coerce_params(ExplainabilityParams, params)

    def check_spec(self, data_sensitive: tuple[str, ...]) -> list[ParamProblem]:
        """``params.sensitive`` entries the spec does not declare."""
        return undeclared_sensitive(self.params.sensitive, data_sensitive)

    def metric_catalog(self, spec: AuditSpec) -> MetricCatalog:
        """The keys this audit may produce for ``spec`` (which methods run depends on the model:
        a torch MLP, another tabular model or a text model, so every possibility is listed)."""
        from guardrail.auditors.catalog import ANY_SCOPE, UNSCOPED, MetricCatalog

        chosen: tuple[str, ...] = self.params.methods or ("integrated_gradients", "feature_ablation", "lime")
        methods = [*chosen, *(["layer_ig"] if "integrated_gradients" in chosen else [])]
        sensitive = self.params.sensitive or spec.data.sensitive
        unscoped = frozenset({UNSCOPED})
        keys: list[tuple[str, frozenset[str]]] = []
        for method in methods:
            keys += [(f"explain.{method}.importance", frozenset({ANY_SCOPE}))]
            keys += [(f"explain.{method}.faithfulness_gap", frozenset(sensitive))]
            keys += [(f"explain.{method}.{k}", unscoped) for k in ("deletion_auc", "insertion_auc", "faithfulness", "stability")]
            if method in GRADIENT_METHODS:
                keys += [(f"explain.{method}.{k}", unscoped) for k in GRADIENT_QUALITY]
            if method in ("integrated_gradients", "layer_ig"):
                keys += [(f"explain.{method}.{k}", unscoped) for k in COMPLETENESS]
        if len(chosen) > 1:
            keys += [(f"explain.agreement.{k}", frozenset({"*~*"})) for k in ("spearman", "top_k_overlap")]
        keys += [(f"explain.proxy.{k}", unscoped) for k in PROXY]
        keys += [("explain.coverage", unscoped)]
        return MetricCatalog.of(keys, possible=self.METRIC_KEYS)

    def run(self, ctx: AuditContext) -> AuditResult:
        started = time.perf_counter()
        if getattr(ctx.model, "tokenizer", None) is not None:
            return self._run_text(ctx, started)
        return self._run_tabular(ctx, started)

    def _run_tabular(self, ctx: AuditContext, started: float) -> AuditResult:
        """Attributions of a tabular binary classifier (see :mod:`guardrail.explain.results`)."""
        from guardrail.explain.budget import Budget, Progress
        from guardrail.explain.engine import ExplainConfig, Explainer
        from guardrail.explain.lime_batch import pool_rows_for
        from guardrail.explain.results import tabular_results
        from guardrail.explain.sampling import outcome_labels, stratified_order, stratum_labels
        from guardrail.explain.tabular import TabularView, gradient_model, proba_function

        p = self.params
        if ctx.task != "binary":
            raise AuditError(f"the explainability audit supports binary targets; this spec's task is {ctx.task}")
        if ctx.model is None or not ctx.features:
            raise AuditError("the explainability audit needs the model and its feature columns")
        budget = Budget(p.max_seconds)
        sensitive = audited_sensitive(p.sensitive, ctx)
        view = TabularView.from_frame(ctx.data, tuple(ctx.features))
        proba = proba_function(ctx.model, view, ctx.positive_label, p.batch_size)
        is_torch = getattr(ctx.model, "kind", "") == "torch"
        methods: tuple[Method, ...] = p.methods or (
            ("integrated_gradients", "lime") if is_torch else ("feature_ablation", "lime")
        )
        wants_gradients = any(m in GRADIENT_METHODS for m in methods)
        gradient = gradient_model(ctx.model, view, ctx.positive_label) if wants_gradients else None

        rng = np.random.default_rng(ctx.seed)
        groups = sensitive_groups(ctx, sensitive)
        outcomes = outcome_labels(ctx.y_true, ctx.y_pred)
        order = stratified_order(stratum_labels(outcomes, *(groups[c] for c in sensitive)), p.samples, rng)
        background = np.sort(rng.choice(len(ctx.data), size=min(p.background, len(ctx.data)), replace=False))
        predicted = np.zeros(len(ctx.data), dtype=bool)
        predicted[order] = proba(view.codes[order]) >= 0.5

        config = ExplainConfig(
            methods=methods,
            seed=ctx.seed,
            batch_size=p.batch_size,
            lime_samples=p.lime_samples,
            lime_pool_rows=pool_rows_for(len(order), p.lime_pool_rows),
            ig_steps=p.ig_steps,
            ig_max_steps=p.ig_max_steps,
            ig_tolerance=p.ig_tolerance,
            gradient_shap_samples=p.gradient_shap_samples,
            shapley_permutations=p.shapley_permutations,
        )
        explainer = Explainer(view, proba, gradient, background, config)
        found = explainer.run(order, predicted, budget, Progress(f"explain {ctx.audit_id}", len(order)))
        metrics, artifacts = tabular_results(explainer, found, groups, sensitive, outcomes, p, ctx.seed, budget)
        return audit_result(ctx, self.name, p, metrics, started, artifacts)

    def _run_text(self, ctx: AuditContext, started: float) -> AuditResult:
        """Token explanations of a text classifier (see :mod:`guardrail.explain.text_results`)."""
        from guardrail.explain.budget import Budget, Progress
        from guardrail.explain.sampling import sample_documents
        from guardrail.explain.text_engine import explain_text
        from guardrail.explain.text_results import AuditDocuments, text_methods, text_results

        p = self.params
        budget = Budget(p.max_seconds - (time.perf_counter() - started))
        methods = text_methods(p.methods)
        column = str(ctx.model.description.get("text_column", ""))
        if column not in ctx.data.columns:
            raise AuditError(f"the model reads text column {column!r}, which the audit data does not have")
        sensitive = audited_sensitive(p.sensitive, ctx)
        groups = sensitive_groups(ctx, sensitive)
        y_true = np.asarray(ctx.y_true).astype(int)
        y_pred = np.asarray(ctx.y_pred).astype(int)
        class_labels = ctx.class_labels or tuple(ctx.model.classes)
        rows = sample_documents(y_true, y_pred, groups, p.samples, ctx.seed)
        every_text = [str(t) for t in ctx.data[column].fillna("")]
        batch_size = min(p.batch_size, 64)
        explanations = explain_text(
            ctx.model,
            [every_text[int(r)] for r in rows],
            methods=methods,
            n_steps=p.ig_steps,
            max_n_steps=p.ig_max_steps,
            ig_tolerance=p.ig_tolerance,
            lime_samples=p.lime_samples,
            batch_size=batch_size,
            seed=ctx.seed,
            max_seconds=p.max_seconds,
            progress=Progress(f"explain {ctx.audit_id}", len(rows), unit="documents"),
        )
        data = AuditDocuments(texts=every_text, rows=rows, y_true=y_true, class_labels=class_labels, groups=groups)
        metrics, artifacts = text_results(explanations, ctx.model, data, p, ctx.seed, budget, batch_size=batch_size)
        return audit_result(ctx, self.name, p, metrics, started, artifacts)


def sensitive_groups(ctx: AuditContext, sensitive: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each explained row's group label per sensitive column (``(missing)`` for a gap), after the
    same bounds on a column as the runner's (:func:`~guardrail.fairness.groups.check_sensitive`):
    a direct call meets them too."""
    from guardrail.fairness.groups import check_sensitive, group_label

    for column in sensitive:
        check_sensitive(ctx.data[column], column, missing=ctx.missing_sensitive, where=ctx.where or ctx.audit_id)
    return {c: np.asarray([group_label(v) if v == v else "(missing)" for v in ctx.data[c]]) for c in sensitive}
