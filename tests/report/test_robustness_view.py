"""The robustness audit's part of the report (``use: robustness``): built from hand-made results
that keep the auditor's contract (metric keys, scopes, details, artifacts), rendered by the
report's own render path, and judged by the real policy engine for the finding sentences.

Two audits: a tabular one (counterfactual on sex, numeric noise at three strengths) and a text
one (identity terms swapped, typos, an inapplicable units probe, notes rewritten in four
hospitals' styles). Every share and interval is computed here from the counts (Clopper–Pearson
bounds from the beta quantiles), then checked on the page as the report formats it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from html import unescape
from typing import Any

import pytest

from guardrail.core.types import AuditResult, AuditStatus, GroupValue, Interval, MetricResult, RunRecord
from guardrail.policy.engine import Policy, evaluate
from guardrail.report import render
from guardrail.report.data_view import heat_style
from guardrail.report.finding_sentences import describe, robustness_undefined
from guardrail.report.findings import findings
from guardrail.report.html import render_html
from guardrail.report.inline_html import ROOT_CLASS
from guardrail.report.notebook import shown
from guardrail.report.robustness_view import diff_words, robustness_covers, robustness_view, summary
from guardrail.spec.models import PolicySpec, RuleSpec
from tests.report.conftest import make_record
from tests.report.test_data_view import cp

CP = "Clopper–Pearson (exact binomial)"
BOOT = "percentile bootstrap"
PAIRED = "paired bootstrap"
SCRIPT = "<script>window.__pwned=1</script>"
ONERROR = '"onerror=alert(1)'
LONG_WORD = "W" * 400

# tabular: rows and decisions that change when sex is set to the other value
CF = {"Female": (1000, 40), "Male": (2000, 52)}
STRENGTHS = (0.05, 0.1, 0.2)
NOISE = {0.05: {"Female": 10, "Male": 12}, 0.1: {"Female": 25, "Male": 30}, 0.2: {"Female": 60, "Male": 70}}
"""Decisions that change when the numeric features move by the strength × their spread."""
DROP = {0.05: (0.001, -0.002, 0.004), 0.1: (0.004, 0.001, 0.007), 0.2: (0.012, 0.007, 0.017)}
"""Accuracy drop (value, low, high) at each strength."""

# text: documents with an identity term, and those whose decision changes when the terms are swapped
TEXT_GROUPS = ("Female", SCRIPT)
DOCS = {"Female": 400, SCRIPT: 400}
TERMS = {"Female": (120, 18), SCRIPT: (120, 11)}
TYPOS = {"Female": 20, SCRIPT: 15}
SITES = ("Cleveland", "Hungary", "Switzerland", "VA Long Beach")
STYLES = {"Cleveland": "prose", "Hungary": "telegraphic", "Switzerland": "bulleted", "VA Long Beach": "templated"}
HELD_OUT = {"Cleveland": 60, "Hungary": 58, "Switzerland": 25, "VA Long Beach": 40}
PAIR_FLIPS = {  # (patient's site, style of): decisions that differ from the own-style note
    ("Cleveland", "Hungary"): 6, ("Cleveland", "Switzerland"): 4, ("Cleveland", "VA Long Beach"): 3,
    ("Hungary", "Cleveland"): 5, ("Hungary", "Switzerland"): 7, ("Hungary", "VA Long Beach"): 2,
    ("Switzerland", "Cleveland"): 2, ("Switzerland", "Hungary"): 3, ("Switzerland", "VA Long Beach"): 1,
    ("VA Long Beach", "Cleveland"): 8, ("VA Long Beach", "Hungary"): 6, ("VA Long Beach", "Switzerland"): 4,
}  # fmt: skip
ANY_STYLE = {"Cleveland": 9, "Hungary": 10, "Switzerland": 4, "VA Long Beach": 12}
"""Held-out patients whose decision changes in at least one other site's style."""
NO_UNITS = "no document contains a measurement with a unit"


def _ci(x: int, n: int) -> Interval:
    low, high = cp(x, n)
    return Interval(low, high, 0.95, CP)


