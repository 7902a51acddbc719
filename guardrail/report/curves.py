"""Inline SVG line charts, built as strings with every text value escaped.

:func:`roc_chart` draws the ROC curves of the privacy audit's membership-inference attacks:
one curve per attack (or per group), the chance diagonal, and axes in ``[0, 1]``.
:func:`line_chart` draws values by round (federated training: ε, accuracy, a fairness gap
per hospital), leaving a gap where a value is undefined instead of drawing it as a number.
As in :mod:`.charts`, text from data goes through :meth:`markupsafe.Markup.format`, so a
label such as ``<script>`` stays text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from guardrail.report.charts import PALETTE

SIZE = 360
"""Side of the square plot, in SVG units."""
LEFT = 56
TOP = 16
RIGHT = 16
"""Margin right of the plot: the legend sits below it, so that a chart stays narrow (about 450
units) and its 12-unit text renders near 10 px or more in a 400 px column."""
LEGEND_LINE = 20
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
    width, height = LEFT + SIZE + RIGHT, TOP + SIZE + BOTTOM + LEGEND_LINE * len(curves) + 4
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
        parts.append(_legend_entry(curve.label, index, top=TOP + SIZE + BOTTOM))
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


def _legend_entry(label: str, index: int, *, top: int) -> Markup:
    """One line of the legend below the plot."""
    y = top + 8 + index * LEGEND_LINE
    x = LEFT
    dash = DASHES[index % len(DASHES)]
    shown = label if len(label) <= 52 else label[:51] + "…"
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


LINE_WIDTH = 380
"""Width of a line chart's plot area, in SVG units."""
LINE_HEIGHT = 220
MAX_X_TICKS = 12


@dataclass(frozen=True)
class Line:
    """One series of a line chart: its legend label, x positions (e.g. rounds) and values.

    A value of ``None`` is undefined (e.g. a fairness gap over a group below the minimum
    size): the line breaks there and a ``?`` at the top of the plot says why (``why``).
    """

    label: str
    x: Sequence[float]
    y: Sequence[float | None]
    why: Sequence[str | None] = ()


