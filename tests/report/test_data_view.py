"""The data audit's part of the report (``use: data``): built from a hand-made result that keeps
the data audit's contract (metric keys, scopes, details, artifacts), rendered by the report's
own render path, and judged by the real policy engine for the finding sentences.

Every number is computed here from the row counts (shares, Clopper–Pearson bounds by
:func:`scipy.special.betaincinv`, the beta quantiles, gaps), then checked on the page as the report formats it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from scipy.special import betaincinv

from guardrail.core.scopes import scope_part
from guardrail.core.types import AuditResult, AuditStatus, GroupValue, Interval, MetricResult, RunRecord
from guardrail.policy.engine import Policy, evaluate
from guardrail.report import render
from guardrail.report.data_view import data_view, heat_style
from guardrail.report.finding_sentences import describe, sentence
from guardrail.report.findings import findings
from guardrail.spec.models import PolicySpec, RuleSpec
from tests.report.conftest import make_record

CP = "Clopper–Pearson (exact binomial)"
BOX = "Clopper–Pearson, Bonferroni over the groups"
BOOT = "percentile bootstrap"
LEVEL = 0.95
NO_REFERENCE = (
    "no reference (training) data was given: shift between training and audit data and audit rows "
    "leaked from training were not examined (set params.reference_data or params.reference_column)"
)
SCRIPT = "<script>window.__pwned=1</script>"

SEX = {"Female": 194, "Male": 726}
POPULATION = {"Female": 0.51, "Male": 0.49}
CENSUS = "US Census 1990"
HOSPITALS = {"Cleveland": 303, "Hungary": 294, "Switzerland": 123, "VA Long Beach": 200}
MISSING = {  # rows missing each column, per hospital (the UCI heart-disease sites)
    "ca": {"Cleveland": 4, "Hungary": 291, "Switzerland": 118, "VA Long Beach": 198},
    "chol": {"Cleveland": 6, "Hungary": 8, "Switzerland": 20, "VA Long Beach": 170},
}
POSITIVE = {"Female": 50, "Male": 459}  # rows with the positive label (heart disease)
CELLS = {("Female", "Cleveland"): 97, ("Female", "Hungary"): 81, ("Female", "Switzerland"): 10, ("Female", "VA Long Beach"): 6,
         ("Male", "Cleveland"): 206, ("Male", "Hungary"): 213, ("Male", "Switzerland"): 113, ("Male", "VA Long Beach"): 194}  # fmt: skip
ROWS = sum(SEX.values())


def cp(x: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Clopper–Pearson bounds of ``x`` successes in ``n``, from the beta quantiles."""
    tail = (1 - level) / 2
    low = 0.0 if x == 0 else float(betaincinv(x, n - x + 1, tail))
    high = 1.0 if x == n else float(betaincinv(x + 1, n - x, 1 - tail))
    return low, high


def _ci(bounds: tuple[float, float], method: str = CP) -> Interval:
    return Interval(bounds[0], bounds[1], LEVEL, method)


def _shares(scope: str, sizes: dict[str, int]) -> MetricResult:
    total = sum(sizes.values())
    groups = tuple(GroupValue(g, n / total, n, n < 30, ci=_ci(cp(n, total))) for g, n in sizes.items())
    smallest = min(sizes, key=lambda g: sizes[g])
    box = [cp(n, total, 1 - (1 - LEVEL) / len(sizes)) for n in sizes.values()]
    return MetricResult(
        "data.group_share", sizes[smallest] / total, scope=scope, ci=_ci((min(b[0] for b in box), min(b[1] for b in box)), BOX),
        by_group=groups, n=total,
        details={"sensitive_features": scope.split("+"), "smallest_group": smallest, "small_groups": [g for g, n in sizes.items() if n < 30]},
    )  # fmt: skip


def _ratio() -> MetricResult:
    ratios = {g: n / ROWS / POPULATION[g] for g, n in SEX.items()}
    box = {g: cp(n, ROWS, 1 - (1 - LEVEL) / len(SEX)) for g, n in SEX.items()}
    groups = tuple(
        GroupValue(g, ratios[g], n, ci=_ci((cp(n, ROWS)[0] / POPULATION[g], cp(n, ROWS)[1] / POPULATION[g]))) for g, n in SEX.items()
    )
    low = (min(box[g][0] / POPULATION[g] for g in SEX), min(box[g][1] / POPULATION[g] for g in SEX))
    return MetricResult(
        "data.representation_ratio", min(ratios.values()), scope="sex", ci=_ci(low, BOX), by_group=groups, n=ROWS, higher_is_better=True,
        details={"population": POPULATION, "source": CENSUS, "lowest_group": "Female", "highest_group": "Male",
                 "highest_ratio": max(ratios.values())},
    )  # fmt: skip


