"""The explainability section of the HTML report, rendered from a real explainability audit
of the demo's Adult model: drivers, proxies, quality, agreement, importance by group and
local explanations; feature and token names stay text."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import guardrail
from guardrail.core.types import AuditResult, RunRecord
from guardrail.report import render
from guardrail.report.explain_view import explain_view

SCRIPT = "<script>window.__pwned=1</script>"


@pytest.fixture(scope="module")
def golden(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    out = tmp_path_factory.mktemp("explain-report")
    return guardrail.audit(demo_root / "audits" / "adult-income.yaml", out=out / "out", write=False)


def _explain(record: RunRecord) -> AuditResult:
    return next(r for r in record.results if r.auditor == "explainability")


def test_sections_are_shown(golden: RunRecord) -> None:
    page = render(golden, "html")
    for heading in ("What drives the model", "Protected attributes and proxies", "Can the explanations be trusted?",
                    "Importance by <code>sex</code>", "Local explanations: "):
        assert heading in page
    assert "Feature ablation vs LIME" in page


def test_view_follows_the_metrics(golden: RunRecord) -> None:
    result = _explain(golden)
    view = explain_view(result)
    ranking = result.artifacts["ranking"]
    assert view.ranking_note.startswith("Strongest drivers, in order. Feature ablation: " + ", ".join(ranking["feature_ablation"][:5]))
    metrics = {m.ref: m for m in result.metrics}
    (ablation, _lime) = view.quality
    assert ablation.cells[0].text == f"{metrics['explain.feature_ablation.deletion_auc'].value:.4f}"
    proxy = metrics["explain.proxy.proxy_in_top_k"]
    named = ", ".join(proxy.details["in_top_k"])
    assert any(named in sentence for sentence in view.proxy) == bool(proxy.value)
    assert len(view.local) == len(result.artifacts["local"])


def test_feature_names_stay_text(golden: RunRecord) -> None:
    result = _explain(golden)
    hostile = dataclasses.replace(
        result,
        metrics=tuple(dataclasses.replace(m, scope=SCRIPT) if m.scope == "age" else m for m in result.metrics),
        artifacts={**result.artifacts, "ranking": {k: [SCRIPT, *v] for k, v in result.artifacts["ranking"].items()}},
    )
    page = render(dataclasses.replace(golden, results=(hostile,)), "html")
    assert SCRIPT not in page and "&lt;script&gt;" in page


def test_token_heatmap_escapes_tokens(golden: RunRecord) -> None:
    result = _explain(golden)
    heatmap = {"method": "layer_ig", "documents": [{"caption": "review 3", "tokens": [
        {"gap": "", "token": SCRIPT, "weight": 0.9}, {"gap": " ", "token": "fine", "weight": -0.4}]}]}
    page = render(dataclasses.replace(golden, results=(dataclasses.replace(result, artifacts={**result.artifacts, "heatmap": heatmap}),)), "html")
    assert "Token heatmaps" in page and SCRIPT not in page
    assert 'style="background: rgba(47,109,181,0.50)" title="+0.90">&lt;script&gt;' in page


def test_text_quality_tables_escape_words(golden: RunRecord) -> None:
    """Words are untrusted text everywhere the text section shows them: the chart, the proxy
    sentences and associations, faithfulness by group and importance by group."""
    from guardrail.core.types import AuditStatus, GroupValue, Interval, MetricResult

    ci = Interval(0.1, 0.3)
    curve = {"steps": 10, "documents_skipped": 0}
    metrics = (
        MetricResult("explain.layer_ig.importance", 0.2, scope=SCRIPT, ci=ci, n=3,
                     by_group=(GroupValue(f"rating={SCRIPT}", 0.2, 2, small=True), GroupValue("rating=ok", None, 0, True, "absent"))),
        MetricResult("explain.layer_ig.deletion_auc", 0.3, ci=ci, n=4, higher_is_better=False, details={**curve, "random_order": 0.51}),
        MetricResult("explain.layer_ig.insertion_auc", 0.6, ci=ci, n=4, higher_is_better=True, details={**curve, "random_order": 0.49}),
        MetricResult("explain.layer_ig.faithfulness", 0.3, ci=ci, n=4, higher_is_better=True, details={**curve, "random_order": -0.02},
                     by_group=(GroupValue(f"rating={SCRIPT}", 0.3, 2, small=True),)),
        MetricResult("explain.layer_ig.faithfulness_gap", None, scope="rating", n=4, higher_is_better=False,
                     reason=f"small_group: fewer than two groups of {SCRIPT!r} have 30 explained documents",
                     by_group=(GroupValue(SCRIPT, 0.3, 2, small=True), GroupValue("ok", 0.25, 2, small=True))),
        MetricResult("explain.layer_ig.stability", 1.0, n=4, higher_is_better=True, details={"deterministic": True}),
        MetricResult("explain.proxy.sensitive_in_top_k", 1.0, higher_is_better=False, details={"in_top_k": [SCRIPT], "top_k": 5}),
        MetricResult("explain.proxy.proxy_in_top_k", 1.0, higher_is_better=False, details={"in_top_k": [SCRIPT], "top_k": 5}),
    )
    artifacts = {
        "ranking": {"layer_ig": [SCRIPT]},
        "heatmap": {"method": "layer_ig", "documents": [{"caption": SCRIPT, "tokens": [{"gap": "", "token": SCRIPT, "weight": 1.0}]}]},
        "proxy": {"threshold": 0.1, "unit": "word", "associations": [{"feature": SCRIPT, "sensitive": "rating", "nmi": 1.0, "mi": 0.69}],
                  "strongest": {"rating": {"feature": SCRIPT, "nmi": 1.0}}},
    }
    text = AuditResult("explain", "explainability", AuditStatus.OK, metrics=metrics, artifacts=artifacts)
    page = render(dataclasses.replace(golden, results=(text,)), "html")
    assert SCRIPT not in page and "&lt;script&gt;" in page
    for shown in ("Mean |attribution| by word", "Faithfulness by <code>rating</code>", "Random word order (reference)",
                  "Words associated with a sensitive column", '<th scope="col">Word</th>', "Importance by <code>rating</code>",
                  "A word naming a group of a sensitive column is among the top 5 drivers: &lt;script&gt;",
                  "The word most associated with rating is “&lt;script&gt;"):
        assert shown in page, shown
    assert '<span class="note">fewer than two groups of' in page, "the gap's reason, without its machine-readable prefix"


@pytest.mark.browser
def test_feature_and_token_payloads_run_nothing_in_chromium(golden: RunRecord, tmp_path: Path) -> None:

    from tests.report.test_html_browser import IMG, SVG, opened_in_chromium

    result = _explain(golden)
    metrics = tuple(dataclasses.replace(m, scope=IMG) if m.scope == "age" else m for m in result.metrics)
    local = [dict(item, top={k: [dict(d, feature=SVG) for d in v] for k, v in item["top"].items()}) for item in result.artifacts["local"]]
    heatmap = {"method": "layer_ig", "documents": [{"caption": SVG, "tokens": [
        {"gap": IMG, "token": SCRIPT, "weight": 0.9}, {"gap": " ", "token": SVG, "weight": -0.4}]}]}
    hostile = dataclasses.replace(result, metrics=metrics, artifacts={**result.artifacts, "local": local, "heatmap": heatmap})
    page_file = tmp_path / "report.html"
    page_file.write_text(render(dataclasses.replace(golden, results=(hostile,)), "html"), encoding="utf-8")
    with opened_in_chromium(page_file, open_details=True) as opened:
        ran_nothing = opened.ran_nothing()
        text = opened.page.inner_text("body")
    assert ran_nothing
    for payload in (SCRIPT, IMG, SVG):
        assert payload in text, f"{payload!r} must show literally"
