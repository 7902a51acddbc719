"""Inline SVG bar charts, built as strings with every text value escaped.

Every piece of text that comes from data goes through :meth:`markupsafe.Markup.format`,
which escapes its arguments, so group labels such as ``<script>`` stay text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from guardrail.core.types import Interval
from guardrail.report import _format

WIDTH = 460
"""Width of a chart in SVG units: narrow enough that at a 400 px wide column its 12-unit text
still renders at about 10 px (reflowed, not scaled: labels sit above their bars)."""
LEFT = 4
PLOT_WIDTH = 380
VALUE_WIDTH = WIDTH - LEFT - PLOT_WIDTH
LABEL_HEIGHT = 16
BAR_HEIGHT = 12
BAR_GAP = 3
GROUP_GAP = 10
LEGEND_LINE = 18
BOTTOM = 24
LABEL_CHARS = 64
PALETTE = ("#2f6db5", "#1b8a7a", "#d9622b", "#7a4fb0", "#8a6d1b")


@dataclass(frozen=True)
class Bar:
    """One value of one series for one group; ``value`` is ``None`` when undefined."""

    value: float | None
    n: int | None = None
    ci: Interval | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ChartRow:
    """A group: its label, whether it is below the minimum size, one bar per series."""

    label: str
    small: bool
    bars: tuple[Bar | None, ...]


def bar_chart(
    rows: Sequence[ChartRow], series: Sequence[str], *, title: str, maximum: float | None = None, legend: bool = True
) -> Markup:
    """A horizontal grouped bar chart: each group's label on its own line, its bars below.

    Parameters
    ----------
    rows:
        One entry per group, each with one :class:`Bar` (or ``None``) per series.
    series:
        The series names, in the order of ``ChartRow.bars``; shown in the legend.
    title:
        The accessible name of the chart.
    maximum:
        The right end of the axis; by default ``1`` (rates), or more if a value or interval exceeds it.
        Give :func:`nice_maximum` of the data for values on another scale.
    legend:
        Whether to draw the legend; leave it out only where the page names the series beside the chart.
    """
    scale = _Scale(maximum if maximum is not None and maximum > 0 else _domain_max(rows))
    key, top = _legend(series) if legend else (Markup(""), 12)
    block = LABEL_HEIGHT + len(series) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
    height = top + len(rows) * (block + GROUP_GAP) + BOTTOM
    parts: list[Markup] = [
        Markup(
            '<svg class="chart" viewBox="0 0 {w} {h}" '
            'role="img" aria-label="{t}" '
            'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">'
            "<title>{t}</title>"
        ).format(w=WIDTH, h=height, t=title),
        key,
        _axis(scale, top, height),
    ]
    y = top
    for row in rows:
        parts.append(_group(row, series, scale, y))
        y += block + GROUP_GAP
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def nice_maximum(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 (times a power of ten) at or above ``value``: an axis end
    whose quarter ticks read well.

    >>> nice_maximum(0.0331), nice_maximum(0.66), nice_maximum(7)
    (0.05, 1.0, 10.0)
    """
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value * (1 - 1e-12):
            return float(f"{step * power:.12g}")
    return 10 * power


class _Scale:
    def __init__(self, maximum: float) -> None:
        self.maximum = maximum

    def x(self, value: float) -> float:
        clipped = min(max(value, 0.0), self.maximum)
        return LEFT + PLOT_WIDTH * clipped / self.maximum


def _domain_max(rows: Sequence[ChartRow]) -> float:
    highest = 1.0
    for row in rows:
        for bar in row.bars:
            if bar is not None and bar.value is not None:
                highest = max(highest, bar.value, bar.ci.high if bar.ci else 0.0)
    return highest


def _legend(series: Sequence[str]) -> tuple[Markup, int]:
    """The legend, wrapped onto as many lines as it needs, and the y where the groups start."""
    items = []
    x: float = LEFT
    line = 0
    for index, name in enumerate(series):
        width = 16 + _text_width(name) + 14
        if x > LEFT and x + width > WIDTH:
            x, line = LEFT, line + 1
        y = 4 + line * LEGEND_LINE
        items.append(
            Markup(
                '<rect x="{x}" y="{y}" width="12" height="12" fill="{c}"/>'
                '<text x="{tx}" y="{ty}">{name}</text>'
            ).format(x=f"{x:.0f}", y=y, c=PALETTE[index % len(PALETTE)], tx=f"{x + 16:.0f}", ty=y + 10.5, name=name)
        )
        x += width
    return Markup("").join(items), 4 + (line + 1) * LEGEND_LINE + 8


