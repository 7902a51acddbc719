"""Real data sets shipped inside the package (UCI Adult, UCI Heart Disease), read offline.

The gzipped files under ``data/`` are byte-for-byte the original distribution files; see
``data/README.md`` for sources, licences and SHA-256 digests.
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from typing import Literal

import pandas as pd

__all__ = ["load_adult", "load_heart_disease", "ADULT_COLUMNS"]

ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
)
_ADULT_CATEGORICAL = (
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native_country",
)

_HEART_COLUMNS = {
    "id": "id",
    "age": "age",
    "sex": "sex",
    "dataset": "site",
    "cp": "chest_pain_type",
    "trestbps": "resting_bp",
    "chol": "cholesterol",
    "fbs": "fasting_blood_sugar_over_120",
    "restecg": "resting_ecg",
    "thalch": "max_heart_rate",
    "exang": "exercise_angina",
    "oldpeak": "st_depression",
    "slope": "st_slope",
    "ca": "major_vessels",
    "thal": "thalassemia",
    "num": "diagnosis",
}


SOURCE_FILES: dict[str, tuple[str, ...]] = {
    "adult": ("adult.data.gz", "adult.test.gz"),
    "heart_disease": ("heart_disease_uci.csv.gz",),
}
"""The shipped files each data set is read from."""


def source_sha256(dataset: str) -> str:
    """SHA-256 of a shipped data set's files (gzipped, as shipped, in order): its provenance digest."""
    import hashlib

    digest = hashlib.sha256()
    for name in SOURCE_FILES[dataset]:
        digest.update(resources.files(__name__).joinpath("data", name).read_bytes())
    return digest.hexdigest()


def _read_bytes(name: str) -> bytes:
    """The decompressed content of a shipped file."""
    return gzip.decompress(resources.files(__name__).joinpath("data", name).read_bytes())


def _read_adult_file(name: str) -> pd.DataFrame:
    frame = pd.read_csv(
            io.BytesIO(_read_bytes(name)),
            header=None,
            names=list(ADULT_COLUMNS),
            skipinitialspace=True,
            na_values=["?"],
            comment="|",
            skip_blank_lines=True,
    )
    frame["income"] = frame["income"].str.rstrip(".")
    return frame


def load_adult(split: Literal["train", "test", "all"] = "all") -> pd.DataFrame:
    """UCI Adult (census income), the original train (32,561 rows) and test (16,281 rows) files.

    Returns one row per person with readable column names, ``?`` read as missing, the
    categorical columns as pandas categories, the label ``income`` (``<=50K``/``>50K``) and
    the 0/1 target ``income_over_50k``. With ``split="all"`` a ``split`` column tells the
    files apart (48,842 rows).

    Examples
    --------
    >>> adult = load_adult("test")
    >>> len(adult), adult["income_over_50k"].mean().round(3)
    (16281, np.float64(0.236))
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    parts = []
    for name in ("train", "test"):
        if split in (name, "all"):
            part = _read_adult_file("adult.data.gz" if name == "train" else "adult.test.gz")
            if split == "all":
                part.insert(len(part.columns), "split", name)
            parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    for column in _ADULT_CATEGORICAL:
        frame[column] = frame[column].astype("category")
    frame["income_over_50k"] = (frame["income"] == ">50K").astype("int64")
    return frame


def load_heart_disease() -> pd.DataFrame:
    """UCI Heart Disease from its four hospitals (920 rows; column ``site``).

    Sites: Cleveland (304), Hungary (293), VA Long Beach (200), Switzerland (123).
    ``diagnosis`` is the original 0–4 angiographic grade; ``heart_disease`` is
    ``diagnosis > 0``. Zero cholesterol and zero resting blood pressure are recorded as
    missing (physiologically impossible; Switzerland reports cholesterol 0 for every row).

    Examples
    --------
    >>> heart = load_heart_disease()
    >>> heart["site"].value_counts().to_dict()
    {'Cleveland': 304, 'Hungary': 293, 'VA Long Beach': 200, 'Switzerland': 123}
    """
    frame = pd.read_csv(io.BytesIO(_read_bytes("heart_disease_uci.csv.gz")))
    frame = frame.rename(columns=_HEART_COLUMNS)
    for column in ("cholesterol", "resting_bp"):
        frame[column] = frame[column].mask(frame[column] == 0)
    for column in ("fasting_blood_sugar_over_120", "exercise_angina"):
        frame[column] = frame[column].map({True: 1, False: 0, "TRUE": 1, "FALSE": 0}).astype("Int64")
    for column in ("sex", "site", "chest_pain_type", "resting_ecg", "st_slope", "thalassemia"):
        frame[column] = frame[column].astype("category")
    frame["heart_disease"] = (frame["diagnosis"] > 0).astype("int64")
    return frame
