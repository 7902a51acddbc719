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
"""

from __future__ import annotations

import numbers
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

# -- values -----------------------------------------------------------------------------


def _value(record: Record, column: str) -> object | None:
    if column not in record:
        raise DataError(f"the record has no column {column!r}", where="notes", hint="pass rows of load_heart_disease()")
    value = record[column]
    import pandas as pd

    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):  # type: ignore[call-overload]
        return None
    return value


def _num(record: Record, column: str, missing: str, fmt: str = "{:.0f}", scale: float = 1.0, unit: str = "") -> str:
    value = _value(record, column)
    if value is None:
        return missing
    return fmt.format(float(value) * scale) + unit  # type: ignore[arg-type]


def _word(record: Record, column: str, missing: str, words: Mapping[Any, str]) -> str:
    value = _value(record, column)
    if value is None:
        return missing
    key = int(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else str(value)  # type: ignore[call-overload]
    found = words.get(key)
    if found is None:
        raise DataError(f"unexpected value {value!r} in column {column!r}", where="notes", hint="pass rows of load_heart_disease()")
    return str(found)


# -- the four styles --------------------------------------------------------------------


def _ledger(r: Record) -> str:
    miss = "n/r"
    cp = {"typical angina": "typical angina", "atypical angina": "atypical angina", "non-anginal": "non-anginal pain", "asymptomatic": "asymptomatic"}
    ecg = {"normal": "normal", "st-t abnormality": "ST-T abnormality", "lv hypertrophy": "LVH"}
    slope = {"upsloping": "up", "flat": "flat", "downsloping": "down"}
    thal = {"normal": "normal", "fixed defect": "fixed defect", "reversable defect": "reversible defect"}
    yes_no = {0: "no", 1: "yes"}
    chol = _value(r, "cholesterol")
    return (
        f"{_num(r, 'age', miss)} y/o {_word(r, 'sex', miss, {'Male': 'M', 'Female': 'F'})}. "
        f"CP: {_word(r, 'chest_pain_type', miss, cp)}. "
        f"BP {_num(r, 'resting_bp', miss)}/—mmHg, chol {_num(r, 'cholesterol', miss)}{'' if chol is None else ' mg/dL'}, "
        f"FBS >120: {_word(r, 'fasting_blood_sugar_over_120', miss, yes_no)}. "
        f"Rest ECG: {_word(r, 'resting_ecg', miss, ecg)}. "
        f"Max HR {_num(r, 'max_heart_rate', miss, unit=' bpm')}, exertional angina: {_word(r, 'exercise_angina', miss, yes_no)}. "
        f"ST dep {_num(r, 'st_depression', miss, '{:.1f}', unit=' mm')}, slope {_word(r, 'st_slope', miss, slope)}. "
        f"Fluoro vessels: {_num(r, 'major_vessels', miss)}. "
        f"Thal: {_word(r, 'thalassemia', miss, thal)}."
    )


def _prose(r: Record) -> str:
    miss = "not recorded"
    sex = {"Male": "Man", "Female": "Woman"}
    cp = {
        "typical angina": "with typical angina",
        "atypical angina": "with atypical angina",
        "non-anginal": "with non-anginal chest pain",
        "asymptomatic": "without chest pain",
    }
    ecg = {"normal": "is normal", "st-t abnormality": "shows ST-T wave abnormality", "lv hypertrophy": "shows left ventricular hypertrophy"}
    slope = {"upsloping": "an upsloping", "flat": "a flat", "downsloping": "a downsloping"}
    thal = {"normal": "normal", "fixed defect": "fixed defect", "reversable defect": "reversible defect"}
    yes_no = {0: "no", 1: "yes"}
    ecg_text = _word(r, "resting_ecg", miss, ecg)
    slope_text = _word(r, "st_slope", "", slope)
    return (
        f"{_word(r, 'sex', 'Patient', sex)}, {_num(r, 'age', miss)} years old, presenting "
        f"{_word(r, 'chest_pain_type', 'with chest pain not recorded', cp)}. "
        f"Blood pressure: {_num(r, 'resting_bp', miss, unit=' mmHg')}; "
        f"cholesterol {_num(r, 'cholesterol', miss, '{:.1f}', 1 / MG_DL_PER_MMOL_L, ' mmol/L')}. "
        f"Raised fasting glucose: {_word(r, 'fasting_blood_sugar_over_120', miss, yes_no)}. "
        f"Resting ECG {ecg_text if ecg_text != miss else 'not recorded'}. "
        f"Maximum heart rate {_num(r, 'max_heart_rate', miss, unit=' beats/min')}; "
        f"angina on exercise: {_word(r, 'exercise_angina', miss, yes_no)}. "
        f"ST depression {_num(r, 'st_depression', miss, '{:.1f}', unit=' mm')}"
        + (f" with {slope_text} segment. " if slope_text else ", slope not recorded. ")
        + f"Major vessels coloured by fluoroscopy: {_num(r, 'major_vessels', miss)}. "
        f"Thallium scan: {_word(r, 'thalassemia', miss, thal)}."
    )


def _terse(r: Record) -> str:
    miss = "?"
    cp = {"typical angina": "typ", "atypical angina": "atyp", "non-anginal": "NAP", "asymptomatic": "asx"}
    ecg = {"normal": "nl", "st-t abnormality": "STT", "lv hypertrophy": "LVH"}
    slope = {"upsloping": "up", "flat": "flat", "downsloping": "dn"}
    thal = {"normal": "nl", "fixed defect": "FD", "reversable defect": "RD"}
    sign = {0: "-", 1: "+"}
    return "; ".join(
        (
            f"{_num(r, 'age', miss)}{_word(r, 'sex', miss, {'Male': 'M', 'Female': 'F'})}",
            f"SBP {_num(r, 'resting_bp', miss)}",
            f"TC {_num(r, 'cholesterol', miss)}",
            f"FBS{_word(r, 'fasting_blood_sugar_over_120', miss, sign)}",
            f"ECG {_word(r, 'resting_ecg', miss, ecg)}",
            f"HRmax {_num(r, 'max_heart_rate', miss)}",
            f"EIA{_word(r, 'exercise_angina', miss, sign)}",
            f"STD {_num(r, 'st_depression', miss, '{:.1f}')} {_word(r, 'st_slope', miss, slope)}",
            f"vsl {_num(r, 'major_vessels', miss)}",
            f"thal {_word(r, 'thalassemia', miss, thal)}",
            f"CP {_word(r, 'chest_pain_type', miss, cp)}",
        )
    )


def _form(r: Record) -> str:
    miss = "—"
    cp = {"typical angina": "typical angina", "atypical angina": "atypical angina", "non-anginal": "non-anginal pain", "asymptomatic": "none"}
    ecg = {"normal": "normal", "st-t abnormality": "ST-T changes", "lv hypertrophy": "left ventricular hypertrophy"}
    slope = {"upsloping": "upsloping", "flat": "flat", "downsloping": "downsloping"}
    thal = {"normal": "normal", "fixed defect": "fixed defect", "reversable defect": "reversible defect"}
    present = {0: "absent", 1: "present"}
    return "\n".join(
        (
            f"Sex: {_word(r, 'sex', miss, {'Male': 'male', 'Female': 'female'})}",
            f"Age: {_num(r, 'age', miss, unit=' yrs')}",
            f"Chest pain: {_word(r, 'chest_pain_type', miss, cp)}",
            f"Exercise test: max HR {_num(r, 'max_heart_rate', miss, unit='/min')}, "
            f"angina {_word(r, 'exercise_angina', miss, present)}, "
            f"ST depression {_num(r, 'st_depression', miss, '{:.2f}', MV_PER_MM, ' mV')} "
            f"({_word(r, 'st_slope', miss, slope)})",
            f"At rest: BP {_num(r, 'resting_bp', miss, unit=' mm Hg')}, ECG {_word(r, 'resting_ecg', miss, ecg)}",
            f"Bloods: total cholesterol {_num(r, 'cholesterol', miss, '{:.1f}', 1 / MG_DL_PER_MMOL_L, ' mmol/L')}, "
            f"fasting glucose >6.7 mmol/L {_word(r, 'fasting_blood_sugar_over_120', miss, present)}",
            f"Imaging: {_num(r, 'major_vessels', miss)} vessel(s) on fluoroscopy, "
            f"thallium {_word(r, 'thalassemia', miss, thal)}",
        )
    )


STYLES: Mapping[StyleName, Callable[[Record], str]] = {
    "ledger": _ledger,
    "prose": _prose,
    "terse": _terse,
    "form": _form,
}


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
    if style not in STYLES:
        raise DataError(f"unknown note style {style!r}", where="notes", hint=f"use one of {', '.join(STYLE_NAMES)}")
    return STYLES[style](record)


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
