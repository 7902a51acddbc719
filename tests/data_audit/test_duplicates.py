"""Duplicate and leaked rows, against pandas' duplicated() and a merge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.data_audit.duplicates import duplicate_metrics
from guardrail.fairness.intervals import rate_interval

COLUMNS = ["a", "b", "s", "y"]


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "a": rng.integers(0, 4, size=n).astype(float), "b": rng.choice(np.array(["u", "v", None], dtype=object), size=n),
        "s": pd.Categorical(rng.choice(["F", "M"], size=n)), "y": rng.integers(0, 2, size=n), "other": rng.normal(size=n),
    })  # fmt: skip


def _leaked(audit: pd.DataFrame, reference: pd.DataFrame) -> int:
    known = reference[COLUMNS].astype({"s": object}).drop_duplicates()
    merged = audit[COLUMNS].astype({"s": object}).merge(known, how="left", on=COLUMNS, indicator=True)
    return int((merged["_merge"] == "both").sum())


def test_counts_match_pandas_duplicated_and_a_merge() -> None:
    rng = np.random.default_rng(0)
    audit, reference = _frame(rng, 600), _frame(rng, 400)
    duplicates, leaked = duplicate_metrics(audit, COLUMNS, reference, level=0.9)
    expected = int(audit[COLUMNS].duplicated().sum())
    assert expected > 0 and duplicates.details == {"duplicates": expected, "rows": 600}
    assert duplicates.value == expected / 600 and duplicates.ci == rate_interval(expected, 600, 0.9)
    found = _leaked(audit, reference)
    assert found > 0 and leaked.details == {"leaked": found, "rows": 600} and leaked.value == found / 600
    assert duplicates.key == "data.duplicate_rows" and leaked.key == "data.leaked_rows" and leaked.higher_is_better is False


def test_a_planted_leak_is_found_exactly_and_clean_data_gives_zero() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    training = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "g": rng.choice(["a", "b"], size=n)})
    audit = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "g": rng.choice(["a", "b"], size=n)})
    clean = duplicate_metrics(audit, ["x", "z", "g"], training)
    assert [m.value for m in clean] == [0.0, 0.0]
    leaked_rows = training.sample(50, random_state=0)
    with_leak = pd.concat([audit, leaked_rows], ignore_index=True)
    duplicates, leaked = duplicate_metrics(with_leak, ["x", "z", "g"], training)
    assert leaked.details == {"leaked": 50, "rows": n + 50} and duplicates.details["duplicates"] == 0
    assert leaked.ci is not None and leaked.ci.low <= 50 / (n + 50) <= leaked.ci.high
    twice = pd.concat([with_leak, with_leak.head(10)], ignore_index=True)
    assert duplicate_metrics(twice, ["x", "z", "g"])[0].details["duplicates"] == 10


def test_an_integer_column_matches_its_float_copy() -> None:
    audit = pd.DataFrame({"k": [1, 2, 3]})
    reference = pd.DataFrame({"k": [1.0, np.nan, 3.0]})
    assert duplicate_metrics(audit, ["k"], reference)[1].details["leaked"] == 2


def test_empty_data_and_absent_columns() -> None:
    empty = pd.DataFrame({"k": pd.Series([], dtype=float)})
    (metric,) = duplicate_metrics(empty, ["k"])
    assert metric.value is None and metric.reason
    with pytest.raises(DataError, match="'q'"):
        duplicate_metrics(pd.DataFrame({"k": [1]}), ["k", "q"])
    with pytest.raises(DataError, match="reference.*'k'"):
        duplicate_metrics(pd.DataFrame({"k": [1]}), ["k"], pd.DataFrame({"j": [1]}))


def test_large_integers_and_missing_values_of_other_dtypes() -> None:
    """Rows as pandas compares them: 2⁵³ + 1 is not 2⁵³, and a missing category is a missing text value."""
    frame = pd.DataFrame({"k": [2**53, 2**53 + 1, 2**53 + 1, 7]})
    (duplicates,) = duplicate_metrics(frame, ["k"])
    assert duplicates.details["duplicates"] == int(frame.duplicated().sum()) == 1
    audit = pd.DataFrame({"g": pd.Categorical(["x", None, "y"]), "k": [1, 2, 3]})
    reference = pd.DataFrame({"g": ["z", None, "y"], "k": [1.0, 2.0, 3.0]})
    merged = audit.astype({"g": object}).merge(reference, how="left", on=["g", "k"], indicator=True)
    leaked = duplicate_metrics(audit, ["g", "k"], reference)[1]
    assert leaked.details["leaked"] == int((merged["_merge"] == "both").sum()) == 2
