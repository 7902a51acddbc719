"""Each Heart Disease record as a clinical-style note in its hospital's own writing style.

The notes are **generated from real records**: every number and finding in a note is the
value of one row of the UCI Heart Disease data (:func:`guardrail.datasets.load_heart_disease`),
written out by a fixed template. They are not real clinical text; no word is invented beyond
the template, and nothing is sampled, so the same record always gives the same note.

Each source site has its own style — field order, abbreviations, units and its way of
writing a value that was not recorded — so that hospitals differ the way real notes do:

============  ==========  ===========  ==========  =========  ================================
style         site        cholesterol  ST change   missing    look
============  ==========  ===========  ==========  =========  ================================
``ledger``    Cleveland   mg/dL        mm          ``n/r``    ``63 y/o M. CP: typical angina.
                                                              BP 145/—mmHg, chol 233 mg/dL, …``
``prose``     Hungary     mmol/L       mm          not        ``Man, 63 years old, presenting
                                                   recorded   with … Blood pressure: 145 mmHg;
                                                              cholesterol 6.0 mmol/L. …``
``terse``     VA Long     mg/dL        mm          ``?``      ``63M; SBP 145; TC 233; FBS-; …``
              Beach
``form``      Switzer-    mmol/L       mV          ``—``      ``Sex: male`` / ``Age: 63 yrs`` /
              land                                            one line per section
============  ==========  ===========  ==========  =========  ================================

Cholesterol in mmol/L is mg/dL ÷ 38.67 (:data:`MG_DL_PER_MMOL_L`), one decimal; ST
depression in mV is mm × 0.1 (standard calibration 10 mm/mV). A note never contains the
site's name, its city or country, the record id or the diagnosis: only style tells sites
apart (which is the point: the federated model must cope with it). Rows of a merged node
keep the style of the site they come from.

Each style is one template (:data:`TEMPLATES`) filled with the written form of each field,
so a note can be read back: :func:`read_note` is the exact inverse of :func:`write_note`, up
to the rounding of the numbers each style writes (:func:`written_precision`), and
:func:`record_differences` names the fields on which two records disagree beyond it.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from guardrail.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

StyleName = Literal["ledger", "prose", "terse", "form"]
STYLE_NAMES: tuple[StyleName, ...] = ("ledger", "prose", "terse", "form")
SITE_STYLES: Mapping[str, StyleName] = {
    "Cleveland": "ledger",
    "Hungary": "prose",
    "VA Long Beach": "terse",
    "Switzerland": "form",
}
MG_DL_PER_MMOL_L = 38.67
"""Cholesterol: 1 mmol/L = 38.67 mg/dL."""
MV_PER_MM = 0.1
"""ECG at the standard 10 mm/mV: 1 mm of ST depression is 0.1 mV."""
PROVENANCE = (
    "The notes are generated from real records: each is one row of the UCI Heart Disease data "
    "(four hospitals, CC BY 4.0) written out by a fixed, site-specific template."
)
"""A sentence for reports and model cards."""

Record = Mapping[str, object]

# -- how each style writes a field -----------------------------------------------------

NOTE_COLUMNS: tuple[str, ...] = (
    "age",
    "sex",
    "chest_pain_type",
    "resting_bp",
    "cholesterol",
    "fasting_blood_sugar_over_120",
    "resting_ecg",
    "max_heart_rate",
    "exercise_angina",
    "st_depression",
    "st_slope",
    "major_vessels",
    "thalassemia",
)
"""The record columns a note writes (every finding; never the site, the id or the diagnosis)."""
NUMERIC_COLUMNS: tuple[str, ...] = ("age", "resting_bp", "cholesterol", "max_heart_rate", "st_depression", "major_vessels")
"""The columns a note writes as numbers (rounded: see :func:`written_precision`)."""
TEMPLATES: Mapping[StyleName, str] = {
    "ledger": (
        "{age} y/o {sex}. CP: {chest_pain_type}. BP {resting_bp}/—mmHg, chol {cholesterol}, "
        "FBS >120: {fasting_blood_sugar_over_120}. Rest ECG: {resting_ecg}. "
        "Max HR {max_heart_rate}, exertional angina: {exercise_angina}. ST dep {st_depression}, slope {st_slope}. "
        "Fluoro vessels: {major_vessels}. Thal: {thalassemia}."
    ),
    "prose": (
        "{sex}, {age} years old, presenting {chest_pain_type}. Blood pressure: {resting_bp}; cholesterol {cholesterol}. "
        "Raised fasting glucose: {fasting_blood_sugar_over_120}. Resting ECG {resting_ecg}. "
        "Maximum heart rate {max_heart_rate}; angina on exercise: {exercise_angina}. "
        "ST depression {st_depression}{st_slope}. Major vessels coloured by fluoroscopy: {major_vessels}. "
        "Thallium scan: {thalassemia}."
    ),
    "terse": (
        "{age}{sex}; SBP {resting_bp}; TC {cholesterol}; FBS{fasting_blood_sugar_over_120}; ECG {resting_ecg}; "
        "HRmax {max_heart_rate}; EIA{exercise_angina}; STD {st_depression} {st_slope}; vsl {major_vessels}; "
        "thal {thalassemia}; CP {chest_pain_type}"
    ),
    "form": (
        "Sex: {sex}\nAge: {age}\nChest pain: {chest_pain_type}\n"
        "Exercise test: max HR {max_heart_rate}, angina {exercise_angina}, ST depression {st_depression} ({st_slope})\n"
        "At rest: BP {resting_bp}, ECG {resting_ecg}\n"
        "Bloods: total cholesterol {cholesterol}, fasting glucose >6.7 mmol/L {fasting_blood_sugar_over_120}\n"
        "Imaging: {major_vessels} vessel(s) on fluoroscopy, thallium {thalassemia}"
    ),
}
"""Each style's note, one ``{column}`` placeholder per field (filled with the field as written)."""
MISSING: Mapping[StyleName, str] = {"ledger": "n/r", "prose": "not recorded", "terse": "?", "form": "—"}
"""How each style writes a value that was not recorded (prose words a missing sex, chest pain or slope as a phrase)."""
_MISSING_PHRASES: Mapping[tuple[StyleName, str], str] = {
    ("prose", "sex"): "Patient",
    ("prose", "chest_pain_type"): "with chest pain not recorded",
    ("prose", "st_slope"): ", slope not recorded",
}


