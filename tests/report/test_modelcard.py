"""Model cards (Markdown and JSON) rendered from the run record alone."""

from __future__ import annotations

import json

from guardrail.core.types import RunRecord
from guardrail.report import render


def test_model_card_has_the_sections_and_only_recorded_facts(record: RunRecord) -> None:
    card = render(record, "card-md")
    for section in ("## Model details", "## Intended use", "## Data", "## Metrics by group", "## Evaluation against policy", "## Limitations", "## Privacy"):
        assert section in card
    assert "No privacy audit was run" in card
    data = json.loads(render(record, "card-json"))
    assert set(data) == {"model_details", "intended_use", "data", "metrics_by_group", "evaluation", "limitations", "privacy"}
    assert data["evaluation"]["exit_code"] == int(record.exit_code())
    tables = {t["metric"] for t in data["metrics_by_group"]}
    assert tables and all(t.split("[")[0].removeprefix("fairness.") in ("selection_rate", "tpr", "fpr", "accuracy") for t in tables)
    assert any("Not evaluated in this run" in item for item in data["limitations"])


def test_model_card_escapes_data() -> None:
    from tests.report.conftest import make_record

    record = make_record(name="<script>alert(1)</script>", group_a="A|B <img src=x>")
    card = render(record, "card-md")
    assert "<script>" not in card and "<img" not in card
    assert "&lt;script&gt;" in card and "A\\|B" in card
