"""The site-style probe's notes: every row in every style, own styles, and proof that only the style changed."""

from __future__ import annotations

import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.datasets import load_heart_disease
from guardrail.federation.notes import NOTE_COLUMNS, SITE_STYLES, STYLE_NAMES, StyleName, write_note, write_notes
from guardrail.robustness.site_style import REQUIRED_COLUMNS, check_only_style_changed, own_styles, restyle


@pytest.fixture(scope="module")
def heart() -> pd.DataFrame:
    return load_heart_disease()


@pytest.fixture(scope="module")
def restyled(heart: pd.DataFrame) -> dict[StyleName, list[str]]:
    return {style: restyle(heart, style) for style in STYLE_NAMES}


def test_required_columns_are_the_record_and_the_site() -> None:
    assert REQUIRED_COLUMNS == (*NOTE_COLUMNS, "site")


def test_restyle_writes_every_row_in_order(heart: pd.DataFrame, restyled: dict[StyleName, list[str]]) -> None:
    records = heart.to_dict("records")
    for style, notes in restyled.items():
        assert len(notes) == len(heart) == 920
        assert notes[::97] == [write_note({str(k): v for k, v in r.items()}, style) for r in records[::97]]
    assert restyle(heart.iloc[::-1], "terse") == restyled["terse"][::-1]


def test_own_styles_follow_each_site(heart: pd.DataFrame, restyled: dict[StyleName, list[str]]) -> None:
    styles = own_styles(heart)
    assert {site: own_styles(heart[heart["site"] == site])[0] for site in SITE_STYLES} == {
        "Cleveland": "ledger", "Hungary": "prose", "VA Long Beach": "terse", "Switzerland": "form",
    }  # fmt: skip
    assert [restyled[style][i] for i, style in enumerate(styles)] == write_notes(heart)  # own style = the federation's note


def test_an_unknown_site_names_it_and_the_known_sites(heart: pd.DataFrame) -> None:
    rows = heart.head(3).assign(site=["Cleveland", "Basel", "Cleveland"])
    with pytest.raises(DataError, match="'Basel'") as caught:
        own_styles(rows)
    assert caught.value.hint and all(site in caught.value.hint for site in SITE_STYLES)
    with pytest.raises(DataError, match="'hospital'"):
        own_styles(heart.head(3), site_column="hospital")


def test_rows_without_the_record_columns_are_an_error(heart: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="'cholesterol'"):
        restyle(heart.drop(columns=["cholesterol"]), "ledger")


def test_real_restyles_change_only_the_style(heart: pd.DataFrame, restyled: dict[StyleName, list[str]]) -> None:
    check_only_style_changed(heart, restyled)
    audit_like = heart.drop(columns=["id"]).assign(sex=heart["sex"].astype(str), site=heart["site"].astype(str))
    check_only_style_changed(audit_like, restyled)  # the audit table's dtypes


@pytest.mark.parametrize(
    ("style", "before", "after", "column"),
    [
        ("terse", "TC 233;", "TC 234;", "cholesterol"),
        ("ledger", "chol 233 mg/dL", "chol 243 mg/dL", "cholesterol"),
        ("prose", "cholesterol 6.0 mmol/L", "cholesterol 6.1 mmol/L", "cholesterol"),
        ("form", "ST depression 0.23 mV", "ST depression 0.25 mV", "st_depression"),
        ("terse", "FBS+", "FBS-", "fasting_blood_sugar_over_120"),
        ("ledger", "Thal: fixed defect.", "Thal: n/r.", "thalassemia"),
    ],
)
def test_a_tampered_note_is_caught(
    heart: pd.DataFrame, restyled: dict[StyleName, list[str]], style: StyleName, before: str, after: str, column: str
) -> None:
    notes = list(restyled[style])
    assert before in notes[0]  # row 0: Cleveland, 63 M, cholesterol 233, ST 2.3, FBS yes, fixed defect
    notes[0] = notes[0].replace(before, after)
    with pytest.raises(DataError, match=f"row 0 changes more than the style.*{column}") as caught:
        check_only_style_changed(heart, {**restyled, style: notes})
    assert caught.value.where == "site_style"


def test_wrong_lengths_and_styles_are_caught(heart: pd.DataFrame, restyled: dict[StyleName, list[str]]) -> None:
    with pytest.raises(DataError, match="919 notes in the 'form' style for 920 rows"):
        check_only_style_changed(heart, {"form": restyled["form"][1:]})
    with pytest.raises(DataError, match="not a note in the 'form' style"):
        check_only_style_changed(heart, {"form": restyled["prose"]})
