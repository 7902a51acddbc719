"""The explainability audit's metrics and artifacts for a text classifier: token explanations
of a stratified sample of documents (:func:`~guardrail.explain.text_engine.explain_text`) as
metrics and artifacts. :func:`text_results` builds them all; the tabular counterpart is
:mod:`~guardrail.explain.results`, and the parts both share are in
:mod:`~guardrail.explain.metrics`.

Metric keys (``<m>`` is ``layer_ig`` or ``lime``; words are lowercased):

* ``explain.<m>.importance`` [scope: word] — mean |attribution| of the explained class's
  probability over every occurrence of the word, for the ``TOP_TOKENS`` strongest words seen
  in at least ``MIN_DOCUMENTS`` documents; ``n`` is the number of occurrences; a percentile
  bootstrap interval over explained documents (``bootstrap`` resamples at ``confidence``,
  seeded with the audit's seed); ``by_group`` per ``column=group``: the same mean over the
  word's occurrences in that group's documents, ``n`` the group's documents that contain the
  word (``small`` below ``min_group_size``);
* ``explain.<m>.deletion_auc`` (lower is better) and ``explain.<m>.insertion_auc`` (higher
  is better) — the explained class's probability as a document's words are replaced by the
  pad token (the IG baseline) in order of decreasing attribution, or put back into the
  all-pad baseline in that order (:mod:`guardrail.explain.text_quality`), area under the
  curve over the word fraction, mean over documents with a bootstrap interval; the details
  give the same numbers for a random word order;
* ``explain.<m>.faithfulness`` — insertion − deletion AUC per document, mean, bootstrap
  interval, ``by_group`` per ``column=group``; details: the random-order mean and the share
  of documents where the method beats the random order;
* ``explain.<m>.faithfulness_gap`` [scope: sensitive column] — largest difference of the
  group means of ``faithfulness`` among groups of at least ``min_group_size`` explained
  documents (undefined, with a ``small_group`` reason, when fewer than two groups qualify);
* ``explain.<m>.stability`` — mean top-k Jaccard of the per-document word attributions
  across ``stability_seeds`` LIME runs (seeds ``seed + 1000·(i+1)``) on the first
  ``stability_instances`` explained documents; 1.0 for ``layer_ig`` (deterministic);
  undefined when the time budget is spent;
* ``explain.layer_ig.max_relative_delta`` (lower is better) and
  ``explain.layer_ig.converged`` (share of documents within the tolerance) — completeness:
  ``|Σ attributions − (f(x) − f(baseline))| / max(|f(x) − f(baseline)|, 0.01)``;
* ``explain.agreement.top_k_overlap`` and ``explain.agreement.spearman`` [scope:
  ``layer_ig~lime``] — per-document top-k overlap and rank correlation of |attribution|,
  averaged over documents;
* ``explain.proxy.sensitive_in_top_k`` / ``explain.proxy.proxy_in_top_k`` (1 when a word
  equal to a group of a sensitive column (lowercased; labels of at least three characters that
  are not numbers, so codes such as ``F`` never match) / such a word or a proxy word is among the top-k of
  any method's global ranking; the details name them) and ``explain.proxy.sensitive_share``
  / ``explain.proxy.proxy_share`` (largest share of the ranking's total importance they
  hold, over methods). A proxy word of a column has a normalised mutual information of at
  least ``proxy_threshold`` between its presence in a document and the column's group,
  over every document of the audit data (the words the model sees, in at least
  ``MIN_DOCUMENTS`` documents);
* ``explain.coverage`` — explained documents / requested.

Artifacts: ``ranking`` (words by importance, per method), ``heatmap`` (token weights of
each explained document for the report; token text raw, the report escapes it),
``documents`` (per document: prediction, probability, outcome, IG steps and delta),
``proxy`` (proxy words per column and the strongest associations), ``seeds`` and, when the
budget stopped the run, ``note``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.errors import AuditError
from guardrail.core.types import GroupValue, MetricResult
from guardrail.explain.methods import DELTA_FLOOR
from guardrail.explain.metrics import (
    BUDGET_SPENT,
    coverage_metric,
    faithfulness_by_group,
    mean_ci,
    proxy_findings,
    stability_seeds,
)
from guardrail.explain.text_model import TextClassifier, document_words
from guardrail.explain.text_quality import RANDOM_ORDER, faithfulness_curves, lime_reruns
from guardrail.explain.text_summary import global_token_importance, occurrence_matrices, token_agreement, token_heatmap_rows

if TYPE_CHECKING:
    from guardrail.explain.budget import Budget
    from guardrail.explain.metrics import Settings
    from guardrail.explain.text_engine import TextExplanations
    from guardrail.explain.text_quality import FaithfulnessCurves

TOP_TOKENS = 20
"""Tokens reported as ``explain.<m>.importance`` metrics (the full ranking is an artifact)."""

MIN_DOCUMENTS = 2
"""A token counts in the global ranking only if it occurs in this many explained documents
(a word seen once says more about that review than about the model); the proxy check
scores only words seen in this many documents of the audit data."""

TEXT_METHODS = {"integrated_gradients": "layer_ig", "lime": "lime"}
"""Audit method names and the text explainer's: Integrated Gradients runs on the embeddings."""

