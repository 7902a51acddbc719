"""read_note is the exact inverse of write_note: every row, every style, numbers up to the written precision."""

from __future__ import annotations

from itertools import combinations

import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.datasets import load_heart_disease
from guardrail.federation.flower.data import CODEBOOK, template_records
from guardrail.federation.notes import (
    MG_DL_PER_MMOL_L,
    NOTE_COLUMNS,
    NUMERIC_COLUMNS,
    STYLE_NAMES,
    StyleName,
    agreement_tolerance,
    read_note,
    record_differences,
    write_note,
    written_precision,
)


@pytest.fixture(scope="module")
def records() -> list[dict[str, object]]:
    heart = load_heart_disease()
    return [{str(k): v for k, v in r.items()} for r in heart[list(NOTE_COLUMNS)].to_dict("records")]


@pytest.fixture(scope="module")
def parsed(records: list[dict[str, object]]) -> dict[StyleName, list[dict[str, object]]]:
    return {style: [read_note(write_note(record, style), style) for record in records] for style in STYLE_NAMES}


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_every_record_reads_back_up_to_the_written_precision(
    records: list[dict[str, object]], parsed: dict[StyleName, list[dict[str, object]]], style: StyleName
) -> None:
    precision = written_precision(style)
    assert len(parsed[style]) == 920
    for record, back in zip(records, parsed[style], strict=True):
        assert list(back) == list(NOTE_COLUMNS)
        assert record_differences(record, back, precision) == [], (record, back)
        for column in NOTE_COLUMNS:
            assert (back[column] is None) == bool(pd.isna(record[column])), (column, record, back)  # type: ignore[call-overload]


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_read_values_use_the_datasets_spellings_and_types(parsed: dict[StyleName, list[dict[str, object]]], style: StyleName) -> None:
    for back in parsed[style]:
        assert isinstance(back["age"], int)
        for column, values in CODEBOOK.items():
            assert back[column] is None or back[column] in values, (column, back[column])
        for column in ("fasting_blood_sugar_over_120", "exercise_angina"):
            assert back[column] is None or type(back[column]) is int
        for column in NUMERIC_COLUMNS[1:]:
            assert back[column] is None or isinstance(back[column], float)


@pytest.mark.parametrize(("first", "second"), list(combinations(STYLE_NAMES, 2)))
def test_rewriting_in_another_style_gives_the_same_record(
    parsed: dict[StyleName, list[dict[str, object]]], first: StyleName, second: StyleName
) -> None:
    coarser = {column: max(written_precision(first)[column], written_precision(second)[column]) for column in NUMERIC_COLUMNS}
    for a, b in zip(parsed[first], parsed[second], strict=True):
        assert record_differences(a, b, agreement_tolerance(first, second)) == []
        assert record_differences(a, b, coarser) == []  # the data's integers and one-decimal ST read back tighter still


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_random_records_with_gaps_in_every_field_read_back(style: StyleName) -> None:
    records = template_records(size=300, seed=3, missing_rate=0.3)
    records.append({column: None for column in NOTE_COLUMNS})
    for record in records:
        assert record_differences(record, read_note(write_note(record, style), style), written_precision(style)) == []
    assert read_note(write_note(records[-1], style), style) == {column: None for column in NOTE_COLUMNS}


def test_units_are_converted_back(records: list[dict[str, object]]) -> None:
    record = {**records[0], "cholesterol": 289.0, "st_depression": -2.6}
    assert read_note(write_note(record, "prose"), "prose")["cholesterol"] == pytest.approx(7.5 * MG_DL_PER_MMOL_L)
    assert read_note(write_note(record, "form"), "form")["st_depression"] == pytest.approx(-2.6)
    assert read_note(write_note(record, "ledger"), "ledger")["cholesterol"] == 289.0


def test_written_precision_is_half_the_last_written_digit() -> None:
    assert written_precision("ledger")["cholesterol"] == 0.5
    assert written_precision("terse")["st_depression"] == pytest.approx(0.05)
    for style in ("prose", "form"):
        assert written_precision(style)["cholesterol"] == pytest.approx(0.05 * MG_DL_PER_MMOL_L)
    assert written_precision("form")["st_depression"] == pytest.approx(0.005 / 0.1)
    assert set(written_precision("form")) == set(NUMERIC_COLUMNS)
    assert agreement_tolerance("ledger", "form")["cholesterol"] == pytest.approx(0.5 + 0.05 * MG_DL_PER_MMOL_L)


def test_record_differences_names_each_differing_column(records: list[dict[str, object]]) -> None:
    record = records[0]
    changed = {**record, "cholesterol": float(record["cholesterol"]) + 1, "sex": "Female", "thalassemia": None}  # type: ignore[arg-type]
    assert record_differences(record, changed, written_precision("ledger")) == ["sex", "cholesterol", "thalassemia"]
    assert record_differences(record, changed, written_precision("prose")) == ["sex", "thalassemia"]
    with pytest.raises(DataError, match="no column"):
        record_differences(record, {"age": 1}, {})


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_a_note_that_is_not_in_the_style_is_an_error(records: list[dict[str, object]], style: StyleName) -> None:
    note = write_note(records[0], style)
    others = [write_note(records[0], other) for other in STYLE_NAMES if other != style]
    for malformed in ("", note[:-3], note + " extra", note.replace("1", "x", 1), *others):
        with pytest.raises(DataError, match="not a note in the") as caught:
            read_note(malformed, style)
        assert caught.value.where == "notes" and caught.value.hint
    with pytest.raises(DataError, match="unknown note style"):
        read_note(note, "poetry")  # type: ignore[arg-type]


def test_an_unknown_word_is_an_error(records: list[dict[str, object]]) -> None:
    note = write_note(records[0], "ledger")
    assert "CP: typical angina." in note
    with pytest.raises(DataError, match="not a note in the 'ledger' style"):
        read_note(note.replace("CP: typical angina.", "CP: crushing."), "ledger")
