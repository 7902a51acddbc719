"""One row hash for duplicates, leaks and conflicting labels: equal rows hash equal, in any
frame and whatever the dtypes, exactly as pandas' ``duplicated`` calls rows equal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.data_audit import rows
from guardrail.data_audit.rows import row_hashes


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": rng.integers(0, 4, n),
            "f": rng.choice([0.5, -0.0, 0.0, np.nan, 2.0], n),
            "s": rng.choice(np.array(["a", "b", None], dtype=object), n),
            "c": pd.Categorical(rng.choice(["x", "y"], n)),
            "b": rng.random(n) < 0.5,
        }
    )


def test_equal_rows_hash_equal_and_distinct_rows_distinct_as_pandas_says() -> None:
    frame = _frame(np.random.default_rng(0), 20_000)
    columns = list(frame.columns)
    hashes = row_hashes(frame, columns)
    assert len(np.unique(hashes)) == len(frame.drop_duplicates())
    first = pd.Series(hashes).duplicated().to_numpy()
    assert np.array_equal(first, frame.duplicated().to_numpy())  # -0.0 equals 0.0, NaN equals NaN, as in pandas


def test_chunk_boundaries_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame(np.random.default_rng(1), 1000)
    expected = row_hashes(frame, list(frame.columns))
    monkeypatch.setattr(rows, "HASH_CHUNK_ROWS", 7)
    assert np.array_equal(row_hashes(frame, list(frame.columns)), expected)


def test_the_same_values_hash_equal_across_frames_of_other_dtypes() -> None:
    """An integer column read as floats elsewhere (it gained a missing value), a category read as
    text, booleans read as 0/1: the same rows, the same hashes."""
    a = pd.DataFrame({"n": [1, 2, 3], "g": pd.Categorical(["x", "y", "x"], categories=["y", "x"]), "b": [True, False, True]})
    b = pd.DataFrame({"n": [1.0, 2.0, 3.0], "g": ["x", "y", "x"], "b": [1, 0, 1]})
    b["g"] = b["g"].astype("category")  # other category order: other codes, same values
    assert np.array_equal(row_hashes(a, ["n", "g", "b"]), row_hashes(b, ["n", "g", "b"]))
    text = pd.DataFrame({"g": ["x", "y", "x"]})
    assert np.array_equal(row_hashes(a, ["g"]), row_hashes(text, ["g"]))
    assert not np.array_equal(row_hashes(a, ["n"]), row_hashes(pd.DataFrame({"n": [1, 2, 4]}), ["n"]))
    missing = pd.DataFrame({"g": pd.Categorical(["x", None, "x"])})
    other = pd.DataFrame({"g": pd.Categorical(["x", None, "x"], categories=["x", "z"])})
    assert np.array_equal(row_hashes(missing, ["g"]), row_hashes(other, ["g"]))


def test_integers_beyond_float_precision_stay_distinct() -> None:
    """2⁵³ and 2⁵³ + 1 are one float64: hashed through floats they collided."""
    big = pd.DataFrame({"n": [2**53, 2**53 + 1, -(2**53) - 1, -(2**53) - 3, 2**63 - 1, 2**53]})
    hashes = row_hashes(big, ["n"])
    assert np.array_equal(pd.Series(hashes).duplicated().to_numpy(), big.duplicated().to_numpy())
    assert len(set(hashes.tolist())) == 5
    exact = pd.DataFrame({"n": [0, -7, 2**53, -(2**53), 2**60, -(2**62)]})  # exact as floats: equal to their float copy
    assert np.array_equal(row_hashes(exact, ["n"]), row_hashes(exact.astype(float), ["n"]))
    nullable = pd.DataFrame({"n": pd.array([3, None, 2**53 + 1], dtype="Int64")})
    assert row_hashes(nullable, ["n"])[:2].tolist() == row_hashes(pd.DataFrame({"n": [3.0, np.nan]}), ["n"]).tolist()
    assert row_hashes(nullable, ["n"])[2] != row_hashes(pd.DataFrame({"n": [2.0**53]}), ["n"])[0]
    unsigned = pd.DataFrame({"n": np.array([2**64 - 1, 2**53 + 1, 5], dtype=np.uint64)})
    signed = pd.DataFrame({"n": np.array([-1, 2**53 + 1, 5], dtype=np.int64)})  # -1 has the bits of 2⁶⁴ − 1
    assert (row_hashes(unsigned, ["n"]) == row_hashes(signed, ["n"])).tolist() == [False, True, True]


def test_every_missing_value_is_the_same_whatever_the_dtype() -> None:
    """A category column and a text column with the same values and missing values are the same rows."""
    category = pd.DataFrame({"g": pd.Categorical(["x", None, "y", None])})
    text_none = pd.DataFrame({"g": ["x", None, "y", None]})
    text_nan = pd.DataFrame({"g": ["x", np.nan, "y", pd.NA]}, dtype=object)
    expected = row_hashes(category, ["g"])
    assert np.array_equal(row_hashes(text_none, ["g"]), expected) and np.array_equal(row_hashes(text_nan, ["g"]), expected)
    missing = [pd.DataFrame({"g": column}) for column in (
        [np.nan], pd.Series([None], dtype=object), pd.to_datetime(pd.Series([None])), pd.array([None], dtype="Int64"),
        pd.array([None], dtype="string"), pd.Categorical([None], categories=["a"]),
    )]  # fmt: skip
    assert len({int(row_hashes(frame, ["g"])[0]) for frame in missing}) == 1
