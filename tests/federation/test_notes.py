"""Clinical-style notes per site: no site leaks, numbers round-trip, styles differ, determinism."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.datasets import load_heart_disease
from guardrail.federation import notes as notes_module
from guardrail.federation.notes import (
    MG_DL_PER_MMOL_L,
    PROVENANCE,
    SITE_STYLES,
    STYLE_NAMES,
    StyleName,
    style_of,
    write_note,
    write_notes,
)
from guardrail.federation.sites import build_hospitals

FORBIDDEN = re.compile(
    r"cleveland|ohio|hungar|budapest|long\s*beach|\bva\b|veteran|california|switzerland|swiss|schweiz|suisse"
    r"|z[uü]rich|basel|\bsite\b|hospital|diagnos|heart disease",
    re.IGNORECASE,
)
Parser = tuple[str, Callable[[float], float], float]
NUM = r"(-?\d+(?:\.\d+)?)"
MISSING: dict[StyleName, str] = {"ledger": "n/r", "prose": "not recorded", "terse": "?", "form": "—"}
# field → (pattern with one group: the number or the style's missing marker, back to the record's unit, tolerance)
PARSERS: dict[StyleName, dict[str, Parser]] = {
    "ledger": {
        "age": (r"^(\S+) y/o ", float, 0),
        "resting_bp": (r"BP (\S+?)/—mmHg", float, 0),
        "cholesterol": (r"chol (\S+?)(?: mg/dL)?,", float, 0),
        "max_heart_rate": (r"Max HR (\S+?)(?: bpm)?,", float, 0),
        "st_depression": (r"ST dep (\S+?)(?: mm)?,", float, 1e-9),
    },
    "prose": {
        "age": (r", (\S+) years old", float, 0),
        "resting_bp": (r"Blood pressure: (.+?)(?: mmHg)?;", float, 0),
        "cholesterol": (r"cholesterol (.+?)(?: mmol/L)?\. ", lambda v: v * MG_DL_PER_MMOL_L, 0.05 * MG_DL_PER_MMOL_L),
        "max_heart_rate": (r"Maximum heart rate (.+?)(?: beats/min)?;", float, 0),
        "st_depression": (r"ST depression (.+?)(?: mm)?(?:,| with)", float, 1e-9),
    },
    "terse": {
        "age": (r"^(\d+|\?)[MF]", float, 0),
        "resting_bp": (r"SBP (\S+);", float, 0),
        "cholesterol": (r"TC (\S+);", float, 0),
        "max_heart_rate": (r"HRmax (\S+);", float, 0),
        "st_depression": (r"STD (\S+) ", float, 1e-9),
    },
    "form": {
        "age": (r"Age: (.+?)(?: yrs)?\n", float, 0),
        "resting_bp": (r"BP (.+?)(?: mm Hg)?,", float, 0),
        "cholesterol": (r"total cholesterol (.+?)(?: mmol/L)?,", lambda v: v * MG_DL_PER_MMOL_L, 0.05 * MG_DL_PER_MMOL_L),
        "max_heart_rate": (r"max HR (.+?)(?:/min)?,", float, 0),
        "st_depression": (r"ST depression (.+?)(?: mV)? \(", lambda v: v / 0.1, 1e-9),
    },
}


@pytest.fixture(scope="module")
def heart() -> pd.DataFrame:
    return load_heart_disease()


@pytest.fixture(scope="module")
def records(heart: pd.DataFrame) -> list[dict[str, object]]:
    return [{str(k): v for k, v in r.items()} for r in heart.to_dict("records")]


def test_notes_are_documented_as_generated_from_real_records() -> None:
    assert "generated from real records" in PROVENANCE
    assert notes_module.__doc__ and "generated from real records" in notes_module.__doc__


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_no_note_names_a_site_city_or_country(records: list[dict[str, object]], style: StyleName) -> None:
    leaks = [note for note in (write_note(r, style) for r in records) if FORBIDDEN.search(note)]
    assert leaks == []


def test_notes_of_every_hospital_node_leak_nothing(heart: pd.DataFrame) -> None:
    for hospital in build_hospitals(data=heart, merge={"Switzerland": "VA Long Beach"}):
        for split in ("train", "test"):
            for note in write_notes(hospital.rows(split)):
                assert not FORBIDDEN.search(note), note
                assert hospital.name.split("-")[0] not in note.lower()


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_numbers_round_trip_to_the_record(records: list[dict[str, object]], style: StyleName) -> None:
    for record in records:
        note = write_note(record, style)
        for column, (pattern, to_record_unit, tolerance) in PARSERS[style].items():
            found = re.search(pattern, note, re.MULTILINE)
            assert found, (column, note)
            value = record[column]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert found.group(1) == MISSING[style], (column, note)
            else:
                assert abs(to_record_unit(float(found.group(1))) - float(value)) <= tolerance + 1e-9, (column, note)  # type: ignore[arg-type]


def test_cholesterol_in_mmol_per_litre_is_converted_correctly() -> None:
    record = {**_cleveland_first(), "cholesterol": 289.0}
    assert "cholesterol 7.5 mmol/L" in write_note(record, "prose")
    assert "chol 289 mg/dL" in write_note(record, "ledger")
    assert "BP 145/—mmHg" in write_note(record, "ledger")


def test_missing_values_are_written_each_sites_way(heart: pd.DataFrame) -> None:
    by_site = {site: write_notes(heart[heart["site"] == site]) for site in SITE_STYLES}
    assert all("total cholesterol —," in note for note in by_site["Switzerland"])  # never recorded there
    assert sum("TC ?;" in note for note in by_site["VA Long Beach"]) == 56
    assert sum("chol n/r," in note for note in by_site["Cleveland"]) == 0  # Cleveland records every cholesterol
    assert any("not recorded" in note for note in by_site["Hungary"])
    assert not any("nan" in note.lower() for notes in by_site.values() for note in notes)


def test_styles_differ_between_sites(records: list[dict[str, object]]) -> None:
    record = records[0]
    written = {style: write_note(record, style) for style in STYLE_NAMES}
    assert len(set(written.values())) == 4
    openings = {style: re.split(r"[\s.;:,]", note, maxsplit=1)[0] for style, note in written.items()}
    assert len(set(openings.values())) == 4
    assert len(set(SITE_STYLES.values())) == 4
    units = {style: ("mmol/L" in note, "mV" in note) for style, note in written.items()}
    assert len(set(units.values())) >= 3  # mg/dL vs mmol/L, mm vs mV


def test_notes_are_deterministic_and_follow_the_records_own_site(heart: pd.DataFrame) -> None:
    merged = build_hospitals(data=heart, merge={"Switzerland": "VA Long Beach"})[-1]
    first, second = write_notes(merged.rows("train")), write_notes(merged.rows("train"))
    assert first == second
    sites = merged.rows("train")["site"].astype(str).tolist()
    for site, note in zip(sites, first, strict=True):
        assert note.startswith("Sex:") == (style_of(site) == "form")


def test_unknown_style_or_site_or_value_is_an_error(records: list[dict[str, object]]) -> None:
    with pytest.raises(DataError, match="unknown note style"):
        write_note(records[0], "poetry")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no note style"):
        style_of("Budapest")
    with pytest.raises(DataError, match="unexpected value"):
        write_note({**records[0], "chest_pain_type": "crushing"}, "terse")
    with pytest.raises(DataError, match="no column"):
        write_note({"age": 50}, "terse")


def _cleveland_first() -> dict[str, object]:
    return {
        "age": 63, "sex": "Male", "chest_pain_type": "typical angina", "resting_bp": 145.0, "cholesterol": 233.0,
        "fasting_blood_sugar_over_120": 1, "resting_ecg": "lv hypertrophy", "max_heart_rate": 150.0,
        "exercise_angina": 0, "st_depression": 2.3, "st_slope": "downsloping", "major_vessels": 0.0,
        "thalassemia": "fixed defect",
    }  # fmt: skip
