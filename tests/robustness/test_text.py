"""Text perturbations: each changes a text only in its own way, deterministically per text."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from guardrail.core.errors import DataError
from guardrail.datasets import load_heart_disease
from guardrail.federation.notes import STYLE_NAMES, write_note
from guardrail.robustness.text import (
    DESCRIPTIONS,
    PERTURBATIONS,
    TEXT_PERTURBATION_NAMES,
    perturb_texts,
)
from guardrail.robustness.units import CONVERSIONS, find_quantities

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
UNITS = re.compile(r"mg/dL|mmol/L|µmol/L|mm ?Hg|°F|°C|\b(?:mm|mV|lbs|kg|bpm|yrs)\b|/min|beats/min")
EXTRA = [
    "He was seen on 2010-05-01 with BP 145/90 mmHg; took 1/2 tab at 10:30 for the 3rd time, 5mg daily, 1200 units in 1999.",
    "Patient reports chest pain radiating to the left arm.\nFollow-up in two weeks.",
    "Temperature 101.2 °F, weight 176 lbs, glucose 6.7 mmol/L, creatinine 1.2 mg/dL.",
    "ok",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    heart = load_heart_disease()
    records = [{str(k): v for k, v in r.items()} for r in heart.iloc[[0, 1, 320, 650, 820, 900]].to_dict("records")]
    return [write_note(r, style) for r in records for style in STYLE_NAMES] + EXTRA


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in NUMBER.findall(text)]


def test_names_descriptions_and_registry_agree() -> None:
    assert TEXT_PERTURBATION_NAMES == ("typos", "case", "whitespace", "numbers", "units")
    assert tuple(PERTURBATIONS) == TEXT_PERTURBATION_NAMES
    assert tuple(DESCRIPTIONS) == TEXT_PERTURBATION_NAMES and all(DESCRIPTIONS.values())


def _one_edit(before: str, after: str) -> bool:
    """``after`` is ``before`` with two adjacent letters swapped, one letter dropped or one doubled."""
    if len(after) == len(before):
        diff = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and before[diff[0]] == after[diff[1]] and before[diff[1]] == after[diff[0]]
    if len(after) == len(before) - 1:
        return any(before[:i] + before[i + 1 :] == after for i in range(1, len(before) - 1))
    if len(after) == len(before) + 1:
        return any(before[: i + 1] + before[i:] == after for i in range(1, len(before) - 1))
    return False


def test_typos_touch_only_long_words(texts: list[str]) -> None:
    results = perturb_texts(texts, "typos", seed=3)
    assert sum(r is not None for r in results) >= len(texts) - 1
    for text, result in zip(texts, results):
        if result is None:
            assert text == "ok"
            continue
        before, after = text.split(), result.split()
        assert len(before) == len(after)
        assert _numbers(result) == _numbers(text)
        assert UNITS.findall(result) == UNITS.findall(text)
        changed = [(b, a) for b, a in zip(before, after) if b != a]
        assert 1 <= len(changed) <= max(1, round(0.1 * len(before))) + 1
        for b, a in changed:
            assert not any(ch.isdigit() for ch in b)
            core_b, core_a = re.sub(r"\W", "", b), re.sub(r"\W", "", a)
            assert len(core_b) >= 4 and _one_edit(core_b, core_a), (b, a)


def test_case_changes_only_case(texts: list[str]) -> None:
    results = perturb_texts(texts, "case", seed=3)
    assert all(r is not None for r in results)
    kinds = set()
    for text, result in zip(texts, results):
        assert result is not None and result != text
        assert len(result) == len(text) and result.lower() == text.lower()
        kinds.add("upper" if result == result.upper() else "lower" if result == result.lower() else "sentence")
    assert kinds == {"upper", "lower", "sentence"}


def test_case_none_when_no_letters() -> None:
    assert perturb_texts(["145/90 - 12", ""], "case", seed=0) == [None, None]
    rng = np.random.default_rng(0)
    assert PERTURBATIONS["case"]("123", rng) is None


def test_whitespace_changes_only_whitespace(texts: list[str]) -> None:
    results = perturb_texts(texts, "whitespace", seed=3)
    for text, result in zip(texts, results):
        if result is None:
            assert text == "ok"
            continue
        assert result != text
        assert " ".join(result.split()) == " ".join(text.split())


def test_numbers_keep_values_and_skip_dates_ranges_fractions(texts: list[str]) -> None:
    results = perturb_texts(texts, "numbers", seed=3)
    for text, result in zip(texts, results):
        if result is None:
            continue
        assert result != text
        assert _numbers(result) == pytest.approx(_numbers(text))
        assert NUMBER.sub("#", result) == NUMBER.sub("#", text)
    for seed in range(20):
        [result] = perturb_texts([EXTRA[0]], "numbers", seed=seed)
        assert result is not None
        for untouched in ("2010-05-01", "145/90", "1/2", "10:30", "3rd", "5mg", "in 1999"):
            assert untouched in result
        assert "1200" not in result or result.count("1200.0") == 1


def test_numbers_formats() -> None:
    seen = {perturb_texts(["count 1200 cells"], "numbers", seed=s)[0] for s in range(30)}
    assert seen == {"count 1,200 cells", "count 1200.0 cells"}
    assert perturb_texts(["ST 2.3 mm"], "numbers", seed=0) == ["ST 2.30 mm"]
    assert perturb_texts(["age 63"], "numbers", seed=0) == ["age 63.0"]
    assert perturb_texts(["on 2010-05-01, 145/90, 3rd, 1/2, x2, 007, 1999", "no digits"], "numbers", seed=0) == [None, None]


def test_units_values_equal_after_conversion_back(texts: list[str]) -> None:
    results = perturb_texts(texts, "units", seed=3)
    back_of = {(c.analyte, u): (c, i) for c in CONVERSIONS for i, u in enumerate(c.units)}
    converted_any = 0
    for text, result in zip(texts, results):
        before = find_quantities(text)
        if result is None:
            assert before == []
            continue
        converted_any += 1
        after = find_quantities(result)
        assert len(after) == len(before)
        for b, a in zip(before, after):
            conversion, side = back_of[(a.analyte, a.unit)]
            assert conversion.units[1 - side] == b.unit
            backward = conversion.forward if side == 0 else conversion.backward
            assert round(backward(a.value), b.decimals) == pytest.approx(b.value)
    assert converted_any >= 10


def test_whitespace_and_typos_none_cases() -> None:
    assert perturb_texts(["word"], "whitespace", seed=0) == [None]
    assert perturb_texts(["a b c 1234 x2y"], "typos", seed=0) == [None]


@pytest.mark.parametrize("name", TEXT_PERTURBATION_NAMES)
def test_deterministic_and_independent_of_batching(texts: list[str], name: str) -> None:
    whole = perturb_texts(texts, name, seed=11)
    assert perturb_texts(texts, name, seed=11) == whole
    assert len(whole) == len(texts)
    # text i uses its own generator, so a batch of one gives the same as its place in the batch
    for i in (0, 5, len(texts) - 1):
        alone = PERTURBATIONS[name](texts[i], np.random.default_rng([11, zlib.crc32(name.encode()), i]))
        assert whole[i] == (None if alone == texts[i] else alone)
    # the other texts of the batch do not matter
    others = ["something else entirely, 42 mg/dL"] * len(texts)
    for i in (0, 5, len(texts) - 1):
        mixed = [*others[:i], texts[i], *others[i + 1 :]]
        assert perturb_texts(mixed, name, seed=11)[i] == whole[i]


def test_different_index_and_seed_give_different_choices() -> None:
    text = "The patient reports intermittent chest discomfort during exercise and occasional breathlessness at night."
    by_index = perturb_texts([text] * 8, "typos", seed=0)
    assert len(set(by_index)) > 1
    by_seed = {perturb_texts([text], "typos", seed=s)[0] for s in range(8)}
    assert len(by_seed) > 1


def test_unknown_name_and_bad_seed() -> None:
    with pytest.raises(DataError) as caught:
        perturb_texts(["x"], "synonyms", seed=0)
    assert "synonyms" in caught.value.message and caught.value.hint is not None
    for name in TEXT_PERTURBATION_NAMES:
        assert name in caught.value.hint
    with pytest.raises(DataError):
        perturb_texts(["x"], "case", seed=-1)


def test_empty_batch() -> None:
    assert perturb_texts([], "typos", seed=0) == []