PROXY_LISTED = 30
"""Most word–column associations kept in the ``proxy`` artifact (the strongest first)."""


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


@dataclass(frozen=True)
class AuditDocuments:
    """The audit data as the text results read it.

    ``texts`` and ``groups`` (a group label per row for each sensitive column) cover every
    row of the audit data; ``rows`` are the explained rows, in the order explained
    (``DocumentExplanation.index`` indexes it).
    """

    texts: Sequence[str]
    rows: np.ndarray
    y_true: np.ndarray
    class_labels: Sequence[Any]
    groups: Mapping[str, np.ndarray]

    def explained_groups(self, explanations: TextExplanations) -> dict[str, np.ndarray]:
        """The group label of each explained document, per sensitive column."""
        at = np.asarray([int(self.rows[d.index]) for d in explanations.documents], dtype=np.int64)
        return {c: np.asarray(g)[at] for c, g in self.groups.items()}


def text_results(
    explanations: TextExplanations,
    model: TextClassifier,
    data: AuditDocuments,
    p: Settings,
    seed: int,
    budget: Budget,
    *,
    batch_size: int = 64,
) -> tuple[list[MetricResult], dict[str, Any]]:
    """Metrics and artifacts of a :class:`~guardrail.explain.text_engine.TextExplanations` of the
    documents ``data.rows``. ``model`` is the explained classifier: the faithfulness curves,
    LIME's reruns for stability (``batch_size`` model inputs per forward pass) and the words
    of every document for the proxy check use it; the reruns stop when ``budget`` is spent."""
    metrics: list[MetricResult] = []
    artifacts: dict[str, Any] = {"ranking": {}}
    groups = data.explained_groups(explanations)
    rankings: dict[str, list[dict[str, Any]]] = {}
    for method in explanations.methods:
        ranked = global_token_importance(explanations, method=method, top=None, min_documents=MIN_DOCUMENTS)
        rankings[method] = ranked
        artifacts["ranking"][method] = [row["token"] for row in ranked]
        metrics += importance_metrics(explanations, method, ranked[:TOP_TOKENS], groups, p, seed)
    curves = faithfulness_curves(model, explanations, batch_size=batch_size, seed=seed)
    for method in explanations.methods:
        metrics += faithfulness_metrics(curves, method, groups, p, seed)
        metrics.append(stability_metric(model, explanations, method, p, seed, budget, batch_size))
    if "layer_ig" in explanations.methods and explanations.documents:
        metrics += completeness_metrics(explanations)
    if {"layer_ig", "lime"} <= set(explanations.methods):
        metrics += agreement_metrics(explanations, p)
    proxy, artifacts["proxy"] = proxy_metrics(model, data, rankings, p)
    metrics += proxy
    metrics.append(coverage_metric(explanations.n_explained, explanations.n_requested, explanations.stopped_early))
    artifacts["heatmap"] = _heatmap(explanations, data)
    artifacts["documents"] = _documents(explanations, data)
    artifacts["seeds"] = {
        "seed": explanations.seed,
        "lime_samples": explanations.lime_samples,
        "stability": stability_seeds(seed, p),
        "random_order": f"numpy.random.default_rng({seed}): one permutation per document with words, in order",
        "bootstrap": seed,
    }
    if explanations.stopped_early:
        artifacts["note"] = (
            f"the time budget stopped the audit: {explanations.n_explained} of {explanations.n_requested} documents explained"
        )
    return metrics, artifacts


