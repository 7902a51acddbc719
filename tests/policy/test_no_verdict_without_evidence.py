"""No verdict without evidence: a run in which no blocking rule was judged on evidence is
never reported as a pass, by its exit code, by any report format or in the notebook view.

A property test over generated policies (0..n rules of every severity and ``on_missing``)
and audit results (metrics present, undefined or absent; audits ok or crashed), judged by
the real policy engine, plus a positive control that does pass, so the test can fail.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import guardrail.report as report
from guardrail.core.types import (
    SMALL_GROUP,
    AuditResult,
    AuditStatus,
    ErrorInfo,
    Interval,
    MetricResult,
    OutcomeStatus,
    PolicyVerdict,
    Provenance,
    RuleOutcome,
    RunRecord,
    Severity,
)
from guardrail.policy.engine import Policy, evaluate
from guardrail.report.notebook import audit_html
from guardrail.spec.models import PolicySpec, RuleSpec, WaiverSpec

TODAY = date(2025, 6, 1)
KEYS = ("m.a", "m.b", "m.c")
ABSENT = "m.never"
"""A metric key that no generated audit produces."""
FORMATS = ("html", "markdown", "junit", "sarif", "card-md", "card-json")
JUDGED_ON_EVIDENCE = (OutcomeStatus.PASS, OutcomeStatus.FAIL, OutcomeStatus.INCONCLUSIVE, OutcomeStatus.WAIVED)


# --- generated inputs -------------------------------------------------------------------


@st.composite
def metrics(draw: st.DrawFn) -> tuple[MetricResult, ...]:
    """Each key present with a value (with or without an interval), undefined with a
    reason (small group or other), or absent."""
    out = []
    for key in KEYS:
        state = draw(st.sampled_from(["value", "value", "value_ci", "undefined", "small_group", "absent"]))
        scope = draw(st.sampled_from([None, "sex"]))
        if state == "absent":
            continue
        if state in ("undefined", "small_group"):
            reason = f"{SMALL_GROUP}: a group below the minimum size" if state == "small_group" else "no positive labels"
            out.append(MetricResult(key, None, scope=scope, reason=reason))
            continue
        value = draw(st.floats(0.0, 1.0, allow_nan=False))
        ci = None
        if state == "value_ci":
            width = draw(st.floats(0.0, 0.4, allow_nan=False))
            ci = Interval(max(0.0, value - width), min(1.0, value + width))
        out.append(MetricResult(key, value, scope=scope, ci=ci))
    return tuple(out)


@st.composite
def audit_results(draw: st.DrawFn) -> tuple[AuditResult, ...]:
    """Usually one or two audits that ran, sometimes none; sometimes one that crashed."""
    results = [AuditResult(f"a{i}", "f", AuditStatus.OK, draw(metrics())) for i in range(draw(st.sampled_from([0, 1, 1, 1, 2])))]
    if draw(st.sampled_from([False, False, False, True])):
        results.append(AuditResult("crashed", "x", AuditStatus.ERROR, error=ErrorInfo("RuntimeError", "boom")))
    return tuple(results)


@st.composite
def rules(draw: st.DrawFn, index: int) -> RuleSpec:
    op = draw(st.sampled_from(["le", "ge", "present"]))
    running, expired = (WaiverSpec(owner="o", reason="r", expires=date(year, 1, 1)) for year in (2030, 2020))
    waiver = draw(st.sampled_from([None, None, running, expired]))
    return RuleSpec.model_validate(
        {
            "id": f"R{index}",
            "metric": draw(st.sampled_from([*KEYS, ABSENT])),
            "op": op,
            "threshold": None if op == "present" else draw(st.floats(0.0, 1.0, allow_nan=False)),
            "on": draw(st.sampled_from(["value", "worst"])),
            "severity": draw(st.sampled_from(["deny", "warn", "info"])),
            "on_missing": draw(st.sampled_from(["fail", "warn", "skip"])),
            "rationale": "why",
            "waiver": waiver,
        }
    )


@st.composite
def policies(draw: st.DrawFn) -> list[Policy]:
    out = []
    counter = 0
    for p in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        specs = []
        for _ in range(draw(st.sampled_from([0, 1, 2, 2, 3, 4]))):
            specs.append(draw(rules(counter)))
            counter += 1
        spec = PolicySpec(
            schema_version=1,
            kind="policy",
            name=f"p{p}",
            rules=tuple(specs),
            extends=() if specs else ("base.yaml",),  # every inherited rule disabled: a policy with no rules
            inconclusive=draw(st.sampled_from(["block", "warn"])),
        )
        out.append(Policy(spec, f"p{p}.yaml", "0"))
    return out


def _record(results: tuple[AuditResult, ...], verdict: PolicyVerdict, gated: bool = True) -> RunRecord:
    provenance = Provenance("0", "3.11", "linux", {}, {}, (), "guardrail audit x.yaml")
    return RunRecord("id", "n", "t0", "t1", "x.yaml", "0", {}, results, verdict, provenance, gated=gated)


# --- what each output says --------------------------------------------------------------


def _frame(shown: str) -> str:
    """The markup of a notebook view (shown inline, after its scoped stylesheet)."""
    assert shown.startswith('<div class="guardrail-nb"><style>')
    return shown.split("</style>", 1)[1]


def _html_word(page: str) -> str:
    words = re.findall(r'<span class="word">([^<]*)</span>', page)
    assert len(words) == 1, words
    if page.lstrip().startswith("<!DOCTYPE"):  # a whole page; a notebook view (inline markup) has no title
        title = re.search(r"<title>([^<]*?) · ", page)
        assert title is not None and title.group(1) == words[0], "the title and the verdict box agree"
    return str(words[0])


@dataclass(frozen=True)
class Shown:
    """The verdict word of each output, and the JUnit suite."""

    words: dict[str, str]
    suite: ET.Element


def _shown(record: RunRecord, fail_on: Severity) -> Shown:
    text = {fmt: report.render(record, fmt, fail_on=fail_on) for fmt in FORMATS}
    words = {"html": _html_word(text["html"])}
    if words["html"] != "PASS":
        assert 'class="verdict verdict-pass"' not in text["html"], "never styled as a pass"
    first = text["markdown"].splitlines()[0]
    words["markdown"] = first.rsplit(" — ", 1)[1]
    root = ET.fromstring(text["junit"].encode("utf-8"))
    (suite,) = root.findall("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    words["junit"] = str(props["guardrail.verdict"])
    card = re.search(r"Verdict: \*\*([^*]+)\*\*", text["card-md"])
    assert card is not None
    words["card-md"] = card.group(1)
    words["card-json"] = json.loads(text["card-json"])["evaluation"]["verdict"]
    if words["html"] != "PASS":
        assert "PASS" not in text["sarif"]
    if fail_on is Severity.DENY:  # the notebook views judge under the default severity
        words["notebook"] = _html_word(_frame(record._repr_html_()))
    return Shown(words, suite)


def _gate_case(suite: ET.Element) -> ET.Element | None:
    cases = [c for c in suite.iter("testcase") if c.get("name") == "policy gate"]
    assert len(cases) <= 1
    return cases[0] if cases else None


def _nothing_judged(outcomes: tuple[RuleOutcome, ...], fail_on: Severity) -> bool:
    """No outcome that could block under ``fail_on`` was reached on evidence: every such
    outcome was skipped or is an error (missing evidence), or there is none."""
    return not any(o.blocks(fail_on) and o.status in JUDGED_ON_EVIDENCE for o in outcomes)


# --- the property -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True)
@given(policy_list=policies(), results=audit_results(), gated=st.sampled_from([True, True, True, False]))
def test_no_run_without_evidence_reads_as_a_pass(policy_list: list[Policy], results: tuple[AuditResult, ...], gated: bool) -> None:
    verdict = evaluate(policy_list, results, today=TODAY)
    record = _record(results, verdict, gated)
    for fail_on in (Severity.DENY, Severity.WARN):
        judged = record.judged(fail_on)
        shown = _shown(record, fail_on)
        # every output shows the one verdict the record has
        assert set(shown.words.values()) == {judged.word}, shown.words
        assert judged.code == record.exit_code(fail_on)
        if not gated:
            # measurements without a gate never read as a pass, whatever the outcomes
            assert judged.word != "PASS"
            assert judged.word == ("INCOMPLETE" if any(r.status is AuditStatus.ERROR for r in results) else "NO GATE")
        if gated and _nothing_judged(verdict.outcomes, fail_on):
            assert record.exit_code(fail_on) != 0, [(o.rule_id, o.severity.value, o.status.value) for o in verdict.outcomes]
            assert judged.word != "PASS"
            assert "PASS" not in shown.words.values()
            # a CI system reading only the JUnit file sees the run was not green
            assert int(shown.suite.get("errors", "0")) + int(shown.suite.get("failures", "0")) >= 1
            if not any(r.status is AuditStatus.ERROR for r in results) and not any(
                o.blocks(fail_on) and o.status is OutcomeStatus.ERROR for o in verdict.outcomes
            ):
                # nothing else made the suite red: the gate itself says why
                gate = _gate_case(shown.suite)
                assert gate is not None and gate.find("error") is not None
    # the notebook views of the parts: the verdict alone, and each audit result alone
    alone = _html_word(_frame(verdict._repr_html_()))
    if _nothing_judged(verdict.outcomes, Severity.DENY):
        assert alone != "PASS"
    for result in results:
        page = _frame(audit_html(result))
        assert _html_word(page) in ("NO GATE", "INCOMPLETE")
        assert 'class="verdict verdict-pass"' not in page


# --- hand-picked cases and the positive control -----------------------------------------


def _policy(*specs: dict[str, Any]) -> Policy:
    rules_ = tuple(RuleSpec(**{"rationale": "why", **spec}) for spec in specs)
    extends = () if rules_ else ("base.yaml",)  # every inherited rule disabled: a policy with no rules
    return Policy(PolicySpec(schema_version=1, kind="policy", name="p", rules=rules_, extends=extends), "p.yaml", "0")


OK_AUDIT = AuditResult("a", "f", AuditStatus.OK, (MetricResult("m.a", 0.9),))


@pytest.mark.parametrize(
    ("policy_list", "expected_sentence"),
    [
        ([], "No policy was applied"),
        ([_policy()], "The policies hold no rules"),
        ([_policy({"id": "R", "metric": ABSENT, "op": "ge", "threshold": 0.5, "on_missing": "skip"})], "Every rule was skipped"),
        ([_policy({"id": "R", "metric": "m.a", "op": "ge", "threshold": 0.5, "severity": "warn"})], "No blocking (deny) rule"),
        ([_policy({"id": "R", "metric": "m.a", "op": "ge", "threshold": 0.5, "severity": "info"})], "No blocking (deny) rule"),
    ],
    ids=["no-policy", "no-rules", "all-skipped", "warn-only", "info-only"],
)
def test_nothing_checked_is_incomplete_everywhere(policy_list: list[Policy], expected_sentence: str) -> None:
    record = _record((OK_AUDIT,), evaluate(policy_list, (OK_AUDIT,), today=TODAY))
    judged = record.judged()
    assert (judged.word, int(judged.code)) == ("INCOMPLETE", 2)
    assert judged.sentence.startswith(expected_sentence)
    shown = _shown(record, Severity.DENY)
    assert set(shown.words.values()) == {"INCOMPLETE"}
    gate = _gate_case(shown.suite)
    assert gate is not None and gate.find("error") is not None
    assert 'class="verdict verdict-pass"' not in _frame(record._repr_html_())


def test_a_passing_deny_rule_passes_everywhere() -> None:
    """The positive control: evidence that passes is a pass in every output."""
    verdict = evaluate([_policy({"id": "R", "metric": "m.a", "op": "ge", "threshold": 0.5})], (OK_AUDIT,), today=TODAY)
    record = _record((OK_AUDIT,), verdict)
    for fail_on in (Severity.DENY, Severity.WARN):
        assert record.exit_code(fail_on) == 0
        shown = _shown(record, fail_on)
        assert set(shown.words.values()) == {"PASS"}, shown.words
        assert _gate_case(shown.suite) is None
        assert shown.suite.get("errors") == "0" and shown.suite.get("failures") == "0"
    assert 'class="verdict verdict-pass"' in _frame(record._repr_html_())
    assert _html_word(_frame(verdict._repr_html_())) == "PASS"


def test_results_shown_alone_are_neutral_not_a_pass() -> None:
    page = _frame(OK_AUDIT._repr_html_())
    assert _html_word(page) == "NO GATE"
    assert 'class="verdict verdict-neutral"' in page and 'class="verdict verdict-pass"' not in page
    assert "No gate was applied" in page


def test_a_waived_rule_without_evidence_is_no_pass() -> None:
    waiver = {"owner": "o", "reason": "r", "expires": date(2030, 1, 1)}
    verdict = evaluate([_policy({"id": "R", "metric": ABSENT, "op": "ge", "threshold": 0.5, "waiver": waiver})], (OK_AUDIT,), today=TODAY)
    (outcome,) = verdict.outcomes
    assert (outcome.status, outcome.reason) == (OutcomeStatus.WAIVED, "waived:missing_evidence")
    assert _record((OK_AUDIT,), verdict).judged().word != "PASS"


def test_sarif_of_a_run_that_checked_nothing_says_so() -> None:
    text = report.render(_record((OK_AUDIT,), PolicyVerdict()), "sarif")
    assert "INCOMPLETE" in text or "nothing was checked" in text
