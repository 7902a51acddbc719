"""Unit conversions in free text, done so that a neutral rewrite keeps every value.

:func:`find_quantities` finds each number followed by a unit it knows; :func:`convert_units`
rewrites each in its other unit ("chol 233 mg/dL" → "chol 6.03 mmol/L").

Where the unit depends on the analyte (mg/dL, mmol/L, µmol/L) the analyte is the keyword
nearest before the number, at most :data:`WINDOW` characters back and in the same sentence
(a sentence ends at ``.``, ``!`` or ``?`` followed by a space, at ``;`` or at a line break).
A lab unit without a recognised analyte is left alone, and so is ``mm`` or ``mV`` without
an "ST" keyword: ``mm Hg``/``mmHg`` is blood pressure and is **never** converted.

==============  ==============================  ======================  ==================================
analyte         keywords                        conversion              factor and source
==============  ==============================  ======================  ==================================
cholesterol     cholesterol, chol, TC, LDL,     mg/dL = mmol/L × 38.67  molar mass 386.65 g/mol
                HDL                                                     (cholesterol), 10 dL/L
glucose         glucose, sugar, FBS, FPG, BG    mg/dL = mmol/L × 18.016 molar mass 180.16 g/mol
triglycerides   triglyceride(s), trig(s), TG    mg/dL = mmol/L × 88.57  molar mass 885.7 g/mol (triolein)
creatinine      creatinine, creat, Cr, SCr      µmol/L = mg/dL × 88.42  molar mass 113.12 g/mol
temperature     (none needed)                   °C = (°F − 32) × 5/9    definition of the scales
weight          (none needed)                   kg = lb × 0.45359237    international pound (1959), exact
length          height, ht, length, stature,    cm = in × 2.54          international inch (1959), exact
                tall (for a bare ``in``)
ST depression   ST, oldpeak                     mV = mm × 0.1           ECG at the standard 10 mm/mV
==============  ==============================  ======================  ==================================

Precision
---------
A converted value is written with the fewest decimals, at least the target unit's usual
number (:attr:`Conversion.decimals`: 0 for mg/dL, 1 for mmol/L, 2 for mV…), such that
converting it back and rounding to the original's decimals gives the original number
exactly: ``233 mg/dL`` → ``6.03 mmol/L`` (6.0 would come back as 232), ``6.0 mmol/L`` →
``232 mg/dL``, ``2.3 mm`` → ``0.23 mV``, ``98.6 °F`` → ``37.0 °C``. Such a number of
decimals always exists (at most the original's plus three for these factors) and the
tests check the round trip over a grid of values for every conversion. Converting the
converted text again gives back the original text exactly when the original was written
with its unit's usual decimals (as the heart notes are); a value written more finely may
come back coarser (``18.2 mg/dL`` → ``0.47 mmol/L`` → ``18 mg/dL``): each conversion keeps
only what its own input said.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

WINDOW = 30
"""How many characters before a number an analyte keyword may start."""
_MAX_EXTRA_DECIMALS = 6


@dataclass(frozen=True)
class Conversion:
    """A pair of units of one analyte and the functions between them."""

    analyte: str
    units: tuple[str, str]
    forward: Callable[[float], float]  # units[0] -> units[1]
    backward: Callable[[float], float]  # units[1] -> units[0]
    decimals: tuple[int, int]  # the usual decimals of units[0], units[1]
    needs_keyword: tuple[bool, bool]  # whether each unit is recognised only after a keyword of the analyte
    source: str


CHOLESTEROL_MG_DL_PER_MMOL_L = 38.67
GLUCOSE_MG_DL_PER_MMOL_L = 18.016
TRIGLYCERIDES_MG_DL_PER_MMOL_L = 88.57
CREATININE_UMOL_L_PER_MG_DL = 88.42
KG_PER_LB = 0.45359237
CM_PER_IN = 2.54
MV_PER_MM = 0.1

CONVERSIONS: tuple[Conversion, ...] = (
    Conversion(
        "cholesterol", ("mg/dL", "mmol/L"), lambda v: v / CHOLESTEROL_MG_DL_PER_MMOL_L,
        lambda v: v * CHOLESTEROL_MG_DL_PER_MMOL_L, (0, 1), (True, True), "molar mass of cholesterol 386.65 g/mol",
    ),
    Conversion(
        "glucose", ("mg/dL", "mmol/L"), lambda v: v / GLUCOSE_MG_DL_PER_MMOL_L,
        lambda v: v * GLUCOSE_MG_DL_PER_MMOL_L, (0, 1), (True, True), "molar mass of glucose 180.16 g/mol",
    ),
    Conversion(
        "triglycerides", ("mg/dL", "mmol/L"), lambda v: v / TRIGLYCERIDES_MG_DL_PER_MMOL_L,
        lambda v: v * TRIGLYCERIDES_MG_DL_PER_MMOL_L, (0, 2), (True, True), "molar mass of triolein 885.7 g/mol",
    ),
    Conversion(
        "creatinine", ("mg/dL", "µmol/L"), lambda v: v * CREATININE_UMOL_L_PER_MG_DL,
        lambda v: v / CREATININE_UMOL_L_PER_MG_DL, (1, 0), (True, True), "molar mass of creatinine 113.12 g/mol",
    ),
    Conversion(
        "temperature", ("°F", "°C"), lambda v: (v - 32.0) * 5.0 / 9.0, lambda v: v * 9.0 / 5.0 + 32.0,
        (1, 1), (False, False), "definition of the Fahrenheit and Celsius scales",
    ),
    Conversion(
        "weight", ("lb", "kg"), lambda v: v * KG_PER_LB, lambda v: v / KG_PER_LB,
        (0, 1), (False, False), "international pound (1959): 0.45359237 kg exactly",
    ),
    Conversion(
        "length", ("in", "cm"), lambda v: v * CM_PER_IN, lambda v: v / CM_PER_IN,
        (0, 1), (True, False), "international inch (1959): 2.54 cm exactly",
    ),
    Conversion(
        "st_depression", ("mm", "mV"), lambda v: v * MV_PER_MM, lambda v: v / MV_PER_MM,
        (1, 2), (True, True), "ECG recorded at the standard calibration of 10 mm/mV",
    ),
)
"""Every conversion :func:`convert_units` makes (the module docstring tabulates them)."""

# -- recognising ------------------------------------------------------------------------

_UNIT_SPELLINGS: Mapping[str, str] = {
    "mg/dL": r"(?i:mg\s?/\s?dl)",
    "mmol/L": r"(?i:mmol\s?/\s?l)",
    "µmol/L": r"(?i:[µμu]mol\s?/\s?l)",
    "°F": r"°\s?F|℉",
    "°C": r"°\s?C|℃",
    "lb": r"lbs?|pounds?",
    "kg": r"kg|kilograms?",
    "in": r"inch(?:es)?|in",
    "cm": r"cm",
    "mm": r"mm(?!\s*(?i:hg))",
    "mV": r"mV",
}
_NUMBER = r"(?<![\w.,/\-−–—:])(?P<number>-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?![.,]\d)"
_QUANTITY = re.compile(
    _NUMBER
    + r"(?P<gap>[ \u00a0]?)"
    + "(?:"
    + "|".join(f"(?P<u{i}>{spelling})" for i, spelling in enumerate(_UNIT_SPELLINGS.values()))
    + r")(?![\w/])"
)
_UNIT_OF_GROUP = {f"u{i}": unit for i, unit in enumerate(_UNIT_SPELLINGS)}

_KEYWORDS: Mapping[str, str] = {
    "cholesterol": r"(?i:cholesterol|chol)|TC|LDL(?:-C)?|HDL(?:-C)?",
    "glucose": r"(?i:glucose|sugar)|FBS|FPG|BG",
    "triglycerides": r"(?i:triglycerides?|trigs?)|TG",
    "creatinine": r"(?i:creatinine|creat)|S?Cr",
    "length": r"(?i:height|length|stature|tall)|[Hh]t|HT",
    "st_depression": r"ST|(?i:oldpeak)",
}
_KEYWORD = re.compile("|".join(f"(?<!\\w)(?P<{name}>{words})(?!\\w)" for name, words in _KEYWORDS.items()))
_SENTENCE_END = re.compile(r"[.!?](?=\s)|[;\n]")


@dataclass(frozen=True)
class Quantity:
    """A number with a unit found in a text.

    ``start``/``end`` span the number and its unit; ``decimals`` is how many digits the
    number has after its decimal point; ``unit`` is the canonical spelling (``mg/dL``).
    """

    analyte: str
    value: float
    unit: str
    decimals: int
    start: int
    end: int


@dataclass(frozen=True)
class _Found:
    quantity: Quantity
    conversion: Conversion
    side: int  # the index of quantity.unit in conversion.units
    gap: str
    keyword: bool


def _analyte_before(text: str, start: int) -> str | None:
    """The analyte of the keyword nearest before ``start`` in the same sentence, if any."""
    low = max(0, start - WINDOW)
    for end in _SENTENCE_END.finditer(text, low, start):
        low = end.end()
    last: str | None = None
    for match in _KEYWORD.finditer(text, low, start):
        last = match.lastgroup
    return last


def _scan(text: str) -> list[_Found]:
    found: list[_Found] = []
    for match in _QUANTITY.finditer(text):
        group = next(name for name, value in match.groupdict().items() if name.startswith("u") and value is not None)
        unit = _UNIT_OF_GROUP[group]
        analyte = _analyte_before(text, match.start())
        candidates = [(c, c.units.index(unit)) for c in CONVERSIONS if unit in c.units]
        chosen: tuple[Conversion, int] | None = None
        spelt_out = unit == "in" and match.group(group).lower().startswith("inch")  # "inches" needs no keyword
        for conversion, side in candidates:
            needs_keyword = conversion.needs_keyword[side] and not spelt_out
            if conversion.analyte == analyte or (not needs_keyword and len(candidates) == 1):
                chosen = (conversion, side)
                break
        if chosen is None:
            continue
        number = match.group("number")
        decimals = len(number.partition(".")[2])
        quantity = Quantity(
            analyte=chosen[0].analyte,
            value=float(number.replace(",", "")),
            unit=unit,
            decimals=decimals,
            start=match.start(),
            end=match.end(),
        )
        found.append(_Found(quantity, chosen[0], chosen[1], match.group("gap"), chosen[0].analyte == analyte))
    return found


def find_quantities(text: str) -> list[Quantity]:
    """Every number with a unit that :func:`convert_units` would convert, in text order.

    Examples
    --------
    >>> [(q.analyte, q.value, q.unit) for q in find_quantities("BP 145 mmHg, chol 233 mg/dL. Vitamin X 6 mg/dL.")]
    [('cholesterol', 233.0, 'mg/dL')]
    """
    return [f.quantity for f in _scan(text)]


# -- writing ----------------------------------------------------------------------------


def _format(value: float, decimals: int) -> str:
    written = f"{value:.{decimals}f}"
    return written[1:] if written.startswith("-") and float(written) == 0 else written


def converted_text(value: float, decimals: int, forward: Callable[[float], float], backward: Callable[[float], float],
                   least: int) -> str:
    """``forward(value)`` written with the fewest decimals (at least ``least``) that come back,
    through ``backward`` and rounding to ``decimals``, as ``value`` exactly.

    Examples
    --------
    >>> converted_text(233, 0, lambda v: v / 38.67, lambda v: v * 38.67, 1)
    '6.03'
    """
    target = float(_format(value, decimals))
    converted = forward(value)
    for places in range(least, max(least, decimals) + _MAX_EXTRA_DECIMALS + 1):
        written = _format(converted, places)
        if float(_format(backward(float(written)), decimals)) == target:
            return written
    return _format(converted, max(least, decimals) + _MAX_EXTRA_DECIMALS)  # pragma: no cover - the factors above never need it


def _unit_text(found: _Found, unit: str) -> str:
    if unit == "in" and not found.keyword:
        return "inches"  # "in" alone is recognised only after a height keyword
    return unit


def convert_units(text: str) -> tuple[str, int]:
    """``text`` with every recognised quantity written in its other unit, and the number of
    conversions (0: nothing recognised, the text comes back unchanged).

    Examples
    --------
    >>> convert_units("chol 233 mg/dL, BP 145 mmHg, ST dep 2.3 mm")
    ('chol 6.03 mmol/L, BP 145 mmHg, ST dep 0.23 mV', 2)
    >>> convert_units("Bloods: total cholesterol 6.0 mmol/L")
    ('Bloods: total cholesterol 232 mg/dL', 1)
    """
    pieces: list[str] = []
    last = 0
    found_all = _scan(text)
    for found in found_all:
        q, conversion = found.quantity, found.conversion
        other = 1 - found.side
        forward, backward = (
            (conversion.forward, conversion.backward) if found.side == 0 else (conversion.backward, conversion.forward)
        )
        number = converted_text(q.value, q.decimals, forward, backward, conversion.decimals[other])
        pieces.append(text[last : q.start])
        pieces.append(number + found.gap + _unit_text(found, conversion.units[other]))
        last = q.end
    pieces.append(text[last:])
    return "".join(pieces), len(found_all)
