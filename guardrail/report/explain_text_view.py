"""The parts of the report's explainability section that only a text model has: token
heatmaps, the random word order the quality table compares with, and the word most
associated with each sensitive column.

Built from the audit's artifacts and metric details only; every string is plain text
here (token text included): the template escapes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guardrail.core.types import MetricResult
from guardrail.report import _format

HEATMAP_DOCUMENTS = 12
"""Most documents shown as token heatmaps."""

TEXT_IMPORTANCE = (
    "Mean |attribution| of the explained class's probability over every occurrence of the word "
    "in the explained documents (words seen in at least two of them), with a bootstrap interval "
    "over documents; a method's bar is missing where the word is outside that method's strongest words."
)

RANDOM_ORDER = "Random word order (reference)"
"""The quality table's reference row for text: the same curves with the words in a random order."""


@dataclass(frozen=True)
class HeatToken:
    gap: str
    token: str
    style: str
    title: str


@dataclass(frozen=True)
class Heatmap:
    caption: str
    tokens: tuple[HeatToken, ...]


def heatmaps(heatmap: object) -> tuple[Heatmap, ...]:
    """Token heatmaps from the ``heatmap`` artifact: ``{"method": m, "documents": [{"caption":
    str, "tokens": [{"gap": str, "token": str, "weight": float in [-1, 1]}]}]}``."""
    if not isinstance(heatmap, Mapping):
        return ()
    documents = heatmap.get("documents")
    if not isinstance(documents, Sequence):
        return ()
    maps = []
    for document in list(documents)[:HEATMAP_DOCUMENTS]:
        if not isinstance(document, Mapping):
            continue
        tokens = tuple(
            HeatToken(
                gap=str(t.get("gap", "")),
                token=str(t.get("token", "")),
                style=heat_style(float(t.get("weight", 0.0))),
                title=f"{float(t.get('weight', 0.0)):+.2f}",
            )
            for t in document.get("tokens", ())
            if isinstance(t, Mapping)
        )
        maps.append(Heatmap(caption=str(document.get("caption", "")), tokens=tokens))
    return tuple(maps)


def heat_style(weight: float) -> str:
    """A background whose opacity grows with |weight|: blue pushes towards the predicted class,
    orange away from it. Text stays dark on every shade (opacity ≤ 0.55 on white)."""
    strength = min(abs(weight), 1.0) * 0.55
    colour = "47,109,181" if weight >= 0 else "217,98,43"
    return f"background: rgba({colour},{strength:.2f})"


def random_order_values(overall: Mapping[str, MetricResult], methods: Sequence[str]) -> dict[str, float]:
    """Deletion AUC, insertion AUC and faithfulness with the words in a random order (the
    ``random_order`` detail of the first method that has it), by quality column; empty for a
    tabular model."""
    found: dict[str, float] = {}
    for key in ("deletion_auc", "insertion_auc", "faithfulness"):
        for method in methods:
            metric = overall.get(f"explain.{method}.{key}")
            value = metric.details.get("random_order") if metric is not None else None
            if isinstance(value, int | float):
                found[key] = float(value)
                break
    return found


def strongest_association(proxy: object) -> tuple[str, ...]:
    """For text: the word most associated with each sensitive column, whether or not it is a proxy."""
    if not isinstance(proxy, Mapping) or not isinstance(proxy.get("strongest"), Mapping):
        return ()
    threshold = proxy.get("threshold")
    limit = f"; a word is a proxy from {threshold:g}" if isinstance(threshold, int | float) else ""
    out = []
    for column, best in proxy["strongest"].items():
        if isinstance(best, Mapping) and isinstance(best.get("nmi"), int | float):
            out.append(
                f"The word most associated with {column} is “{best.get('feature')}” "
                f"(normalised mutual information {_format.number(best['nmi'])}{limit})."
            )
    return tuple(out)
