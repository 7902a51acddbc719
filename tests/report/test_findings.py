"""The findings: each rule outcome as one sentence naming the groups and the size of the gap,
sorted by consequence, a rule's rationale said once; and the page's layout around them (checked
on the HTML, without a browser). Outcomes come from the real policy engine, so the sentences
stay in step with the engine's wording of thresholds."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from typing import Any

import pytest
from markupsafe import escape

from guardrail.core.types import (
    AuditResult,
    AuditStatus,
    GroupValue,
    Interval,
    MetricResult,
    Provenance,
    Requirement,
    RunRecord,
    Severity,
)
from guardrail.policy.engine import Policy, evaluate
from guardrail.report import render
from guardrail.report.evidence import IntervalNotes, shown_params
from guardrail.report.finding_sentences import Unit
from guardrail.report.findings import TIERS, findings
from guardrail.spec.models import PolicySpec, RuleSpec
from tests.report.large_records import many_groups_record

RATIONALE = "Four-fifths rule: every group's selection rate at least 80% of the highest."
CP = "Clopper–Pearson (exact binomial)"
BOOT = "simultaneous pairwise bootstrap"


def _rule(rule_id: str, metric: str, op: str, threshold: Any, **extra: Any) -> RuleSpec:
    return RuleSpec(id=rule_id, metric=metric, op=op, threshold=threshold, rationale=extra.pop("rationale", "why"), **extra)


def _groups(values: dict[str, tuple[float, int]]) -> tuple[GroupValue, ...]:
    return tuple(GroupValue(g, v, n, ci=Interval(max(v - 0.01, 0), v + 0.01, method=CP)) for g, (v, n) in values.items())


def _ratio(scope: str, value: float, ci: tuple[float, float], groups: dict[str, tuple[float, int]]) -> MetricResult:
    low, high = min(groups, key=lambda g: groups[g][0]), max(groups, key=lambda g: groups[g][0])
    return MetricResult(
        "fairness.demographic_parity_ratio", value, scope=scope, ci=Interval(*ci, method=BOOT), by_group=_groups(groups),
        details={"aggregation": "ratio", "worst_rate": "selection_rate", "min_group": low, "max_group": high},
    )


def _eod(scope: str, value: float, ci: tuple[float, float], groups: dict[str, tuple[float, int]], **details: Any) -> MetricResult:
    low, high = min(groups, key=lambda g: groups[g][0]), max(groups, key=lambda g: groups[g][0])
    return MetricResult(
        "fairness.equalized_odds_difference", value, scope=scope, ci=Interval(*ci, method=BOOT), by_group=_groups(groups),
        details={"aggregation": "difference", "worst_rate": "tpr", "min_group": low, "max_group": high, **details},
    )


def _record(rules: list[RuleSpec], metrics: list[MetricResult], *, inconclusive: str = "block", today: date | None = None) -> RunRecord:
    spec = PolicySpec(schema_version=1, kind="policy", name="baseline", rules=tuple(rules), inconclusive=inconclusive)  # type: ignore[arg-type]
    result = AuditResult("fairness", "fairness", AuditStatus.OK, tuple(metrics), params={"bootstrap": 200})
    verdict = evaluate([Policy(spec, "baseline.yaml", "0")], [result], today=today)
    provenance = Provenance("0", "3.11", "linux", {}, {}, (), "guardrail audit x.yaml")
    return RunRecord("id", "demo", "t0", "t1", "x.yaml", "0", {}, (result,), verdict, provenance)


def _sentences(record: RunRecord, fail_on: Severity = Severity.DENY) -> dict[str, list[str]]:
    return {t.tier.key: [f.text for r in t.rules for f in r.findings] for t in findings(record, fail_on)}


SEX = {"Female": (0.0812, 5421), "Male": (0.2567, 10860)}


def test_a_ratio_names_both_groups_the_gap_its_interval_and_the_threshold_in_words() -> None:
    record = _record(
        [_rule("FAIR-001", "fairness.demographic_parity_ratio", "ge", 0.8, on="worst")],
        [_ratio("sex", 0.3162, (0.2887, 0.3462), SEX)],
    )
    assert _sentences(record) == {
        "fail": [
            "By sex, Female is selected at 32% of Male's rate (95% CI 29–35%; 8.1% vs 26%); "
            "the rule requires at least 80% over the whole interval."
        ]
    }


def test_a_difference_of_rates_reads_in_percentage_points_and_a_straddling_interval_is_inconclusive() -> None:
    record = _record(
        [_rule("FAIR-002", "fairness.equalized_odds_difference", "le", 0.1, on="worst")],
        [_eod("sex", 0.0728, (0.0511, 0.1139), {"Female": (0.5881, 590), "Male": (0.6609, 3256)})],
    )
    assert _sentences(record) == {
        "inconclusive": [
            "By sex, Female's true-positive rate is 7.3 percentage points below Male's (95% CI 5.1–11 points; 59% vs 66%); "
            "the interval straddles the limit (at most 10 points), so it cannot be judged."
        ]
    }


def test_an_intersectional_scope_names_the_intersection_and_its_groups() -> None:
    groups = {"Female × Amer-Indian-Eskimo": (0.0152, 66), "Male × Asian-Pac-Islander": (0.3042, 309), "Male × White": (0.27, 9561)}
    record = _record(
        [_rule("FAIR-001", "fairness.demographic_parity_ratio[sex+race]", "ge", 0.8)],
        [_ratio("sex+race", 0.0498, (0.0001, 0.2301), groups), _ratio("sex", 0.9, (0.85, 0.95), SEX)],
    )
    (sentence,) = _sentences(record)["fail"]
    assert sentence.startswith("By sex+race, Female × Amer-Indian-Eskimo is selected at 5.0% of Male × Asian-Pac-Islander's rate")
    assert "(95% CI 0.010–23%; 1.5% vs 30%)" in sentence and sentence.endswith("the rule requires at least 80%.")


def test_a_rate_metric_reads_in_percent_and_a_number_near_the_threshold_never_reads_as_it() -> None:
    accuracy = MetricResult("fairness.accuracy", 0.7996, ci=Interval(0.7901, 0.8093, method=CP))
    record = _record([_rule("ACC", "fairness.accuracy", "ge", 0.8, on="value")], [accuracy])
    assert _sentences(record)["fail"] == ["Accuracy is 79.96% (95% CI 79–81%); the rule requires at least 80%."]
    assert Unit("percent").show(0.79996, (0.8,)) == "79.996%" and Unit("plain").show(0.79996, (0.8,)) == "0.79996"


def test_privacy_epsilon_reads_as_the_privacy_loss_with_its_accountant() -> None:
    epsilon = MetricResult("privacy.dp.epsilon", 4.213, details={"accountant": "rdp"})
    record = _record([_rule("PRIV-EPS", "privacy.dp.epsilon", "le", 3.0)], [epsilon])
    assert _sentences(record) == {"fail": ["The privacy loss ε is 4.21 (rdp accountant); the rule requires at most 3."]}


def test_groups_below_the_rules_minimum_make_an_inconclusive_finding_that_names_them() -> None:
    groups = {"Other": (0.1, 12), "White": (0.11, 900)}
    record = _record(
        [_rule("FAIR-001", "fairness.demographic_parity_ratio", "ge", 0.8, on="worst", min_group_n=30)],
        [_ratio("race", 0.9091, (0.5, 1.0), groups)],
    )
    (sentence,) = _sentences(record)["inconclusive"]
    assert "Other is selected at 91% of White's rate" in sentence
    assert sentence.endswith("it cannot be judged: group(s) 'Other' (n=12) are below the rule's minimum of 30 people "
                             "(the rule requires at least 80% over the whole interval).")


def test_an_underpowered_check_says_which_gap_the_data_cannot_detect() -> None:
    metric = _eod("race", 0.3427, (0.0262, 0.6805), {"Amer-Indian-Eskimo": (0.3158, 159), "White": (0.6585, 13946)},
                  detectable_gap=0.4068, detectable_gap_basis={"groups": ["Amer-Indian-Eskimo", "Other"], "n": [19, 25], "power": 0.8})
    record = _record([_rule("FAIR-002", "fairness.equalized_odds_difference", "le", 0.1, on="worst")], [metric])
    assert _sentences(record)["warning"] == [
        "By race, this data cannot detect a gap of 10 points (the rule's limit): at 80% power the smallest detectable gap "
        "between Amer-Indian-Eskimo and Other (n=19/25) is 41 points; collect more data for these groups."
    ]
    power = next(o for o in record.verdict.outcomes if o.rule_id == "FAIR-002:power")
    assert power.requirement == Requirement("le", (0.1,)), "the limit the gap is held to, on the gap itself"


def test_missing_evidence_says_what_is_missing_and_that_it_blocks() -> None:
    record = _record([_rule("SHAP", "explain.shap.faithfulness", "ge", 0.5)], [MetricResult("fairness.accuracy", 0.9)])
    assert _sentences(record) == {
        "error": ["No evidence for explain.shap.faithfulness: no audit produced explain.shap.faithfulness; "
                  "the rule cannot pass without it (it requires at least 0.5)."]
    }


def test_an_undefined_metric_because_of_small_groups_is_inconclusive_with_its_reason() -> None:
    metric = MetricResult("fairness.demographic_parity_ratio", None, scope="race", reason="small_group: 'Other' has 4 rows",
                          details={"aggregation": "ratio"})
    record = _record([_rule("FAIR-001", "fairness.demographic_parity_ratio", "ge", 0.8)], [metric])
    assert _sentences(record) == {
        "inconclusive": ["By race, fairness.demographic_parity_ratio has no value ('Other' has 4 rows); "
                         "it cannot be judged on groups this small (the rule requires at least 80%)."]
    }


def test_a_waiver_is_said_in_the_same_sentence() -> None:
    rule = _rule("FAIR-001", "fairness.demographic_parity_ratio", "ge", 0.8,
                 waiver={"owner": "risk@bank", "reason": "retraining scheduled", "expires": date(2030, 1, 1)})
    record = _record([rule], [_ratio("sex", 0.3162, (0.2887, 0.3462), SEX)], today=date(2026, 1, 1))
    (sentence,) = _sentences(record)["waived"]
    assert sentence.endswith("the rule requires at least 80%. Waived by risk@bank until 2030-01-01: retraining scheduled")


def test_every_form_of_requirement_the_engine_judges_is_said_in_words() -> None:
    metrics = [_ratio("sex", 0.9, (0.85, 0.95), SEX)]
    forms = {
        ("ge", 0.8, "worst"): "at least 80% over the whole interval",
        ("le", 1.25, "ci_high"): "at most 125% at the interval's upper bound",
        ("gt", 0.5, "ci_low"): "more than 50% at the interval's lower bound",
        ("between", (0.8, 1.25), "value"): "between 80% and 125%",
        ("eq", 0.9, "value"): "equal to 90% ± 5.0",
    }
    for (op, threshold, on), words in forms.items():
        rule = _rule("R", "fairness.demographic_parity_ratio", op, threshold, on=on, tolerance=0.05 if op == "eq" else 0.0)
        record = _record([rule], metrics)
        (outcome,) = record.verdict.outcomes
        numbers = threshold if isinstance(threshold, tuple) else (threshold,)
        assert outcome.requirement == Requirement(op, numbers, on, 0.05 if op == "eq" else 0.0), outcome.expected
        (sentence,) = [f.text for t in findings(record) for r in t.rules for f in r.findings]
        assert f"the rule requires {words}" in sentence, sentence


def test_an_outcome_without_a_requirement_says_its_expected_text() -> None:
    """A record written before outcomes kept their requirement still reads."""
    record = _record([_rule("FAIR-001", "fairness.demographic_parity_ratio", "ge", 0.8, on="worst")],
                     [_ratio("sex", 0.3162, (0.2887, 0.3462), SEX)])
    old = dataclasses.replace(record.verdict.outcomes[0], requirement=None)
    record = dataclasses.replace(record, verdict=dataclasses.replace(record.verdict, outcomes=(old,)))
    assert _sentences(record)["fail"] == [
        "By sex, Female is selected at 32% of Male's rate (95% CI 29–35%; 8.1% vs 26%); "
        "the rule requires fairness.demographic_parity_ratio[sex] ≥ 0.8 on the worse bound."
    ]


# ---- order and grouping --------------------------------------------------------------------------


def _mixed() -> RunRecord:
    race = {"Black": (0.08, 1561), "White": (0.21, 13946)}
    return _record(
        [
            _rule("FAIR-003", "fairness.min_group_size", "ge", 30, severity="warn"),
            _rule("FAIR-001", "fairness.demographic_parity_ratio", "ge", 0.8, on="worst", rationale=RATIONALE),
            _rule("FAIR-002", "fairness.equalized_odds_difference", "le", 0.1, on="worst"),
            _rule("SHAP", "explain.shap.faithfulness", "ge", 0.5),
        ],
        [
            MetricResult("fairness.min_group_size", 5421, scope="sex", details={"smallest_group": "Female"}),
            _ratio("sex", 0.3162, (0.2887, 0.3462), SEX),
            _ratio("race", 0.38, (0.3, 0.45), race),
            _ratio("sex+race", 0.85, (0.81, 0.9), {"Female × White": (0.2, 4385), "Male × White": (0.235, 9561)}),
            _eod("sex", 0.0728, (0.0511, 0.1139), {"Female": (0.5881, 590), "Male": (0.6609, 3256)}),
        ],
    )


def test_findings_are_sorted_by_consequence_with_passes_last() -> None:
    tiers = [t.tier.key for t in findings(_mixed())]
    assert tiers == ["fail", "error", "inconclusive", "warning", "pass"]  # warning: FAIR-003 (warn) lacks two scopes
    order = [t.key for t in TIERS]
    assert order[:4] == ["fail", "error", "inconclusive", "warning"] and order[-1] == "pass"
    passed = next(t for t in findings(_mixed()) if t.tier.key == "pass")
    assert [r.rule_id for r in passed.rules] == ["FAIR-003", "FAIR-001"], "in policy order within a tier"
    assert passed.rules[0].findings[0].text == (
        "By sex, the smallest group, Female, has 5,421 people; the rule requires at least 30, which holds."
    )


def test_a_rationale_is_said_once_per_rule_not_once_per_scope() -> None:
    tiers = findings(_mixed())
    with_rationale = [(t.tier.key, r.rule_id) for t in tiers for r in t.rules if r.rationale == RATIONALE]
    assert with_rationale == [("fail", "FAIR-001")], "in the first tier the rule appears in"
    assert [f.outcome.metric for f in tiers[0].rules[0].findings] == [
        "fairness.demographic_parity_ratio[sex]", "fairness.demographic_parity_ratio[race]"
    ]
    (later,) = [r for t in tiers[1:] for r in t.rules if r.rule_id == "FAIR-001"]
    assert later.said_above and later.rationale == ""
    page = render(_mixed(), "html")
    findings_html = page[page.index('id="findings"') : page.index('id="audits"')]
    assert findings_html.count(escape(RATIONALE)) == 1


# ---- the page ------------------------------------------------------------------------------------


def test_the_page_leads_with_the_findings_ordered_by_consequence_and_collapses_passes() -> None:
    page = render(_mixed(), "html")
    assert page.index('id="findings"') < page.index('id="audits"') < page.index('id="provenance"')
    findings_html = page[page.index('id="findings"') : page.index('id="audits"')]
    tiers = re.findall(r'<section class="tier tier-(\w+)"', findings_html)
    assert tiers == ["fail", "error", "inconclusive", "warning"]
    assert findings_html.index('<section class="tier tier-warning"') < findings_html.index('<details class="passes">')
    passes = findings_html[findings_html.index('<details class="passes">') :]
    assert "<details class=\"passes\" open" not in page and "5,421 people" in passes
    assert "<strong>Female</strong> is selected at <span class=\"nw\">32%</span> of <strong>Male</strong>" in findings_html


def test_no_table_is_repeated_and_the_interval_method_is_said_once_per_table() -> None:
    page = render(_mixed(), "html")
    assert "All metrics" not in page and "Other metrics" not in page, "every fairness metric is in its scope's tables"
    assert "Rule outcomes, in policy order" not in page, "the findings replace the outcome table"
    evidence = page[page.index('id="audits"') :]
    assert evidence.count(BOOT) == 3, "one caption per disparity table (three scopes)"
    assert f"Intervals: 95%, {BOOT}." in evidence


def test_the_many_groups_page_stays_findings_first() -> None:
    page = render(many_groups_record(400), "html")
    assert page.index('id="findings"') < page.index('class="audit"')
    assert page.count('<details class="passes">') == 1


def test_parameters_are_collapsed_and_only_those_that_mattered_are_shown() -> None:
    params = {"methods": ["feature_ablation", "lime"], "lime_samples": 2000, "ig_steps": 50, "gradient_shap_samples": 20,
              "shapley_permutations": 10, "samples": 64, "background": None, "sensitive": []}
    assert [k for k, _ in shown_params(params)] == ["methods", "lime_samples", "samples"]
    record = _mixed()
    explain = AuditResult("explain", "explainability", AuditStatus.OK, (), params=params)
    page = render(dataclasses.replace(record, results=(*record.results, explain)), "html")
    assert page.count('<details class="params">') == 2
    assert "ig_steps" not in page and "shapley_permutations" not in page and "lime_samples" in page


@pytest.mark.parametrize("methods", [1, 2, 3])
def test_interval_notes_mark_rows_only_when_a_table_mixes_methods(methods: int) -> None:
    notes = IntervalNotes()
    indices = [notes.add(Interval(0, 1, method=f"m{i % methods}")) for i in range(4)]
    marks = [notes.mark(i) for i in indices]
    if methods == 1:
        assert marks == [""] * 4 and notes.caption() == "Intervals: 95%, m0."
    else:
        assert marks[:methods] == list("abc"[:methods])
        assert notes.caption() == "Intervals — " + "; ".join(f"{'abc'[i]}: 95%, m{i}" for i in range(methods)) + "."
    assert notes.add(None) is None and notes.mark(None) == ""


# ---- review findings: the metric judged, the interval judged, interval marks, ungated headings ----


def _two_audits(first: MetricResult, second: MetricResult) -> RunRecord:
    """Two fairness audits producing the same ref, both judged by one rule."""
    rule = _rule("FAIR-001", "fairness.demographic_parity_ratio", "ge", 0.8)
    spec = PolicySpec(schema_version=1, kind="policy", name="baseline", rules=(rule,))
    results = (AuditResult("fair-a", "fairness", AuditStatus.OK, (first,)), AuditResult("fair-b", "fairness", AuditStatus.OK, (second,)))
    verdict = evaluate([Policy(spec, "baseline.yaml", "0")], results)
    provenance = Provenance("0", "3.11", "linux", {}, {}, (), "guardrail audit x.yaml")
    return RunRecord("id", "demo", "t0", "t1", "x.yaml", "0", {}, results, verdict, provenance)


def test_each_of_two_audits_of_the_same_ref_is_said_with_its_own_groups() -> None:
    record = _two_audits(_ratio("sex", 0.3162, (0.2887, 0.3462), SEX),
                         _ratio("sex", 0.5, (0.45, 0.55), {"Women": (0.1, 500), "Men": (0.2, 500)}))
    first, second = _sentences(record)["fail"]
    assert first.startswith("By sex, Female is selected at 32% of Male's rate (95% CI 29–35%")
    assert second.startswith("By sex, Women is selected at 50% of Men's rate (95% CI 45–55%")
    assert "Female" not in second and "Women" not in first


def test_two_audits_that_cannot_be_told_apart_fall_back_to_each_outcomes_own_message() -> None:
    record = _two_audits(_ratio("sex", 0.5, (0.45, 0.55), SEX),
                         _ratio("sex", 0.5, (0.45, 0.55), {"Women": (0.1, 500), "Men": (0.2, 500)}))
    assert _sentences(record)["fail"] == ["Fairness.demographic_parity_ratio[sex] = 0.5 (95% CI 0.45–0.55), required ≥ 0.8."] * 2


@pytest.mark.parametrize("on", ["worst", "ci_low"])
def test_a_failure_on_the_larger_groups_shows_the_interval_it_was_judged_on(on: str) -> None:
    groups = {"Black": (0.1, 400), "Other": (0.02, 10), "White": (0.2, 400)}
    metric = _ratio("race", 0.1, (0.05, 0.3), groups)
    reduced = {"min_group_n": 30, "excluded": ["Other"], "value": 0.5, "ci": {"low": 0.41, "high": 0.62, "level": 0.95}}
    metric = dataclasses.replace(metric, details={**metric.details, "without_small": reduced})
    record = _record([_rule("FAIR-001", "fairness.demographic_parity_ratio", "ge", 0.8, on=on, min_group_n=30)], [metric])
    (outcome,) = record.verdict.outcomes
    assert outcome.ci is not None and (outcome.ci.low, outcome.ci.high) == (0.41, 0.62)
    (sentence,) = _sentences(record)["fail"]
    assert sentence.startswith("By race, Other is selected at 10% of White's rate (95% CI 5.0–30%; 2.0% vs 20%); ")
    assert "; without group(s) 'Other' (n=10), below the rule's minimum of 30 people, it is 50% (95% CI 41–62%), which still fails" in sentence


def test_explain_quality_rows_are_marked_when_a_later_row_brings_a_second_interval_method() -> None:
    from guardrail.report.explain_view import explain_view

    metrics = (
        MetricResult("explain.feature_ablation.importance", 0.2, scope="age"),
        MetricResult("explain.lime.importance", 0.1, scope="age"),
        MetricResult("explain.feature_ablation.deletion_auc", 0.3, ci=Interval(0.2, 0.4, method="m1")),
        MetricResult("explain.lime.deletion_auc", 0.5, ci=Interval(0.4, 0.6, method="m2")),
    )
    view = explain_view(AuditResult("explain", "explainability", AuditStatus.OK, metrics))
    assert view.quality_caption == "Intervals — a: 95%, m1; b: 95%, m2."
    assert [row.cells[0].ci for row in view.quality] == ["0.2000–0.4000 a", "0.4000–0.6000 b"], "the first row too"


def test_an_ungated_record_never_says_blocking() -> None:
    record = dataclasses.replace(_mixed(), gated=False)
    tiers = findings(record)
    assert [t.tier.key for t in tiers] == [t.tier.key for t in findings(_mixed())]
    assert all("blocking" not in t.tier.title and not t.tier.blocking for t in tiers)
    assert findings(_mixed(), gated=False) == tiers
    assert any("blocking" in t.tier.title for t in findings(_mixed()))
    page = render(record, "html")
    findings_html = page[page.index('id="findings"') : page.index('id="audits"')]
    assert "blocking" not in findings_html and "no gate applied" in findings_html
