"""Static checks of the HTML report: self-contained, escaped, sections in order."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from html.parser import HTMLParser

import pytest

from guardrail.core.types import AuditStatus, OutcomeStatus, PolicyVerdict, RuleOutcome, RunRecord, Severity
from guardrail.report import render
from guardrail.report.charts import Bar, ChartRow, bar_chart
from guardrail.report.html import breakable

CSP = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
)
PAYLOADS = (
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '"><svg onload=window.__pwned=1>',
    "' onmouseover='x",
)


def test_self_contained(record: RunRecord) -> None:
    page = render(record, "html")
    assert page.startswith("<!DOCTYPE html>")
    assert CSP in page
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(javascript|data):""", page, re.IGNORECASE)
    assert "@import" not in page and "url(" not in page
    assert "@media print" in page
    assert len(page.encode()) < 200_000, "aggregate only: the report must stay small"


def test_sections_in_order(record: RunRecord) -> None:
    page = render(record, "html")
    positions = [page.index(marker) for marker in ('id="verdict"', 'id="audits"', 'id="provenance"')]
    assert positions == sorted(positions)
    verdict = page[positions[0] : positions[1]]
    assert ">INCOMPLETE<" in verdict
    for status in ("pass", "fail", "inconclusive", "error", "skipped", "waived"):
        assert f'class="badge st-{status}"' in verdict


@pytest.mark.parametrize(
    ("fail_on", "expected"),
    [(Severity.DENY, "INCOMPLETE"), (Severity.WARN, "INCOMPLETE")],
)
def test_verdict_word(record: RunRecord, fail_on: Severity, expected: str) -> None:
    assert f'<span class="word">{expected}</span>' in render(record, "html", fail_on=fail_on)


def test_verdict_pass_and_fail(
    record_factory: Callable[..., RunRecord], outcome_factory: Callable[..., RuleOutcome]
) -> None:
    base = record_factory(outcomes=(outcome_factory("ok", OutcomeStatus.PASS),))
    ok_only = dataclasses.replace(base, results=tuple(r for r in base.results if r.status is AuditStatus.OK))
    assert '<span class="word">PASS</span>' in render(ok_only, "html")
    failing = dataclasses.replace(
        ok_only, verdict=PolicyVerdict(outcomes=(outcome_factory("bad", OutcomeStatus.FAIL),))
    )
    assert '<span class="word">FAIL</span>' in render(failing, "html")


def test_fairness_sections(record: RunRecord) -> None:
    page = render(record, "html")
    assert "Groups by <code>sex</code>" in page
    assert "Groups by <code>sex+race</code>" in page
    assert page.count("below minimum size</span>") == 1, "the small group is flagged once in its table"
    assert "no positive labels in this group" in page, "a None value shows its reason"
    assert "—<sup>1</sup>" in page
    assert '<td class="num">0.1000–0.3000</td>' in page, "the range alone, in a cell that never breaks"
    assert page.count("Intervals: 90%, bootstrap.") == 2, "the interval method is said once per disparity table"
    assert page.count('<svg class="chart"') == 2
    assert "<line" in page, "interval whiskers drawn"
    assert "ModelError" in page and "check that the model matches the data" in page
    assert 'role="alert"' in page
    for text in ("0123456789abcdef0123456789abcdef01234567", "guardrail run audits/credit.yaml", "c" * 64, "5200100"):
        assert text in page


def test_numbers_formatted(record: RunRecord) -> None:
    page = render(record, "html")
    assert ">0.2123<" in page and ">0.6000<" in page
    assert ">812<" in page, "counts are integers"
    assert "812.0" not in page


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_are_escaped_everywhere(record_factory: Callable[..., RunRecord], payload: str) -> None:
    record = record_factory(group_a=payload, scope=payload, rule_id=payload, message=payload,
                            error_message=payload, name=payload)
    page = render(record, "html")
    assert "<script" not in page.lower()
    parsed = _Parsed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert parsed.handlers == [], "no event-handler attribute may exist"
    assert parsed.svg_classes == {"chart"}, "only the report's own charts are SVG"
    assert parsed.text.count(payload) >= 8, "the payload shows as text wherever it was used"
    clean = _Parsed(render(record_factory(), "html"))
    assert parsed.tags <= clean.tags, "payloads add no element"
    assert parsed.attribute_names() <= clean.attribute_names(), "payloads add no attribute"


class _Parsed(HTMLParser):
    """Tags, attributes and text of a page, as a browser's tokenizer sees them."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.handlers: list[tuple[str, str]] = []
        self.svg_classes: set[str | None] = set()
        self.chunks: list[str] = []
        self.feed(page)
        self.close()
        self.text = "".join(self.chunks)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.append((tag, attrs))
        self.handlers += [(tag, name) for name, _ in attrs if name.startswith("on")]
        if tag == "svg":
            self.svg_classes.add(dict(attrs).get("class"))

    def attribute_names(self) -> set[str]:
        return {name for _tag, attrs in self.attrs for name, _value in attrs}

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def test_chart_escapes_labels() -> None:
    svg = bar_chart(
        [ChartRow(label="<b>&amp;", small=True, bars=(Bar(0.5), Bar(None, reason="<i>"), None))],
        ["A<", "B", "C"],
        title='t"itle',
    )
    assert "<b>" not in svg and "<i>" not in svg and "A<" not in svg
    assert "&lt;b&gt;&amp;amp;" in svg and "t&#34;itle" in svg


def test_chart_labels_stay_distinct_when_shortened() -> None:
    rows = [ChartRow(label="x" * 80 + suffix, small=False, bars=(Bar(0.1),)) for suffix in ("+White", "+Other")]
    svg = str(bar_chart(rows, ["A"], title="t"))
    labels = re.findall(r'<text class="label"[^>]*>([^<]*)</text>', svg)
    assert len(labels) == 2 and all("…" in label for label in labels)
    assert labels[0].endswith("+White") and labels[1].endswith("+Other")


def test_breakable_escapes() -> None:
    assert breakable("a.<b>_c") == "a.<wbr>&lt;b&gt;_<wbr>c"


def test_each_auditor_s_part_comes_from_the_section_table(record: RunRecord) -> None:
    """Every row of the section table names a template and macro that exist; an auditor the
    table does not list (a third party's) gets the generic section: parameters, note, metrics."""
    import jinja2

    from guardrail.core.types import AuditResult, MetricResult
    from guardrail.report.html import SECTIONS, _environment

    environment = _environment()
    for auditor, section in SECTIONS.items():
        module = environment.get_template(section.template).module
        assert callable(getattr(module, section.macro, None)), auditor
    third_party = AuditResult(
        "robustness-1", "acme-robustness", AuditStatus.OK,
        metrics=(MetricResult("acme.flip_rate", 0.125, scope="sex"),), params={"perturbations": 50},
        artifacts={"note": "Flips under a synonym swap."},
    )
    page = render(dataclasses.replace(record, results=(*record.results, third_party)), "html")
    part = page[page.index('id="audit-3"') :]
    assert "acme.<wbr>flip_<wbr>rate" in part and "0.1250" in part and "perturbations" in part and "Flips under a synonym swap." in part
    assert "<h4>Metrics</h4>" in part
    with pytest.raises(jinja2.TemplateNotFound):
        environment.get_template("_acme-robustness.html.j2")