def _small_cells() -> MetricResult:
    groups = tuple(GroupValue(f"{s}+{h}", float(n), n, n < 30) for (s, h), n in CELLS.items())
    return MetricResult(
        "data.small_cells", float(sum(n < 30 for n in CELLS.values())), scope="sex+hospital", by_group=groups, n=ROWS,
        higher_is_better=False, details={"cells": len(CELLS), "empty_cells": 0, "min_group_size": 30},
    )  # fmt: skip


def _gap(key: str, scope: str, rates: dict[str, float], sizes: dict[str, int], ci: tuple[float, float], kind: str) -> MetricResult:
    low, high = min(rates, key=lambda g: rates[g]), max(rates, key=lambda g: rates[g])
    rate = "base_rate" if key.startswith("data.base_rate") else "missing_rate"  # the engine's names for the fairness selection rate
    value = rates[high] - rates[low] if kind == "difference" else rates[low] / rates[high]
    groups = tuple(GroupValue(g, rates[g], sizes[g], ci=_ci(cp(round(rates[g] * sizes[g]), sizes[g]))) for g in rates)
    return MetricResult(
        key, value, scope=scope, ci=_ci(ci, "simultaneous pairwise bootstrap"), by_group=groups, n=sum(sizes.values()),
        higher_is_better=False if kind == "difference" else True,
        details={"based_on": [rate], "worst_rate": rate, "aggregation": kind, "min_group": low, "max_group": high, "min_group_size": 30},
    )  # fmt: skip


def _base_rates() -> list[MetricResult]:
    rates = {g: POSITIVE[g] / SEX[g] for g in SEX}
    overall = sum(POSITIVE.values()) / ROWS
    base = MetricResult(
        "data.base_rate", overall, scope="sex", ci=_ci(cp(sum(POSITIVE.values()), ROWS)), n=ROWS,
        by_group=tuple(GroupValue(g, rates[g], SEX[g], ci=_ci(cp(POSITIVE[g], SEX[g]))) for g in SEX), details={"min_group_size": 30},
    )  # fmt: skip
    return [
        base,
        _gap("data.base_rate_difference", "sex", rates, SEX, (0.3433, 0.4680), "difference"),
        _gap("data.base_rate_ratio", "sex", rates, SEX, (0.3447, 0.6021), "ratio"),
    ]


def _missingness(column: str = "chol") -> tuple[list[MetricResult], dict[str, Any]]:
    counts = {column if name == "chol" else name: by for name, by in MISSING.items()}
    metrics: list[MetricResult] = []
    order = sorted(counts, key=lambda f: -sum(counts[f].values()))
    gaps = {}
    for feature in order:
        rates = {h: counts[feature][h] / n for h, n in HOSPITALS.items()}
        scope = f"hospital/column={scope_part(feature)}"
        total = sum(counts[feature].values())
        metrics.append(MetricResult(
            "data.missing_rate", total / ROWS, scope=scope, ci=_ci(cp(total, ROWS)), n=ROWS, details={"column": feature},
            by_group=tuple(GroupValue(h, rates[h], n, ci=_ci(cp(counts[feature][h], n))) for h, n in HOSPITALS.items()),
        ))  # fmt: skip
        gap = _gap("data.missing_rate_difference", scope, rates, HOSPITALS, (0.0, 0.0), "difference")
        width = gap.value or 0.0
        gaps[feature] = dataclasses.replace(gap, ci=_ci((width - 0.055, min(width + 0.05, 1.0)), "simultaneous pairwise bootstrap"))
        metrics.append(gaps[feature])
    worst = max(gaps, key=lambda f: gaps[f].value or 0.0)
    cis = [g.ci for g in gaps.values() if g.ci is not None]
    metrics.append(MetricResult(
        "data.max_missing_rate_difference", gaps[worst].value, scope="hospital", n=ROWS, higher_is_better=False,
        ci=_ci((max(c.low for c in cis), max(c.high for c in cis)), "simultaneous pairwise bootstrap"),
        details={"worst_feature": worst, "features_with_missing": order},
    ))  # fmt: skip
    piece = {
        "scope": "hospital",
        "features": order,
        "groups": list(HOSPITALS),
        "rates": [[counts[f][h] / n for h, n in HOSPITALS.items()] for f in order],
        "group_n": list(HOSPITALS.values()),
    }
    return metrics, piece


