"""The explainability auditor on a text classifier: token explanations of a stratified sample
of documents become explain.* metrics, a ranking and heatmap artifacts, and a policy can
judge them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.auditors.base import AuditContext
from guardrail.auditors.explainability import ExplainabilityAuditor, ExplainabilityParams
from guardrail.errors import AuditError
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


def test_tabular_only_methods_are_refused_for_text(context: AuditContext) -> None:
    with pytest.raises(AuditError, match="do not apply to text models"):
        ExplainabilityAuditor(ExplainabilityParams(methods=("feature_ablation",), samples=2)).run(context)
