"""Every public result type shows as HTML in Jupyter, through guardrail.report.notebook."""

from __future__ import annotations

import html
from typing import Any

import pytest

from guardrail.core.types import MetricResult, PolicyVerdict, RunRecord
from tests.report.conftest import make_record
from tests.report.large_records import many_groups_record

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
PAYLOAD = "<script>window.__pwned=1</script>"


def _page(shown: str) -> str:
    """The document inside the sandboxed frame, as the browser reads it."""
    assert shown.startswith('<iframe sandbox="" srcdoc="'), "sandboxed, no allow-scripts"
    assert shown.count("<") == 2, "everything but the frame itself is escaped into srcdoc"
    return html.unescape(shown.split('srcdoc="', 1)[1].rsplit('" style=', 1)[0])


def _results(record: RunRecord) -> dict[str, Any]:
    metric = next(m for m in record.metrics() if m.by_group)
    return {
        "RunRecord": record,
        "AuditResult": record.results[0],
        "MetricResult": metric,
        "PolicyVerdict": record.verdict,
        "RuleOutcome": record.verdict.outcomes[0],
    }


@pytest.mark.parametrize("kind", ["RunRecord", "AuditResult", "MetricResult", "PolicyVerdict", "RuleOutcome"])
def test_each_public_result_renders_as_a_safe_page(kind: str) -> None:
    value = _results(make_record(group_a=PAYLOAD, rule_id=PAYLOAD, message=PAYLOAD))[kind]
    page = _page(value._repr_html_())
    assert page.startswith("<!DOCTYPE html>")
    assert CSP in page
    assert "<script" not in page.lower(), "data stays text inside the frame too"
    assert "&lt;script&gt;" in page


def test_metric_shows_every_group_with_size_and_reason() -> None:
    metric = next(m for m in make_record().metrics() if m.key == "fairness.tpr" and m.scope == "sex+race")
    page = _page(metric._repr_html_()).replace("<wbr>", "")
    assert "fairness.tpr[sex+race]" in page
    for value in metric.by_group:
        assert value.group in page and f">{value.n}<" in page
    assert "below minimum size" in page and "no positive labels in this group" in page


def test_verdict_and_outcome_show_word_counts_and_rationale() -> None:
    verdict = make_record().verdict
    page = _page(verdict._repr_html_())
    assert '<span class="word">INCOMPLETE</span>' in page, "a blocking error outcome"
    assert page.count("<tr>") == len(verdict.outcomes) + 1
    assert "Four-fifths rule for adverse impact." in page and "eu-ai-act-baseline" in page
    one = _page(verdict.outcomes[1]._repr_html_())
    assert '<span class="word">PASS</span>' in one and "dp-diff" in one


def test_empty_verdict_says_so() -> None:
    assert "No policy rules were evaluated." in _page(PolicyVerdict()._repr_html_())


def test_frames_of_large_results_stay_bounded() -> None:
    record = many_groups_record(400)
    metric: MetricResult = record.results[0].metrics[1]
    assert len(metric.by_group) == 400
    shown = metric._repr_html_()
    assert 'height:560px' in shown
    assert len(shown.encode()) < 400_000
    assert len(record._repr_html_().encode()) < 600_000
