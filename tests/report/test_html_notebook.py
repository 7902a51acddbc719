"""Every public result type shows as HTML in Jupyter, through guardrail.report.notebook: inline,
as tall as its content, its CSS scoped to the output and its markup checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from guardrail.core.types import MetricResult, PolicyVerdict, RunRecord
from guardrail.report.html import render_html
from guardrail.report.inline_html import ALLOWED, ROOT, ROOT_CLASS, UnsafeMarkup, inline, scope_css
from guardrail.report.notebook import FRAME_HEIGHT, shown
from tests.report.conftest import make_record
from tests.report.large_records import many_groups_record
from tests.report.test_hostile_strings import PAYLOADS, hostile_record

PAYLOAD = "<script>window.__pwned=1</script>"
OPEN = f'<div class="{ROOT_CLASS}"><style>'
KINDS = ["RunRecord", "AuditResult", "MetricResult", "PolicyVerdict", "RuleOutcome"]


def _inline(output: str) -> str:
    """The markup of an inline view, after its scoped stylesheet."""
    assert output.startswith(OPEN) and output.endswith("</div>"), output[:80]
    return output.split("</style>", 1)[1].replace("<wbr>", "")


def _stylesheet(output: str) -> str:
    return output[len(OPEN) : output.index("</style>")]


def _results(record: RunRecord) -> dict[str, Any]:
    metric = next(m for m in record.metrics() if m.by_group)
    return {
        "RunRecord": record,
        "AuditResult": record.results[0],
        "MetricResult": metric,
        "PolicyVerdict": record.verdict,
        "RuleOutcome": record.verdict.outcomes[0],
    }


@pytest.mark.parametrize("kind", KINDS)
def test_each_public_result_shows_inline_without_a_fixed_height(kind: str) -> None:
    output = _results(make_record(group_a=PAYLOAD, rule_id=PAYLOAD, message=PAYLOAD))[kind]._repr_html_()
    markup = _inline(output)
    assert "<iframe" not in output and "height:" not in output.split(">", 1)[0], "no frame, no fixed height"
    assert "<script" not in output.lower() and "&lt;script&gt;" in markup, "data stays text"
    assert "<!DOCTYPE" not in output and "<body" not in output and "<meta" not in output


@pytest.mark.parametrize("kind", KINDS)
def test_the_stylesheet_applies_only_inside_the_output(kind: str) -> None:
    css = _stylesheet(_results(make_record())[kind]._repr_html_())
    preludes = [p.strip() for p in re.findall(r"([^{}]+)\{", css)]
    rules = [p for p in preludes if not p.startswith("@")]
    assert len(rules) > 40 and all(s.strip().startswith(ROOT) for rule in rules for s in rule.split(","))
    assert "@page" not in css and "@import" not in css


def test_ids_are_prefixed_per_output_and_links_find_their_targets() -> None:
    first, second = make_record()._repr_html_(), make_record(name="another run")._repr_html_()
    ids = [re.findall(r' id="([^"]+)"', output) for output in (first, second)]
    assert ids[0] and not set(ids[0]) & set(ids[1]), "two reports in one notebook share no id"
    links = re.findall(r' href="#([^"]+)"', first) + re.findall(r' aria-labelledby="([^"]+)"', first)
    assert links and set(links) <= set(ids[0])
    prefix = ids[0][0].split("-", 1)[0]
    assert all(i.startswith(prefix + "-") for i in ids[0])


def test_metric_shows_every_group_with_size_and_reason() -> None:
    metric = next(m for m in make_record().metrics() if m.key == "fairness.tpr" and m.scope == "sex+race")
    page = _inline(metric._repr_html_())
    assert "fairness.tpr[sex+race]" in page
    for value in metric.by_group:
        assert value.group in page and f">{value.n}<" in page
    assert "below minimum size" in page and "no positive labels in this group" in page


def test_verdict_and_outcome_show_word_counts_and_rationale() -> None:
    verdict = make_record().verdict
    page = _inline(verdict._repr_html_())
    assert '<span class="word">INCOMPLETE</span>' in page, "a blocking error outcome"
    assert page.count("<tr>") == len(verdict.outcomes) + 1
    assert "Four-fifths rule for adverse impact." in page and "eu-ai-act-baseline" in page
    one = _inline(verdict.outcomes[1]._repr_html_())
    assert '<span class="word">PASS</span>' in one and "dp-diff" in one


def test_empty_verdict_says_so() -> None:
    assert "No policy rules were evaluated." in _inline(PolicyVerdict()._repr_html_())


def test_large_results_stay_bounded() -> None:
    record = many_groups_record(400)
    metric: MetricResult = record.results[0].metrics[1]
    assert len(metric.by_group) == 400
    assert len(metric._repr_html_().encode()) < 200_000
    assert len(record._repr_html_().encode()) < 400_000
    assert record._repr_html_().startswith(OPEN), "the large report passes the check: shown inline"


def test_every_section_of_a_hostile_report_passes_the_allow_list() -> None:
    """Fairness, explainability (tabular and text), privacy and federated sections, their charts
    and curves, with hostile text everywhere: every element and attribute they emit is allowed."""
    record = hostile_record(PAYLOADS[:6], compact=True)
    assert {r.auditor for r in record.results} >= {"fairness", "explainability", "privacy", "federated"}
    output = shown(render_html(record))
    assert output.startswith(OPEN) and "<svg" in output and "<polyline" in output and "<script" not in output.lower()
    assert ' viewBox="0 0 ' in output and " viewbox=" not in output, "SVG attributes keep their case"


PAGE = '<!DOCTYPE html><html><head><style>p {{ color: red }}</style></head><body><p>ok</p>{inject}</body></html>'


@pytest.mark.parametrize(
    "inject",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<img src="https://tracker.example/p.gif">',
        '<a href="javascript:alert(1)">x</a>',
        '<iframe srcdoc="x"></iframe>',
        '<svg><set attributeName="href" to="javascript:alert(1)"/></svg>',
        '<p style="background: url(https://tracker.example/p.gif)">x</p>',
        "<style>p { color: blue }</style>",
        "<form action=\"https://example.org\"><input></form>",
    ],
)
def test_markup_that_fails_the_check_is_shown_in_a_sandboxed_frame(inject: str) -> None:
    output = shown(PAGE.format(inject=inject))
    assert output.startswith('<iframe sandbox="" srcdoc="') and f"height:{FRAME_HEIGHT}px" in output
    assert output.count("<") == 2, "the page is escaped into srcdoc"


RAW_TEXT = ["noembed", "noframes", "xmp", "plaintext", "iframe", "noscript", "textarea", "title", "style", "script"]
"""Elements whose content a browser reads as raw text, not as markup (``title`` outside SVG)."""


@pytest.mark.parametrize("tag", RAW_TEXT)
def test_a_raw_text_element_cannot_smuggle_markup_in_an_attribute(tag: str) -> None:
    """To the parser the ``<img>`` is inside a ``title`` value; to a browser it ends the raw text and runs."""
    inject = f'<{tag}><p title="</{tag}><img src=x onerror=alert(1)>">'
    output = shown(PAGE.format(inject=inject))
    assert output.startswith('<iframe sandbox="" srcdoc="') and output.count("<") == 2
    assert tag not in ALLOWED or tag == "title", "title is allowed only inside <svg>"


@pytest.mark.parametrize(
    "inject",
    [
        '<p style="background:\\75 rl(https://evil.example/x.png)">x</p>',
        '<span style="background:\\75 rl(https://evil.example/x.png)">x</span>',
        '<span style="background:u\\rl(https://evil.example/x.png)">x</span>',
        '<p style="background:u\\rl(https://evil.example/x.png)">x</p>',
        '<span style="background: image-set(\'https://evil.example/x.png\' 1x)">x</span>',
        '<span style="width: expression(alert(1))">x</span>',
        '<span style="background: rgba(0,0,0,0.5); @import \'https://evil.example/a.css\'">x</span>',
        '<svg><rect fill="url(https://evil.example/p.svg#p)" width="1" height="1"/></svg>',
        '<svg><text x="1" y="2" fill="red;background:x">t</text></svg>',
        "<marquee>x</marquee>",
        '<p data-x="1">x</p>',
        '<p lang="en">x</p>',
        "<table><tr><td background=\"https://evil.example/x.png\">x</td></tr></table>",
        '<a href="#x" target="_top">x</a>',
        '<img src="#x" alt="">',
        "<svg><![CDATA[<img src=x onerror=alert(1)>]]></svg>",
        "<?xml-stylesheet href=\"https://evil.example/a.xsl\"?>",
    ],
)
def test_markup_outside_the_allow_list_is_shown_in_a_sandboxed_frame(inject: str) -> None:
    output = shown(PAGE.format(inject=inject))
    assert output.startswith('<iframe sandbox="" srcdoc="') and output.count("<") == 2, inject


@pytest.mark.parametrize(
    "css",
    [
        "p { background: \\75 rl(https://evil.example/x.png) }",
        "p { background: url(data:image/png;base64,AAAA) }",
        "p { background: image-set('https://evil.example/x.png' 1x) }",
        "@import 'https://evil.example/a.css'; p { color: red }",
        'p::before { content: "<!--<b>" }',
        "p { width: expression(alert(1)) }",
        "p { background: u/**/rl(https://evil.example/x.png) }",
    ],
)
def test_a_stylesheet_that_escapes_or_loads_anything_is_shown_in_a_sandboxed_frame(css: str) -> None:
    page = PAGE.format(inject="").replace("p { color: red }", css)
    assert css in page
    with pytest.raises(UnsafeMarkup):
        inline(page)
    assert shown(page).startswith('<iframe sandbox="" srcdoc="')


def test_tags_are_rebuilt_from_their_parsed_attributes_never_passed_through() -> None:
    inject = (
        "<p class='a\"b' title=x>1 < 2 & 3 > 0</p>"
        '<svg viewBox="0 0 10 10" role="img"><title>a <b>x</b></title><rect x=1 y=2 width=3 height=4 fill="#222"/></svg>'
    )
    output = inline(PAGE.format(inject=inject))
    assert '<p class="a&quot;b" title="x">1 &lt; 2 &amp; 3 > 0</p>' in output
    assert '<svg viewBox="0 0 10 10" role="img"><title>a <b>x</b></title>' in output, "an SVG title is no raw text"
    assert '<rect x="1" y="2" width="3" height="4" fill="#222"/></svg>' in output
    assert "'" not in output.split("</style>", 1)[1], "every value is written back in double quotes"


def test_the_check_lets_through_what_a_report_may_hold() -> None:
    fine = '<a href="https://eur-lex.europa.eu/eli/reg/2024/1689">Art. 10</a><img src="data:image/png;base64,AAAA" alt="">'
    output = shown(PAGE.format(inject=fine))
    assert output.startswith(OPEN) and fine in output
    assert shown(PAGE.format(inject="<p>a &amp; b &#60; c</p>")).endswith("<p>ok</p><p>a &amp; b &#60; c</p></div>")
    css = "@import url(https://x.example/a.css); p { color: red }"
    assert shown(PAGE.format(inject="").replace("p { color: red }", css)).startswith("<iframe")


def test_scoping_keeps_media_rules_and_strings_with_braces() -> None:
    css = 'td::before { content: "{ observed }"; } @media (max-width: 640px) { html body .x, :is(a, b) { margin: 0 } }'
    assert scope_css(css) == (
        '.guardrail-nb td::before { content: "{ observed }"; }\n'
        "@media (max-width: 640px) {\n.guardrail-nb .x, .guardrail-nb :is(a, b) { margin: 0 }\n}\n"
    )


@pytest.mark.browser
def test_in_a_browser_the_output_is_as_tall_as_its_content_and_restyles_nothing_else(tmp_path: Path) -> None:
    from tests.report.test_html_browser import opened_in_chromium

    record = make_record(group_a=PAYLOAD, rule_id=PAYLOAD, message=PAYLOAD)
    outputs = "".join(f'<div class="output">{value._repr_html_()}</div>' for value in _results(record).values())
    host = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>body { font-size: 13px; width: 960px }</style></head>'
        f'<body><table id="host"><tr><td>host cell</td></tr></table>{outputs}</body></html>'
    )
    (tmp_path / "notebook.html").write_text(host, encoding="utf-8")
    with opened_in_chromium(tmp_path / "notebook.html") as opened:
        assert opened.ran_nothing()
        sizes = opened.page.evaluate(
            "[...document.querySelectorAll('.output')].map(o => [o.getBoundingClientRect().height, o.scrollHeight])"
        )
        assert all(height >= 150 and abs(height - scrolled) <= 1 for height, scrolled in sizes), sizes
        assert sizes[0][0] > 1000, "the whole report, not a 720 px window onto it"
        host_cell = opened.page.evaluate("getComputedStyle(document.querySelector('#host td')).fontSize")
        assert host_cell == "13px", "the report's table style stays inside its outputs"
