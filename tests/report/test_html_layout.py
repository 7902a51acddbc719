"""The report as a person sees it, in headless Chromium: no page wider than the screen at
phone and desktop widths, and a print view that shows the complete group table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

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
