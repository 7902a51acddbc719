"""Semantically neutral text perturbations, deterministic given a seed.

Each perturbation takes a text and a random generator and returns the changed text, or
``None`` when it does not apply. None of them changes what the text says:

============  =====================================================================
name          what changes
============  =====================================================================
typos         one typo (adjacent inner letters swapped, an inner letter dropped or
              doubled) in about 10% of the words of four letters or more, at least
              one; numbers, units and words with digits are never touched
case          the whole text lower-cased, upper-cased or sentence-cased
whitespace    doubled spaces between some words, a leading or trailing space, a line
              break turned into a space or a space into a line break
numbers       number formatting with the same value: ``1200`` → ``1,200`` or
              ``1200.0``, ``63`` → ``63.0``, ``2.3`` → ``2.30``; never numbers in dates,
              ranges, fractions, times, ordinals, years or numbers glued to a letter
units         every recognised quantity in its other unit (:func:`~guardrail.robustness.units.convert_units`)
============  =====================================================================

:func:`perturb_texts` gives text ``i`` its own generator,
``np.random.default_rng([seed, zlib.crc32(name.encode()), i])``, so a text's perturbation
does not depend on which other texts are in the batch.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np

from guardrail.core.errors import DataError
from guardrail.robustness.units import convert_units

TextPerturbation = Callable[[str, np.random.Generator], str | None]
TextPerturbationName = Literal["typos", "case", "whitespace", "numbers", "units"]
TEXT_PERTURBATION_NAMES: tuple[TextPerturbationName, ...] = ("typos", "case", "whitespace", "numbers", "units")
DESCRIPTIONS: Mapping[str, str] = {
    "typos": "a typo in about one word in ten (letters swapped, dropped or doubled)",
    "case": "the whole text in lower, upper or sentence case",
    "whitespace": "extra spaces and line breaks between words",
    "numbers": "numbers written differently with the same value (1,200; 63.0; 2.30)",
    "units": "quantities written in their other unit (mg/dL and mmol/L, mm and mV, °F and °C)",
}
TYPO_SHARE = 0.1
"""The share of eligible words that get a typo (at least one)."""

# -- typos ------------------------------------------------------------------------------

_WORD = re.compile(r"(?<![\w/°µμ])[^\W\d_]{4,}(?![\w/])")
_UNIT_WORDS = frozenset({"mmhg", "mmol", "umol", "µmol", "μmol", "inch", "inches", "pound", "pounds", "kilogram", "kilograms"})


def _typo(word: str, rng: np.random.Generator) -> str:
    """``word`` with one inner letter swapped with its neighbour, dropped or doubled."""
    swaps = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]
    kind = int(rng.integers(3)) if swaps else 1 + int(rng.integers(2))
    if kind == 0:
        i = swaps[int(rng.integers(len(swaps)))]
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    i = 1 + int(rng.integers(len(word) - 2))
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[: i + 1] + word[i:]


def typos(text: str, rng: np.random.Generator) -> str | None:
    """A typo in about :data:`TYPO_SHARE` of the alphabetic words of four letters or more."""
    words = [m for m in _WORD.finditer(text) if m.group().lower() not in _UNIT_WORDS]
    if not words:
        return None
    count = max(1, round(TYPO_SHARE * len(words)))
    chosen = sorted(int(i) for i in rng.choice(len(words), size=count, replace=False))
    pieces: list[str] = []
    last = 0
    for index in chosen:
        match = words[index]
        pieces.append(text[last : match.start()])
        pieces.append(_typo(match.group(), rng))
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


# -- case -------------------------------------------------------------------------------


def _per_char(text: str, change: Callable[[str], str]) -> str:
    """``change`` applied to each character that it maps to one character (length kept)."""
    out = []
    for char in text:
        changed = change(char)
        out.append(changed if len(changed) == 1 else char)
    return "".join(out)


_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n\s*)([^\W\d_])")


def _sentence_case(text: str) -> str:
    lowered = _per_char(text, str.lower)
    return _SENTENCE_START.sub(lambda m: m.group(1) + _per_char(m.group(2), str.upper), lowered)


def case(text: str, rng: np.random.Generator) -> str | None:
    """The text lower-, upper- or sentence-cased, chosen among those that change it."""
    options = [
        changed for changed in dict.fromkeys((_per_char(text, str.lower), _per_char(text, str.upper), _sentence_case(text)))
        if changed != text
    ]
    if not options:
        return None
    return options[int(rng.integers(len(options)))]


# -- whitespace -------------------------------------------------------------------------

_GAP = re.compile(r"(?<=\S) (?=\S)")


def whitespace(text: str, rng: np.random.Generator) -> str | None:
    """Some of: doubled spaces at word gaps, a space at the start or end, a line break
    turned into a space or a space into a line break."""
    if not any(char.isspace() for char in text):
        return None
    gaps = [m.start() for m in _GAP.finditer(text)]
    breaks = [i for i, char in enumerate(text) if char == "\n"]
    kinds = ["edges"] + (["gaps", "space_to_break"] if gaps else []) + (["break_to_space"] if breaks else [])
    chosen = [kind for kind in kinds if rng.random() < 0.5] or [kinds[int(rng.integers(len(kinds)))]]
    replace: dict[int, str] = {}
    if "gaps" in chosen:
        count = max(1, round(0.2 * len(gaps)))
        for i in rng.choice(len(gaps), size=count, replace=False):
            replace[gaps[int(i)]] = "  "
    if "space_to_break" in chosen:
        replace[gaps[int(rng.integers(len(gaps)))]] = "\n"
    if "break_to_space" in chosen:
        replace[breaks[int(rng.integers(len(breaks)))]] = " "
    changed = "".join(replace.get(i, char) for i, char in enumerate(text))
    if "edges" in chosen:
        side = int(rng.integers(3))
        changed = (" " if side != 1 else "") + changed + (" " if side != 0 else "")
    return changed


# -- numbers ----------------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?<![\w.,/:\-–—−])"  # not glued to a word, a sign, a date, a fraction, a range or a time
    r"(?P<number>[1-9]\d*|0)(?P<fraction>\.\d+)?"
    r"(?![\w/:\-–—−]|[.,]\d)"  # not followed by a letter (3rd, 5mg), a fraction, a time, a range or more digits
)


def _is_year(number: str) -> bool:
    return len(number) == 4 and 1900 <= int(number) <= 2099


def numbers(text: str, rng: np.random.Generator) -> str | None:
    """Some numbers written differently with the same value."""
    found = [m for m in _NUMBER.finditer(text) if m.group("fraction") or not _is_year(m.group("number"))]
    if not found:
        return None
    chosen = [m for m in found if rng.random() < 0.5] or [found[int(rng.integers(len(found)))]]
    pieces: list[str] = []
    last = 0
    for match in chosen:
        whole, fraction = match.group("number"), match.group("fraction")
        if fraction:
            written = whole + fraction + "0"
        elif int(whole) >= 1000 and rng.random() < 0.5:
            written = f"{int(whole):,}"
        else:
            written = whole + ".0"
        pieces.append(text[last : match.start()])
        pieces.append(written)
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


# -- units ------------------------------------------------------------------------------


def units(text: str, rng: np.random.Generator) -> str | None:
    """Every recognised quantity in its other unit; ``rng`` is not used."""
    converted, count = convert_units(text)
    return converted if count else None


# -- registry and batch entry point -----------------------------------------------------

PERTURBATIONS: Mapping[str, TextPerturbation] = {
    "typos": typos,
    "case": case,
    "whitespace": whitespace,
    "numbers": numbers,
    "units": units,
}


def perturb_texts(texts: Sequence[str], name: str, *, seed: int) -> list[str | None]:
    """One perturbed text per text, ``None`` where the perturbation does not apply or leaves
    the text as it was.

    Examples
    --------
    >>> perturb_texts(["Max HR 150 bpm", ""], "case", seed=0)
    ['MAX HR 150 BPM', None]
    >>> perturb_texts(["chol 233 mg/dL", "no units here"], "units", seed=0)
    ['chol 6.03 mmol/L', None]
    """
    perturbation = PERTURBATIONS.get(name)
    if perturbation is None:
        raise DataError(
            f"unknown text perturbation {name!r}",
            where="params.perturbations",
            hint=f"use one of {', '.join(TEXT_PERTURBATION_NAMES)}",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"the seed must be a non-negative integer, not {seed!r}", where="params.seed", hint="use e.g. seed: 0")
    stream = zlib.crc32(name.encode())
    results: list[str | None] = []
    for index, text in enumerate(texts):
        changed = perturbation(text, np.random.default_rng([seed, stream, index]))
        results.append(None if changed is None or changed == text else changed)
    return results