PROXIES = [("ca", "hospital", 0.4512, 0.4133, 0.4907, 0.5523), ("chol", "hospital", 0.3121, 0.2804, 0.3466, 0.3801),
           ("thal", "sex", 0.1208, 0.0951, 0.1493, 0.0712), ("age", "sex", 0.0114, 0.0071, 0.0202, 0.0066)]  # fmt: skip
SHIFT = [("age", None, 0.2113, 0.1874, 0.2377, 48.2, 3.1e-09, 1.2e-08, True),
         ("chol", None, 0.0412, 0.0288, 0.0611, 9.8, 0.28, 0.56, False),
         ("age", "Female", 0.2561, 0.2019, 0.3144, 21.7, 0.0099, 0.0297, True),
         ("age", "Male", 0.1987, 0.1702, 0.2301, 30.1, 4.0e-05, 0.00016, True)]  # fmt: skip


def _proxies() -> tuple[list[MetricResult], dict[str, Any]]:
    metrics = [
        MetricResult("data.proxy_nmi", nmi, scope=f"{s}/column={scope_part(f)}", ci=_ci((lo, hi), BOOT), n=ROWS, higher_is_better=False,
                     details={"mi": mi, "bins": 10})
        for f, s, nmi, lo, hi, mi in PROXIES
    ]  # fmt: skip
    for sensitive in ("sex", "hospital"):
        mine = [p for p in PROXIES if p[1] == sensitive]
        top = max(mine, key=lambda p: p[2])
        metrics.append(MetricResult(
            "data.max_proxy_nmi", top[2], scope=sensitive, ci=_ci((max(p[3] for p in mine), max(p[4] for p in mine)), BOOT), n=ROWS,
            higher_is_better=False, details={"feature": top[0], "proxies": [p[0] for p in mine if p[2] >= 0.1], "threshold": 0.1},
        ))  # fmt: skip
    table = [{"feature": f, "sensitive": s, "nmi": nmi, "ci_low": lo, "ci_high": hi, "mi": mi} for f, s, nmi, lo, hi, mi in PROXIES]
    return metrics, {"threshold": 0.1, "bins": 10, "table": table}


def _shift() -> tuple[list[MetricResult], dict[str, Any]]:
    metrics = [
        MetricResult("data.shift_js", js, scope=f"column={f}", ci=_ci((lo, hi), BOOT), n=ROWS, higher_is_better=False,
                     details={"test": "chi-square test of homogeneity", "statistic": st, "dof": 9, "p_value": p, "p_adjusted": pa,
                              "shifted": shifted, "bins": 10})
        for f, g, js, lo, hi, st, p, pa, shifted in SHIFT if g is None
    ]  # fmt: skip
    by_sex = [s for s in SHIFT if s[1] is not None]
    metrics += [
        MetricResult("data.shift_js", max(s[2] for s in by_sex), scope="sex/column=age", n=ROWS, higher_is_better=False,
                     ci=_ci((max(s[3] for s in by_sex), max(s[4] for s in by_sex)), BOOT),
                     by_group=tuple(GroupValue(str(s[1]), s[2], SEX[str(s[1])], ci=_ci((s[3], s[4]), BOOT)) for s in by_sex),
                     details={"p_values": {s[1]: s[6] for s in by_sex}, "p_adjusted": {s[1]: s[7] for s in by_sex}}),
        MetricResult("data.max_shift_js", 0.2113, ci=_ci((0.1874, 0.2377), BOOT), n=ROWS, higher_is_better=False, details={"feature": "age"}),
        MetricResult("data.shifted_features", 1.0, n=ROWS, higher_is_better=False,
                     details={"features": ["age"], "alpha": 0.05, "threshold": 0.1, "correction": "holm"}),
        MetricResult("data.leaked_rows", 7 / ROWS, ci=_ci(cp(7, ROWS)), n=ROWS, higher_is_better=False, details={"leaked": 7, "rows": ROWS}),
    ]  # fmt: skip
    table = [
        {"feature": f, "scope": f"column={f}" if g is None else f"sex/column={f}", "group": g, "js": js, "ci_low": lo, "ci_high": hi,
         "statistic": st, "p_value": p, "p_adjusted": pa, "shifted": shifted}
        for f, g, js, lo, hi, st, p, pa, shifted in SHIFT
    ]  # fmt: skip
    return metrics, {"alpha": 0.05, "threshold": 0.1, "test": "chi-square test of homogeneity", "correction": "holm", "table": table}