def _rate(key: str, scope: str, counts: dict[str, tuple[int, int]], **details: Any) -> MetricResult:
    """A flip rate of groups given as (rows, changed), its overall share and interval."""
    n = sum(c[0] for c in counts.values())
    x = sum(c[1] for c in counts.values())
    groups = tuple(GroupValue(g, k / m, m, ci=_ci(k, m)) for g, (m, k) in counts.items())
    return MetricResult(f"robustness.{key}", x / n, scope=scope, ci=_ci(x, n), by_group=groups, n=n, higher_is_better=False,
                        details={"rows": n, **details})  # fmt: skip


def _gap(key: str, scope: str, counts: dict[str, tuple[int, int]], ci: tuple[float, float], **details: Any) -> MetricResult:
    rates = {g: k / m for g, (m, k) in counts.items()}
    low, high = min(rates, key=lambda g: rates[g]), max(rates, key=lambda g: rates[g])
    groups = tuple(GroupValue(g, k / m, m, ci=_ci(k, m)) for g, (m, k) in counts.items())
    return MetricResult(
        f"robustness.{key}", rates[high] - rates[low], scope=scope, ci=Interval(*ci, 0.95, "simultaneous pairwise bootstrap"),
        by_group=groups, n=sum(c[0] for c in counts.values()), higher_is_better=False,
        details={"aggregation": "difference", "min_group": low, "max_group": high, **details},
    )  # fmt: skip


def tabular_result() -> AuditResult:
    cf = {"probe": "counterfactual", "attribute": "sex", "values": ["Female", "Male"]}
    metrics = [
        _rate("counterfactual_flip_rate", "sex", CF, **cf),
        _gap("counterfactual_flip_rate_difference", "sex", CF, (0.0, 0.027), **cf),
        MetricResult("robustness.counterfactual_score_change", 0.021, scope="sex", ci=Interval(0.019, 0.023, 0.95, BOOT), n=3000,
                     by_group=(GroupValue("Female", 0.03, 1000, ci=Interval(0.027, 0.033, 0.95, BOOT)),
                               GroupValue("Male", 0.0165, 2000, ci=Interval(0.015, 0.018, 0.95, BOOT))), details={**cf, "rows": 3000}),
    ]  # fmt: skip
    curve = []
    for s in STRENGTHS:
        counts = {g: (CF[g][0], NOISE[s][g]) for g in CF}
        scope = f"sex/strength={s:g}"
        rate = _rate("perturbation_flip_rate", scope, counts, probe="perturbation", strength=s)
        value, low, high = DROP[s]
        metrics += [
            rate,
            _gap("perturbation_flip_rate_difference", scope, counts, (0.0, 0.03), probe="perturbation", strength=s),
            MetricResult("robustness.accuracy_drop", value, scope=scope, ci=Interval(low, high, 0.95, PAIRED), n=3000,
                         details={"probe": "perturbation", "strength": s, "rows": 3000}),
        ]  # fmt: skip
        assert rate.ci is not None
        curve.append({"grouping": "sex", "strength": s, "overall": rate.value, "ci": [rate.ci.low, rate.ci.high],
                      "by_group": [{"group": g.group, "value": g.value, "ci": [g.ci.low, g.ci.high] if g.ci else None, "n": g.n}
                                   for g in rate.by_group]})  # fmt: skip
    artifacts = {
        "probes": [{"probe": "counterfactual", "kind": "tabular", "scope": "sex", "rows": 3000, "applicable": 3000,
                    "label": "sex set to each other value"},
                   {"probe": "perturbation", "kind": "tabular", "scope": "sex", "rows": 3000, "applicable": 3000,
                    "label": "numeric features moved by 0.05, 0.1 and 0.2 × their spread"}],
        "curve": curve,
        "counterfactual_pairs": [{"attribute": "sex", "from": "Female", "to": "Male", "flip_rate": 0.04, "n": 1000},
                                 {"attribute": "sex", "from": "Male", "to": "Female", "flip_rate": 0.026, "n": 2000}],
        "examples": [{"probe": "counterfactual", "scope": "sex", "row": 1234, "group": "Female", "before": "", "after": "",
                      "changes": [{"feature": "sex", "before": "Female", "after": "Male"},
                                  {"feature": "note" + SCRIPT, "before": ONERROR, "after": LONG_WORD}],
                      "decision_before": "<=50K", "decision_after": ">50K", "score_before": 0.48, "score_after": 0.53}],
        "sample": {"rows": 3000, "of": 30162, "seed": 7},
        "scoring": {"inputs": 21000, "batches": 21, "seconds": 3.2},
        "notes": [],
    }  # fmt: skip
    return AuditResult("robust-tabular", "robustness", AuditStatus.OK, metrics=tuple(metrics), artifacts=artifacts,
                       params={"strengths": list(STRENGTHS)}, duration_s=4.0)  # fmt: skip


