"""Identity-term pairs for counterfactual token swaps (CheckList / Garg et al. 2019 style).

A :class:`Lexicon` is a set of pairs such as ``("he", "she")``. :func:`swap_terms` rewrites a
text with every whole-word occurrence of a term replaced by its partner, in both directions
at once (``he`` → ``she`` and ``she`` → ``he`` in one pass), so that a model's decision on the
two texts can be compared: a counterfactual that differs only in the identity terms.

Matching and case
-----------------
A term written in lower case in the lexicon matches in lower case, Capitalised and UPPER
case (``he``, ``He``, ``HE``) and its partner is written in the same case (``she``, ``She``,
``SHE``). A term written with a capital (the titles ``Mr``, ``Ms``) matches only as written:
``MR`` (mitral regurgitation) and ``MS`` (multiple sclerosis, milliseconds) are left alone.
Matches are whole words: ``shepherd``, ``these``, ``Manchester``, ``HER2`` are untouched;
``man's`` becomes ``woman's`` and ``Mr.`` becomes ``Ms.`` (the period stays).

The pronouns *her* and *his*
----------------------------
*her* is the partner of both *him* and *his*, and *his* of both *her* and *hers*, so one
table cannot say which: a term may be in one pair only. :func:`swap_terms` decides by the
next word (:data:`AMBIGUOUS`): *her* followed by a content word is a determiner ("her
husband" → "his wife") and is swapped as *hers* would be, giving *his*; *her* at the end of a
clause (before punctuation, the end of the text or a function word such as "the", "to",
"and", :data:`FUNCTION_WORDS`) is an object ("saw her." → "saw him.", "gave her the notes" →
"gave him the notes"). Likewise *his* followed by a content word is a determiner → *her*, and
otherwise a pronoun → *hers* ("the choice was his." → "the choice was hers."). The rule is a
heuristic; "told her patients" reads as a determiner whichever was meant.

Titles
------
``Mr`` ↔ ``Ms`` (the marital-status-neutral title). ``Mrs`` and ``Miss`` are **not** in the
default lexicon and stay as written: their only masculine partner, ``Mr``, is already paired
with ``Ms``, and a term may be in one pair only (so that every swap can be undone).

Family members are swapped with the patient's words (``father`` ↔ ``mother``); in a clinical
note this changes a family history too, which is the usual limitation of token swaps.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from guardrail.core.errors import DataError

WHERE = "params.identity_terms"
HINT = "give pairs of distinct words or short phrases, each term in one pair only, e.g. [['he', 'she'], ['him', 'her']]"
_MAX_TERM_CHARS = 40
_MAX_TERM_WORDS = 4
_TERM = re.compile(r"[^\W\d_](?:[^\W\d_'.]|[ ](?=[^\W\d_]))*")
"""A letter, then letters, apostrophes, periods and single spaces between words."""

AMBIGUOUS: Mapping[str, str] = {"her": "hers", "his": "him"}
"""Before a content word, *her* is swapped as *hers* would be, and *his* as *him* would be
(only when the lexicon holds that term). See the module docstring."""

FUNCTION_WORDS: frozenset[str] = frozenset(
    "a an the this that these those to and or but nor so for with from in on at by about as if when while "
    "because into onto up down out off over back again too very all some any no not what how why where who "
    "whom which is was are were be been has have had do does did will would can could should may might must "
    "he she it they we you i me him her his them us my your our their its than then there here".split()
)
"""Words after which *her* is an object and *his* a pronoun rather than a determiner."""


@dataclass(frozen=True)
class Lexicon:
    """Pairs of identity terms swapped for one another.

    Parameters
    ----------
    name:
        A short name for reports (``"gender"``).
    pairs:
        ``(term, partner)`` pairs; each term appears in one pair only.
    source:
        Where the pairs come from, for reports.

    Examples
    --------
    >>> Lexicon.of([("actor", "actress")], name="roles").pairs
    (('actor', 'actress'),)
    """

    name: str
    pairs: tuple[tuple[str, str], ...]
    source: str

    @classmethod
    def of(cls, pairs: Iterable[Sequence[str]], *, name: str = "custom", source: str = "the spec") -> Lexicon:
        """A validated lexicon: each pair two distinct terms (letters, apostrophes, periods and
        spaces, at most four words), no term (ignoring case) in two pairs, at least one pair.

        Raises
        ------
        DataError
            Naming the offending pair.
        """
        checked: list[tuple[str, str]] = []
        seen: dict[str, tuple[str, str]] = {}
        for pair in pairs:
            if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise DataError(f"identity-term pair {pair!r} is not a pair of two terms", where=WHERE, hint=HINT)
            first, second = pair[0], pair[1]
            for term in (first, second):
                if not isinstance(term, str) or not _valid_term(term):
                    raise DataError(
                        f"identity-term pair {tuple(pair)!r} has an invalid term {term!r}: use letters, apostrophes, "
                        f"periods and single spaces (at most {_MAX_TERM_WORDS} words)",
                        where=WHERE,
                        hint=HINT,
                    )
            if first.lower() == second.lower():
                raise DataError(f"identity-term pair {(first, second)!r} swaps a term with itself", where=WHERE, hint=HINT)
            for term in (first, second):
                if term.lower() in seen:
                    raise DataError(
                        f"identity term {term!r} of pair {(first, second)!r} is also in pair {seen[term.lower()]!r}",
                        where=WHERE,
                        hint=HINT,
                    )
                seen[term.lower()] = (first, second)
            checked.append((first, second))
        if not checked:
            raise DataError("the identity-term lexicon has no pairs", where=WHERE, hint=HINT)
        return cls(name=name, pairs=tuple(checked), source=source)


def _valid_term(term: str) -> bool:
    return (
        0 < len(term) <= _MAX_TERM_CHARS
        and _TERM.fullmatch(term) is not None
        and len(term.split(" ")) <= _MAX_TERM_WORDS
    )


DEFAULT_LEXICON = Lexicon.of(
    [
        ("he", "she"),
        ("him", "her"),
        ("his", "hers"),
        ("himself", "herself"),
        ("man", "woman"),
        ("men", "women"),
        ("boy", "girl"),
        ("boys", "girls"),
        ("Mr", "Ms"),
        ("male", "female"),
        ("males", "females"),
        ("masculine", "feminine"),
        ("father", "mother"),
        ("fathers", "mothers"),
        ("son", "daughter"),
        ("sons", "daughters"),
        ("brother", "sister"),
        ("brothers", "sisters"),
        ("husband", "wife"),
        ("husbands", "wives"),
        ("boyfriend", "girlfriend"),
        ("uncle", "aunt"),
        ("uncles", "aunts"),
        ("nephew", "niece"),
        ("nephews", "nieces"),
        ("grandfather", "grandmother"),
        ("grandson", "granddaughter"),
        ("grandpa", "grandma"),
        ("stepfather", "stepmother"),
        ("stepson", "stepdaughter"),
        ("dad", "mom"),
        ("daddy", "mommy"),
        ("sir", "madam"),
        ("gentleman", "lady"),
        ("gentlemen", "ladies"),
        ("king", "queen"),
        ("prince", "princess"),
        ("widower", "widow"),
        ("groom", "bride"),
        ("fiance", "fiancee"),
        ("paternal", "maternal"),
        ("godfather", "godmother"),
    ],
    name="gender",
    source="guardrail's English gender pairs, after CheckList (Ribeiro et al., 2020) and Garg et al. (2019)",
)
"""The shipped English gender lexicon (42 pairs; ``Mr`` ↔ ``Ms``; ``Mrs``/``Miss`` unswapped)."""


# -- swapping ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    pattern: re.Pattern[str]
    partner: Mapping[str, str]  # each matchable spelling (exact case) -> its partner, in that case
    lower_partner: Mapping[str, str]  # lower-cased term -> lower-cased partner (for AMBIGUOUS)


def _spellings(term: str) -> list[str]:
    if term != term.lower():
        return [term]
    return list(dict.fromkeys((term, term[:1].upper() + term[1:], term.upper())))


def _in_case_of(matched: str, term: str, partner: str) -> str:
    """``partner`` written in the case of ``matched`` (a spelling of ``term``)."""
    if matched == term:
        return partner
    if len(matched) > 1 and matched == matched.upper() and matched != matched.lower():
        return partner.upper()
    return partner[:1].upper() + partner[1:]


@functools.cache
def _compile(pairs: tuple[tuple[str, str], ...]) -> _Compiled:
    partner: dict[str, str] = {}
    lower_partner: dict[str, str] = {}
    for first, second in pairs:
        for term, other in ((first, second), (second, first)):
            lower_partner[term.lower()] = other.lower() if term == term.lower() else other
            for spelling in _spellings(term):
                partner[spelling] = _in_case_of(spelling, term, other)
    alternatives = sorted(partner, key=lambda s: (-len(s), s))
    body = "|".join(re.escape(s).replace(r"\ ", r"\s+") for s in alternatives)
    pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)")
    return _Compiled(pattern=pattern, partner=partner, lower_partner=lower_partner)


_NEXT_WORD = re.compile(r"[ \t]+([^\W\d_][\w'-]*)")


def _replacement(compiled: _Compiled, text: str, match: re.Match[str]) -> str:
    matched = match.group()
    lower = matched.lower()
    as_term = AMBIGUOUS.get(lower)
    if as_term is not None and lower in compiled.lower_partner and as_term in compiled.lower_partner:
        following = _NEXT_WORD.match(text, match.end())
        if following is not None and following.group(1).lower() not in FUNCTION_WORDS:
            return _in_case_of(matched, lower, compiled.lower_partner[as_term])
    found = compiled.partner.get(matched)
    if found is not None:
        return found
    # a phrase matched with other whitespace between its words
    normalised = " ".join(matched.split())
    return compiled.partner.get(normalised, matched)


def swap_terms(text: str, lexicon: Lexicon) -> tuple[str, int]:
    """``text`` with every identity term of ``lexicon`` replaced by its partner, and the number
    of swaps (0: no term in the text, which comes back unchanged).

    Examples
    --------
    >>> swap_terms("He told his wife; she thanked him.", DEFAULT_LEXICON)
    ('She told her husband; he thanked her.', 5)
    >>> swap_terms("I saw her. Her notes are here.", DEFAULT_LEXICON)
    ('I saw him. His notes are here.', 2)
    >>> swap_terms("The shepherd from Manchester", DEFAULT_LEXICON)
    ('The shepherd from Manchester', 0)
    """
    compiled = _compile(lexicon.pairs)
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return _replacement(compiled, text, match)

    swapped = compiled.pattern.sub(replace, text)
    return swapped, count