def data_result(*, reference: bool = False, column: str = "chol", group: str = "Female") -> AuditResult:
    """A data audit of 920 rows by sex and hospital; ``column`` names the cholesterol column and
    ``group`` the female group (hostile names go there)."""
    missing, piece = _missingness(column)
    proxies, proxy_table = _proxies()
    metrics = [
        _shares("sex", SEX), _ratio(), _shares("hospital", HOSPITALS),
        _shares("sex+hospital", {f"{s}+{h}": n for (s, h), n in CELLS.items()}), _small_cells(), *_base_rates(),
        MetricResult("data.conflicting_labels", 12 / ROWS, ci=_ci(cp(12, ROWS)), n=ROWS, higher_is_better=False,
                     details={"conflicting_rows": 12, "rows": ROWS, "feature_groups_with_conflict": 5}),
        *missing, *proxies,
        MetricResult("data.duplicate_rows", 2 / ROWS, ci=_ci(cp(2, ROWS)), n=ROWS, higher_is_better=False, details={"duplicates": 2, "rows": ROWS}),
    ]  # fmt: skip
    shift_table = None
    notes = [NO_REFERENCE]
    if reference:
        shifted, shift_table = _shift()
        metrics += shifted
        notes = []
    if group != "Female":
        metrics = [_renamed(m, group) for m in metrics]
    artifacts = {
        "rows": ROWS, "reference": {"path": "data/train.csv", "sha256": "e" * 64, "rows": 3000} if reference else None,
        "features": ["age", "ca", column, "thal"], "sensitive": ["sex", "hospital"],
        "population": {"sex": {"shares": {group if g == "Female" else g: s for g, s in POPULATION.items()}, "source": CENSUS}},
        "missingness": [piece], "proxies": proxy_table, "shift": shift_table, "notes": notes,
    }  # fmt: skip
    return AuditResult("data-main", "data", AuditStatus.OK, metrics=tuple(metrics), artifacts=artifacts, params={"bootstrap": 1000})


def _renamed(metric: MetricResult, group: str) -> MetricResult:
    """``metric`` with the group Female named ``group`` (in its groups and its details)."""
    text = json.dumps(dict(metric.details)).replace('"Female', json.dumps(group)[:-1])
    by_group = tuple(dataclasses.replace(g, group=g.group.replace("Female", group)) for g in metric.by_group)
    return dataclasses.replace(metric, by_group=by_group, details=json.loads(text))


def _rule(rule_id: str, metric: str, op: str, threshold: float, **extra: Any) -> RuleSpec:
    return RuleSpec(id=rule_id, metric=metric, op=op, threshold=threshold, rationale="why", **extra)


RULES = [
    _rule("DATA-REP", "data.representation_ratio[sex]", "ge", 0.8),
    _rule("DATA-MISS", "data.missing_rate_difference[hospital/column=chol]", "le", 0.1),
    _rule("DATA-BASE", "data.base_rate_difference[sex]", "le", 0.1),
    _rule("DATA-CELLS", "data.small_cells[sex+hospital]", "le", 0),
    _rule("DATA-PROXY", "data.max_proxy_nmi[hospital]", "lt", 0.1),
    _rule("DATA-DUP", "data.duplicate_rows", "le", 0.01),
]


def data_record(result: AuditResult, rules: list[RuleSpec] | None = None) -> RunRecord:
    """The report tests' record, its audits replaced by ``result`` and judged by ``rules``."""
    spec = PolicySpec(schema_version=1, kind="policy", name="data-baseline", rules=tuple(rules or RULES))
    verdict = evaluate([Policy(spec, "data.yaml", "0")], [result])
    return dataclasses.replace(make_record(), results=(result,), verdict=verdict)


def _sentences(record: RunRecord) -> dict[str, str]:
    return {f.outcome.rule_id: f.text for t in findings(record) for r in t.rules for f in r.findings}


def _section(page: str) -> str:
    return page[page.index('id="audit-1"') : page.index('id="provenance"')]


def _text(fragment: str) -> str:
    """Visible text of an HTML fragment, a space where a tag was (``<wbr>`` dropped), entities kept."""
    return re.sub(r"<[^>]+>", " ", fragment.replace("<wbr>", ""))


def _row(table: str, group: str) -> list[str]:
    """The cells' words of the row of ``group`` (a row header) in ``table``."""
    start = table.index(f">{group}<") + 1
    return _text(group + "<" + table[start + len(group) :].split("</tr>")[0]).split()


# -- finding sentences --------------------------------------------------------------------------------------------


