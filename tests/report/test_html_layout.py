"""The report as a person sees it, in headless Chromium: no page wider than the screen at
phone and desktop widths, no table cell that wraps a word letter by letter (on screen or in
print), the findings first and fitting the demo's first screen, charts legible at phone width,
a print view that shows the complete group table, and a printed demo of at most 14 pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from guardrail.report import render
from tests.conftest import run_cli
from tests.report.large_records import many_groups_record
from tests.report.test_html_browser import CHROMIUM_ARGS, _chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser

WIDTHS = (420, 1280)
DEMO_LIMIT = 2_000_000
"""The demo report must stay under 2 MB."""

OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"

SPLIT_WORDS = """(() => {
  // Every word (between spaces, hyphens and slashes) of every visible table cell that the
  // browser broke across lines, where a line holds less than 3 em of it: a column squeezed
  // so narrow that it wraps letter by letter. A long identifier broken across full-width
  // lines of a reasonably wide column is not reported.
  const found = [];
  for (const cell of document.querySelectorAll('td, th')) {
    if (!cell.checkVisibility()) continue;
    const em = parseFloat(getComputedStyle(cell).fontSize);
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/[^\\s\\-\u2010-\u2014\\/]+/g)) {
        if (m[0].length < 2) continue;
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = Array.from(range.getClientRects()).filter(r => r.width > 0.5);
        if (lines.length > 1 && lines.slice(0, -1).some(r => r.width < 3 * em)) {
          found.push(`${cell.tagName.toLowerCase()}: ${m[0]} (${lines.map(r => Math.round(r.width)).join('/')} px)`);
        }
      }
    }
  }
  return found.slice(0, 10);
})()"""
"""The words of table cells broken letter by letter, as the page is laid out now."""

CHART_TEXT = """(() => {
  // The smallest rendered font size (px) of any text in a chart, and any chart wider than its box.
  let smallest = Infinity;
  const clipped = [];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const box = svg.getBoundingClientRect();
    const scale = box.width / svg.viewBox.baseVal.width;
    for (const text of svg.querySelectorAll('text')) {
      smallest = Math.min(smallest, parseFloat(getComputedStyle(text).fontSize) * scale);
    }
    if (box.width > svg.parentElement.clientWidth + 1) clipped.push(svg.getAttribute('aria-label'));
  }
  return [smallest, clipped];
})()"""

FINDINGS_FIRST = """(() => {
  const findings = document.getElementById('findings');
  const evidence = Array.from(document.querySelectorAll('section.audit, #provenance'));
  const passes = findings.querySelector('details.passes');
  const last = Array.from(findings.querySelectorAll('section.tier, details.passes')).pop();
  return {
    first: evidence.every(e => findings.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING
                              && e.getBoundingClientRect().top >= findings.getBoundingClientRect().bottom),
    evidence: evidence.length,
    passesClosed: passes === null || (!passes.open && Array.from(passes.querySelectorAll('li')).every(li => !li.checkVisibility())),
    passes: passes !== null,
    bottom: last ? last.getBoundingClientRect().bottom + window.scrollY : 0,
  };
})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def many_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("many") / "report.html"
    path.write_text(render(many_groups_record(400), "html"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def demo_report(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-report")
    done = run_cli("audit", demo_root / "audits" / "adult-income.yaml", "--out", out, "--quiet", cwd=demo_root)
    assert done.returncode == 1, done.stderr  # the demo model fails the baseline policy
    return out / "report.html"


def _widest(browser: Browser, page_file: Path, width: int, media: str = "screen") -> tuple[bool, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.emulate_media(media=media)  # type: ignore[arg-type]
        page.goto(page_file.as_uri(), wait_until="load")
        fits = bool(page.evaluate(OVERFLOW))
        culprits = page.evaluate(
            "Array.from(document.querySelectorAll('body *'))"
            ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".slice(0, 5).map(e => e.tagName + '.' + (e.getAttribute('class') || ''))"
        )
    finally:
        page.close()
    return fits, culprits


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_many_long_groups_never_widen_the_page(browser: Browser, many_file: Path, width: int) -> None:
    fits, culprits = _widest(browser, many_file, width)
    assert fits, f"the page is wider than the {width} px viewport because of {culprits}"


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_demo_report_never_widens_the_page(browser: Browser, demo_report: Path, width: int) -> None:
    fits, culprits = _widest(browser, demo_report, width)
    assert fits, f"the page is wider than the {width} px viewport because of {culprits}"


@pytest.mark.browser
def test_print_shows_the_complete_table_unclipped(browser: Browser, many_file: Path) -> None:
    page = browser.new_page(viewport={"width": 718, "height": 1000})  # A4 text width at 96 dpi
    try:
        page.goto(many_file.as_uri(), wait_until="load")
        visible_rows = "Array.from(document.querySelectorAll('details.complete tbody tr')).filter(r => r.checkVisibility()).length"
        screen_rows = page.evaluate(visible_rows)
        page.emulate_media(media="print")
        print_rows = page.evaluate(visible_rows)
        fits = page.evaluate(OVERFLOW)
        pdf = page.pdf(format="A4")
    finally:
        page.close()
    assert screen_rows == 0, "collapsed on screen"
    assert print_rows == 401, "every group (and the overall row) prints"
    assert fits, "nothing is clipped at the printed page width"
    assert pdf.startswith(b"%PDF")


def test_demo_report_is_under_two_megabytes(demo_report: Path) -> None:
    size = demo_report.stat().st_size
    assert size < DEMO_LIMIT, f"demo report.html is {size} bytes"


def _evaluate(browser: Browser, page_file: Path, width: int, script: str, media: str = "screen") -> Any:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.emulate_media(media=media)  # type: ignore[arg-type]
        page.goto(page_file.as_uri(), wait_until="load")
        return page.evaluate(script)
    finally:
        page.close()


LAYOUTS = [(420, "screen"), (1280, "screen"), (718, "print")]
"""Phone and desktop screens, and print at an A4 page's text width (96 dpi)."""


@pytest.mark.browser
@pytest.mark.parametrize(("width", "media"), LAYOUTS)
def test_no_cell_of_the_demo_wraps_letter_by_letter(browser: Browser, demo_report: Path, width: int, media: str) -> None:
    assert _evaluate(browser, demo_report, width, SPLIT_WORDS, media) == []


@pytest.mark.browser
@pytest.mark.parametrize(("width", "media"), LAYOUTS)
def test_no_cell_of_four_hundred_groups_wraps_letter_by_letter(browser: Browser, many_file: Path, width: int, media: str) -> None:
    assert _evaluate(browser, many_file, width, SPLIT_WORDS, media) == []


@pytest.mark.browser
def test_the_letter_by_letter_check_can_fail(browser: Browser, tmp_path: Path) -> None:
    """The check sees a squeezed column (as the report's faithfulness table once was) and
    leaves a long name broken across full-width lines alone."""
    squeezed = tmp_path / "squeezed.html"
    squeezed.write_text(
        "<!DOCTYPE html><table style='width:300px'><tr><td style='overflow-wrap:anywhere;width:1px'>Feature ablation</td>"
        + "<td>" + " ".join(["0.4923 (n=32)"] * 12) + "</td></tr></table>"
        + "<table><tr><td style='overflow-wrap:anywhere;width:200px;max-width:200px'>" + "X" * 120 + "</td></tr></table>",
        encoding="utf-8",
    )
    found = _evaluate(browser, squeezed, 1280, SPLIT_WORDS)
    assert any("Feature" in f or "ablation" in f for f in found) and not any("XXXX" in f for f in found), found


@pytest.mark.browser
@pytest.mark.parametrize("which", ["demo", "many"])
@pytest.mark.parametrize("width", WIDTHS)
def test_findings_precede_the_evidence_and_passes_are_collapsed(
    browser: Browser, demo_report: Path, many_file: Path, which: str, width: int
) -> None:
    shown = _evaluate(browser, demo_report if which == "demo" else many_file, width, FINDINGS_FIRST)
    assert shown["evidence"] >= 2 and shown["first"], "every evidence section starts below the findings"
    assert shown["passes"] and shown["passesClosed"], "passes are listed, collapsed"


@pytest.mark.browser
def test_demo_findings_fit_the_first_screen(browser: Browser, demo_report: Path) -> None:
    shown = _evaluate(browser, demo_report, 1280, FINDINGS_FIRST)
    assert 0 < shown["bottom"] <= 900, f"the findings end {shown['bottom']:.0f} px down a 900 px screen"


@pytest.mark.browser
@pytest.mark.parametrize("which", ["demo", "many"])
def test_charts_reflow_legibly_at_phone_width(browser: Browser, demo_report: Path, many_file: Path, which: str) -> None:
    smallest, clipped = _evaluate(browser, demo_report if which == "demo" else many_file, 420, CHART_TEXT)
    assert smallest >= 9.9, f"chart text renders at {smallest:.1f} px"
    assert clipped == [], "a chart wider than its column"


@pytest.mark.browser
def test_printed_demo_takes_at_most_fourteen_pages(browser: Browser, demo_report: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(demo_report.as_uri(), wait_until="load")
        pdf = page.pdf(format="A4", print_background=True)
    finally:
        page.close()
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    # 12 pages for the fairness, mitigation, explainability and data audits; the robustness
    # audit's section prints on 2 more (its examples and value pairs stay on screen and in run.json)
    assert 1 <= pages <= 14, f"{pages} printed pages"
