"""The federated section of the HTML report, rendered from the federated auditor's result on
the recorded 2-hospital history (tests/data/federated/federated.json) and variants of it:
provenance, settings, one line chart per series, the hospital and round tables, the stopped
reason and the ledgers; hospital names and reasons stay text, in a real browser too."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from guardrail.core.types import AuditResult, AuditStatus, ErrorInfo, RunRecord
from guardrail.report import parse_json, render
from guardrail.report.federated_view import federated_view
from guardrail.report.notebook import audit_html
from tests.auditors.test_federated_auditor import model_folder, run, sample
from tests.report.conftest import make_record

SCRIPT = "<script>window.__pwned=1</script>"
PROVENANCE = "The notes are generated from real records"


def _result(tmp_path: Path, history: dict[str, Any] | None = None, name: str = "model") -> AuditResult:
    return run(model_folder(tmp_path, history, name))


def _page(result: AuditResult) -> str:
    return render(dataclasses.replace(make_record(), results=(result,)), "html")


def _renamed(history: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The history with hospital ``old`` called ``new`` everywhere (names, keys, scopes)."""
    text = json.dumps(history).replace(old, json.dumps(new)[1:-1])
    renamed: dict[str, Any] = json.loads(text)
    return renamed


def _troubled(history: dict[str, Any]) -> dict[str, Any]:
    """Round 2: Cleveland failed, Hungary refused for its budget; training stopped early."""
    history["settings"]["rounds"] = 3
    history["settings"]["max_epsilon"] = 4.5
    history["rounds"][1]["hospitals"]["cleveland"] = {"status": "failed", "reason": "CUDA out of memory in local training"}
    hungary = history["hospitals"][1]
    hungary["history"] = {key: values[:1] for key, values in hungary["history"].items()}
    hungary["epsilon_by_round"] = {"1": hungary["epsilon_by_round"]["1"]}
    hungary["epsilon"] = hungary["epsilon_by_round"]["1"]
    history["rounds"][1]["hospitals"]["hungary"] = {
        "status": "refused-budget",
        "reason": "the round would take its ε above max_epsilon=4.5",
    }
    history["stopped_reason"] = "stopped before round 3: every hospital's next round would pass max_epsilon=4.5"
    return history


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    return _result(tmp_path_factory.mktemp("federated-report"))


def test_section_shows_provenance_settings_tables_and_ledgers(recorded: AuditResult) -> None:
    page = _page(recorded)
    assert f"<strong>Data:</strong> {PROVENANCE}" in page
    for heading in ("<h4>Federated training</h4>", "<h4>Hospitals</h4>", "<h4>Privacy spent: ε by round</h4>",
                    "<h4>Accuracy by round</h4>", "<h4>Fairness by round: equalized odds difference by sex</h4>",
                    "<h4>Round by round</h4>", "<h4>Fairness after round 2</h4>", "<h4>Privacy ledgers</h4>"):
        assert heading in page, heading
    assert "<dt>DP-SGD</dt><dd>noise multiplier σ = 1, clipping norm C = 1, δ = 1e-05, RDP accountant</dd>" in page
    assert "<dt>Rounds</dt><dd>2 done of 2 planned</dd>" in page
    assert "Training ran all 2 planned rounds." in page and 'role="alert"' not in page.split("<h4>Federated training</h4>")[1].split("<h4>Hospitals</h4>")[0]
    # the hospital table: final ε recomputed, accuracy with its exact binomial interval and round
    assert '<td class="num">4.922</td>' in page
    assert '<span class="nw">0.4213–0.6545</span> (95%, Clopper–Pearson)' in page and "round 2, n = 76" in page
    # the ledger: σ, q, steps and ε after each round
    assert '<td class="num">1</td><td class="num">1</td><td class="num">0.1404</td><td class="num">7</td><td class="num">3.96</td>' in page
    assert "from federated.json (no ledger file beside it)" in page
    assert "<td>2 trained</td>" in page


