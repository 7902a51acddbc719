"""The shipped data are the original files: digests, row counts, readable columns."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import pytest

from guardrail.datasets import load_adult, load_heart_disease

ORIGINAL_SHA256 = {
    "adult.data.gz": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "adult.test.gz": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
    "heart_disease_uci.csv.gz": "574f2fa2b43012fa25fca4fcdb36bd7c6bccdd0af4242f6c0e4c8633c5a072ae",
}


@pytest.mark.parametrize("name", sorted(ORIGINAL_SHA256))
def test_decompressed_files_are_the_originals(name: str) -> None:
    data = gzip.decompress(resources.files("guardrail.datasets").joinpath("data", name).read_bytes())
    assert hashlib.sha256(data).hexdigest() == ORIGINAL_SHA256[name]
    readme = resources.files("guardrail.datasets").joinpath("data", "README.md").read_text()
    assert ORIGINAL_SHA256[name] in readme


def test_adult() -> None:
    adult = load_adult()
    assert len(adult) == 48_842
    assert adult["split"].value_counts().to_dict() == {"train": 32_561, "test": 16_281}
    assert set(adult["income"]) == {"<=50K", ">50K"}
    assert adult["income_over_50k"].sum() == 11_687
    assert set(adult["sex"].cat.categories) == {"Female", "Male"}
    assert adult["race"].nunique() == 5
    assert adult["workclass"].isna().sum() == 2_799  # '?' read as missing


def test_heart_disease_sites() -> None:
    heart = load_heart_disease()
    assert len(heart) == 920
    assert heart["site"].value_counts().to_dict() == {"Cleveland": 304, "Hungary": 293, "VA Long Beach": 200, "Switzerland": 123}
    women = heart[heart["sex"] == "Female"]["site"].value_counts().to_dict()
    assert women["Switzerland"] == 10 and women["VA Long Beach"] == 6
    assert heart.loc[heart["site"] == "Switzerland", "cholesterol"].isna().all()
    rates = heart.groupby("site", observed=True)["heart_disease"].mean()
    assert 0.36 < rates.min() < 0.37 and 0.93 < rates.max() < 0.94