def _axis(scale: _Scale, top: int, height: int) -> Markup:
    ticks = [scale.maximum * step / 4 for step in range(5)]
    lines = []
    for index, tick in enumerate(ticks):
        x = f"{scale.x(tick):.1f}"
        anchor = "start" if index == 0 else "middle"
        lines.append(
            Markup(
                '<line x1="{x}" x2="{x}" y1="{top}" y2="{bottom}" stroke="#d0d4da" stroke-width="1"/>'
                '<text x="{x}" y="{label_y}" text-anchor="{anchor}" fill="#555">{tick}</text>'
            ).format(x=x, top=top - 4, bottom=height - BOTTOM + 2, label_y=height - 8, anchor=anchor, tick=f"{tick:.6g}")
        )
    return Markup("").join(lines)


def _group(row: ChartRow, series: Sequence[str], scale: _Scale, y: int) -> Markup:
    label = _shorten_middle(row.label, LABEL_CHARS)
    flag = " ⚠ below minimum size" if row.small else ""
    parts = [
        Markup('<g class="group"><title>{full}</title>').format(
            full=row.label + (" (below minimum size)" if row.small else "")
        ),
        Markup('<text class="label" x="{x}" y="{y}"{weight}{fit}>{label}</text>').format(
            x=LEFT,
            y=y + 12,
            weight=Markup(' font-style="italic"') if row.small else Markup(""),
            fit=_fit(label + flag, WIDTH - LEFT),
            label=label + flag,
        ),
    ]
    for index, (name, bar) in enumerate(zip(series, row.bars, strict=True)):
        bar_y = y + LABEL_HEIGHT + index * (BAR_HEIGHT + BAR_GAP)
        parts.append(_bar(row, name, bar, scale, bar_y, PALETTE[index % len(PALETTE)]))
    parts.append(Markup("</g>"))
    return Markup("").join(parts)


def _bar(row: ChartRow, name: str, bar: Bar | None, scale: _Scale, y: int, colour: str) -> Markup:
    if bar is None or bar.value is None:
        why = "not reported" if bar is None else (bar.reason or "undefined")
        return Markup(
            '<text x="{x}" y="{y}" fill="#666">{dash} {why}<title>{name}: {why}</title></text>'
        ).format(x=LEFT + 4, y=y + 10, dash=_format.DASH, why=_format.shorten(why, 60), name=name)
    x0, x1 = scale.x(0.0), scale.x(bar.value)
    tip = f"{row.label}: {name} {_format.number(bar.value)}"
    if bar.ci is not None:
        tip += f", {_format.level(bar.ci.level)} CI {_format.interval(bar.ci)}"
    if bar.n is not None:
        tip += f", n={bar.n}"
    opacity = "0.45" if row.small else "1"
    parts = [
        Markup(
            '<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{c}" fill-opacity="{o}">'
            "<title>{tip}</title></rect>"
        ).format(x=f"{x0:.1f}", y=y, w=f"{max(x1 - x0, 0.5):.1f}", h=BAR_HEIGHT, c=colour, o=opacity, tip=tip)
    ]
    right = x1
    if bar.ci is not None:
        parts.append(_whisker(scale, bar.ci, y + BAR_HEIGHT / 2))
        right = max(right, scale.x(bar.ci.high))
    parts.append(
        Markup('<text x="{x}" y="{y}" fill="#222">{v}</text>').format(
            x=f"{right + 4:.1f}", y=f"{y + 10:.1f}", v=_format.number(bar.value)
        )
    )
    return Markup("").join(parts)


def _whisker(scale: _Scale, ci: Interval, mid: float) -> Markup:
    low, high = scale.x(ci.low), scale.x(ci.high)
    return Markup(
        '<g stroke="#222" stroke-width="1.2">'
        '<line x1="{l}" x2="{h}" y1="{m}" y2="{m}"/>'
        '<line x1="{l}" x2="{l}" y1="{t}" y2="{b}"/>'
        '<line x1="{h}" x2="{h}" y1="{t}" y2="{b}"/></g>'
    ).format(l=f"{low:.1f}", h=f"{high:.1f}", m=f"{mid:.1f}", t=f"{mid - 4:.1f}", b=f"{mid + 4:.1f}")


def _text_width(text: str) -> float:
    """A generous estimate of ``text``'s width in pixels at the chart's 12 px sans-serif font."""
    return sum(8.0 if c.isupper() or c.isdigit() else 6.6 if c.isalpha() else 4.5 for c in text)


def _fit(label: str, width: int) -> Markup:
    """Squeeze a label that might not fit ``width`` pixels (e.g. a long run of capitals), so
    that it is never cut off at the chart's left edge; labels that fit are left alone."""
    if _text_width(label) <= width:
        return Markup("")
    return Markup(' textLength="{w}" lengthAdjust="spacingAndGlyphs"').format(w=width)


def _shorten_middle(text: str, limit: int) -> str:
    """Cut the middle of ``text`` so that labels sharing a long prefix stay distinct."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]