def completeness_metrics(explanations: TextExplanations) -> list[MetricResult]:
    """``explain.layer_ig.max_relative_delta`` (the largest ``|delta| / max(|f(x) − f(baseline)|,
    DELTA_FLOOR)`` over documents) and ``explain.layer_ig.converged`` (the share within the tolerance)."""
    documents = explanations.documents
    gaps = [
        abs(doc.ig_delta) / max(abs(doc.ig_output_difference or 0.0), DELTA_FLOOR)
        for doc in documents
        if doc.ig_delta is not None
    ]
    converged = [bool(doc.ig_converged) for doc in documents if doc.ig_converged is not None]
    details = {"tolerance": explanations.ig_tolerance, "max_steps": explanations.max_n_steps}
    return [
        MetricResult("explain.layer_ig.max_relative_delta", max(gaps) if gaps else None, n=len(gaps),
                     higher_is_better=False, details=details, reason=None if gaps else "no document explained"),
        MetricResult("explain.layer_ig.converged", float(np.mean(converged)) if converged else None, n=len(converged),
                     higher_is_better=True, details=details, reason=None if converged else "no document explained"),
    ]


def agreement_metrics(explanations: TextExplanations, p: Settings) -> list[MetricResult]:
    """``explain.agreement.top_k_overlap`` and ``.spearman`` [``layer_ig~lime``]: the per-document
    agreement of :func:`~guardrail.explain.text_summary.token_agreement`, averaged over documents."""
    agreement = token_agreement(explanations, k=p.top_k)
    n = len(agreement["per_document"])
    return [
        MetricResult(f"explain.agreement.{key}", value, scope="layer_ig~lime", n=n,
                     details={"top_k": p.top_k, "aggregation": "mean over documents"},
                     reason=None if value is not None else "no document with both explanations")
        for key, value in (("top_k_overlap", agreement["mean_overlap"]), ("spearman", agreement["mean_rank_correlation"]))
    ]


def importance_metrics(
    explanations: TextExplanations, method: str, ranked: Sequence[Mapping[str, Any]], groups: Mapping[str, np.ndarray], p: Settings, seed: int
) -> list[MetricResult]:
    """``explain.<method>.importance[word]`` for the ``ranked`` rows of
    :func:`~guardrail.explain.text_summary.global_token_importance`: a bootstrap interval over
    documents and the value per ``column=group``."""
    from guardrail.explain.importance import bootstrap_means
    from guardrail.fairness.bootstrap import BootstrapSpec, interval

    words = [str(row["token"]) for row in ranked]
    sums, counts = occurrence_matrices(explanations, method, words)
    spec = BootstrapSpec(resamples=p.bootstrap, level=p.confidence, seed=seed)
    boot = None
    if p.bootstrap and len(sums):
        # one multinomial draw of documents per resample serves both sums and counts
        means = bootstrap_means(np.hstack([sums, counts]), p.bootstrap, np.random.default_rng(seed))
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = means[:, : len(words)] / means[:, len(words) :]  # NaN: the word missed the resample
    out = []
    for j, row in enumerate(ranked):
        by_group = []
        for column, labels in groups.items():
            for group in sorted(set(labels.tolist())):
                rows = labels == group
                occurrences = float(counts[rows, j].sum())
                containing = int((counts[rows, j] > 0).sum())
                by_group.append(
                    GroupValue(
                        f"{column}={group}",
                        float(sums[rows, j].sum() / occurrences) if occurrences else None,
                        containing,
                        small=containing < p.min_group_size,
                        reason=None if occurrences else "the word is in none of this group's explained documents",
                    )
                )
        out.append(
            MetricResult(
                f"explain.{method}.importance",
                float(row["mean_abs_attribution"]),
                scope=str(row["token"]),
                ci=interval(boot[:, j], spec, table=False) if boot is not None else None,
                by_group=tuple(by_group),
                n=int(row["occurrences"]),
                details={"documents": int(row["documents"]), "mean_attribution": float(row["mean_attribution"])},
            )
        )
    return out