def text_result() -> AuditResult:
    swap = "sex/swap=terms"
    cover = {g: (DOCS[g], TERMS[g][0]) for g in TEXT_GROUPS}
    typos = {g: (DOCS[g], TYPOS[g]) for g in TEXT_GROUPS}
    metrics = [
        _rate("counterfactual_flip_rate", swap, {g: TERMS[g] for g in TEXT_GROUPS}, probe="counterfactual"),
        _rate("coverage", swap, cover, probe="counterfactual"),
        MetricResult("robustness.counterfactual_score_change", None, scope=swap, reason="the model gives no scores",
                     details={"probe": "counterfactual", "rows": 240}),
        _rate("perturbation_flip_rate", "sex/perturbation=typos", typos, probe="perturbation", perturbation="typos"),
        _rate("coverage", "sex/perturbation=typos", {g: (DOCS[g], DOCS[g]) for g in TEXT_GROUPS}, probe="perturbation", perturbation="typos"),
        MetricResult("robustness.accuracy_drop", 0.011, scope="sex/perturbation=typos", ci=Interval(0.004, 0.018, 0.95, PAIRED), n=800,
                     by_group=(GroupValue("Female", 0.015, 400, ci=Interval(0.005, 0.025, 0.95, PAIRED)),
                               GroupValue(SCRIPT, 0.007, 400, ci=Interval(-0.002, 0.016, 0.95, PAIRED))),
                     details={"probe": "perturbation", "perturbation": "typos", "rows": 800}),
        MetricResult("robustness.perturbation_flip_rate", None, scope="sex/perturbation=units", reason=NO_UNITS,
                      details={"probe": "perturbation", "perturbation": "units", "rows": 0}),
        MetricResult("robustness.site_style_flip_rate", sum(ANY_STYLE.values()) / sum(HELD_OUT.values()), scope="site",
                     ci=_ci(sum(ANY_STYLE.values()), sum(HELD_OUT.values())), n=sum(HELD_OUT.values()),
                     by_group=tuple(GroupValue(s, ANY_STYLE[s] / HELD_OUT[s], HELD_OUT[s], ci=_ci(ANY_STYLE[s], HELD_OUT[s])) for s in SITES),
                     details={"probe": "site_style", "rows": sum(HELD_OUT.values())}),
    ]  # fmt: skip
    cells = []
    for (site, style_of), x in PAIR_FLIPS.items():
        n = HELD_OUT[site]
        metrics.append(MetricResult("robustness.site_style_flip_rate", x / n, scope=f"site={site}/style={style_of}", ci=_ci(x, n), n=n,
                                    details={"probe": "site_style", "rows": n, "site": site, "style_of": style_of, "style": STYLES[style_of]}))  # fmt: skip
        low, high = cp(x, n)
        cells.append({"site": site, "style_of": style_of, "value": x / n, "ci": [low, high], "n": n})
    before = f"He said {SCRIPT} and his {LONG_WORD} was fine. " + "Unchanged filler words go here. " * 30 + "The end."
    after = before.replace("He said", "She said").replace("his", "her")
    artifacts = {
        "probes": [{"probe": "counterfactual", "kind": "text", "scope": swap, "rows": 800, "applicable": 240,
                    "label": "identity terms swapped (he↔she, …)"}],
        "site_style": {"sites": list(SITES), "styles": STYLES, "cells": cells},
        "examples": [{"probe": "counterfactual", "scope": swap, "row": 17, "group": SCRIPT, "before": before, "after": after,
                      "changes": [], "decision_before": "negative", "decision_after": "positive", "score_before": None, "score_after": None}],
        "sample": {"rows": 800, "of": 800, "seed": 0},
        "notes": ["units: " + NO_UNITS],
    }  # fmt: skip
    return AuditResult("robust-text", "robustness", AuditStatus.OK, metrics=tuple(metrics), artifacts=artifacts, duration_s=9.0)


