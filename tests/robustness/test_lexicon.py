"""Identity-term lexicons: swaps both ways in one pass, case kept, whole words only, validation."""

from __future__ import annotations

import pytest

from guardrail.core.errors import DataError
from guardrail.robustness.lexicon import DEFAULT_LEXICON, WHERE, Lexicon, swap_terms


@pytest.mark.parametrize(
    ("text", "expected", "count"),
    [
        ("he said", "she said", 1),
        ("she said", "he said", 1),
        ("He and she", "She and he", 2),
        ("The man and the woman", "The woman and the man", 2),
        ("HE WAS THERE", "SHE WAS THERE", 1),
        ("Her husband called.", "His wife called.", 2),
        ("his daughter visited him", "her son visited her", 3),
        ("I saw her.", "I saw him.", 1),
        ("gave her the notes", "gave him the notes", 1),
        ("The choice was his.", "The choice was hers.", 1),
        ("The choice was hers.", "The choice was his.", 1),
        ("He hurt himself", "She hurt herself", 2),
        ("Mr. Smith", "Ms. Smith", 1),
        ("the man's father", "the woman's mother", 2),
        ("Boys and girls", "Girls and boys", 2),
    ],
)
def test_swaps_both_ways_and_keeps_case(text: str, expected: str, count: int) -> None:
    assert swap_terms(text, DEFAULT_LEXICON) == (expected, count)


@pytest.mark.parametrize(
    "text",
    ["The shepherd from Manchester", "these themes", "HER2 positive", "MR and MS on echo", "human manners", "Mrs Jones", ""],
)
def test_whole_words_only_and_unpaired_titles_untouched(text: str) -> None:
    assert swap_terms(text, DEFAULT_LEXICON) == (text, 0)


@pytest.mark.parametrize(
    "text",
    ["He told his wife that she was right.", "The woman and her daughter met the man and his son.", "Ms Lee and Mr Kim"],
)
def test_round_trip_where_unambiguous(text: str) -> None:
    swapped, count = swap_terms(text, DEFAULT_LEXICON)
    assert count > 0 and swapped != text
    assert swap_terms(swapped, DEFAULT_LEXICON) == (text, count)


def test_counts_every_occurrence() -> None:
    text = "he he he, she; HE"
    assert swap_terms(text, DEFAULT_LEXICON) == ("she she she, he; SHE", 5)


def test_default_lexicon_is_valid_and_sized() -> None:
    assert Lexicon.of(DEFAULT_LEXICON.pairs, name="gender").pairs == DEFAULT_LEXICON.pairs
    assert 35 <= len(DEFAULT_LEXICON.pairs) <= 50
    assert "CheckList" in DEFAULT_LEXICON.source and "Garg" in DEFAULT_LEXICON.source
    assert DEFAULT_LEXICON.name == "gender"


def test_custom_lexicon_and_phrases() -> None:
    lexicon = Lexicon.of([["Christian", "Muslim"], ("church", "mosque"), ("young man", "old man")], name="religion")
    assert lexicon.pairs[0] == ("Christian", "Muslim")
    assert swap_terms("A Christian went to church.", lexicon) == ("A Muslim went to mosque.", 2)
    assert swap_terms("The young man and the old man", lexicon) == ("The old man and the young man", 2)
    # a capitalised term matches only as written
    assert swap_terms("CHRISTIAN christian", lexicon) == ("CHRISTIAN christian", 0)


def test_compiled_pattern_is_cached_per_lexicon() -> None:
    from guardrail.robustness.lexicon import _compile

    assert _compile(DEFAULT_LEXICON.pairs) is _compile(DEFAULT_LEXICON.pairs)


@pytest.mark.parametrize(
    ("pairs", "fragment"),
    [
        ([], "no pairs"),
        ([("he", "he")], "itself"),
        ([("he", "HE")], "itself"),
        ([("he", "")], "invalid term"),
        ([("he", "she1")], "invalid term"),
        ([("he", " she")], "invalid term"),
        ([("he", "she"), ("He", "they")], "also in pair"),
        ([("him", "her"), ("his", "her")], "also in pair"),
        ([("he", "she", "they")], "not a pair"),
        (["he"], "not a pair"),
        ([("he", 3)], "invalid term"),
        ([("a b c d e", "f")], "invalid term"),
    ],
)
def test_validation_names_the_pair(pairs: list[object], fragment: str) -> None:
    with pytest.raises(DataError) as caught:
        Lexicon.of(pairs)  # type: ignore[arg-type]
    assert fragment in caught.value.message
    assert caught.value.where == WHERE and caught.value.hint