class _Number:
    """How a style writes one numeric field: ``decimals`` after multiplying by ``scale``, then ``unit``."""

    def __init__(self, decimals: int = 0, unit: str = "", scale: float = 1.0, back: float = 1.0) -> None:
        self.decimals, self.unit, self.scale, self.back = decimals, unit, scale, back

    def write(self, value: float) -> str:
        return f"{{:.{self.decimals}f}}".format(value * self.scale) + self.unit

    def read(self, text: str) -> float:
        number = float(text.removesuffix(self.unit))
        return number if self.back == 1.0 else round(number * self.back, 6)

    @property
    def precision(self) -> float:
        """Half a unit of the last written digit, in the record's unit."""
        return 0.5 * 10.0**-self.decimals * self.back


_MMOL = _Number(1, " mmol/L", 1 / MG_DL_PER_MMOL_L, MG_DL_PER_MMOL_L)
_NUMBERS: Mapping[StyleName, Mapping[str, _Number]] = {
    "ledger": {
        "age": _Number(), "resting_bp": _Number(), "cholesterol": _Number(unit=" mg/dL"), "max_heart_rate": _Number(unit=" bpm"),
        "st_depression": _Number(1, " mm"), "major_vessels": _Number(),
    },
    "prose": {
        "age": _Number(), "resting_bp": _Number(unit=" mmHg"), "cholesterol": _MMOL, "max_heart_rate": _Number(unit=" beats/min"),
        "st_depression": _Number(1, " mm"), "major_vessels": _Number(),
    },
    "terse": {
        "age": _Number(), "resting_bp": _Number(), "cholesterol": _Number(), "max_heart_rate": _Number(),
        "st_depression": _Number(1), "major_vessels": _Number(),
    },
    "form": {
        "age": _Number(unit=" yrs"), "resting_bp": _Number(unit=" mm Hg"), "cholesterol": _MMOL, "max_heart_rate": _Number(unit="/min"),
        "st_depression": _Number(2, " mV", MV_PER_MM, 1 / MV_PER_MM), "major_vessels": _Number(),
    },
}  # fmt: skip
_THAL_WORDS = {"normal": "normal", "fixed defect": "fixed defect", "reversable defect": "reversible defect"}
_YES_NO = {0: "no", 1: "yes"}
_WORDS: Mapping[StyleName, Mapping[str, Mapping[Any, str]]] = {
    "ledger": {
        "sex": {"Male": "M", "Female": "F"},
        "chest_pain_type": {"typical angina": "typical angina", "atypical angina": "atypical angina", "non-anginal": "non-anginal pain", "asymptomatic": "asymptomatic"},
        "fasting_blood_sugar_over_120": _YES_NO,
        "resting_ecg": {"normal": "normal", "st-t abnormality": "ST-T abnormality", "lv hypertrophy": "LVH"},
        "exercise_angina": _YES_NO,
        "st_slope": {"upsloping": "up", "flat": "flat", "downsloping": "down"},
        "thalassemia": _THAL_WORDS,
    },
    "prose": {
        "sex": {"Male": "Man", "Female": "Woman"},
        "chest_pain_type": {
            "typical angina": "with typical angina", "atypical angina": "with atypical angina",
            "non-anginal": "with non-anginal chest pain", "asymptomatic": "without chest pain",
        },
        "fasting_blood_sugar_over_120": _YES_NO,
        "resting_ecg": {"normal": "is normal", "st-t abnormality": "shows ST-T wave abnormality", "lv hypertrophy": "shows left ventricular hypertrophy"},
        "exercise_angina": _YES_NO,
        "st_slope": {"upsloping": " with an upsloping segment", "flat": " with a flat segment", "downsloping": " with a downsloping segment"},
        "thalassemia": _THAL_WORDS,
    },
    "terse": {
        "sex": {"Male": "M", "Female": "F"},
        "chest_pain_type": {"typical angina": "typ", "atypical angina": "atyp", "non-anginal": "NAP", "asymptomatic": "asx"},
        "fasting_blood_sugar_over_120": {0: "-", 1: "+"},
        "resting_ecg": {"normal": "nl", "st-t abnormality": "STT", "lv hypertrophy": "LVH"},
        "exercise_angina": {0: "-", 1: "+"},
        "st_slope": {"upsloping": "up", "flat": "flat", "downsloping": "dn"},
        "thalassemia": {"normal": "nl", "fixed defect": "FD", "reversable defect": "RD"},
    },
    "form": {
        "sex": {"Male": "male", "Female": "female"},
        "chest_pain_type": {"typical angina": "typical angina", "atypical angina": "atypical angina", "non-anginal": "non-anginal pain", "asymptomatic": "none"},
        "fasting_blood_sugar_over_120": {0: "absent", 1: "present"},
        "resting_ecg": {"normal": "normal", "st-t abnormality": "ST-T changes", "lv hypertrophy": "left ventricular hypertrophy"},
        "exercise_angina": {0: "absent", 1: "present"},
        "st_slope": {"upsloping": "upsloping", "flat": "flat", "downsloping": "downsloping"},
        "thalassemia": _THAL_WORDS,
    },
}  # fmt: skip
"""Each style's words for the categories of the dataset (keys: the dataset's own spellings)."""