RULES = [
    RuleSpec(id="ROB-CF", metric="robustness.counterfactual_flip_rate[sex]", op="le", threshold=0.02, rationale="why"),
    RuleSpec(id="ROB-GAP", metric="robustness.counterfactual_flip_rate_difference[sex]", op="le", threshold=0.01, rationale="why"),
    RuleSpec(id="ROB-DROP", metric="robustness.accuracy_drop[sex/perturbation=typos]", op="le", threshold=0.02, rationale="why"),
    RuleSpec(id="ROB-SITE", metric="robustness.site_style_flip_rate[site=VA Long Beach/style=Cleveland]", op="le", threshold=0.1,
             rationale="why"),
    RuleSpec(id="ROB-UNITS", metric="robustness.perturbation_flip_rate[sex/perturbation=units]", op="le", threshold=0.05,
             rationale="why"),
]  # fmt: skip


def robustness_record(*results: AuditResult) -> RunRecord:
    chosen = results or (tabular_result(), text_result())
    spec = PolicySpec(schema_version=1, kind="policy", name="robustness-baseline", rules=tuple(RULES))
    verdict = evaluate([Policy(spec, "robustness.yaml", "0")], list(chosen))
    return dataclasses.replace(make_record(), results=chosen, verdict=verdict)


def _text(fragment: str) -> str:
    """Visible text of an HTML fragment (a sentence), tags dropped, entities kept, spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", fragment.replace("<wbr>", ""))).strip()


def _cells(fragment: str) -> str:
    """Visible text of table cells, a space where a tag was (``<wbr>`` dropped), spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment.replace("<wbr>", ""))).strip()


def _audit(page: str, number: int) -> str:
    start = page.index(f'id="audit-{number}"')
    end = page.find('id="audit-', start + 10)
    return page[start : end if end > 0 else page.index('id="provenance"')]


@pytest.fixture(scope="module")
def page() -> str:
    return render(robustness_record(), "html")


def _pct(x: int, n: int, digits: int = 1) -> str:
    return f"{x / n * 100:.{digits}f}"


# -- the summary sentences ---------------------------------------------------------------------------------------


def test_the_section_leads_with_one_sentence_per_probe(page: str) -> None:
    tabular = _audit(page, 1)
    found = _text(tabular[tabular.index('<ul class="findings">') :].split("</ul>")[0])
    low, high = cp(92, 3000)
    assert (f"{92 / 3000:.1%}", f"{low:.1%}", f"{high:.1%}") == ("3.1%", "2.5%", "3.7%")
    assert found.startswith(
        "Setting sex to another value changes 3.1% of decisions (95% CI 2.5–3.7%): 4.0% of Female rows against 2.6% of Male rows."
    )
    low, high = cp(130, 3000)
    assert (f"{130 / 3000:.1%}", f"{low:.1%}", f"{high:.1%}") == ("4.3%", "3.6%", "5.1%")
    assert found.endswith(
        "When the numeric features move by 0.2 of their spread, 4.3% of decisions change (95% CI 3.6–5.1%): "
        "6.0% of Female rows against 3.5% of Male rows; accuracy drops by 1.2 percentage points (95% CI 0.70–1.7 points)."
    )
    assert "0.05 of their spread" not in found, "the curve's other strengths are in its table, not the summary"
    text = _audit(page, 2)
    said = [_text(s) for s in text[text.index('<ul class="findings">') :].split("</ul>")[0].split("<li>")[1:]]
    low, high = cp(29, 240)
    assert (f"{29 / 240:.0%}", f"{low:.1%}", f"{high:.0%}") == ("12%", "8.2%", "17%")
    assert said[0] == (
        "With identity terms swapped, 12% of the 240 documents that contain one get another decision (95% CI 8.2–17%): "
        "15% of Female documents against 9.2% of &lt;script&gt;window.__pwned=1&lt;/script&gt; documents; "
        "30% of documents contain an identity term."
    )
    assert said[1].startswith("With typos, 4.4% of decisions change (95% CI ")
    assert said[1].endswith("; accuracy drops by 1.1 percentage points (95% CI 0.40–1.8 points).")
    assert said[2] == "No document contains a measurement with a unit: the perturbation probe (units) by sex is inconclusive."
    low, high = cp(35, 183)
    assert (f"{35 / 183:.0%}", f"{12 / 40:.0%}") == ("19%", "30%")
    assert unescape(said[3]) == (
        f"Written in another hospital's style, 19% of held-out patients' decisions change (95% CI {low * 100:.0f}–{high * 100:.0f}%); "
        "most for VA Long Beach's patients (30%, 40 patients)."
    )
    assert len(said) == 4, "one sentence per headline metric: no site pair, no coverage, no gap"