def faithfulness_metrics(
    curves: FaithfulnessCurves, method: str, groups: Mapping[str, np.ndarray], p: Settings, seed: int
) -> list[MetricResult]:
    """Deletion and insertion AUCs, faithfulness and its gap between groups, with a random word order for reference."""
    keys = [f"explain.{method}.{k}" for k in ("deletion_auc", "insertion_auc", "faithfulness")]
    better = (False, True, True)
    if not curves.documents:
        reason = "no explained document has words to remove"
        out = [MetricResult(k, None, reason=reason, higher_is_better=b) for k, b in zip(keys, better, strict=True)]
        return out + [
            MetricResult(f"explain.{method}.faithfulness_gap", None, scope=c, reason=reason, higher_is_better=False)
            for c in groups
        ]
    deletion, insertion = curves.deletion_auc(method), curves.insertion_auc(method)
    score = insertion - deletion
    random_deletion, random_insertion = curves.deletion_auc(RANDOM_ORDER), curves.insertion_auc(RANDOM_ORDER)
    random_score = random_insertion - random_deletion
    n = len(score)
    common = {"steps": curves.steps, "baseline": "pad token for every piece of a removed word; special tokens kept",
              "documents_skipped": curves.skipped}
    at = np.asarray(curves.documents, dtype=np.int64)
    by_group, gaps = faithfulness_by_group(method, score, {c: np.asarray(g)[at] for c, g in groups.items()}, p, unit="documents")
    return [
        MetricResult(keys[0], float(deletion.mean()), ci=mean_ci(deletion, p, seed), n=n, higher_is_better=False,
                     details={**common, "random_order": float(random_deletion.mean())}),
        MetricResult(keys[1], float(insertion.mean()), ci=mean_ci(insertion, p, seed), n=n, higher_is_better=True,
                     details={**common, "random_order": float(random_insertion.mean())}),
        MetricResult(keys[2], float(score.mean()), ci=mean_ci(score, p, seed), by_group=by_group, n=n,
                     higher_is_better=True,
                     details={**common, "random_order": float(random_score.mean()),
                              "beats_random_order": float((score > random_score).mean())}),
        *gaps,
    ]


def stability_metric(
    model: TextClassifier, explanations: TextExplanations, method: str, p: Settings, seed: int, budget: Budget, batch_size: int = 64
) -> MetricResult:
    """``explain.<method>.stability``: LIME rerun under ``stability_seeds`` seeds; 1.0 for Layer IG."""
    from guardrail.explain.quality import stability

    key = f"explain.{method}.stability"
    if method != "lime":
        return MetricResult(key, 1.0, n=explanations.n_explained, higher_is_better=True, details={"deterministic": True})
    if budget.expired():
        return MetricResult(key, None, reason=BUDGET_SPENT, higher_is_better=True)
    seeds = stability_seeds(seed, p)
    reruns = lime_reruns(model, explanations, seeds, instances=p.stability_instances, batch_size=batch_size,
                         expired=budget.expired)
    details = {"seeds": seeds, "instances": reruns.documents, "top_k": p.top_k, "deterministic": False,
               "stopped_by_budget": reruns.stopped}
    if not reruns.documents:
        return MetricResult(key, None, reason=BUDGET_SPENT if reruns.stopped else "no document explained",
                            higher_is_better=True, details=details)
    return MetricResult(key, stability(reruns.runs, p.top_k), n=reruns.documents, higher_is_better=True, details=details)


