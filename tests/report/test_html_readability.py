"""What a reader of the HTML report trips over, checked without a browser: size with
hundreds of groups, the short table of a scope with many groups, colour contrast, print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guardrail.core.types import RunRecord
from guardrail.report import render
from guardrail.report.charts import Bar, ChartRow, bar_chart
from guardrail.report.fairness_view import FOCUS_ABOVE, FOCUS_EACH
from tests.report.large_records import LONG, many_groups_record

STYLESHEET = Path(__file__).resolve().parents[2] / "guardrail" / "report" / "templates" / "_style.css"
AA = 4.5
"""WCAG 2 AA minimum contrast for normal-size text."""


@pytest.fixture(scope="module")
def many() -> RunRecord:
    return many_groups_record(400)


@pytest.fixture(scope="module")
def many_page(many: RunRecord) -> str:
    return render(many, "html")


def test_four_hundred_groups_render_to_a_bounded_size(many_page: str) -> None:
    size = len(many_page.encode())
    assert size < 400_000, f"{size} bytes: 400 groups must not blow the report up"
    assert "<script" not in many_page.lower()


def test_many_groups_open_with_a_short_table_and_keep_the_complete_one(many: RunRecord, many_page: str) -> None:
    groups = [v.group for v in many.results[0].metrics[1].by_group]
    assert len(groups) == 400 > FOCUS_ABOVE
    assert "Short table: 16 of 400 groups of" in many_page
    complete = many_page.index('<details class="complete">')
    short, full = many_page[:complete], many_page[complete:]
    assert "Complete table: all 400 groups of" in full
    for label in groups:  # every group is in the complete table, none is dropped
        assert label in full.replace("<wbr>", "")
    assert short.count('<th scope="row" class="group">') - 1 <= 4 * FOCUS_EACH
    for why in ("lowest selection rate", "highest selection rate", "smallest", "named by a disparity"):
        assert why in short


def test_many_groups_chart_only_the_short_table(many_page: str) -> None:
    charts = re.findall(r'<svg class="chart".*?</svg>', many_page, re.DOTALL)
    assert len(charts) == 1
    assert charts[0].count('<g class="group">') == 16
    assert "for the 16 groups of the short table (of 400)" in charts[0]


def test_few_groups_keep_one_table(record: RunRecord) -> None:
    page = render(record, "html")
    assert '<details class="complete">' not in page and "Short table" not in page


PRINT_OPENED = ("complete", "passes", "params")
"""The <details> the print stylesheet opens: the complete group table, the passes, the parameters."""


def test_essential_text_is_never_inside_a_closed_details_in_print(many_page: str) -> None:
    """Closed <details> do not print expanded: rationales are plain text; every collapsible
    (complete group table, passes, parameters) is one the print stylesheet opens."""
    classes = re.findall(r'<details class="(\w+)">', many_page)
    assert many_page.count("<details") == len(classes) and set(classes) <= set(PRINT_OPENED)
    assert classes.count("complete") == 1
    findings = many_page[: many_page.index('id="audits"')]
    assert "Why this rule:</strong> The four-fifths rule" in findings.split('<details class="passes">')[0]
    print_css = many_page[many_page.index("@media print") :]
    for name in PRINT_OPENED:
        assert re.search(rf"details\.{name}::details-content[^{{]*\{{[^}}]*content-visibility:\s*visible", print_css), name


def test_long_names_can_wrap(many_page: str) -> None:
    """Cells holding identifiers (groups, metric refs, rule ids) may break a long name anywhere;
    other cells break between words only, so a narrow column never wraps letter by letter."""
    css = _stylesheet()
    assert re.search(r"th, td \{[^}]*overflow-wrap: normal", css)
    assert re.search(r"td\.ref, td\.group, th\.group, td\.rule \{ overflow-wrap: anywhere; \}", css)
    assert re.search(r"#findings p, #findings li \{[^}]*overflow-wrap: anywhere", css), "findings name long rules and groups"
    assert "X" * LONG not in many_page or "overflow-wrap: anywhere" in css


def test_chart_squeezes_labels_that_would_be_cut_off() -> None:
    rows = [ChartRow(label=label, small=False, bars=(Bar(0.5),)) for label in ("W" * 60, "Female × Amer-Indian-Eskimo")]
    svg = str(bar_chart(rows, ["A"], title="t"))
    labels = re.findall(r'<text class="label" x="4" y="\d+"([^>]*)>', svg)
    assert labels == [' textLength="456" lengthAdjust="spacingAndGlyphs"', ""]


# ---- contrast ----------------------------------------------------------------------------


def _stylesheet() -> str:
    return STYLESHEET.read_text(encoding="utf-8")


def _luminance(colour: str) -> float:
    hex_digits = colour.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(c * 2 for c in hex_digits)
    channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two ``#rgb``/``#rrggbb`` colours."""
    high, low = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _variables(css: str) -> dict[str, str]:
    return dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{3,6})", css))


def _rules_with_both(css: str) -> list[tuple[str, str, str]]:
    """(selector, color, background) of every rule that sets both."""
    variables = _variables(css)
    found = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        colour = re.search(r"(?:^|;)\s*color:\s*([^;]+)", body)
        background = re.search(r"background:\s*([^;]+)", body)
        if colour and background:
            resolve = lambda v: variables.get(v.strip().removeprefix("var(").removesuffix(")"), v.strip())
            found.append((selector.strip(), resolve(colour.group(1)), resolve(background.group(1))))
    return found


def test_contrast_helper_matches_known_values() -> None:
    assert contrast("#000", "#fff") == pytest.approx(21.0)
    assert contrast("#767676", "#fff") == pytest.approx(4.54, abs=0.01)


def test_badges_and_flags_meet_wcag_aa() -> None:
    rules = _rules_with_both(_stylesheet())
    selectors = " ".join(selector for selector, _, _ in rules)
    for status in ("pass", "ok", "fail", "inconclusive", "error", "skipped", "waived"):
        assert f".st-{status}" in selectors
    assert ".flag" in selectors
    for selector, colour, background in rules:
        assert contrast(colour, background) >= AA, f"{selector}: {colour} on {background}"


def test_text_colours_meet_wcag_aa_on_every_background() -> None:
    css = _stylesheet()
    variables = _variables(css)
    backgrounds = {"#fff", variables["--alt"], *re.findall(r"tr\.small > \* \{ background: (#[0-9a-f]+)", css)}
    backgrounds |= set(re.findall(r"\.verdict-\w+ \{ background: (#[0-9a-f]+)", css))
    backgrounds |= set(re.findall(r"\.error-box \{[^}]*background: (#[0-9a-f]+)", css))
    assert len(backgrounds) >= 6
    for name in ("--fg", "--muted", "--link"):
        for background in backgrounds:
            assert contrast(variables[name], background) >= AA, f"{name} {variables[name]} on {background}"


def test_chart_text_meets_wcag_aa(many_page: str) -> None:
    fills = set(re.findall(r'<text[^>]*fill="(#[0-9a-fA-F]{3,6})"', many_page))
    assert fills, "chart text colours found"
    for fill in fills:
        assert contrast(fill, "#fff") >= AA, fill