def line_chart(
    lines: Sequence[Line],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_max: float | None = None,
    reference: tuple[float, str] | None = None,
) -> Markup:
    """Lines of values against x (integers such as rounds), with a legend.

    ``y_max`` fixes the top of the axis (default: a round number above the largest value);
    ``reference`` draws a dashed horizontal line at a value with its label (e.g. a budget).
    """
    xs = sorted({float(x) for line in lines for x in line.x}) or [1.0]
    x_min, x_max = (xs[0], xs[-1]) if len(xs) > 1 else (xs[0] - 0.5, xs[0] + 0.5)
    values = [v for line in lines for v in line.y if v is not None]
    top = y_max if y_max is not None else _nice_ceiling(max([*values, reference[0] if reference else 0.0], default=0.0))

    def px(x: float) -> float:
        return LEFT + (x - x_min) / (x_max - x_min) * LINE_WIDTH

    def py(y: float) -> float:
        return TOP + (1.0 - min(max(y, 0.0), top) / top) * LINE_HEIGHT

    height = TOP + LINE_HEIGHT + BOTTOM + LEGEND_LINE * len(lines) + 4
    parts = line_frame(title, top, py, left=LEFT, height=height, tick=lambda value: f"{value:.4g}")
    every = max(1, -(-len(xs) // MAX_X_TICKS))
    for x in xs[::every]:
        parts.append(
            Markup('<text x="{x}" y="{y}" text-anchor="middle" fill="#333">{t}</text>').format(
                x=f"{px(x):.1f}", y=TOP + LINE_HEIGHT + 16, t=f"{x:g}"
            )
        )
    parts.append(
        Markup(
            '<text x="{cx}" y="{by}" text-anchor="middle" fill="#333">{xl}</text>'
            '<text transform="translate(14 {cy}) rotate(-90)" text-anchor="middle" fill="#333">{yl}</text>'
        ).format(cx=LEFT + LINE_WIDTH / 2, by=TOP + LINE_HEIGHT + 36, cy=TOP + LINE_HEIGHT / 2, xl=x_label, yl=y_label)
    )
    if reference is not None:
        value, label = reference
        parts.append(
            Markup(
                '<line x1="{l}" y1="{y}" x2="{r}" y2="{y}" stroke="#b3182b" stroke-width="1.5" stroke-dasharray="6 4">'
                "<title>{label}</title></line>"
                '<text x="{tx}" y="{ty}" text-anchor="end" fill="#8a1020" font-size="11">{label}</text>'
            ).format(l=LEFT, r=LEFT + LINE_WIDTH, y=f"{py(value):.1f}", tx=LEFT + LINE_WIDTH - 4, ty=f"{py(value) - 4:.1f}", label=label)
        )
    for index, line in enumerate(lines):
        parts.append(_line(line, index, px, py))
        parts.append(_legend_entry(line.label, index, top=TOP + LINE_HEIGHT + BOTTOM))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def line_frame(
    title: str, top: float, py: Callable[[float], float], *, left: int, height: int, tick: Callable[[float], str]
) -> list[Markup]:
    """The opening of a line chart ``LINE_WIDTH`` × ``LINE_HEIGHT`` wide and high at (``left``,
    ``TOP``): the ``<svg>`` tag with its title, the plot's box, and five horizontal grid lines
    from 0 to ``top`` labelled by ``tick``. The caller adds its lines and closes the ``<svg>``."""
    parts = [
        Markup(
            '<svg class="chart line" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" '
            'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">'
            "<title>{t}</title>"
            '<rect x="{x}" y="{y}" width="{pw}" height="{ph}" fill="none" stroke="#595959"/>'
        ).format(w=left + LINE_WIDTH + RIGHT, h=height, t=title, x=left, y=TOP, pw=LINE_WIDTH, ph=LINE_HEIGHT)
    ]
    for step in range(5):
        value = top * step / 4
        parts.append(
            Markup(
                '<line x1="{l}" y1="{y}" x2="{r}" y2="{y}" stroke="#e3e3e3"/>'
                '<text x="{tx}" y="{ty}" text-anchor="end" fill="#333">{t}</text>'
            ).format(l=left, r=left + LINE_WIDTH, y=f"{py(value):.1f}", tx=left - 6, ty=f"{py(value) + 4:.1f}", t=tick(value))
        )
    return parts


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``value`` (1 for none)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value * (1 - 1e-12)))


def _line(line: Line, index: int, px: Callable[[float], float], py: Callable[[float], float]) -> Markup:
    colour = PALETTE[index % len(PALETTE)]
    dash = DASHES[index % len(DASHES)]
    why = list(line.why) + [None] * (len(line.x) - len(line.why))
    parts: list[Markup] = []
    run: list[str] = []
    for x, y, reason in [*zip(line.x, line.y, why, strict=True), (None, None, None)]:
        if y is not None and x is not None:
            run.append(f"{px(x):.1f},{py(y):.1f}")
            parts.append(
                Markup('<circle cx="{cx}" cy="{cy}" r="3.5" fill="{c}"><title>{label}, {x}: {v}</title></circle>').format(
                    cx=f"{px(x):.1f}", cy=f"{py(y):.1f}", c=colour, label=line.label, x=f"{x:g}", v=f"{y:.4g}"
                )
            )
            continue
        if len(run) > 1:
            parts.insert(
                0,
                Markup('<polyline points="{p}" fill="none" stroke="{c}" stroke-width="2"{d}><title>{label}</title></polyline>').format(
                    p=" ".join(run),
                    c=colour,
                    d=Markup(' stroke-dasharray="{}"').format(dash) if dash else Markup(""),
                    label=line.label,
                ),
            )
        run = []
        if x is not None:
            parts.append(
                Markup(
                    '<text x="{x}" y="{y}" text-anchor="middle" fill="{c}" font-weight="700">?'
                    "<title>{label}, {xv}: no value ({why})</title></text>"
                ).format(
                    x=f"{px(x):.1f}", y=TOP + 14 + 13 * (index % 8), c=_dark(colour), label=line.label, xv=f"{x:g}",
                    why=reason or "undefined",
                )
            )
    return Markup("").join(parts)


def _dark(colour: str) -> str:
    """A darker shade of a palette colour, for small text that must stay readable (WCAG AA)."""
    channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{int(c * 0.7):02x}" for c in channels)


__all__ = ["Curve", "Line", "line_chart", "roc_chart"]