def test_a_probe_that_applies_to_nothing_is_inconclusive_not_zero() -> None:
    metric = MetricResult("robustness.counterfactual_flip_rate", None, scope="sex/swap=terms",
                          reason="no document contains an identity term of the lexicon", details={"probe": "counterfactual", "rows": 0})  # fmt: skip
    assert describe(metric) is None
    assert "".join(s.text for s in robustness_undefined(metric)) == (
        "No document contains an identity term of the lexicon: the counterfactual probe by sex is inconclusive."
    )
    assert summary([metric], lambda s: "".join(x.text for x in s)) == (
        "No document contains an identity term of the lexicon: the counterfactual probe by sex is inconclusive.",
    )


def test_rule_outcomes_on_robustness_metrics_read_in_their_units() -> None:
    said = {f.outcome.rule_id: f.text for t in findings(robustness_record()) for r in t.rules for f in r.findings}
    assert said["ROB-CF"] == (
        "Setting sex to another value changes 3.1% of decisions (95% CI 2.5–3.7%): 4.0% of Female rows against 2.6% of Male rows; "
        "the rule requires at most 2.0%."
    )
    assert said["ROB-GAP"] == (
        "When sex is set to another value, Female's decisions change 1.4 percentage points more often than Male's "
        "(95% CI 0–2.7 points; 4.0% vs 2.6%); the rule requires at most 1.0 points."
    )
    assert said["ROB-DROP"] == (
        "With typos, accuracy drops by 1.1 percentage points (95% CI 0.40–1.8 points) on the 800 documents probed; "
        "the rule requires at most 2.0 points, which holds."
    )
    low, high = cp(8, 40)
    assert said["ROB-SITE"] == (
        f"Written in Cleveland's style, 20% of VA Long Beach's held-out patients get another decision than in their own site's style "
        f"(95% CI {low * 100:.1f}–{high * 100:.0f}%; 40 patients); the rule requires at most 10%."
    )
    assert said["ROB-UNITS"].startswith("No evidence for robustness.perturbation_flip_rate[sex/perturbation=units]: ")
    assert said["ROB-UNITS"].endswith(f"({NO_UNITS}); the rule cannot pass without it (it requires at most 5.0%).")


# -- the evidence --------------------------------------------------------------------------------------------------


def test_the_counterfactual_table_shows_each_group_with_intervals_and_the_value_pairs(page: str) -> None:
    part = _audit(page, 1)
    table = part[part.index("Counterfactual: setting sex to another value") :].split("</table>")[0]
    low, high = cp(40, 1000)
    assert _cells(table[table.index(">Female<") + 1 :].split("</tr>")[0]).split() == [
        "Female", "1000", "4.0%", f"{low * 100:.1f}–{high * 100:.1f}%", "0.03", "0.027–0.033"]  # fmt: skip
    assert f"Intervals — flip rate: 95%, {CP}; mean |Δscore|: 95%, {BOOT}; gap: 95%, simultaneous pairwise bootstrap." in table, "each column's method, said once"
    pairs = part[part.index('class="robustness-pairs"') :].split("</table>")[0]
    assert _cells(pairs.split("<tbody>")[1]).split() == ["Female", "Male", "4.0%", "1,000", "Male", "Female", "2.6%", "2,000"]
    gaps = part[part.index('class="disparities"') :].split("</table>")[0]
    assert "1.4 points" in gaps and "0–2.7 points" in gaps


