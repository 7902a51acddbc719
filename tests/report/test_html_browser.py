"""Open a report full of HTML/script payloads in headless Chromium: nothing may run.

Needs Debian's ``chromium`` (``make test`` installs it). A missing browser fails this test
instead of skipping it, so that the check can never silently stop running.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from guardrail.core.types import RunRecord
from guardrail.report import render

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
SVG = '"><svg onload=window.__pwned=1>'
ALERT = "<img src=y onerror=alert(1)>"


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "headless Chromium is not installed (no `chromium` on PATH, expected /usr/bin/chromium); "
            "run `make test`, which installs Debian's chromium package, or `apt-get install -y chromium`. "
            "Never use `playwright install`.",
            pytrace=False,
        )
    return path


@dataclass
class OpenedPage:
    """A report loaded in headless Chromium, with every dialog it raised and every request it made."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def ran_nothing(self) -> bool:
        """No payload ran: nothing set ``window.__pwned``, no script, image or dialog is on the page."""
        state = (
            self.page.evaluate("typeof window.__pwned"),
            self.page.evaluate("document.querySelectorAll('script').length"),
            self.page.evaluate("document.images.length"),
        )
        return state == ("undefined", 0, 0) and self.dialogs == []


@contextlib.contextmanager
def opened_in_chromium(page_file: Path, *, open_details: bool = False) -> Iterator[OpenedPage]:
    """``page_file`` loaded in headless Chromium (``open_details``: every ``<details>`` opened), closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            opened = OpenedPage(browser.new_page())
            opened.page.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
            opened.page.on("request", lambda request: opened.requests.append(request.url))
            opened.page.goto(page_file.as_uri(), wait_until="load")
            if open_details:
                opened.page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            opened.page.wait_for_timeout(200)
            yield opened
        finally:
            browser.close()


@pytest.fixture
def hostile_record(record_factory: Callable[..., RunRecord]) -> RunRecord:
    return record_factory(
        group_a=SCRIPT,
        group_b=IMG,
        scope=SVG,
        rule_id=ALERT,
        message=f"{SCRIPT} {IMG}",
        error_message=SVG,
        name=SCRIPT,
    )


def test_payloads_stay_text_in_a_real_browser(hostile_record: RunRecord, tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_text(render(hostile_record, "html"), encoding="utf-8")
    with opened_in_chromium(page_file) as opened:
        page = opened.page
        pwned = page.evaluate("typeof window.__pwned")
        scripts = page.evaluate("document.querySelectorAll('script').length")
        handlers = page.evaluate(
            "Array.from(document.querySelectorAll('*')).filter(e => e.hasAttribute('onerror') "
            "|| e.hasAttribute('onload') || Array.from(e.attributes).some(a => a.name.startsWith('on'))).length"
        )
        images = page.evaluate("document.images.length")
        charts = page.evaluate("document.querySelectorAll('svg.chart').length")
        other_svgs = page.evaluate("document.querySelectorAll('svg:not(.chart)').length")
        text = page.inner_text("body")
        title = page.title()
    dialogs, requests = opened.dialogs, opened.requests

    assert pwned == "undefined"
    assert scripts == 0
    assert handlers == 0
    assert images == 0
    assert charts == 2 and other_svgs == 0
    assert dialogs == []
    assert requests == [page_file.as_uri()], "the report loads nothing but itself"
    for payload in (SCRIPT, IMG, SVG, ALERT):
        assert payload in text, f"{payload!r} must show literally"
    assert SCRIPT in title
