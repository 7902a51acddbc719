"""Each held-out patient's note rewritten in every hospital's style, and proof that only the style changed.

The site-style probe asks whether the federated model decides on the findings or on the way
a hospital writes them: every patient's record is written again in each other site's style
(:func:`restyle`, the same template the federation writes notes with,
:func:`~guardrail.federation.notes.write_note`), and the decisions are compared.

Before any decision is compared, :func:`check_only_style_changed` reads every rewritten
note back (:func:`~guardrail.federation.notes.read_note`) and fails closed unless it gives
the row's own record — each number within the rounding its style writes
(:func:`~guardrail.federation.notes.written_precision`), every category and every missing
value exactly. So the notes differ in style and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from guardrail.core.errors import DataError
from guardrail.federation.notes import (
    NOTE_COLUMNS,
    SITE_STYLES,
    StyleName,
    read_note,
    record_differences,
    write_note,
    written_precision,
)

if TYPE_CHECKING:
    import pandas as pd

SITE_COLUMN = "site"
REQUIRED_COLUMNS: tuple[str, ...] = (*NOTE_COLUMNS, SITE_COLUMN)
"""The columns the probe needs: every field a note writes, and the patient's source site."""


def _require(rows: pd.DataFrame, columns: Sequence[str]) -> None:
    absent = [column for column in columns if column not in rows.columns]
    if absent:
        raise DataError(
            f"the rows lack the column(s) {', '.join(map(repr, absent))} that a note is written from",
            where="site_style",
            hint="pass rows of the federated audit table or of load_heart_disease(), with their record columns",
        )


def _records(rows: pd.DataFrame) -> list[dict[str, object]]:
    _require(rows, NOTE_COLUMNS)
    return [{str(k): v for k, v in record.items()} for record in rows[list(NOTE_COLUMNS)].to_dict("records")]


def restyle(rows: pd.DataFrame, style: StyleName) -> list[str]:
    """Every row's record written as a note in ``style``, in the rows' order."""
    return [write_note(record, style) for record in _records(rows)]


def own_styles(rows: pd.DataFrame, site_column: str = SITE_COLUMN) -> list[StyleName]:
    """The writing style of each row's own source site, in the rows' order.

    Raises
    ------
    DataError
        A row's site has no note style (the message names it and the sites that have one).
    """
    _require(rows, (site_column,))
    sites = [str(site) for site in rows[site_column].tolist()]
    unknown = sorted(set(sites) - set(SITE_STYLES))
    if unknown:
        raise DataError(
            f"no note style for the site(s) {', '.join(map(repr, unknown))} in column {site_column!r}",
            where="site_style",
            hint=f"sites with a note style: {', '.join(SITE_STYLES)}",
        )
    return [SITE_STYLES[site] for site in sites]


def check_only_style_changed(rows: pd.DataFrame, notes_by_style: Mapping[StyleName, Sequence[str]]) -> None:
    """Fail closed unless every note in ``notes_by_style`` reads back as its row's record.

    ``notes_by_style[style][i]`` is row ``i`` written in ``style`` (:func:`restyle`). Each note
    is parsed with :func:`~guardrail.federation.notes.read_note` and compared with the row's
    record — numbers within the precision its style writes, categories and missing values
    exactly — so every rewritten note gives, up to rounding, the same record as the row's
    own-style note: the probe changed the style and nothing else.

    Raises
    ------
    DataError
        A list has the wrong length, a note is not in its style, or a note's record differs
        from its row's (the message names the first such note and its columns; ``more`` is
        not used: one tampered note is enough to stop the probe).
    """
    records = _records(rows)
    for style, notes in notes_by_style.items():
        if len(notes) != len(records):
            raise DataError(
                f"{len(notes)} notes in the {style!r} style for {len(records)} rows",
                where="site_style",
                hint="write one note per row, in the rows' order (restyle(rows, style))",
            )
        tolerance = written_precision(style)
        for position, (record, note) in enumerate(zip(records, notes, strict=True)):
            differing = record_differences(record, read_note(note, style), tolerance)
            if differing:
                parsed = read_note(note, style)
                changes = "; ".join(f"{column}: {record[column]!r} → {parsed[column]!r}" for column in differing)
                raise DataError(
                    f"the {style!r} note of row {position} changes more than the style ({changes})",
                    where="site_style",
                    hint="rewrite notes only with restyle(rows, style), from the rows' own records",
                )