def proxy_metrics(
    model: TextClassifier, data: AuditDocuments, rankings: Mapping[str, Sequence[Mapping[str, Any]]], p: Settings
) -> tuple[list[MetricResult], dict[str, Any]]:
    """The proxy check over words: words naming a group of a sensitive column, and words whose
    presence in a document is associated with a group (NMI ≥ ``proxy_threshold``)."""
    from guardrail.explain.proxy import proxies, word_associations, word_presence

    groups = {c: np.asarray(g).astype(str) for c, g in data.groups.items()}
    vocabulary: list[str] = []
    found = []
    if groups:
        vocabulary, presence = word_presence(document_words(model, data.texts), MIN_DOCUMENTS)
        found = word_associations(vocabulary, presence, groups)
    proxy_of = proxies(found, p.proxy_threshold)
    group_words: dict[str, list[str]] = {}
    for column, labels in groups.items():
        for group in sorted(set(labels.tolist())):
            if _names_a_group(group):
                group_words.setdefault(group.lower(), []).append(column)
    ranked_words = {str(row["token"]) for ranked in rankings.values() for row in ranked}
    direct = sorted(w for w in ranked_words if w in group_words)
    flagged = [*direct, *sorted(w for w in ranked_words if w in proxy_of and w not in group_words)]
    metrics = proxy_findings(
        {method: [(str(r["token"]), float(r["mean_abs_attribution"])) for r in ranked] for method, ranked in rankings.items()},
        direct,
        flagged,
        proxy_of,
        p,
        sensitive_details={w: group_words[w] for w in direct},
        extra_details={"unit": "word"},
    )
    strongest = sorted((a for a in found if a.nmi >= p.proxy_threshold / 2), key=lambda a: (-a.nmi, a.feature, a.sensitive))
    artifact = {
        "threshold": p.proxy_threshold,
        "unit": "word",
        "documents": len(data.texts),
        "min_documents": MIN_DOCUMENTS,
        "words": len(vocabulary),
        "proxies": dict(sorted(proxy_of.items())),
        "associations": [
            {"feature": a.feature, "sensitive": a.sensitive, "nmi": a.nmi, "mi": a.mi} for a in strongest[:PROXY_LISTED]
        ],
        "associations_not_listed": max(len(strongest) - PROXY_LISTED, 0),
        "strongest": {
            column: {"feature": best.feature, "nmi": best.nmi}
            for column in groups
            if (best := max((a for a in found if a.sensitive == column), key=lambda a: (a.nmi, a.feature), default=None))
        },
    }
    return metrics, artifact


GROUP_WORD_LENGTH = 3
"""Shortest group label that counts as a word naming the group: a code such as ``F``, ``M``
or ``1`` would otherwise match unrelated words (the "m" of "I'm")."""


def _names_a_group(label: str) -> bool:
    """Whether a group label is a word a text could use to name the group."""
    return len(label) >= GROUP_WORD_LENGTH and not label.replace(".", "", 1).isdigit() and label != "(missing)"


def _heatmap(explanations: TextExplanations, data: AuditDocuments) -> dict[str, Any]:
    """The ``heatmap`` artifact: the first method's token weights of each explained document, with a caption."""
    rows, y_true, class_labels = data.rows, data.y_true, data.class_labels
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


def _documents(explanations: TextExplanations, data: AuditDocuments) -> list[dict[str, Any]]:
    """The ``documents`` artifact: each explained document's row, prediction, truth and IG steps."""
    rows, y_true, class_labels = data.rows, data.y_true, data.class_labels
    return [
        {
            "row": int(rows[doc.index]),
            "predicted": str(doc.predicted_label),
            "true": str(class_labels[int(y_true[rows[doc.index]])]),
            "probability": doc.probability,
            "ig_n_steps": doc.ig_n_steps,
            "ig_delta": doc.ig_delta,
            "truncated": doc.truncated,
        }
        for doc in explanations.documents
    ]


__all__ = ["TEXT_METHODS", "AuditDocuments", "text_methods", "text_results"]
