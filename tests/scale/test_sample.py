"""RowSample draws the same rows whatever the batching, partitioning and merge order."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.scale.sample import RowSample, SampleInfo


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sex": rng.choice(np.array(["F", "M"]), size=n, p=[0.4, 0.6]),
            "race": rng.choice(np.array(["a", "b", "c", "tiny"]), size=n, p=[0.6, 0.3, 0.0985, 0.0015]),
            "age": rng.integers(18, 90, size=n),
            "income": rng.normal(50, 10, size=n).round(1),
            "label": pd.Categorical(rng.choice(np.array(["no", "yes"]), size=n), categories=["no", "yes"]),
        }
    )


def _split(frame: pd.DataFrame, rng: np.random.Generator, parts: int) -> list[pd.DataFrame]:
    n = len(frame)
    cuts = np.unique(np.concatenate([rng.integers(1, n, size=parts - 1), [1]]))
    bounds = [0, *cuts.tolist(), n]
    return [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _sample(batches: list[pd.DataFrame], *, capacity: int = 600, seed: int = 7, strata: tuple[str, ...] = ("sex", "race")) -> RowSample:
    sample = RowSample(strata, capacity, seed=seed)
    for batch in batches:
        sample.add(batch)
    return sample


def _merge_randomly(parts: list[RowSample], rng: np.random.Generator) -> RowSample:
    pool = list(parts)
    while len(pool) > 1:
        i, j = sorted(rng.choice(len(pool), size=2, replace=False).tolist())
        right = pool.pop(j)
        pool[i].merge(right)
    return pool[0]


@pytest.mark.parametrize("seed", range(5))
def test_the_sample_is_the_same_for_any_batching_and_merge_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _frame(20_000, 0)
    reference, reference_info = _sample([frame]).draw(1000, min_per_stratum=30)
    batches = _split(frame, rng, int(rng.integers(2, 40)))
    order = rng.permutation(len(batches))
    streamed, streamed_info = _sample([batches[i] for i in order]).draw(1000, min_per_stratum=30)
    owners = rng.integers(0, 4, size=len(batches))
    parts = [pickle.loads(pickle.dumps(_sample([b for b, o in zip(batches, owners, strict=True) if o == k]))) for k in range(4)]
    merged, merged_info = _merge_randomly(parts, rng).draw(1000, min_per_stratum=30)
    for sample, info in ((streamed, streamed_info), (merged, merged_info)):
        assert sample.equals(reference)
        assert list(sample.dtypes) == list(reference.dtypes)
        assert info == reference_info


def test_quotas_and_order() -> None:
    frame = _frame(20_000, 1)
    sample, info = _sample([frame]).draw(1000, min_per_stratum=30)
    seen = frame.groupby(["sex", "race"]).size()
    assert info.of_rows == 20_000 and info.rows == len(sample) and info.strata == ("sex", "race")
    for (sex, race), n in seen.items():
        label = f"{sex} × {race}"
        quota = min(int(n), max(30, round(1000 * int(n) / 20_000)))
        assert info.per_stratum[label] == (quota, int(n))
        rows = sample[(sample["sex"] == sex) & (sample["race"] == race)]
        assert len(rows) == quota
    # small strata are kept whole
    tiny = info.per_stratum["F × tiny"]
    assert tiny[1] < 30 and tiny[0] == tiny[1]
    # ordered by stratum label
    labels = (sample["sex"] + " × " + sample["race"]).tolist()
    assert labels == sorted(labels)
    assert list(sample.index) == list(range(len(sample)))
    assert list(sample.columns) == list(frame.columns)
    assert info.to_dict()["per_stratum"]["F × tiny"] == {"taken": tiny[0], "seen": tiny[1]}  # type: ignore[index]
    assert "seed 7" in info.method


def test_rows_are_a_subset_of_the_data_and_a_different_seed_differs() -> None:
    frame = _frame(5000, 2)
    first, _ = _sample([frame], seed=1).draw(500, min_per_stratum=10)
    second, _ = _sample([frame], seed=2).draw(500, min_per_stratum=10)
    assert not first.equals(second)
    keys = set(map(tuple, frame.astype(str).to_numpy().tolist()))
    assert set(map(tuple, first.astype(str).to_numpy().tolist())) <= keys


def test_capacity_bounds_what_is_held_and_taken() -> None:
    frame = _frame(5000, 3)
    sample = _sample(_split(frame, np.random.default_rng(0), 20), capacity=50)
    sample._compact()
    assert sample._held is not None and len(sample._held.frame) <= 50 * 8
    drawn, info = sample.draw(4000, min_per_stratum=10)
    assert all(taken <= 50 for taken, _ in info.per_stratum.values())
    assert info.of_rows == 5000


def test_duplicates_and_unstratified() -> None:
    frame = pd.DataFrame({"a": [1, 1, 1, 2, 2, 3] * 50, "b": ["x", "x", "x", "y", "y", "z"] * 50})
    whole, info = _sample([frame], strata=(), capacity=40).draw(40, min_per_stratum=1)
    parts = _split(frame, np.random.default_rng(4), 7)
    streamed, _ = _sample(parts[::-1], strata=(), capacity=40).draw(40, min_per_stratum=1)
    assert whole.equals(streamed) and len(whole) == 40
    assert info.per_stratum == {"all rows": (40, 300)}


def test_ints_and_floats_of_one_value_hash_alike() -> None:
    a = pd.DataFrame({"g": ["x"] * 3, "v": [1.0, 2.0, 3.0]})
    b = pd.DataFrame({"g": ["x"] * 3, "v": [1, 2, 3]})
    first, _ = _sample([a], strata=("g",), capacity=2).draw(2, min_per_stratum=1)
    second, _ = _sample([b], strata=("g",), capacity=2).draw(2, min_per_stratum=1)
    assert first["v"].tolist() == second["v"].tolist()


def test_missing_strata_values() -> None:
    frame = pd.DataFrame({"g": ["x", None, "y", "x"], "v": [1, 2, 3, 4]})
    with pytest.raises(DataError, match="'g' has 1 missing value"):
        RowSample(("g",), 10, seed=0).add(frame)
    grouped = RowSample(("g",), 10, seed=0, missing="group")
    grouped.add(frame)
    sample, info = grouped.draw(4, min_per_stratum=1)
    assert info.per_stratum["missing"] == (1, 1) and len(sample) == 4


def test_empty_sample() -> None:
    sample = RowSample(("g",), 10, seed=0)
    drawn, info = sample.draw(10, min_per_stratum=1)
    assert drawn.empty and info == SampleInfo(0, 0, ("g",), {}, info.method)


def test_a_boolean_column_read_with_gaps_as_objects_hashes_as_without() -> None:
    """One batch reads a boolean column as bool, another (with a gap) as objects: same sample."""
    rng = np.random.default_rng(5)
    flags = rng.random(400) < 0.5
    frame = pd.DataFrame({"g": rng.choice(["a", "b"], 400), "flag": flags})
    whole = RowSample(("g",), 60, seed=1)
    whole.add(frame.assign(flag=frame["flag"].astype(object)))
    split = RowSample(("g",), 60, seed=1)
    split.add(frame.iloc[:200])
    split.add(frame.iloc[200:].assign(flag=frame["flag"].iloc[200:].astype(object)))
    one, _ = whole.draw(100, min_per_stratum=10)
    two, _ = split.draw(100, min_per_stratum=10)
    assert one["g"].tolist() == two["g"].tolist() and [bool(v) for v in one["flag"]] == [bool(v) for v in two["flag"]]


def test_more_strata_than_a_grouping_may_have_groups_are_refused() -> None:
    from guardrail.fairness.groups import MAX_GROUPS

    frame = pd.DataFrame({"id": np.arange(MAX_GROUPS + 1), "x": 1.0})
    sample = RowSample(("id",), 10, seed=0)
    with pytest.raises(DataError, match="too many to stratify"):
        sample.add(frame)