def test_one_line_chart_per_series_and_undefined_gaps_are_never_zero(recorded: AuditResult) -> None:
    view = federated_view(recorded)
    assert [c.title for c in view.charts] == [
        "Privacy spent: ε by round", "Accuracy by round", "Fairness by round: equalized odds difference by sex"
    ]
    page = _page(recorded)
    assert page.count('<svg class="chart line"') == 3
    epsilon, accuracy, gap = (str(c.svg) for c in view.charts)
    assert epsilon.count("<polyline") == 2 and accuracy.count("<polyline") == 2
    # both hospitals' gaps are inconclusive (fewer than 30 women): no point, a ? that says why
    assert gap.count("<polyline") == 1  # only the pooled federation has values
    assert gap.count("<circle") == 2 and gap.count(">?<title>") == 4
    assert "cleveland, 2: no value (small_group: group(s) &#39;Female&#39; (n=24) below min_group_size 30" in gap
    assert view.charts[2].note.startswith("No value (marked ?) — inconclusive, not zero: cleveland, rounds 1, 2: small_group")
    fairness = {row.scope: row for row in view.fairness}
    assert list(fairness)[:2] == ["hospital=cleveland/sex", "hospital=hungary/sex"]
    assert fairness["hospital=cleveland/sex"].cells[0].text == "—" and fairness["hospital=cleveland/sex"].cells[0].note
    assert fairness["federation/sex"].cells[0].text == "0.0000"


def test_failed_and_refused_rounds_and_an_early_stop_are_shown_plainly(tmp_path: Path) -> None:
    page = _page(_result(tmp_path, _troubled(sample())))
    rounds = page.split("<h4>Round by round</h4>")[1].split("</table>")[0]
    assert '<span class="badge st-fail">failed</span><span class="note">CUDA out of memory in local training</span>' in rounds
    assert '<span class="badge st-inconclusive">refused: ε budget</span><span class="note">the round would take its ε above max_epsilon=4.5</span>' in rounds
    assert ('<div class="error-box" role="alert"><p><strong>Stopped early.</strong> Training stopped early after 2 of 3 planned '
            "rounds: stopped before round 3: every hospital&#39;s next round would pass max_epsilon=4.5</p></div>") in page
    assert "<td><strong>1 trained, 1 failed</strong></td>" in page and "<td><strong>1 trained, 1 refused (ε budget)</strong></td>" in page
    assert "Not evaluated (marked ?): cleveland, round 2: not evaluated (failed); hungary, round 2: not evaluated (refused: ε budget)." in page
    assert "budget ε = 4.5" in page  # the budget line on the ε chart
    assert "<dt>ε budget per hospital</dt><dd>4.5 (a round that would pass it is refused)</dd>" in page


def test_disagreeing_records_are_an_alert(tmp_path: Path) -> None:
    history = sample()
    history["hospitals"][0]["epsilon"] = 0.5
    page = _page(_result(tmp_path, history))
    assert "<strong>Records disagree:</strong> federated.json records ε = 0.5 for hospital &#39;cleveland&#39;" in page


def test_without_dp_there_is_no_epsilon_chart(tmp_path: Path) -> None:
    history = sample()
    history["settings"]["dp"] = None
    history["delta"] = history["epsilon_max"] = None
    for hospital in history["hospitals"]:
        hospital.update(epsilon=None, epsilon_by_round={}, history={"round": [], "noise_multiplier": [], "sample_rate": [], "steps": []})
    page = _page(_result(tmp_path, history))
    assert page.count('<svg class="chart line"') == 2 and "Privacy spent" not in page
    assert "<dt>DP-SGD</dt><dd>none: trained without differential privacy</dd>" in page
    assert "Trained without DP-SGD: no hospital has a privacy guarantee" in page