def test_a_failed_representation_rule_names_the_group_its_share_the_population_and_the_ratio() -> None:
    female = SEX["Female"] / ROWS
    low, high = cp(SEX["Female"], ROWS)
    assert (round(female * 100), round(low * 100), round(high * 100)) == (21, 18, 24)
    box = [cp(n, ROWS, 1 - 0.05 / 2) for n in SEX.values()]  # Bonferroni over the two groups
    ratio_low = min(b[0] / p for b, p in zip(box, POPULATION.values(), strict=True))
    ratio_high = min(b[1] / p for b, p in zip(box, POPULATION.values(), strict=True))
    assert (f"{female / 0.51:.3g}", f"{ratio_low:.3g}", f"{ratio_high:.3g}") == ("0.413", "0.356", "0.476")
    assert _sentences(data_record(data_result()))["DATA-REP"] == (
        "By sex, Female makes up 21% of the audit rows (95% CI 18–24%) against 51% of the population (US Census 1990): "
        "a ratio of 0.413 (95% CI 0.356–0.476); the rule requires at least 0.8."
    )


def test_a_failed_missingness_rule_names_the_column_both_groups_and_the_gap_in_points() -> None:
    va, cleveland = 170 / 200, 6 / 303
    gap = va - cleveland
    assert (round(va * 100), round(cleveland * 100, 1), round(gap * 100)) == (85, 2.0, 83)
    sentence = _sentences(data_record(data_result()))["DATA-MISS"]
    assert sentence == (
        "chol is missing for 85% of VA Long Beach's rows against 2.0% of Cleveland's "
        "(gap 83 points, 95% CI 78–88 points); the rule requires at most 10 points."
    )


def test_the_largest_gap_in_missingness_names_its_column_groups_and_rates_when_it_can() -> None:
    """Given the audit's other metrics (the page's findings pass them all), the largest gap names
    the column's groups and rates."""
    record = data_record(data_result(), [_rule("DATA-MISS", "data.max_missing_rate_difference[hospital]", "le", 0.1, on="worst")])
    (outcome,) = record.verdict.outcomes
    va, cleveland = 198 / 200, 4 / 303
    assert (round(va * 100), round(cleveland * 100, 1), round((va - cleveland) * 100)) == (99, 1.3, 98)
    related = {m.ref: m for m in record.results[0].metrics}
    assert "".join(s.text for s in sentence(outcome, related)) == (
        "By hospital, ca is missing for 99% of VA Long Beach's rows against 1.3% of Cleveland's: the largest gap of any column, "
        "98 percentage points (95% CI 92–100 points); the rule requires at most 10 points over the whole interval."
    )
    assert _sentences(record)["DATA-MISS"] == (
        "By hospital, ca is missing for 99% of VA Long Beach's rows against 1.3% of Cleveland's: the largest gap of any column, "
        "98 percentage points (95% CI 92–100 points); the rule requires at most 10 points over the whole interval."
    )


def test_base_rates_cells_proxies_and_duplicates_read_in_their_own_words() -> None:
    said = _sentences(data_record(data_result()))
    female, male = POSITIVE["Female"] / SEX["Female"], POSITIVE["Male"] / SEX["Male"]
    assert (round(female * 100), round(male * 100), round((male - female) * 100)) == (26, 63, 37)
    assert said["DATA-BASE"].startswith("By sex, Female's positive-label base rate is 37 percentage points below Male's (95% CI 34–47 points; 26% vs 63%)")
    assert said["DATA-CELLS"] == (
        "By sex+hospital, 2 of the 8 cells have fewer than 30 rows: Female+VA Long Beach (6 rows), Female+Switzerland (10 rows); "
        "the rule requires at most 0."
    )
    assert said["DATA-PROXY"] == (
        "Of the examined columns, ca carries the most information about hospital: normalised mutual information 0.451 "
        "(95% CI 0.413–0.491); 2 reach the proxy threshold of 0.1: ca, chol; the rule requires less than 0.1."
    )
    low, high = cp(2, ROWS)
    assert (f"{2 / ROWS:.2%}", f"{low:.2g}", f"{high:.2g}") == ("0.22%", "0.00026", "0.0078")
    assert said["DATA-DUP"] == (
        "0.22% of the audit rows (95% CI 0.026–0.78%) repeat an earlier audit row (2 of 920 rows); the rule requires at most 1.0%, which holds."
    )


def test_the_notebook_verdict_shows_counted_cells_as_a_count() -> None:
    from guardrail.core.types import Severity
    from guardrail.report.html import render_verdict_fragment

    record = data_record(data_result())
    page = render_verdict_fragment(record.verdict, record.judged(Severity.DENY))
    row = page[page.index("DATA-CELLS") :].split("</tr>")[0]
    assert re.search(r'<td class="num" title="required: [^"]*">2</td>', row), "2 cells, not 2.0000"


