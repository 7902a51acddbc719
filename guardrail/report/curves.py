"""Inline SVG ROC curves, built as strings with every text value escaped.

Used for the membership-inference attacks of the privacy audit: one curve per attack (or
per group), the chance diagonal, and axes in ``[0, 1]``. As in :mod:`.charts`, text from
data goes through :meth:`markupsafe.Markup.format`, so a label such as ``<script>`` stays text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from guardrail.report.charts import PALETTE

SIZE = 360
"""Side of the square plot, in SVG units."""
LEFT = 56
TOP = 16
RIGHT = 280
"""Room for the legend right of the plot."""
BOTTOM = 44
MAX_POINTS = 400
"""Curves with more operating points are thinned to this many (first and last kept)."""
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")
"""Each curve also differs by its dash pattern, so curves stay apart without colour."""


@dataclass(frozen=True)
class Curve:
    """One ROC curve: its legend label and operating points (FPR, TPR), sorted by FPR."""

    label: str
    fpr: Sequence[float]
    tpr: Sequence[float]


def roc_chart(curves: Sequence[Curve], *, title: str) -> Markup:
    """A square ROC plot of ``curves`` with the chance diagonal and a legend."""
    width, height = LEFT + SIZE + RIGHT, TOP + SIZE + BOTTOM
    parts: list[Markup] = [
        Markup(
            '<svg class="chart roc" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" '
            'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">'
            "<title>{t}</title>"
        ).format(w=width, h=height, t=title),
        _axes(),
        Markup(
            '<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#767676" stroke-dasharray="4 4">'
            "<title>chance: an attacker who guesses</title></line>"
        ).format(x0=_x(0), y0=_y(0), x1=_x(1), y1=_y(1)),
    ]
    for index, curve in enumerate(curves):
        parts.append(_polyline(curve, index))
        parts.append(_legend_entry(curve.label, index))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _x(fpr: float) -> float:
    return LEFT + min(max(fpr, 0.0), 1.0) * SIZE


def _y(tpr: float) -> float:
    return TOP + (1.0 - min(max(tpr, 0.0), 1.0)) * SIZE


def _axes() -> Markup:
    parts = [
        Markup('<rect x="{x}" y="{y}" width="{s}" height="{s}" fill="none" stroke="#595959"/>').format(
            x=LEFT, y=TOP, s=SIZE
        )
    ]
    for tick in TICKS:
        parts.append(
            Markup(
                '<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#e3e3e3"/>'
                '<text x="{x}" y="{label_y}" text-anchor="middle" fill="#333">{t}</text>'
                '<line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#e3e3e3"/>'
                '<text x="{label_x}" y="{text_y}" text-anchor="end" fill="#333">{t}</text>'
            ).format(
                x=f"{_x(tick):.1f}",
                top=TOP,
                bottom=TOP + SIZE,
                label_y=TOP + SIZE + 16,
                t=f"{tick:g}",
                left=LEFT,
                right=LEFT + SIZE,
                y=f"{_y(tick):.1f}",
                label_x=LEFT - 6,
                text_y=f"{_y(tick) + 4:.1f}",
            )
        )
    parts.append(
        Markup(
            '<text x="{cx}" y="{by}" text-anchor="middle" fill="#333">false-positive rate (non-members flagged)</text>'
            '<text transform="translate(14 {cy}) rotate(-90)" text-anchor="middle" fill="#333">'
            "true-positive rate (members found)</text>"
        ).format(cx=LEFT + SIZE / 2, by=TOP + SIZE + 36, cy=TOP + SIZE / 2)
    )
    return Markup("").join(parts)


def _thin(curve: Curve) -> list[tuple[float, float]]:
    points = list(zip(curve.fpr, curve.tpr, strict=True))
    if len(points) <= MAX_POINTS:
        return points
    step = (len(points) - 1) / (MAX_POINTS - 1)
    return [points[round(i * step)] for i in range(MAX_POINTS)]


def _polyline(curve: Curve, index: int) -> Markup:
    points = " ".join(f"{_x(f):.1f},{_y(t):.1f}" for f, t in _thin(curve))
    dash = DASHES[index % len(DASHES)]
    return Markup(
        '<polyline points="{p}" fill="none" stroke="{c}" stroke-width="2"{d}><title>{label}</title></polyline>'
    ).format(
        p=points,
        c=PALETTE[index % len(PALETTE)],
        d=Markup(' stroke-dasharray="{}"').format(dash) if dash else Markup(""),
        label=curve.label,
    )


def _legend_entry(label: str, index: int) -> Markup:
    y = TOP + 12 + index * 20
    x = LEFT + SIZE + 16
    dash = DASHES[index % len(DASHES)]
    shown = label if len(label) <= 38 else label[:37] + "…"
    return Markup(
        '<line x1="{x}" y1="{y}" x2="{x2}" y2="{y}" stroke="{c}" stroke-width="2"{d}/>'
        '<text x="{tx}" y="{ty}" fill="#222"><title>{label}</title>{shown}</text>'
    ).format(
        x=x,
        x2=x + 24,
        y=y,
        c=PALETTE[index % len(PALETTE)],
        d=Markup(' stroke-dasharray="{}"').format(dash) if dash else Markup(""),
        tx=x + 30,
        ty=y + 4,
        label=label,
        shown=shown,
    )


__all__ = ["Curve", "roc_chart"]