def test_a_run_stopped_before_any_round_draws_no_chart(tmp_path: Path) -> None:
    history = sample()
    history.update(rounds=[], rounds_done=0, epsilon_max=0.0, stopped_reason="stopped before training: 1 node(s) connected")
    for hospital in history["hospitals"]:
        hospital.update(epsilon=0.0, epsilon_by_round={}, history={key: [] for key in hospital["history"]})
    page = _page(_result(tmp_path, history))
    assert "<svg" not in page.split("<h4>Federated training</h4>")[1].split("<h4>Metrics</h4>")[0]
    assert "Training stopped early after 0 of 2 planned rounds: stopped before training" in page
    assert "never evaluated" in page


def test_hospital_names_stay_text(tmp_path: Path) -> None:
    page = _page(_result(tmp_path, _renamed(sample(), "cleveland", SCRIPT)))
    assert SCRIPT not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.replace("<wbr>", "")
    assert not re.search(r"<script", page, re.IGNORECASE)


def test_the_report_rerendered_from_run_json_is_the_same(recorded: AuditResult) -> None:
    record = dataclasses.replace(make_record(), results=(recorded,))
    again = parse_json(render(record, "json"))
    assert again == record
    assert render(again, "html") == render(record, "html")


def test_markdown_and_notebook_render_the_audit(recorded: AuditResult) -> None:
    record: RunRecord = dataclasses.replace(make_record(), results=(recorded,))
    markdown = render(record, "markdown")
    assert "**federated** (federated): ok" in markdown
    frame = audit_html(recorded)
    assert frame.startswith('<div class="guardrail-nb">') and "Privacy spent: ε by round" in frame
    assert recorded._repr_html_() == frame


def test_an_errored_federated_audit_shows_its_error_and_no_section() -> None:
    error = ErrorInfo("AuditError", "the model folder has no federated.json", "train it with `guardrail federate SPEC`")
    page = _page(AuditResult("federated", "federated", AuditStatus.ERROR, error=error))
    assert "the model folder has no federated.json" in page and "<h4>Federated training</h4>" not in page


@pytest.mark.browser
def test_payloads_run_nothing_and_the_section_fits_phone_and_print(tmp_path: Path) -> None:

    from tests.report.test_html_browser import IMG, SVG, opened_in_chromium
    from tests.report.test_html_layout import OVERFLOW

    history = _renamed(_renamed(_troubled(sample()), "cleveland", SCRIPT), "hungary", IMG)
    history["rounds"][1]["hospitals"][SCRIPT]["reason"] = SVG
    history["provenance"] = f"{PROVENANCE} {SVG}"
    page_file = tmp_path / "report.html"
    page_file.write_text(_page(_result(tmp_path, history)), encoding="utf-8")
    with opened_in_chromium(page_file) as opened:
        page = opened.page
        ran_nothing = opened.ran_nothing()
        charts = page.evaluate("document.querySelectorAll('svg.chart.line').length")
        text = page.inner_text("body")
        fits = {}
        for width, media in ((420, "screen"), (1280, "screen"), (800, "print")):
            page.set_viewport_size({"width": width, "height": 900})
            page.emulate_media(media=media)  # type: ignore[arg-type]
            fits[(width, media)] = page.evaluate(OVERFLOW)
    assert ran_nothing
    assert charts == 3
    for payload in (SCRIPT, IMG, SVG):
        assert payload in text, f"{payload!r} must show literally"
    assert all(fits.values()), fits


def test_chart_text_meets_wcag_aa(recorded: AuditResult) -> None:
    from tests.report.test_html_readability import AA, contrast

    charts = "".join(str(c.svg) for c in federated_view(recorded).charts)
    fills = set(re.findall(r'<text[^>]*fill="(#[0-9a-fA-F]{3,6})"', charts))
    assert len(fills) >= 3  # axis labels, the ? of an undefined point, ...
    for fill in fills:
        assert contrast(fill, "#fff") >= AA, fill