def test_every_data_metric_has_a_sentence_of_its_own() -> None:
    result = data_result(reference=True)
    for metric in result.metrics:
        said = describe(metric)
        assert said is not None, metric.ref
        text = "".join(s.text for s in said)
        assert text.endswith(".") and (said[0].kind != "text" or text[0].isupper()), text
    by_ref = {m.ref: "".join(s.text for s in describe(m) or ()) for m in result.metrics}
    assert by_ref["data.shift_js[sex/column=age]"] == (
        "By sex, age shifted most within Female: Jensen–Shannon distance 0.256 (95% CI 0.202–0.314; Holm-adjusted p = 0.03)."
    )
    assert by_ref["data.shifted_features"] == (
        "1 examined column shifted between the training and audit data "
        "(Holm-adjusted p below 0.05 and Jensen–Shannon distance at least 0.1): age."
    )
    assert by_ref["data.shift_js[column=age]"] == (
        "age's distribution differs between the training and audit data by a Jensen–Shannon distance of 0.211 "
        "(95% CI 0.187–0.238; chi-square test of homogeneity: p = 3.1e-09, Holm-adjusted p = 1.2e-08)."
    )
    assert by_ref["data.leaked_rows"].startswith("0.76% of the audit rows (95% CI ") and by_ref["data.leaked_rows"].endswith(
        " also occur in the training data (7 of 920 rows)."
    )


# -- the section ---------------------------------------------------------------------------------------------------


def test_the_section_leads_with_what_it_found_then_representation_against_the_population() -> None:
    page = render(data_record(data_result()), "html")
    part = _section(page)
    assert part.index("What the data audit found") < part.index("Representation by <code>sex</code>")
    assert "Population shares: US Census 1990." in part
    table = part[part.index("Representation by <code>sex</code>") :].split("</table>")[0]
    female = SEX["Female"] / ROWS
    low, high = cp(SEX["Female"], ROWS)
    ratio_low, ratio_high = low / POPULATION["Female"], high / POPULATION["Female"]
    assert _row(table, "Female") == ["Female", "194", f"{female:.4f}", f"{low:.4f}–{high:.4f}", "0.5100", f"{female / 0.51:.4f}",
                           f"{ratio_low:.4f}–{ratio_high:.4f}"]  # fmt: skip
    assert "Intervals: 95%, Clopper–Pearson (exact binomial)." in table
    box = [cp(n, ROWS, 1 - 0.05 / 2) for n in SEX.values()]
    smallest = f"Smallest group: Female, {female:.4f} of the rows; 95% interval {min(b[0] for b in box):.4f}–{min(b[1] for b in box):.4f} ({BOX})."
    assert smallest in part
    cells = part[part.index("Representation by <code>sex+hospital</code>") :].split("</table>")[1].split("<h4>")[0]
    assert "2 of the 8 cells of sex+hospital" in cells and "<strong>Female+VA Long Beach</strong> (6 rows)" in cells


def test_base_rates_by_group_with_intervals_and_their_gap() -> None:
    part = _section(render(data_record(data_result()), "html"))
    table = part[part.index("Label base rates by <code>sex</code>") :].split("Missing values by group")[0]
    for group in SEX:
        low, high = cp(POSITIVE[group], SEX[group])
        assert _row(table, group) == [group, str(SEX[group]), f"{POSITIVE[group] / SEX[group]:.4f}", f"{low:.4f}–{high:.4f}"]
    gap = POSITIVE["Male"] / SEX["Male"] - POSITIVE["Female"] / SEX["Female"]
    assert f"<td class=\"num\">{gap:.4f}</td><td class=\"num\">0.3433–0.4680</td>" in table


def test_the_missingness_heatmap_writes_each_rate_in_its_cell_coloured_by_it() -> None:
    part = _section(render(data_record(data_result()), "html"))
    heat = part[part.index('<table class="data-heatmap">') :].split("</table>")[0]
    assert "darker blue the more is missing" in heat.split("</caption>")[0], "the caption says what the colours mean"
    rows = re.findall(r"<tr>\s*<th scope=\"row\"[^>]*><code>([^<]+)</code></th>(.*?)</tr>", heat, re.S)
    assert [name for name, _ in rows] == ["ca", "chol"], "columns with missing values, most missing first"
    for name, row in rows:
        cells = re.findall(r'<td class="num" style="([^"]+)" title="[^"]*">([^<]+)</td>', row)
        expected = [MISSING[name][h] / n for h, n in HOSPITALS.items()]
        assert [text for _, text in cells] == [f"{round(r * 100):g}%" if r >= 0.1 else f"{r * 100:.1f}%" for r in expected]
        assert [style for style, _ in cells] == [heat_style(r) for r in expected]
    assert heat_style(0.85) == f"background: rgba(47,109,181,{0.85 * 0.85:.2f}); color: #1a1a1a"
    assert heat_style(1.0) == "background: rgba(47,109,181,0.85); color: #1a1a1a"
    assert heat_style(0.0198) == "background: rgba(47,109,181,0.06); color: #1a1a1a", "any missing value shows"
    assert heat_style(0.0) == "background: rgba(47,109,181,0.00); color: #1a1a1a"
    assert "83 points" in heat and "VA Long Beach vs Cleveland" in heat
    assert "<script" not in heat


