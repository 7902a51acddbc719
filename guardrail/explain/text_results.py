"""The explainability audit of a text classifier: token explanations of a stratified sample
of documents (:func:`guardrail.explain.text.explain_text`) as metrics and artifacts.

Metric keys (``<m>`` is ``layer_ig`` or ``lime``):

* ``explain.<m>.importance`` [scope: token] — mean |attribution| of the explained class's
  probability over every occurrence of the (lowercased) token, for the ``TOP_TOKENS``
  strongest tokens seen in at least ``MIN_DOCUMENTS`` documents; ``n`` is the number of occurrences;
* ``explain.layer_ig.max_relative_delta`` (lower is better) and
  ``explain.layer_ig.converged`` (share of documents within the tolerance) — completeness:
  ``|Σ attributions − (f(x) − f(baseline))| / max(|f(x) − f(baseline)|, 0.01)``;
* ``explain.agreement.top_k_overlap`` and ``explain.agreement.spearman`` [scope:
  ``layer_ig~lime``] — per-document top-k overlap and rank correlation of |attribution|,
  averaged over documents;
* ``explain.coverage`` — explained documents / requested.

Artifacts: ``ranking`` (tokens by importance, per method), ``heatmap`` (token weights of
each explained document for the report; token text raw, the report escapes it),
``documents`` (per document: prediction, probability, outcome, IG steps and delta),
``seeds`` and, when the budget stopped the run, ``note``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from guardrail.core.types import MetricResult
from guardrail.errors import AuditError
from guardrail.explain.sampling import stratified_order

TOP_TOKENS = 20
"""Tokens reported as ``explain.<m>.importance`` metrics (the full ranking is an artifact)."""

MIN_DOCUMENTS = 2
"""A token counts in the global ranking only if it occurs in this many explained documents
(a word seen once says more about that review than about the model)."""

TEXT_METHODS = {"integrated_gradients": "layer_ig", "lime": "lime"}
"""Audit method names and the text explainer's: Integrated Gradients runs on the embeddings."""

DELTA_FLOOR = 0.01
"""Smallest |f(x) − f(baseline)| the relative completeness gap divides by."""


def text_methods(methods: Sequence[str] | None) -> tuple[str, ...]:
    """The text explainer's methods for the audit's ``params.methods`` (default: both)."""
    chosen = tuple(methods or ("integrated_gradients", "lime"))
    unsupported = [m for m in chosen if m not in TEXT_METHODS]
    if unsupported:
        raise AuditError(
            f"method(s) {', '.join(unsupported)} do not apply to text models",
            hint="use integrated_gradients (Layer Integrated Gradients on the embeddings) and/or lime",
        )
    return tuple(TEXT_METHODS[m] for m in chosen)


def sample_documents(
    y_true: np.ndarray, y_pred: np.ndarray, groups: Mapping[str, np.ndarray], size: int, seed: int
) -> np.ndarray:
    """Up to ``size`` documents, round-robin over (right or wrong, predicted class, groups)."""
    strata = np.where(np.asarray(y_true) == np.asarray(y_pred), "right", "wrong").astype(object)
    strata = strata + "|" + np.asarray(y_pred).astype(str).astype(object)
    for values in groups.values():
        strata = strata + "|" + np.asarray(values).astype(str).astype(object)
    return stratified_order(strata.astype(str), size, np.random.default_rng(seed))