def test_text_counterfactual_shows_coverage_and_why_the_score_is_missing(page: str) -> None:
    part = _audit(page, 2)
    table = part[part.index('class="robustness-counterfactual"') :].split("</table>")[0]
    overall = _cells(table[table.index('class="overall">') + 16 :].split("</tr>")[0])
    low, high = cp(29, 240)
    assert overall.startswith(f"All documents with an identity term 240 12% {low * 100:.1f}–{high * 100:.0f}% — the model gives no scores")
    assert "30%" in overall, "coverage: 240 of 800 documents"
    assert "&lt;script&gt;" in table and SCRIPT not in table


def test_the_noise_curve_is_a_chart_with_whiskers_and_the_same_numbers_in_a_table(page: str) -> None:
    part = _audit(page, 1)
    svg = part[part.index('<svg class="chart line"') :].split("</svg>")[0]
    assert svg.count("<polyline") == 3, "all rows, Female, Male"
    assert svg.count("<circle") == 9 and svg.count("<line x1") >= 9, "a point and a whisker per strength and line"
    assert "strength (share of the spread)" in svg and "decisions changed" in svg
    for s in ("0.05", "0.1", "0.2"):
        assert f">{s}</text>" in svg
    table = part[part.index('class="robustness-curve"') :].split("</table>")[0]
    rows = [_cells(r).split() for r in table.split("<tbody>")[1].split("</tr>")[:-1]]
    assert [r[0] for r in rows] == ["0.05", "0.1", "0.2"]
    bounds = [cp(130, 3000), cp(60, 1000), cp(70, 2000)]
    assert rows[2] == ["0.2", "4.3%", *(f"{lo * 100:.1f}–{hi * 100:.1f}%" for lo, hi in bounds[:1]), "6.0%",
                       *(f"{lo * 100:.1f}–{hi * 100:.1f}%" for lo, hi in bounds[1:2]), "3.5%",
                       *(f"{lo * 100:.1f}–{hi * 100:.1f}%" for lo, hi in bounds[2:]),
                       "2.5", "points", "0–3.0", "points", "1.2", "points", "0.70–1.7", "points"]  # fmt: skip
    assert "n=1,000" in table and "n=2,000" in table


def test_text_perturbations_are_a_table_of_perturbation_by_group(page: str) -> None:
    part = _audit(page, 2)
    table = part[part.index('class="robustness-text"') :].split("</table>")[0]
    rows = [_cells(r) for r in table.split("<tbody>")[1].split("</tr>")[:-1]]
    assert [r.split()[0] for r in rows] == ["typos", "typos", "typos", "units"]
    assert rows[0].startswith("typos All documents 800 4.4%") and "1.1 points" in rows[0] and "100%" in rows[0]
    assert rows[1].startswith("typos Female 400 5.0%") and "1.5 points" in rows[1]
    assert "units All documents" in rows[3] and NO_UNITS in rows[3]


def test_the_site_style_matrix_writes_each_share_in_its_cell_shaded_by_it(page: str) -> None:
    part = _audit(page, 2)
    table = part[part.index('class="robustness-sites"') :].split("</table>")[0]
    header = _cells(table.split("<thead>")[1].split("</thead>")[0])
    assert header.startswith("Patients of in Cleveland’s style prose in Hungary’s style telegraphic")
    va = table[table.index(">VA Long Beach<") :].split("</tr>")[0]
    cells = re.findall(r'<td class="num[^"]*"(?: style="([^"]*)")? title="([^"]*)">(.*?)</td>', va)
    assert len(cells) == 4
    low, high = cp(8, 40)
    style, title, text = cells[0]
    assert style == heat_style(8 / 40) and _cells(text) == f"20% {low * 100:.1f}–{high * 100:.0f}%, n=40"
    assert title == "VA Long Beach&#39;s patients written in Cleveland&#39;s style: 20% change decision, n=40"
    assert _cells(cells[3][2]) == "own style", "the diagonal: their own site's style"
    assert "30%" in _text(va.split("</td>")[-2]), "any other style: 12 of 40"
    assert f"Intervals — cells: 95%, {CP}; any other style: 95%, {CP}." in table, "the artifact's intervals are the metrics'"