def test_the_proxy_table_marks_pairs_at_or_above_the_threshold() -> None:
    part = _section(render(data_record(data_result()), "html"))
    table = part[part.index('<table class="data-proxies">') :].split("</table>")[0]
    rows = re.findall(r"<tr><td class=\"ref\"><code>(\w+)</code></td><td class=\"ref\"><code>(\w+)</code></td>(.*?)</tr>", table, re.S)
    assert [(f, s) for f, s, _ in rows] == [(f, s) for f, s, *_ in PROXIES]
    for (_, _, rest), (_, _, nmi, lo, hi, mi) in zip(rows, PROXIES, strict=True):
        assert _text(rest).split() == [f"{nmi:.4f}", f"{lo:.4f}–{hi:.4f}", f"{mi:.4f}", "proxy" if nmi >= 0.1 else "no"]


def test_without_reference_data_the_shift_part_says_why_and_nothing_is_invented() -> None:
    part = _section(render(data_record(data_result()), "html"))
    shift = part[part.index("Shift from the training data") :]
    assert "Not examined: no reference (training) data was given" in shift.split("</p>")[0]
    assert '<table class="data-shift">' not in part and "Leaked" not in part
    assert "Reference (training) data</dt><dd>none</dd>" in part


def test_with_reference_data_the_shift_table_has_distance_test_and_holm_adjusted_p() -> None:
    part = _section(render(data_record(data_result(reference=True)), "html"))
    table = part[part.index('<table class="data-shift">') :].split("</table>")[0]
    rows = [_text(r).split() for r in re.findall(r"<tr><td class=\"ref\">(.*?)</tr>", table, re.S)]
    assert rows[0] == ["age", "all", "rows", "0.2113", "0.1874–0.2377", "48.2000", "3.100e-09", "1.200e-08", "yes"]
    assert rows[1] == ["chol", "all", "rows", "0.0412", "0.0288–0.0611", "9.8000", "0.2800", "0.5600", "no"]
    assert rows[2][:4] == ["age", "sex", "=", "Female"] and rows[2][-1] == "yes"
    assert "Holm-adjusted p below 0.0500 and distance at least 0.1000" in table
    leaked = part[part.index("Leaked: also in the training data") :].split("</tr>")[0]
    assert f"{7 / ROWS:.4f}" in leaked and "{:.4f}–{:.4f}".format(*cp(7, ROWS)) in leaked


def test_every_data_metric_is_in_the_section_and_none_is_repeated_below() -> None:
    page = render(data_record(data_result(reference=True)), "html")
    part = _section(page)
    assert "<h4>Other metrics</h4>" not in part, "the section shows every metric; no table repeats them"


def test_hostile_column_and_group_names_stay_text(tmp_path: Path) -> None:
    result = data_result(column=SCRIPT, group=SCRIPT)
    page = render(data_record(result, [_rule("DATA-MISS", f"data.missing_rate_difference[hospital/column={scope_part(SCRIPT)}]", "le", 0.1)]), "html")
    assert SCRIPT not in page
    escaped = "&lt;script&gt;window.__pwned=1&lt;/script&gt;"
    part = _section(page).replace("<wbr>", "")
    assert part.count(escaped) >= 4, "in the heatmap, the representation table, the cells and the summary"
    assert "<code>" + escaped + '</code> is missing for <span class="nw">85%</span>' in page.split('id="audits"')[0], "the finding"
    view = data_view(result)
    assert view.missingness[0].rows[1].feature == SCRIPT, "the view keeps the name as plain text; the template escapes it"


def test_every_hostile_payload_stays_inert_as_a_column_and_a_group_name() -> None:
    """The payloads of the hostile-strings suite, each as the cholesterol column's name and the
    female group's, checked by that suite's HTML check (no element, handler, URL or comment from data)."""
    from tests.report.test_hostile_strings import PAYLOADS, _parsed, html_problems

    template = _parsed(render(data_record(data_result(column="plain", group="plain")), "html"))
    found = {}
    for payload in PAYLOADS:
        page = render(data_record(data_result(column=payload, group=payload)), "html")
        problems = html_problems(page, template)
        if problems:
            found[payload] = problems
    assert found == {}