def _missing(style: StyleName, column: str) -> str:
    return _MISSING_PHRASES.get((style, column), MISSING[style])


# -- values -----------------------------------------------------------------------------


def _value(record: Record, column: str) -> object | None:
    if column not in record:
        raise DataError(f"the record has no column {column!r}", where="notes", hint="pass rows of load_heart_disease()")
    value = record[column]
    import pandas as pd

    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):  # type: ignore[call-overload]
        return None
    return value


def _field(record: Record, style: StyleName, column: str) -> str:
    """``column`` of ``record`` as ``style`` writes it."""
    value = _value(record, column)
    if value is None:
        return _missing(style, column)
    if column in NUMERIC_COLUMNS:
        return _NUMBERS[style][column].write(float(value))  # type: ignore[arg-type]
    key = int(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else str(value)  # type: ignore[call-overload]
    found = _WORDS[style][column].get(key)
    if found is None:
        raise DataError(f"unexpected value {value!r} in column {column!r}", where="notes", hint="pass rows of load_heart_disease()")
    return str(found)


def _writer(style: StyleName) -> Callable[[Record], str]:
    def write(record: Record) -> str:
        return TEMPLATES[style].format_map({column: _field(record, style, column) for column in NOTE_COLUMNS})

    return write


STYLES: Mapping[StyleName, Callable[[Record], str]] = {style: _writer(style) for style in STYLE_NAMES}


# -- reading a note back ----------------------------------------------------------------

_NUMBER_PATTERN = r"-?\d+(?:\.\d+)?"


def _alternatives(texts: list[str]) -> str:
    return "|".join(re.escape(text) for text in sorted(texts, key=len, reverse=True))


def _field_pattern(style: StyleName, column: str) -> str:
    missing = re.escape(_missing(style, column))
    if column in NUMERIC_COLUMNS:
        return f"(?P<{column}>{_NUMBER_PATTERN}{re.escape(_NUMBERS[style][column].unit)}|{missing})"
    return f"(?P<{column}>{_alternatives(list(_WORDS[style][column].values()))}|{missing})"


def _note_pattern(style: StyleName) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", TEMPLATES[style])  # literal, column, literal, column, ..., literal
    return re.compile("".join(re.escape(part) if i % 2 == 0 else _field_pattern(style, part) for i, part in enumerate(parts)))


_PATTERNS: Mapping[StyleName, re.Pattern[str]] = {style: _note_pattern(style) for style in STYLE_NAMES}


def _check_style(style: str) -> StyleName:
    if style not in STYLES:
        raise DataError(f"unknown note style {style!r}", where="notes", hint=f"use one of {', '.join(STYLE_NAMES)}")
    return style  # type: ignore[return-value]


def read_note(text: str, style: StyleName) -> dict[str, object]:
    """The record a note in ``style`` was written from: the exact inverse of :func:`write_note`.

    Returns every column of :data:`NOTE_COLUMNS` in the dataset's own spellings and units:
    categories as in :func:`~guardrail.datasets.load_heart_disease` (``"Male"``,
    ``"reversable defect"``, …), ``fasting_blood_sugar_over_120`` and ``exercise_angina`` as
    0/1, ``age`` as an int, the other numbers as floats with cholesterol in mg/dL (mmol/L ×
    :data:`MG_DL_PER_MMOL_L`) and ST depression in mm (mV ÷ :data:`MV_PER_MM`), and None where
    the note says the value was not recorded. Numbers are as written, so they equal the
    record's up to :func:`written_precision`.

    Raises
    ------
    DataError
        The text is not a note in ``style`` (``where="notes"``).

    Examples
    --------
    >>> read_note("63M; SBP 145; TC 233; FBS+; ECG LVH; HRmax 150; EIA-; STD 2.3 dn; vsl 0; thal FD; CP typ", "terse")["st_slope"]
    'downsloping'
    >>> note = "Bloods: total cholesterol 6.0 mmol/L, fasting glucose >6.7 mmol/L present"
    >>> record = {"age": 63, "sex": "Male", "chest_pain_type": "typical angina", "resting_bp": 145.0,
    ...           "cholesterol": 233.0, "fasting_blood_sugar_over_120": 1, "resting_ecg": "lv hypertrophy",
    ...           "max_heart_rate": None, "exercise_angina": 0, "st_depression": 2.3,
    ...           "st_slope": "downsloping", "major_vessels": 0.0, "thalassemia": "fixed defect"}
    >>> parsed = read_note(write_note(record, "form"), "form")
    >>> parsed["cholesterol"], parsed["st_depression"], parsed["max_heart_rate"]
    (232.02, 2.3, None)
    >>> record_differences(record, parsed, written_precision("form"))
    []
    """
    found = _PATTERNS[_check_style(style)].fullmatch(text)
    if found is None:
        raise DataError(
            f"the text is not a note in the {style!r} style: {text[:60]!r}{'…' if len(text) > 60 else ''}",
            where="notes",
            hint=f"read a note with the style it was written in (write_note(record, {style!r})); styles: {', '.join(STYLE_NAMES)}",
        )
    record: dict[str, object] = {}
    for column in NOTE_COLUMNS:
        written = found.group(column)
        if written == _missing(style, column):
            record[column] = None
        elif column in NUMERIC_COLUMNS:
            number = _NUMBERS[style][column].read(written)
            record[column] = int(number) if column == "age" else number
        else:
            record[column] = next(key for key, word in _WORDS[style][column].items() if word == written)
    return record


def written_precision(style: StyleName) -> Mapping[str, float]:
    """How far each number :func:`read_note` gives back can be from the record's, per column.

    Half a unit of the last digit ``style`` writes, in the record's unit: a number written
    with one decimal in mmol/L is within 0.05 × 38.67 ≈ 1.93 mg/dL of the record's
    cholesterol, one written with two decimals in mV within 0.005 ÷ 0.1 = 0.05 mm of its ST
    depression, and a whole number within 0.5. Categories and missing values are read back
    exactly.

    Examples
    --------
    >>> round(written_precision("prose")["cholesterol"], 4), written_precision("ledger")["cholesterol"]
    (1.9335, 0.5)
    >>> round(written_precision("form")["st_depression"], 4)
    0.05
    """
    return {column: number.precision for column, number in _NUMBERS[_check_style(style)].items()}


def agreement_tolerance(*styles: StyleName) -> Mapping[str, float]:
    """How far the numbers of notes written in ``styles`` from one record can be apart, per column.

    Each reading is within its own style's :func:`written_precision` of the record, so two
    readings of one value are within the sum of their precisions (the coarser one's, doubled at
    most). One style gives its own precision.

    Examples
    --------
    >>> round(agreement_tolerance("ledger", "prose")["cholesterol"], 4)
    2.4335
    """
    precisions = [written_precision(style) for style in styles]
    return {column: sum(precision[column] for precision in precisions) for column in NUMERIC_COLUMNS}


_SLACK = 1e-6
"""Floating-point room on top of a tolerance (reading back rounds to six decimals)."""


def record_differences(first: Record, second: Record, tolerance: Mapping[str, float]) -> list[str]:
    """The columns of :data:`NOTE_COLUMNS` on which two records disagree, in that order.

    A number differs when the two are further apart than ``tolerance[column]`` (0 for a column
    not in it; use :func:`written_precision` to compare a note with its record, and
    :func:`agreement_tolerance` to compare two notes); any other value differs when it is not
    equal. A missing value (None or NaN) equals only a missing value. Categories are compared
    as text and 0/1 flags as numbers, so a row of the dataset (categorical dtypes, nullable
    ints) compares with what :func:`read_note` gives.

    Examples
    --------
    >>> a = {column: None for column in NOTE_COLUMNS}
    >>> record_differences({**a, "cholesterol": 233.0}, {**a, "cholesterol": 232.02}, written_precision("prose"))
    []
    >>> record_differences({**a, "cholesterol": 233.0}, {**a, "cholesterol": 235.89}, written_precision("prose"))
    ['cholesterol']
    >>> record_differences({**a, "sex": "Male"}, a, {})
    ['sex']
    """
    differing = []
    for column in NOTE_COLUMNS:
        a, b = _value(first, column), _value(second, column)
        if a is None or b is None:
            same = a is None and b is None
        elif column in NUMERIC_COLUMNS or column in ("fasting_blood_sugar_over_120", "exercise_angina"):
            same = abs(float(a) - float(b)) <= tolerance.get(column, 0.0) + _SLACK  # type: ignore[arg-type]
        else:
            same = str(a) == str(b)
        if not same:
            differing.append(column)
    return differing


# -- entry points -----------------------------------------------------------------------


def write_note(record: Record, style: StyleName) -> str:
    """One record (a row of :func:`~guardrail.datasets.load_heart_disease`) as a note in ``style``.

    Examples
    --------
    >>> record = {"age": 63, "sex": "Male", "chest_pain_type": "typical angina", "resting_bp": 145.0,
    ...           "cholesterol": 233.0, "fasting_blood_sugar_over_120": 1, "resting_ecg": "lv hypertrophy",
    ...           "max_heart_rate": 150.0, "exercise_angina": 0, "st_depression": 2.3,
    ...           "st_slope": "downsloping", "major_vessels": 0.0, "thalassemia": "fixed defect"}
    >>> print(write_note(record, "terse"))
    63M; SBP 145; TC 233; FBS+; ECG LVH; HRmax 150; EIA-; STD 2.3 dn; vsl 0; thal FD; CP typ
    >>> write_note({**record, "cholesterol": float("nan")}, "ledger").split(", FBS")[0]
    '63 y/o M. CP: typical angina. BP 145/—mmHg, chol n/r'
    >>> write_note({**record, "cholesterol": 289.0}, "prose").split("; ")[1].split(". ")[0]
    'cholesterol 7.5 mmol/L'
    """
    return STYLES[_check_style(style)](record)


def style_of(site: str) -> StyleName:
    """The writing style of a source site."""
    if site not in SITE_STYLES:
        raise DataError(
            f"no note style for site {site!r}", where="notes", hint=f"sites with a style: {', '.join(SITE_STYLES)}"
        )
    return SITE_STYLES[site]


def write_notes(rows: pd.DataFrame) -> list[str]:
    """Every row as a note in the style of its own source site (the ``site`` column).

    Pass a hospital's raw rows (:meth:`~guardrail.federation.sites.Hospital.rows`), so
    that gaps are written as "not recorded" in the site's way rather than as imputed values.
    """
    records = rows.to_dict("records")
    return [write_note({str(k): v for k, v in record.items()}, style_of(str(record["site"]))) for record in records]
