"""Open a report full of HTML/script payloads in headless Chromium: nothing may run.

Needs Debian's ``chromium`` (``make test`` installs it). A missing browser fails this test
instead of skipping it, so that the check can never silently stop running.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

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
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    page_file = tmp_path / "report.html"
    page_file.write_text(render(hostile_record, "html"), encoding="utf-8")
    dialogs: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_timeout(200)
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
        finally:
            browser.close()

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
