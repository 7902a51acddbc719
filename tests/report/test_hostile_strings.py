"""Every report format under hostile strings: more than 100 payloads, each placed in every
field that a user or a dataset controls, rendered to HTML, Markdown (summary and model card),
JUnit, SARIF and the JSON model card.

The fields: group labels (fairness, privacy, explanation by group), metric scopes (column
names), feature names (explanation importance, ranking, local drivers, proxy tables), words
(token heatmaps), audit ids, error messages and hints, the record's name, the spec's name and
command, file paths, policy names and paths, rule ids, metrics, expectations, messages,
reasons, rationales, references, waiver text and hospital names (federated section).

What must hold, per payload:

* HTML: no ``<script>`` (or other active) element, no ``on*`` attribute, no ``javascript:``
  URL, no comment or declaration that the template did not write; template syntax shows as
  text, never evaluated. A sample of three records that together hold every payload is
  opened in headless Chromium: no dialog, no request, nothing ran (marked ``browser``).
* Markdown: no raw HTML, link or image reaches a Markdown renderer, and every table row
  keeps its column count.
* JUnit: well-formed XML; the payload comes back exactly, with the characters XML 1.0
  forbids replaced by U+FFFD.
* SARIF: well-formed JSON, valid against the SARIF 2.1.0 schema; the payload comes back.
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from guardrail.core.scopes import hospital_scope
from guardrail.core.types import (
    AuditResult,
    AuditStatus,
    ErrorInfo,
    FileDigest,
    GroupValue,
    Interval,
    MetricResult,
    OutcomeStatus,
    PolicyInfo,
    PolicyVerdict,
    RunRecord,
    Severity,
    SourceLocation,
)
from guardrail.report import render
from tests.report.conftest import fairness_metrics, make_record, outcome
from tests.report.test_html_privacy import privacy_result

# -- the payloads ----------------------------------------------------------------------------------------------------

PAYLOADS: tuple[str, ...] = (
    # script and event handlers
    "<script>alert(1)</script>",
    "<SCRIPT SRC=http://127.0.0.1:9/x.js></SCRIPT>",
    "<script>window.__pwned=1</script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<script\x20type='text/javascript'>alert(1);</script>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="window.__pwned=1">',
    "<IMG SRC=javascript:alert('XSS')>",
    "<img src=http://127.0.0.1:9/pixel.gif>",
    "<body onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<iframe srcdoc='<script>alert(1)</script>'>",
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<video><source onerror=alert(1)>",
    "<audio src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<marquee onstart=alert(1)>",
    "<form action=javascript:alert(1)><button>go</button></form>",
    "<a href=javascript:alert(1)>click</a>",
    "<a href='jav&#x09;ascript:alert(1)'>x</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.domain)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "<base href=http://127.0.0.1:9/>",
    "<link rel=stylesheet href=http://127.0.0.1:9/x.css>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
    # breaking out of elements, attributes and raw text
    "</title><script>alert(1)</script>",
    "</textarea><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "</noscript><img src=x onerror=alert(1)>",
    "<plaintext>",
    "<xmp><script>alert(1)</script></xmp>",
    '" onmouseover="alert(1)',
    "' onmouseover='alert(1)",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    '" autofocus onfocus="alert(1)" x="',
    "` onmouseover=alert(1) `",
    "\" style=\"background:url(javascript:alert(1))",
    '"/><svg onload=alert(1)>',
    # SVG, MathML, CSS
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=javascript:alert(1)><text>x</text></a></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math href=javascript:alert(1)>x</math>",
    "<style>*{background:url(http://127.0.0.1:9/css)}</style>",
    "<style>@import 'http://127.0.0.1:9/i.css';</style>",
    "expression(alert(1))",
    "x{}</style><img src=x onerror=alert(1)>",
    # template syntax
    "{{7*7}}",
    "{{ config.items() }}",
    "{% for x in range(9) %}{{x}}{% endfor %}",
    "{% raw %}{{7*7}}{% endraw %}",
    "{#comment#}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{''.__class__.__mro__[1].__subclasses__()}}",
    "{{constructor.constructor('alert(1)')()}}",
    # Markdown breakers
    "a|b|c",
    "| --- | --- |",
    "`code`",
    "```\nfenced\n```",
    "[x](javascript:alert(1))",
    "[x]: javascript:alert(1)",
    "![](http://127.0.0.1:9/pixel.png)",
    "![x](javascript:alert(1))",
    "<http://127.0.0.1:9/autolink>",
    "**bold** _em_ ~~strike~~",
    "# heading",
    "> quote",
    "- [ ] task",
    "\\|\\`escaped already\\`",
    "line one\n| injected | row |",
    "&lt;script&gt; &amp; &#60;b&#62;",
    # comments, CDATA, XML
    "<!-- comment",
    "--><script>alert(1)</script>",
    "<![CDATA[<script>alert(1)</script>]]>",
    "]]>",
    "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>&e;",
    '<?xml-stylesheet href="http://127.0.0.1:9/x.xsl"?>',
    "&e; &amp &#0; &#xD800;",
    # characters XML 1.0 forbids, controls, bidi
    "nul\x00byte",
    "bell\x07 escape\x1b[31mred\x1b[0m",
    "vt\x0bff\x0cdel\x7f",
    "\x01\x02\x03\x04\x05\x06\x08\x0e\x0f\x10\x1f",
    "\ufffe\uffff noncharacters",
    "\u202egnp.exe",
    "\u2066isolate\u2069 \u202alre\u202c \u200f rtl mark",
    "\u200b\u200c\u200d\ufeff zero width",
    # newlines and whitespace
    "line1\nline2",
    "cr\rlf\r\ncrlf",
    "para\u2028line\u2029sep",
    "\ttab\t",
    "   ",
    "",
    # long strings
    "A" * 5000,
    "<script>alert(1)</script>" * 200,
    "|" * 500,
    # unicode
    "Zoë Ångström — Ελληνικά — Кириллица",
    "العربية עברית",
    "中文 日本語 한국어",
    "👩🏽‍⚕️🏥🧬",
    "e\u0301\u0301\u0301 combining",
    "＜script＞alert(1)＜/script＞",
    "\U0001d4e2\U0001d4ec\U0001d4fb\U0001d4f2\U0001d4f9\U0001d4fd",
    # path-like and format strings
    "../../../etc/passwd",
    "C:\\Windows\\System32\\cmd.exe",
    "%s%s%s%n %x {0} {name!r}",
    "'; DROP TABLE runs; --",
    "=cmd|' /C calc'!A0",
)

# the inert ones that the HTML page must show literally (whitespace and length survive rendering)
SHOWN_LITERALLY = (
    "{{7*7}}",
    "{% for x in range(9) %}{{x}}{% endfor %}",
    "${7*7}",
    "<script>alert(1)</script>",
    '" onmouseover="alert(1)',
    "]]>",
)
IDS = [f"p{index:03d}" for index in range(len(PAYLOADS))]


def test_there_are_at_least_100_distinct_payloads() -> None:
    assert len(set(PAYLOADS)) == len(PAYLOADS) >= 100
    assert set(SHOWN_LITERALLY) <= set(PAYLOADS)


# -- a record with the payloads in every field a user or a dataset controls ---------------------------------------


def _explain_result(payloads: Sequence[str], *, text: bool) -> AuditResult:
    """An explainability audit whose features (or words), sensitive columns and groups are the payloads."""
    method = "integrated_gradients"
    metrics: list[MetricResult] = []
    for rank, name in enumerate(payloads):
        metrics.append(
            MetricResult(
                f"explain.{method}.importance",
                0.5 / (rank + 1),
                scope=name,
                ci=Interval(0.1 / (rank + 1), 0.9 / (rank + 1)),
                n=100,
                by_group=(GroupValue(f"{name}={name}", 0.3, 40), GroupValue(f"{name}=other", 0.2, 12, small=True)),
            )
        )
        metrics.append(
            MetricResult(
                f"explain.{method}.faithfulness_gap",
                0.1,
                scope=name,
                by_group=(GroupValue(name, 0.7, 40), GroupValue("other", None, 5, small=True, reason=name)),
            )
        )
    metrics += [
        MetricResult(f"explain.{method}.faithfulness", 0.6, ci=Interval(0.5, 0.7), n=100),
        MetricResult("explain.proxy.sensitive_in_top_k", 1.0, details={"in_top_k": list(payloads), "top_k": 5}),
        MetricResult("explain.proxy.proxy_in_top_k", 1.0, details={"in_top_k": list(payloads), "top_k": 5}),
        MetricResult("explain.coverage", 1.0, details={"explained": 100, "requested": 100}),
    ]
    artifacts: dict[str, Any] = {
        "ranking": {method: list(payloads)},
        "local": [
            {
                "row": name,
                "outcome": name,
                "groups": {name: name},
                "score": 0.7,
                "top": {method: [{"feature": name, "value": name, "attribution": 0.2}, {"feature": "x", "value": 1, "attribution": -0.1}]},
            }
            for name in payloads
        ],
        "proxy": {
            "threshold": 0.1,
            "strongest": {name: {"feature": name, "nmi": 0.4} for name in payloads},
            "associations": [{"feature": name, "sensitive": name, "nmi": 0.4} for name in payloads],
        },
    }
    if text:
        artifacts["heatmap"] = {
            "method": method,
            "documents": [
                {"caption": name, "tokens": [{"gap": " ", "token": name, "weight": 0.8}, {"gap": name, "token": "ok", "weight": -0.5}]}
                for name in payloads
            ],
        }
    audit_id = f"explain-{'text' if text else 'tabular'}-{payloads[0]}"
    return AuditResult(audit_id, "explainability", AuditStatus.OK, metrics=tuple(metrics), artifacts=artifacts)


def _federated_result(payloads: Sequence[str]) -> AuditResult:
    """A federated audit whose hospitals (and their sites, failure reasons and notes) are named by the payloads."""
    names = [*payloads, "hungary"]  # at least two hospitals, one of them ordinary
    rounds = [
        {
            "round": r,
            "aggregated": True,
            "seconds": 3.5,
            "epsilon_max": 1.0 + r,
            "hospitals": {
                name: (
                    {"status": "failed", "reason": name}
                    if r == 2 and name != "hungary"
                    else {"status": "ok", "num_examples": 200, "train_loss": 0.69, "steps": 7, "accuracy": 0.6, "test_examples": 70}
                )
                for name in names
            },
        }
        for r in (1, 2)
    ]
    artifacts = {
        "provenance": f"Recorded history. {payloads[0]}",
        "run": {"engine": "simulation", "strategy": "fedavg", "rounds_done": 2, "rounds_planned": 3,
                "stopped_reason": payloads[0], "seconds": 21.7},
        "settings": {"rounds": 3, "local_epochs": 1, "batch_size": 32, "lr": 0.001, "optimizer": "adam",
                     "model": payloads[0], "min_group_size": 30,
                     "dp": {"noise_multiplier": 1.0, "delta": 1e-5, "max_grad_norm": 1.0, "accountant": "rdp"},
                     "max_epsilon": 9.0},
        "privacy": {"delta": 1e-5, "accountant": "rdp", "max_epsilon": 9.0},
        "hospitals": [
            {"name": name, "sites": [name, "Site"], "train_rows": 228, "test_rows": 76, "epsilon": 3.9,
             "epsilon_reason": None, "epsilon_recorded": 3.9, "accuracy": 0.54, "accuracy_ci": [0.42, 0.66],
             "accuracy_round": 1, "test_examples": 76, "rounds_ok": 1}
            for name in names
        ],
        "series": {
            name: {"round": [1, 2], "status": ["ok", "failed" if name != "hungary" else "ok"], "epsilon": [2.0, 3.9],
                   "accuracy": [0.5, None], "fairness_gap": [None, 0.1], "fairness_gap_reason": [name, None]}
            for name in names
        },
        "fairness_gap": {"metric": "equalized_odds_difference", "attribute": payloads[0],
                         "federation": {"round": [1, 2], "value": [0.0, 0.1], "reason": [None, None]}},
        "fairness_round": 2,
        "rounds": rounds,
        "policy": [],
        "ledgers": {
            name: {"entries": [{"round": 1, "noise_multiplier": 1.0, "sample_rate": 0.14, "steps": 7, "epsilon": 3.9}],
                   "file": name, "matches": None}
            for name in names
        },
        "notes": list(payloads),
        "stopped_reason": payloads[0],
    }
    metrics = tuple(
        MetricResult("federated.epsilon", 3.9, scope=hospital_scope(name), details={"accountant": "rdp"}) for name in names
    )
    return AuditResult("federated", "federated", AuditStatus.OK, metrics=metrics, artifacts=artifacts)


def _privacy_result(payload: str) -> AuditResult:
    result = privacy_result(group=payload)
    artifacts = dict(result.artifacts)
    artifacts["ledger"] = {**artifacts["ledger"], "notes": [payload], "stopped_reason": payload}
    artifacts["dp_audit"] = {**artifacts["dp_audit"], "message": payload}
    return dataclasses.replace(result, audit_id=f"privacy-{payload}", artifacts=artifacts)


def _privacy_groups(result: AuditResult, payloads: Sequence[str]) -> AuditResult:
    """``result`` with one group per payload (the first group's values) beside the ordinary one."""
    metrics = []
    for metric in result.metrics:
        if metric.by_group:
            first, *rest = metric.by_group
            groups = tuple(dataclasses.replace(first, group=p) for p in payloads)
            details = dict(metric.details)
            if "members_nonmembers" in details:
                details["members_nonmembers"] = {**{p: [143, 30] for p in payloads}, "Male": [501, 108]}
            metric = dataclasses.replace(metric, by_group=(*groups, *rest), details=details)
        metrics.append(metric)
    return dataclasses.replace(result, metrics=tuple(metrics))


STATUSES = (OutcomeStatus.FAIL, OutcomeStatus.WAIVED, OutcomeStatus.INCONCLUSIVE, OutcomeStatus.ERROR, OutcomeStatus.PASS)
COMPACT_METRICS = ("fairness.selection_rate", "fairness.demographic_parity_ratio")


def hostile_record(payloads: Sequence[str], *, compact: bool = False) -> RunRecord:
    """A run whose every user- or data-controlled text is one of ``payloads``.

    ``compact``: the same fields, with fewer copies of each (a page for the browser stays small): two
    fairness metrics per payload, one privacy audit with every payload as a group, two outcomes per payload.
    """
    base = make_record()
    results: list[AuditResult] = []
    outcomes = []
    for index, p in enumerate(payloads):
        fairness = (
            *fairness_metrics(p, {p: (0.4, 812), "reference": (0.6, 1204)}),
            *fairness_metrics(f"{p}+race", {f"{p}+White": (0.4, 640), f"{p}+Other": (None, 12)}),
        )
        results.append(
            AuditResult(
                audit_id=p,
                auditor="fairness",
                status=AuditStatus.OK,
                metrics=tuple(m for m in fairness if m.key in COMPACT_METRICS and "+" not in (m.scope or ""))
                if compact
                else fairness,
                params={"sensitive_features": [[p]], "min_group_size": 30},
                duration_s=1.0,
            )
        )
        results.append(
            AuditResult(
                audit_id=f"crashed {p}",
                auditor="explainability",
                status=AuditStatus.ERROR,
                error=ErrorInfo(type="ModelError", message=p, hint=p),
                duration_s=0.5,
            )
        )
        if not compact:
            results.append(_privacy_result(p))
        for status in STATUSES[:2] if compact else STATUSES:
            waived = status is OutcomeStatus.WAIVED
            outcomes.append(
                outcome(
                    p,
                    status,
                    severity=Severity.WARN if status is OutcomeStatus.INCONCLUSIVE else Severity.DENY,
                    policy=p,
                    metric=f"fairness.demographic_parity_ratio[{p}]",
                    reason=f"waived:{p}" if waived else p,
                    expected=p,
                    # a waiver's text is appended to the outcome's message by the policy engine
                    message=f"{p} Waived by {p} until 2099-01-01: {p}" if waived else p,
                    rationale=p,
                    reference=p,
                    location=SourceLocation(path=p, line=index + 1),
                )
            )
    if compact:
        results.append(_privacy_groups(_privacy_result(payloads[0]), payloads))
    results += [_explain_result(payloads, text=False), _explain_result(payloads, text=True), _federated_result(payloads)]
    name = " ".join(payloads)
    return dataclasses.replace(
        base,
        name=name,
        spec_path=payloads[0],
        spec={"name": name, "description": payloads[-1], "audits": [{"id": p, "auditor": "fairness"} for p in payloads]},
        results=tuple(results),
        verdict=PolicyVerdict(
            outcomes=tuple(outcomes),
            policies=tuple(PolicyInfo(name=p, path=p, sha256="b" * 64, rules=len(STATUSES)) for p in payloads),
        ),
        provenance=dataclasses.replace(
            base.provenance,
            command=f"guardrail run {payloads[0]}",
            files=(FileDigest(role="data", path=payloads[0], sha256="d" * 64, bytes=10),),
        ),
    )


# -- HTML ------------------------------------------------------------------------------------------------------------

ACTIVE_TAGS = frozenset(
    "script iframe frame frameset object embed applet img image picture video audio source track input button form "
    "textarea select base link meta noscript plaintext xmp template portal math foreignobject animate set "
    "handler listener a".split()
)
"""Elements a report never needs from data (the template's own ``<meta charset>`` and links are counted apart)."""

URL_ATTRIBUTES = frozenset("href src xlink:href action formaction poster data srcset background codebase lowsrc dynsrc".split())


class _Elements(HTMLParser):
    """Every start tag with its attributes, every comment, declaration and processing instruction, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.other: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.other.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.other.append(f"decl {decl!r}")

    def unknown_decl(self, data: str) -> None:
        self.other.append(f"unknown {data!r}")

    def handle_pi(self, data: str) -> None:
        self.other.append(f"pi {data!r}")


def _parsed(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser


def _scheme(value: str) -> str:
    """The URL's scheme as a browser reads it: entities decoded, whitespace and controls ignored."""
    return re.sub(r"[\x00-\x20\x7f]+", "", value).lower().partition(":")[0]


@pytest.fixture(scope="module")
def template_html() -> _Elements:
    """What the template writes by itself: the page of the same record with a plain word in every field."""
    return _parsed(render(hostile_record(["plain"]), "html"))


def html_problems(page: str, template: _Elements) -> list[str]:
    parsed = _parsed(page)
    found = []
    allowed_tags = {tag for tag, _ in template.tags}
    template_urls = {(tag, name, value) for tag, attrs in template.tags for name, value in attrs if name in URL_ATTRIBUTES}
    for tag, attrs in parsed.tags:
        if tag in ACTIVE_TAGS and tag not in allowed_tags:
            found.append(f"<{tag}> element")
        if tag == "svg" and "chart" not in (dict(attrs).get("class") or ""):
            found.append(f"<svg> that is not a chart: {attrs}")
        for name, value in attrs:
            if name.startswith("on"):
                found.append(f"<{tag} {name}=...> event handler")
            if name in URL_ATTRIBUTES and value is not None and (
                _scheme(value) in {"javascript", "vbscript", "data"}
                or (_scheme(value) in {"http", "https", "file", "ftp"} and (tag, name, value) not in template_urls)
            ):
                found.append(f"<{tag} {name}={value!r}>")
            if name == "style" and value is not None and re.search(r"url\(|expression|javascript|@import", value, re.I):
                found.append(f"<{tag} style={value!r}>")
    if parsed.other != template.other:
        found.append(f"comments or declarations from data: {sorted(set(parsed.other) - set(template.other))[:3]}")
    if [t for t, _ in parsed.tags].count("style") != [t for t, _ in template.tags].count("style"):
        found.append("a <style> element from data")
    return found


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_html_keeps_every_payload_inert(payload: str, template_html: _Elements) -> None:
    page = render(hostile_record([payload]), "html")
    assert html_problems(page, template_html) == []


def test_the_html_check_can_fail(template_html: _Elements) -> None:
    """The checks above catch what they look for: a page with the payloads unescaped fails each of them."""
    page = render(make_record(), "html").replace(
        "</body>",
        "<script>x</script><img src=x onerror=y><a href=' java\tscript:z'>a</a><svg onload=1></svg><!-- c -->"
        "<div style='background:url(http://x)'></div></body>",
    )
    problems = " ".join(html_problems(page, template_html))
    for expected in ("<script>", "<img>", "onerror", "java\\tscript", "<svg> that is not a chart", "comment", "style="):
        assert expected in problems


def test_template_syntax_and_markup_show_as_text() -> None:
    record = hostile_record(SHOWN_LITERALLY)
    text = "".join(_parsed(render(record, "html")).text)
    for payload in SHOWN_LITERALLY:  # {{7*7}} and ${7*7} shown, never evaluated
        assert payload in text, f"{payload!r} must show literally"


# -- Markdown (the summary and the model card) -------------------------------------------------------------------


def _markdown_it() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def _unescaped_pipes(line: str) -> int:
    count, escaped = 0, False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            count += 1
    return count


def _tables(text: str) -> list[list[str]]:
    """The GFM tables: runs of lines that start with ``|`` (outside code fences)."""
    tables: list[list[str]] = []
    fence: str | None = None
    current: list[str] = []
    for line in text.split("\n"):
        if fence is None and re.match(r"^(`{3,}|~{3,})", line):
            fence = re.match(r"^(`{3,}|~{3,})", line).group(1)  # type: ignore[union-attr]
        elif fence is not None and line.startswith(fence) and line.strip() == fence:
            fence = None
            continue
        if fence is None and line.startswith("|"):
            current.append(line)
            continue
        if current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def markdown_problems(text: str) -> list[str]:
    found = []
    tokens = _markdown_it().parse(text)
    stack = list(tokens)
    while stack:
        token = stack.pop()
        stack.extend(token.children or ())
        if token.type in ("html_inline", "html_block"):
            found.append(f"raw HTML {token.content[:60]!r}")
        if token.type in ("link_open", "image", "autolink_open"):
            found.append(f"{token.type} {token.attrs}")
    for table in _tables(text):
        columns = {_unescaped_pipes(row) for row in table}
        if len(columns) != 1:
            found.append(f"table rows with different column counts: {sorted(columns)}")
    return found


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_markdown_keeps_every_payload_text(payload: str) -> None:
    record = hostile_record([payload])
    summary = render(record, "markdown")
    assert markdown_problems(summary) == []
    rows = _tables(summary)[0][2:]
    assert len(rows) == len(record.verdict.outcomes), "a payload added or removed a table row"
    assert markdown_problems(render(record, "card-md")) == []
    json.loads(render(record, "card-json"))


def test_the_markdown_check_can_fail() -> None:
    broken = "| a | b |\n| --- | --- |\n| x | y | z |\n\n<img src=x> [x](http://e) ![](http://e)\n"
    problems = " ".join(markdown_problems(broken))
    for expected in ("column counts", "raw HTML", "link_open", "image"):
        assert expected in problems


# -- JUnit -----------------------------------------------------------------------------------------------------------

_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """``text`` as it can stand in XML 1.0: the characters XML forbids become U+FFFD."""
    return _NOT_XML_CHAR.sub("\ufffd", text)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_junit_is_well_formed_and_round_trips_every_payload(payload: str) -> None:
    record = hostile_record([payload])
    root = ET.fromstring(render(record, "junit").encode("utf-8"))
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == f"guardrail: {_xml(record.name)}"
    cases = list(suite.iter("testcase"))
    failed = [c for c in cases if c.find("failure") is not None and c.get("classname") == _xml(payload)]
    assert failed, "the failing outcome is a testcase of its policy"
    assert failed[0].get("name") == _xml(f"{payload} fairness.demographic_parity_ratio[{payload}]")
    failure = failed[0].find("failure")
    assert failure is not None and failure.get("message") == _xml(payload)
    for field in ("rationale", "reference", "expected") if payload else ("expected",):  # an empty rationale is left out
        assert f"{field}: {_xml(payload)}" in (failure.text or ""), field
    (crashed,) = [c for c in cases if c.find("error") is not None and c.get("classname") == "audit"]
    error = crashed.find("error")
    assert error is not None and error.get("message") == _xml(payload)
    if payload:  # an empty hint is left out
        assert f"{_xml(payload)}\nhint: {_xml(payload)}" in (error.text or "")


def test_junit_element_text_keeps_a_carriage_return() -> None:
    payload = "cr\rlf\r\ncrlf"
    root = ET.fromstring(render(hostile_record([payload]), "junit").encode("utf-8"))
    errors = [e for e in root.iter("error") if e.get("message") == payload]
    assert errors and all(payload in (e.text or "") for e in errors)
    assert any(f"{payload}\nhint: {payload}" in (e.text or "") for e in errors)


# -- SARIF -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_validator() -> Any:
    """The SARIF 2.1.0 schema that tests/report/test_sarif.py validates against."""
    import gzip

    import jsonschema

    from tests.report.test_sarif import SCHEMA_FILE

    return jsonschema.Draft4Validator(json.loads(gzip.decompress(SCHEMA_FILE.read_bytes())))


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_sarif_is_valid_and_round_trips_every_payload(payload: str, sarif_validator: Any) -> None:
    record = _nul_free_locations(hostile_record([payload]))  # see test_sarif_renders_a_location_path_holding_nul
    log = json.loads(render(record, "sarif"))
    assert sorted(sarif_validator.iter_errors(log), key=str) == []
    (run,) = log["runs"]
    results = run["results"]
    assert {r["ruleId"] for r in results} == {payload}
    assert any(r["message"]["text"].startswith(payload) or payload in r["message"]["text"] for r in results)
    (waived,) = [r for r in results if r.get("suppressions")]
    assert payload in waived["suppressions"][0]["justification"]


def _nul_free_locations(record: RunRecord) -> RunRecord:
    outcomes = tuple(
        dataclasses.replace(o, location=dataclasses.replace(o.location, path=o.location.path.replace("\x00", "\ufffd")))
        if o.location is not None
        else o
        for o in record.verdict.outcomes
    )
    return dataclasses.replace(record, verdict=dataclasses.replace(record.verdict, outcomes=outcomes))


def test_sarif_renders_a_location_path_holding_nul(sarif_validator: Any) -> None:
    payload = "nul\x00byte"
    log = json.loads(render(hostile_record([payload]), "sarif"))
    assert sorted(sarif_validator.iter_errors(log), key=str) == []


# -- in a real browser -----------------------------------------------------------------------------------------------


BROWSER_LENGTH = 1000
"""Longest payload opened in the browser."""


@pytest.mark.browser
def test_one_page_holding_every_payload_runs_nothing_in_chromium(tmp_path: Path, template_html: _Elements) -> None:
    """One browser launch (several seconds each) for every payload in every field, with the details opened;
    each payload was also parsed on a page of its own above.

    The payloads of thousands of characters are parsed above but left out here: Chromium takes over a
    minute to lay out a page holding one unbroken 5,000-character label (a layout cost, not an escape)."""
    from tests.report.test_html_browser import opened_in_chromium

    record = hostile_record([p for p in PAYLOADS if len(p) <= BROWSER_LENGTH], compact=True)
    page = render(record, "html")
    assert html_problems(page, template_html) == []
    page_file = tmp_path / "report.html"
    page_file.write_text(page, encoding="utf-8", errors="replace")
    with opened_in_chromium(page_file, open_details=True) as opened:
        ran_nothing = opened.ran_nothing()
        handlers = opened.page.evaluate(
            "Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes)"
            ".some(a => a.name.startsWith('on'))).length"
        )
        active = opened.page.evaluate("document.querySelectorAll('iframe, frame, object, embed, base, form, input').length")
        links = opened.page.evaluate(
            "Array.from(document.querySelectorAll('[href], [src], [action]')).map(e => e.getAttribute('href') "
            "|| e.getAttribute('src') || e.getAttribute('action')).filter(u => /^\\s*(javascript|vbscript|data):/i.test(u))"
        )
        text = opened.page.inner_text("body")
        title = opened.page.title()
    assert ran_nothing, f"a payload ran (dialogs: {opened.dialogs})"
    assert (handlers, active, links) == (0, 0, [])
    assert opened.requests == [page_file.as_uri()], "the report loads nothing but itself"
    for payload in SHOWN_LITERALLY:
        assert payload in text, f"{payload!r} must show literally"
    assert PAYLOADS[0] in title
