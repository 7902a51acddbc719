"""Unit conversions in free text: values kept to the original's precision, blood pressure
never touched, lab units only with their analyte, the heart notes' four styles."""

from __future__ import annotations

import re

import numpy as np
import pytest

from guardrail.datasets import load_heart_disease
from guardrail.federation.notes import STYLE_NAMES, write_note
from guardrail.robustness.units import CONVERSIONS, Conversion, Quantity, convert_units, find_quantities

# one phrase per unit: how a value in that unit is written in a text with its keyword
PHRASE = {
    ("cholesterol", "mg/dL"): "total cholesterol {} mg/dL",
    ("cholesterol", "mmol/L"): "chol {} mmol/L",
    ("glucose", "mg/dL"): "fasting glucose {} mg/dL",
    ("glucose", "mmol/L"): "blood sugar {} mmol/L",
    ("triglycerides", "mg/dL"): "triglycerides {} mg/dL",
    ("triglycerides", "mmol/L"): "TG {} mmol/L",
    ("creatinine", "mg/dL"): "creatinine {} mg/dL",
    ("creatinine", "µmol/L"): "Cr {} µmol/L",
    ("temperature", "°F"): "temp {} °F",
    ("temperature", "°C"): "temp {}°C",
    ("weight", "lb"): "weight {} lbs",
    ("weight", "kg"): "weight {} kg",
    ("length", "in"): "height {} in",
    ("length", "cm"): "height {} cm",
    ("st_depression", "mm"): "ST depression {} mm",
    ("st_depression", "mV"): "ST dep {} mV",
}


def _grid(decimals: int) -> list[str]:
    """Values written with ``decimals`` decimals: a dense run and a spread up to 1000, plus zero."""
    rng = np.random.default_rng(7)
    step = 10.0**-decimals
    dense = [i * step for i in range(0, 400)]
    spread = list(rng.uniform(-50, 1000, size=300))
    return sorted({f"{v:.{decimals}f}" for v in dense + spread})


CASES = [(c, side, d) for c in CONVERSIONS for side in (0, 1) for d in (0, 1, 2)]


@pytest.mark.parametrize(("conversion", "side", "decimals"), CASES, ids=lambda x: getattr(x, "analyte", str(x)))
def test_round_trip_over_a_grid(conversion: Conversion, side: int, decimals: int) -> None:
    """Convert, parse, convert the parsed value back: rounded to the original's decimals it
    is the original number, and the written value is the conversion to its own precision."""
    unit, other = conversion.units[side], conversion.units[1 - side]
    forward, backward = (conversion.forward, conversion.backward) if side == 0 else (conversion.backward, conversion.forward)
    for written in _grid(decimals):
        text = PHRASE[(conversion.analyte, unit)].format(written)
        [original] = find_quantities(text)
        assert (original.value, original.decimals, original.unit) == (float(written), decimals, unit)
        converted, count = convert_units(text)
        assert count == 1, text
        [there] = find_quantities(converted)
        assert there.unit == other and there.analyte == conversion.analyte
        assert there.decimals >= conversion.decimals[1 - side]
        assert there.value == pytest.approx(forward(float(written)), abs=0.5 * 10**-there.decimals + 1e-9)
        assert float(f"{backward(there.value):.{decimals}f}") == float(written), (text, converted)
        # the text converted back holds the original value, to the original's decimals
        [again] = find_quantities(convert_units(converted)[0])
        assert again.unit == unit
        if decimals == conversion.decimals[side]:  # written at the unit's usual precision: the very same text
            assert (again.value, again.decimals) == (original.value, original.decimals), (text, converted)


def test_fewest_decimals_rule() -> None:
    assert convert_units("chol 233 mg/dL") == ("chol 6.03 mmol/L", 1)
    assert convert_units("chol 6.0 mmol/L") == ("chol 232 mg/dL", 1)
    assert convert_units("chol 232 mg/dL") == ("chol 6.0 mmol/L", 1)
    assert convert_units("ST dep 2.3 mm") == ("ST dep 0.23 mV", 1)
    assert convert_units("ST dep 0.20 mV") == ("ST dep 2.0 mm", 1)
    assert convert_units("Temp 98.6 °F") == ("Temp 37.0 °C", 1)
    assert convert_units("Temp 37.0°C") == ("Temp 98.6°F", 1)
    assert convert_units("glucose 100 mg/dL") == ("glucose 5.55 mmol/L", 1)
    assert convert_units("creatinine 1.2 mg/dL") == ("creatinine 106 µmol/L", 1)
    assert convert_units("weight 154 lbs") == ("weight 69.9 kg", 1)


