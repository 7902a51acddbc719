"""Plain-data summaries of :class:`~guardrail.explain.text_engine.TextExplanations`, without
running the model again.

* :func:`global_token_importance` — mean ``|attribution|`` per token over documents, and
  :func:`occurrence_matrices`, the same sums per document for a bootstrap over documents;
* :func:`token_agreement` — top-k overlap and rank correlation between two methods, per
  document;
* :func:`token_heatmap_rows` — a weight in ``[-1, 1]`` per token for a heatmap.

Every function returns lists, dicts, finite floats or ``None`` (JSON as it is), except
:func:`occurrence_matrices` (numpy arrays for the bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from guardrail.core.serialize import finite_or_none
from guardrail.explain.quality import top_k
from guardrail.explain.text_engine import TextExplanations


def global_token_importance(
    explanations: TextExplanations,
    *,
    method: str = "layer_ig",
    top: int | None = 20,
    lowercase: bool = True,
    min_documents: int = 1,
) -> list[dict[str, Any]]:
    """Mean |attribution| per token over every occurrence in every explained document.

    Returns rows ``{"token", "mean_abs_attribution", "mean_attribution", "occurrences",
    "documents"}`` sorted by ``mean_abs_attribution`` (then token), the first ``top``
    (all with ``None``), keeping tokens seen in at least ``min_documents`` documents.
    """
    totals: dict[str, list[float]] = {}
    docs: dict[str, set[int]] = {}
    for doc in explanations.documents:
        values = doc.attributions.get(method)
        if values is None:
            continue
        for token, value in zip(doc.tokens, values, strict=True):
            key = token.lower() if lowercase else token
            entry = totals.setdefault(key, [0.0, 0.0, 0.0])
            entry[0] += abs(value)
            entry[1] += value
            entry[2] += 1
            docs.setdefault(key, set()).add(doc.index)
    rows: list[dict[str, Any]] = [
        {
            "token": token,
            "mean_abs_attribution": total[0] / total[2],
            "mean_attribution": total[1] / total[2],
            "occurrences": int(total[2]),
            "documents": len(docs[token]),
        }
        for token, total in totals.items()
        if len(docs[token]) >= min_documents
    ]
    rows.sort(key=lambda r: (-r["mean_abs_attribution"], r["token"]))
    return rows if top is None else rows[:top]


def occurrence_matrices(
    explanations: TextExplanations, method: str, words: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per explained document and word (lowercased): the sum of ``|attribution|`` over the
    word's occurrences, and their count; both ``(documents, len(words))``.

    The ratio of their column sums is :func:`global_token_importance`'s mean
    ``|attribution|``; resampling their rows resamples documents.
    """
    index = {w: j for j, w in enumerate(words)}
    sums = np.zeros((len(explanations.documents), len(words)))
    counts = np.zeros_like(sums)
    for i, doc in enumerate(explanations.documents):
        if method not in doc.attributions:
            continue
        for token, value in zip(doc.tokens, doc.attributions[method], strict=True):
            j = index.get(token.lower())
            if j is not None:
                sums[i, j] += abs(value)
                counts[i, j] += 1
    return sums, counts


def token_agreement(
    explanations: TextExplanations,
    *,
    k: int = 5,
    methods: tuple[str, str] = ("layer_ig", "lime"),
) -> dict[str, Any]:
    """Per-document agreement between two methods: top-``k`` overlap and rank correlation.

    Tokens are ranked by |attribution|. ``overlap`` is ``|top_k(a) ∩ top_k(b)| / k'`` with
    ``k' = min(k, number of tokens)``; ``rank_correlation`` is Spearman's ρ of the absolute
    attributions (``None`` with fewer than 2 tokens or a constant ranking). Returns
    ``{"k", "methods", "per_document": [{"document", "k", "overlap", "rank_correlation"}],
    "mean_overlap", "mean_rank_correlation"}`` (means over documents that have a value).
    """
    first, second = methods
    rows: list[dict[str, Any]] = []
    for doc in explanations.documents:
        if first not in doc.attributions or second not in doc.attributions or not doc.tokens:
            continue
        a = np.abs(np.asarray(doc.attributions[first], dtype=np.float64))
        b = np.abs(np.asarray(doc.attributions[second], dtype=np.float64))
        kk = min(k, len(a))
        top_a = set(top_k(a[None, :], kk)[0].tolist())
        top_b = set(top_k(b[None, :], kk)[0].tolist())
        rows.append(
            {
                "document": doc.index,
                "k": kk,
                "overlap": len(top_a & top_b) / kk,
                "rank_correlation": _spearman(a, b),
            }
        )
    overlaps = [float(r["overlap"]) for r in rows]
    rhos = [float(r["rank_correlation"]) for r in rows if r["rank_correlation"] is not None]
    return {
        "k": k,
        "methods": list(methods),
        "per_document": rows,
        "mean_overlap": float(np.mean(overlaps)) if overlaps else None,
        "mean_rank_correlation": float(np.mean(rhos)) if rhos else None,
    }


def token_heatmap_rows(
    explanations: TextExplanations, *, method: str | None = None
) -> list[dict[str, Any]]:
    """One row per (document, method, token) for a heatmap: raw token text and a weight in [-1, 1].

    ``weight`` is the attribution divided by the largest |attribution| of that document and
    method (all 0 when every attribution is 0). ``gap_before`` is the raw text between the
    previous token and this one, so concatenating ``gap_before + token`` over a document's
    rows gives back its ``text``. Token text is returned exactly as in the input: escaping
    is the renderer's job.
    """
    rows: list[dict[str, Any]] = []
    for doc in explanations.documents:
        for name in explanations.methods if method is None else (method,):
            values = doc.attributions.get(name)
            if values is None:
                continue
            scale = max((abs(v) for v in values), default=0.0)
            previous_end = 0
            for position, (token, (begin, end), value) in enumerate(
                zip(doc.tokens, doc.spans, values, strict=True)
            ):
                rows.append(
                    {
                        "document": doc.index,
                        "method": name,
                        "position": position,
                        "token": token,
                        "gap_before": doc.text[previous_end:begin],
                        "start": begin,
                        "end": end,
                        "attribution": finite_or_none(value),
                        "weight": max(-1.0, min(1.0, value / scale)) if scale > 0 and math.isfinite(scale) else 0.0,
                    }
                )
                previous_end = end
    return rows


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's ρ of two vectors (average ranks for ties); ``None`` with fewer than 2 values
    or a constant one. The same quantity as :func:`guardrail.explain.quality.spearman`, computed
    here without scipy; the two can differ in the last bits, so each keeps its own numbers."""
    if len(a) < 2:
        return None

    def ranks(values: np.ndarray) -> np.ndarray:
        order = values.argsort(kind="stable")
        out = np.empty(len(values), dtype=np.float64)
        sorted_values = values[order]
        i = 0
        while i < len(values):  # average ranks for ties
            j = i
            while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
                j += 1
            out[order[i : j + 1]] = (i + j) / 2.0
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])