def text_results(
    explanations: Any, rows: np.ndarray, y_true: np.ndarray, class_labels: Sequence[Any], top_k: int
) -> tuple[list[MetricResult], dict[str, Any]]:
    """Metrics and artifacts of a :class:`~guardrail.explain.text.TextExplanations` of the
    documents ``rows`` (indices into the audit data, in the order explained)."""
    from guardrail.explain.text import global_token_importance, token_agreement

    metrics: list[MetricResult] = []
    artifacts: dict[str, Any] = {"ranking": {}}
    for method in explanations.methods:
        ranked = global_token_importance(explanations, method=method, top=None, min_documents=MIN_DOCUMENTS)
        artifacts["ranking"][method] = [row["token"] for row in ranked]
        for row in ranked[:TOP_TOKENS]:
            metrics.append(
                MetricResult(
                    f"explain.{method}.importance",
                    float(row["mean_abs_attribution"]),
                    scope=str(row["token"]),
                    n=int(row["occurrences"]),
                    details={"documents": int(row["documents"]), "mean_attribution": float(row["mean_attribution"])},
                )
            )
    documents = explanations.documents
    if "layer_ig" in explanations.methods and documents:
        gaps = [
            abs(doc.ig_delta) / max(abs(doc.ig_output_difference or 0.0), DELTA_FLOOR)
            for doc in documents
            if doc.ig_delta is not None
        ]
        converged = [bool(doc.ig_converged) for doc in documents if doc.ig_converged is not None]
        details = {"tolerance": explanations.ig_tolerance, "max_steps": explanations.max_n_steps}
        metrics.append(
            MetricResult("explain.layer_ig.max_relative_delta", max(gaps) if gaps else None, n=len(gaps),
                         higher_is_better=False, details=details, reason=None if gaps else "no document explained")
        )
        metrics.append(
            MetricResult("explain.layer_ig.converged", float(np.mean(converged)) if converged else None, n=len(converged),
                         higher_is_better=True, details=details, reason=None if converged else "no document explained")
        )
    if {"layer_ig", "lime"} <= set(explanations.methods):
        agreement = token_agreement(explanations, k=top_k)
        n = len(agreement["per_document"])
        for key, value in (("top_k_overlap", agreement["mean_overlap"]), ("spearman", agreement["mean_rank_correlation"])):
            metrics.append(
                MetricResult(f"explain.agreement.{key}", value, scope="layer_ig~lime", n=n,
                             details={"top_k": top_k, "aggregation": "mean over documents"},
                             reason=None if value is not None else "no document with both explanations")
            )
    metrics.append(
        MetricResult(
            "explain.coverage",
            explanations.n_explained / max(explanations.n_requested, 1),
            n=explanations.n_explained,
            higher_is_better=True,
            details={"explained": explanations.n_explained, "requested": explanations.n_requested,
                     "stopped_by_budget": explanations.stopped_early},
        )
    )
    artifacts["heatmap"] = _heatmap(explanations, rows, y_true, class_labels)
    artifacts["documents"] = [
        {
            "row": int(rows[doc.index]),
            "predicted": str(doc.predicted_label),
            "true": str(class_labels[int(y_true[rows[doc.index]])]),
            "probability": doc.probability,
            "ig_n_steps": doc.ig_n_steps,
            "ig_delta": doc.ig_delta,
            "truncated": doc.truncated,
        }
        for doc in documents
    ]
    artifacts["seeds"] = {"seed": explanations.seed, "lime_samples": explanations.lime_samples}
    if explanations.stopped_early:
        artifacts["note"] = (
            f"the time budget stopped the audit: {explanations.n_explained} of {explanations.n_requested} documents explained"
        )
    return metrics, artifacts


def _heatmap(explanations: Any, rows: np.ndarray, y_true: np.ndarray, class_labels: Sequence[Any]) -> dict[str, Any]:
    from guardrail.explain.text import token_heatmap_rows

    method = explanations.methods[0]
    by_document: dict[int, list[dict[str, Any]]] = {}
    for row in token_heatmap_rows(explanations, method=method):
        by_document.setdefault(int(row["document"]), []).append(
            {"gap": row["gap_before"], "token": row["token"], "weight": float(row["weight"])}
        )
    documents = []
    for doc in explanations.documents:
        truth = class_labels[int(y_true[rows[doc.index]])]
        outcome = "right" if str(truth) == str(doc.predicted_label) else f"wrong (true: {truth})"
        documents.append(
            {
                "caption": f"row {int(rows[doc.index])}: explains {doc.target_label} "
                f"(predicted {doc.predicted_label}, p = {doc.probability:.2f}, {outcome})"
                + (", truncated" if doc.truncated else ""),
                "tokens": by_document.get(doc.index, []),
            }
        )
    return {"method": method, "documents": documents}


__all__ = ["TEXT_METHODS", "sample_documents", "text_methods", "text_results"]