@pytest.mark.parametrize(
    "text",
    [
        "BP 145 mmHg",
        "BP 145/90 mmHg",
        "BP 145 mm Hg, ST depression noted",
        "ST segment: BP 120 mm Hg",
        "BP 145/—mmHg",
        "Vitamin D 30 mg/dL",  # mg/dL without a recognised analyte
        "cholesterol high. Other 200 mg/dL",  # the keyword is in another sentence
        "a 5 mm nodule",  # mm without an ST keyword
        "2 in 10 patients",  # "in" without a height keyword
        "sugar 2-3 mmol/L",  # a range
        "BMI 25 kg/m2",
        "creatinine 1.2 mmol/L",  # an analyte known, but not in this unit
        "no numbers here",
        "",
    ],
)
def test_left_alone(text: str) -> None:
    assert convert_units(text) == (text, 0)
    assert find_quantities(text) == []


def test_negative_and_zero_values() -> None:
    assert convert_units("ST depression -0.5 mm") == ("ST depression -0.05 mV", 1)
    assert convert_units("ST depression 0.0 mm") == ("ST depression 0.00 mV", 1)
    assert convert_units("ST dep -0.00 mV") == ("ST dep 0.0 mm", 1)
    assert convert_units("-40°F outside") == ("-40.0°C outside", 1)
    assert convert_units("temp 0 °C") == ("temp 32.0 °F", 1)


def test_several_quantities_in_one_text() -> None:
    text = "Chol 233 mg/dL, LDL 150 mg/dL, glucose 6.7 mmol/L; BP 130/80 mmHg. Temp 101.2 °F, weight 80 kg, ht 70 in."
    found = find_quantities(text)
    assert [(q.analyte, q.value, q.unit, q.decimals) for q in found] == [
        ("cholesterol", 233.0, "mg/dL", 0),
        ("cholesterol", 150.0, "mg/dL", 0),
        ("glucose", 6.7, "mmol/L", 1),
        ("temperature", 101.2, "°F", 1),
        ("weight", 80.0, "kg", 0),
        ("length", 70.0, "in", 0),
    ]
    for q in found:
        assert text[q.start : q.end].startswith(str(int(q.value)))
    converted, count = convert_units(text)
    assert count == 6
    assert converted == (
        "Chol 6.03 mmol/L, LDL 3.88 mmol/L, glucose 121 mg/dL; BP 130/80 mmHg. Temp 38.44 °C, weight 176 lb, ht 177.8 cm."
    )
    back = find_quantities(convert_units(converted)[0])
    assert [(q.unit, round(q.value, o.decimals)) for q, o in zip(back, found)] == [(o.unit, o.value) for o in found]


def test_cm_without_height_keyword_writes_inches() -> None:
    converted, count = convert_units("a 2.5 cm mass")
    assert (converted, count) == ("a 1 inches mass", 1)
    assert find_quantities(converted)[0].unit == "in"


def test_quantity_fields() -> None:
    [q] = find_quantities("chol 1,200 mg/dL")
    assert q == Quantity(analyte="cholesterol", value=1200.0, unit="mg/dL", decimals=0, start=5, end=16)


# -- the heart notes -----------------------------------------------------------------------

NUMBER = r"(-?\d+(?:\.\d+)?)"


@pytest.fixture(scope="module")
def records() -> list[dict[str, object]]:
    heart = load_heart_disease()
    rows = heart.iloc[[0, 1, 320, 650, 820, 900]]
    return [{str(k): v for k, v in row.items()} for row in rows.to_dict("records")]


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_heart_notes_convert_cholesterol_and_st(records: list[dict[str, object]], style: str) -> None:
    for record in records:
        note = write_note(record, style)  # type: ignore[arg-type]
        converted, count = convert_units(note)
        chol, st = record["cholesterol"], record["st_depression"]
        if style == "terse":  # no units written: nothing to convert
            assert (converted, count) == (note, 0)
            continue
        if style in ("ledger",):
            if _present(chol):
                [value] = re.findall(r"chol " + NUMBER + r" mmol/L", converted)
                assert float(value) * 38.67 == pytest.approx(float(chol), abs=0.5)  # type: ignore[arg-type]
        else:  # prose and form write cholesterol in mmol/L, one decimal
            if _present(chol):
                [value] = re.findall(r"cholesterol " + NUMBER + r" mg/dL", converted)
                assert float(value) == round(round(float(chol) / 38.67, 1) * 38.67)  # type: ignore[arg-type]
        if _present(st):
            if style == "form":
                [value] = re.findall(r"ST depression " + NUMBER + r" mm\b", converted)
                assert float(value) == pytest.approx(float(st), abs=1e-9)  # type: ignore[arg-type]
            else:
                [value] = re.findall(r"ST (?:dep|depression) " + NUMBER + r" mV", converted)
                assert float(value) == pytest.approx(float(st) / 10, abs=1e-9)  # type: ignore[arg-type]
        assert "mmHg" in converted or "mm Hg" in converted
        assert re.findall(r"BP \d+", converted) == re.findall(r"BP \d+", note)  # blood pressure untouched
        assert convert_units(converted) == (note, count)  # and back to the note itself
