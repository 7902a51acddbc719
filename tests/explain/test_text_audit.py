"""The explainability auditor on a text classifier: token explanations of a stratified sample
of documents become explain.* metrics, a ranking and heatmap artifacts, and a policy can
judge them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from guardrail.auditors.base import AuditContext
from guardrail.auditors.explainability import ExplainabilityAuditor, ExplainabilityParams
from guardrail.core.errors import AuditError
from guardrail.core.types import AuditResult
from tests.explain.test_text import DRIVER, _synthetic, _train_tiny

pytest.importorskip("captum")


@pytest.fixture(scope="module")
def context() -> AuditContext:
    import torch

    torch.set_num_threads(1)
    adapter = _train_tiny(steps=30, lr=3e-3)
    texts, labels = _synthetic(n=40, seed=3)
    data = pd.DataFrame({"text": texts, "label": labels, "site": ["a", "b"] * 20})
    proba = adapter.predict_proba(data)
    return AuditContext(
        audit_id="explain",
        data=data,
        y_true=np.asarray(labels),
        y_pred=proba.argmax(1),
        y_score=None,
        sensitive=("site",),
        missing_sensitive="error",
        positive_label=None,
        seed=0,
        where="spec.yaml",
        model=adapter,
        features=("text",),
        task="multiclass",
        class_labels=("ordinary", "praised"),
    )


def test_text_audit_reports_tokens_completeness_and_agreement(context: AuditContext) -> None:
    params = ExplainabilityParams(samples=6, lime_samples=200, ig_steps=20, top_k=3)
    result = ExplainabilityAuditor(params).run(context)
    metrics = {m.ref: m for m in result.metrics}
    assert metrics["explain.coverage"].value == 1.0 and metrics["explain.coverage"].n == 6
    assert metrics["explain.layer_ig.converged"].value == 1.0
    assert metrics["explain.layer_ig.max_relative_delta"].value <= params.ig_tolerance
    assert 0.0 <= metrics["explain.agreement.top_k_overlap[layer_ig~lime]"].value <= 1.0
    for method in ("layer_ig", "lime"):
        assert result.artifacts["ranking"][method][0] == DRIVER, "the word that decides the label drives both methods"
        assert metrics[f"explain.{method}.importance[{DRIVER}]"].value > 0
    for method in ("layer_ig", "lime"):  # 3 documents per site, below min_group_size = 30: too small to judge
        gap = metrics[f"explain.{method}.faithfulness_gap[site]"]
        assert gap.value is None and gap.reason is not None and gap.reason.startswith("small_group:")
        assert [(g.group, g.n, g.small) for g in gap.by_group] == [("a", 3, True), ("b", 3, True)]
    heatmap = result.artifacts["heatmap"]
    assert heatmap["method"] == "layer_ig" and len(heatmap["documents"]) == 6
    rows = {d["row"] for d in result.artifacts["documents"]}
    for document in heatmap["documents"]:
        row = int(document["caption"].split(":")[0].removeprefix("row "))
        assert row in rows
        text = "".join(t["gap"] + t["token"] for t in document["tokens"])
        assert text == context.data["text"][row][: len(text)], "the heatmap rebuilds the document's text"


def test_text_report_shows_completeness_and_heatmaps(context: AuditContext) -> None:
    from guardrail.report.explain_view import explain_view

    result = ExplainabilityAuditor(ExplainabilityParams(samples=4, lime_samples=100, ig_steps=20, top_k=3)).run(context)
    view = explain_view(result)
    assert dict(view.completeness)["Share of rows whose Integrated Gradients converged within 0.05"] == "1.0000"
    assert len(view.heatmaps) == 4 and view.importance_note.startswith("Mean |attribution| of the explained class")


@pytest.fixture(scope="module")
def quality(context: AuditContext) -> AuditResult:
    params = ExplainabilityParams(samples=8, lime_samples=100, ig_steps=20, top_k=3, min_group_size=2, stability_instances=4)
    return ExplainabilityAuditor(params).run(context)


def test_text_audit_measures_faithfulness_against_a_random_order(quality: AuditResult) -> None:
    metrics = {m.ref: m for m in quality.metrics}
    for method in ("layer_ig", "lime"):
        deletion, insertion = metrics[f"explain.{method}.deletion_auc"], metrics[f"explain.{method}.insertion_auc"]
        score = metrics[f"explain.{method}.faithfulness"]
        assert (deletion.higher_is_better, insertion.higher_is_better, score.higher_is_better) == (False, True, True)
        assert deletion.n == insertion.n == score.n == 8
        assert score.value == pytest.approx(insertion.value - deletion.value)
        assert score.ci is not None and score.ci.low <= score.value <= score.ci.high
        # the driver decides the label: its documents lose the class at the first removal
        assert score.value > score.details["random_order"] + 0.02 and score.value > 0
        assert deletion.value < deletion.details["random_order"]
        by_group = {g.group: g.value for g in score.by_group}
        assert set(by_group) == {"site=a", "site=b"}
        gap = metrics[f"explain.{method}.faithfulness_gap[site]"]
        assert {g.group: g.value for g in gap.by_group} == {"a": by_group["site=a"], "b": by_group["site=b"]}
        assert gap.value == pytest.approx(abs(by_group["site=a"] - by_group["site=b"]))
        assert by_group["site=b"] > by_group["site=a"], "site b holds the documents with the driver"


def test_text_audit_measures_stability_across_seeds(quality: AuditResult) -> None:
    metrics = {m.ref: m for m in quality.metrics}
    ig, lime = metrics["explain.layer_ig.stability"], metrics["explain.lime.stability"]
    assert ig.value == 1.0 and ig.details == {"deterministic": True}
    assert lime.value is not None and 0.0 <= lime.value <= 1.0 and lime.n == 4
    assert lime.details["seeds"] == [1000, 2000, 3000] == quality.artifacts["seeds"]["stability"]
    assert lime.details["top_k"] == 3 and not lime.details["stopped_by_budget"]


def test_text_audit_finds_the_planted_proxy_word(quality: AuditResult) -> None:
    """In the fixture, every review of site b and none of site a says "excellent"."""
    metrics = {m.ref: m for m in quality.metrics}
    proxy = quality.artifacts["proxy"]
    assert proxy["associations"][0] == {"feature": DRIVER, "sensitive": "site", "nmi": pytest.approx(1.0), "mi": pytest.approx(np.log(2))}
    assert proxy["proxies"] == {DRIVER: ["site"]} and proxy["documents"] == 40
    assert proxy["strongest"] == {"site": {"feature": DRIVER, "nmi": pytest.approx(1.0)}}
    flagged = metrics["explain.proxy.proxy_in_top_k"]
    assert flagged.value == 1.0 and DRIVER in flagged.details["in_top_k"]
    assert flagged.details["proxies"] == {DRIVER: ["site"]}
    # the filler word "a" is also the label of site a, but a one-letter code names no group
    assert "a" in set(quality.artifacts["ranking"]["layer_ig"]) and "a" not in flagged.details["sensitive_features"]
    # shares, from the importance metrics (every ranked word is reported: fewer than TOP_TOKENS)
    shares = []
    for method in ("layer_ig", "lime"):
        importance = {m.scope: m.value for m in quality.metrics if m.key == f"explain.{method}.importance"}
        assert set(importance) == set(quality.artifacts["ranking"][method])
        shares.append(sum(v for w, v in importance.items() if w == DRIVER) / sum(importance.values()))
    assert metrics["explain.proxy.proxy_share"].value == pytest.approx(max(shares))
    assert metrics["explain.proxy.sensitive_in_top_k"].higher_is_better is False


def test_text_report_shows_the_quality_tables(quality: AuditResult) -> None:
    from guardrail.report.explain_text_view import RANDOM_ORDER
    from guardrail.report.explain_view import explain_view

    view = explain_view(quality)
    assert view.unit == "Word"
    assert [row.method for row in view.quality] == ["Layer Integrated Gradients", "LIME", RANDOM_ORDER]
    (table,) = view.faithfulness_by_group
    assert table.column == "site" and table.groups == ("a", "b") and len(table.rows) == 2
    assert any(f"“{DRIVER}”" in sentence for sentence in view.proxy)
    assert view.proxy_associations[0][:2] == (DRIVER, "site")


def test_stability_is_undefined_once_the_budget_is_spent(context: AuditContext) -> None:
    params = ExplainabilityParams(samples=3, lime_samples=50, ig_steps=10, max_seconds=0.001)
    metrics = {m.ref: m for m in ExplainabilityAuditor(params).run(context).metrics}
    assert metrics["explain.coverage"].n == 1
    lime = metrics["explain.lime.stability"]
    assert lime.value is None and lime.reason is not None and "time budget" in lime.reason
    assert metrics["explain.lime.faithfulness"].n == 1, "the curves cover every explained document"


def test_tabular_only_methods_are_refused_for_text(context: AuditContext) -> None:
    with pytest.raises(AuditError, match="do not apply to text models"):
        ExplainabilityAuditor(ExplainabilityParams(methods=("feature_ablation",), samples=2)).run(context)


@pytest.mark.parametrize(("label", "names"), [("female", True), ("Male", True), ("F", False), ("M", False), ("1", False),
                                             ("2.5", False), ("(missing)", False), ("55 and over", True)])
def test_only_labels_that_are_words_name_a_group(label: str, names: bool) -> None:
    from guardrail.explain.text_results import _names_a_group

    assert _names_a_group(label) is names


@pytest.mark.parametrize(
    ("site", "message"),
    [
        (lambda i: "x" * 201 if i == 7 else "a", "201 characters \\(data row 8"),
        (lambda i: f"patient-{i}", None),  # 40 groups: within the bounds, explained as usual
    ],
)
def test_a_direct_call_meets_the_bounds_on_a_sensitive_column(
    context: AuditContext, site: Callable[[int], str], message: str | None
) -> None:
    """The bounds the runner checks before any audit hold for a caller that builds the context
    itself: an over-long label stops the audit with a DataError naming the row."""
    import dataclasses

    from guardrail.auditors.explainability import sensitive_groups
    from guardrail.core.errors import DataError

    data = context.data.assign(site=[site(i) for i in range(len(context.data))])
    ctx = dataclasses.replace(context, data=data)
    if message is None:
        assert len(set(sensitive_groups(ctx, ("site",))["site"])) == len(data)
        return
    with pytest.raises(DataError, match=message):
        ExplainabilityAuditor(ExplainabilityParams(samples=2, lime_samples=50, ig_steps=5)).run(ctx)


def test_more_groups_than_the_bound_are_refused(context: AuditContext) -> None:
    import dataclasses

    from guardrail.auditors.explainability import sensitive_groups
    from guardrail.core.errors import DataError

    data = pd.DataFrame({"site": [f"p{i}" for i in range(1001)]})
    with pytest.raises(DataError, match="1,001 groups"):
        sensitive_groups(dataclasses.replace(context, data=data), ("site",))