def test_examples_mark_the_changed_words_and_escape_everything(page: str) -> None:
    part = _audit(page, 2)
    example = part[part.index("Examples of changed decisions") :]
    assert "<del>He</del>" in example and "<ins>She</ins>" in example
    assert "<del>his</del>" in example and "<ins>her</ins>" in example
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in example and "<script" not in page.lower()
    assert "<pre>" in example and LONG_WORD in example, "a long word stays whole in a wrapping <pre>"
    assert "filler …</pre>" in example, "the long unchanged end is cut"
    assert "decision <span class=\"nw\">negative → positive</span>" in example
    tabular = _audit(page, 1)
    changes = tabular[tabular.index('class="robustness-changes"') :].split("</table>")[0]
    assert "&#34;onerror=alert(1)" in changes and ONERROR not in changes
    assert "score <span class=\"nw\">0.4800 → 0.5300</span>" in tabular


def test_diff_words_escapes_each_piece_and_keeps_the_whitespace() -> None:
    before, after = diff_words("a  <b>\tc", "a  <i>\tc")
    assert before == "a  <del>&lt;b&gt;</del>\tc" and after == "a  <ins>&lt;i&gt;</ins>\tc"
    long_before, long_after = diff_words(" ".join(f"w{i}" for i in range(200)) + " x", " ".join(f"w{i}" for i in range(200)) + " y")
    assert long_before.startswith("… ") and long_before.endswith("<del>x</del>") and "w0 " not in long_before
    assert long_after.endswith("<ins>y</ins>")


def test_nothing_the_section_shows_is_repeated_in_a_metrics_table(page: str) -> None:
    for number in (1, 2):
        part = _audit(page, number)
        assert "<h4>Other metrics</h4>" not in part and "<h4>Metrics</h4>" not in part
    result = text_result()
    assert all(robustness_covers(m) for m in result.metrics) and all(robustness_covers(m) for m in tabular_result().metrics)
    assert not robustness_covers(MetricResult("robustness.something_new", 0.1, scope="sex"))


def test_an_audit_with_only_an_unknown_metric_falls_back_to_the_generic_table() -> None:
    odd = AuditResult("robust-odd", "robustness", AuditStatus.OK, metrics=(MetricResult("robustness.something_new", 0.5, scope="sex"),))
    assert robustness_view(odd) is None
    part = _audit(render(robustness_record(odd), "html"), 1)
    assert "<h4>Metrics</h4>" in part and "robustness.something_new[sex]" in part.replace("<wbr>", "")


def test_the_notebook_shows_the_section_inline_through_the_allow_list() -> None:
    output = shown(render_html(robustness_record()))
    assert output.startswith(f'<div class="{ROOT_CLASS}"><style>'), "passes the allow-list: shown inline, not in a frame"
    assert "<del>" in output and "<ins>" in output and "<polyline" in output and "<script" not in output.lower()


def test_the_model_card_says_what_the_robustness_audits_found() -> None:
    record = robustness_record()
    card = json.loads(render(record, "card-json"))
    audits = card["evaluation"]["robustness_audits"]
    assert [a["audit_id"] for a in audits] == ["robust-tabular", "robust-text"]
    assert audits[0]["summary"][0].startswith("Setting sex to another value changes 3.1% of decisions (95% CI 2.5–3.7%)")
    assert audits[1]["notes"] == ["units: " + NO_UNITS]
    markdown = render(record, "card-md")
    assert "### Robustness audit robust-text" in markdown and "is inconclusive." in markdown
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert json.loads(render(make_record(), "card-json"))["evaluation"]["robustness_audits"] == []