def test_a_data_audit_with_nothing_but_a_metric_renders_that_metric() -> None:
    bare = AuditResult("data-bare", "data", AuditStatus.OK, metrics=(_ratio(),))
    part = _section(render(data_record(bare, RULES[:1]), "html"))
    assert "Shift from the training data" not in part and "Missing values" not in part and "Label base rates" not in part
    assert "What the data audit found" in part and 'a ratio of <span class="nw">0.413</span>' in part
    table = part[part.index("Representation by <code>sex</code>") :].split("</table>")[0]
    low, high = cp(SEX["Female"], ROWS)
    assert _row(table, "Female") == ["Female", "194", f"{194 / ROWS:.4f}", f"{low:.4f}–{high:.4f}", "0.5100", f"{194 / ROWS / 0.51:.4f}",
                                     f"{low / 0.51:.4f}–{high / 0.51:.4f}"], "shares from the ratios and the population"  # fmt: skip


def test_the_model_card_data_section_is_filled_from_the_data_audit() -> None:
    record = data_record(data_result(reference=True))
    card = json.loads(render(record, "card-json"))
    (audit,) = card["data"]["data_audits"]
    assert audit["rows"] == ROWS and audit["reference"]["path"] == "data/train.csv"
    (sex,) = [r for r in audit["representation"] if r["scope"] == "sex"]
    female = next(g for g in sex["groups"] if g["group"] == "Female")
    assert female["n"] == 194 and female["share"] == pytest.approx(194 / ROWS) and female["population_share"] == 0.51
    assert female["ratio"] == pytest.approx(194 / ROWS / 0.51) and sex["source"] == CENSUS
    (rates,) = audit["base_rates"]
    assert {g["group"]: g["rate"] for g in rates["groups"]} == pytest.approx({g: POSITIVE[g] / SEX[g] for g in SEX})
    assert rates["difference"]["value"] == pytest.approx(POSITIVE["Male"] / SEX["Male"] - POSITIVE["Female"] / SEX["Female"])
    gaps = {g["feature"]: g for g in audit["missingness_gaps"]}
    assert gaps["chol"]["difference"] == pytest.approx(170 / 200 - 6 / 303) and gaps["chol"]["max_group"] == "VA Long Beach"
    assert [(p["feature"], p["sensitive"]) for p in audit["proxies"]] == [("ca", "hospital"), ("chol", "hospital"), ("thal", "sex")]
    assert audit["shift"]["shifted_features"] == ["age"] and audit["leakage"]["rows"] == 7
    assert audit["duplicates"]["share"] == pytest.approx(2 / ROWS)
    markdown = render(record, "card-md")
    data = markdown[markdown.index("## Data") : markdown.index("## Metrics by group")]
    assert "### Data audit data-main" in data
    assert "By sex, Female makes up 21% of the audit rows (95% CI 18–24%) against 51% of the population (US Census 1990)" in data
    assert "chol is missing for 85% of VA Long Beach's rows" not in data, "the card lists the largest gap per grouping"
    assert "By hospital, ca is missing for 99% of VA Long Beach's rows against 1.3% of Cleveland's: the largest gap of any column" in data
    assert "1 examined column shifted" in data and "also occur in the training data (7 of 920 rows)" in data


def test_the_model_card_says_what_a_data_audit_did_not_examine() -> None:
    card = render(data_record(data_result()), "card-md")
    assert "Not examined: no reference (training) data was given" in card
    assert json.loads(render(make_record(), "card-json"))["data"]["data_audits"] == []


@pytest.mark.browser
def test_the_data_section_runs_nothing_in_a_real_browser(tmp_path: Path) -> None:
    from tests.report.test_html_browser import opened_in_chromium

    result = data_result(column=SCRIPT, group='<img src=x onerror="window.__pwned=1">', reference=True)
    page_file = tmp_path / "report.html"
    rule = _rule("DATA-MISS", f"data.missing_rate_difference[hospital/column={scope_part(SCRIPT)}]", "le", 0.1)
    page_file.write_text(render(data_record(result, [RULES[0], rule]), "html"), encoding="utf-8")
    with opened_in_chromium(page_file, open_details=True) as opened:
        text = opened.page.inner_text("body")
        cells = opened.page.evaluate("document.querySelectorAll('table.data-heatmap td[style]').length")
        assert opened.ran_nothing()
    assert opened.requests == [page_file.as_uri()]
    assert f"{SCRIPT} is missing for 85% of VA Long Beach" in text, "the finding names the column as text"
    assert '<img src=x onerror="window.__pwned=1"> makes up 21% of the audit rows' in text
    assert cells == 2 * len(HOSPITALS)
