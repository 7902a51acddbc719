"""The four Heart Disease sites as 3–5 hospital nodes: layouts, held-out splits, imputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.core.errors import SpecError
from guardrail.datasets import load_heart_disease
from guardrail.federation.sites import FEATURES, LABEL, SITES, build_hospitals


@pytest.fixture(scope="module")
def heart() -> pd.DataFrame:
    return load_heart_disease()


def _ids(frame: pd.DataFrame) -> list[int]:
    return frame["id"].tolist()


def test_sites_are_the_hospitals_and_every_row_is_used_once(heart: pd.DataFrame) -> None:
    nodes = build_hospitals(data=heart)

    assert [h.name for h in nodes] == ["cleveland", "hungary", "va-long-beach", "switzerland"]
    assert [h.sites for h in nodes] == [(s,) for s in SITES]
    ids = [i for h in nodes for i in _ids(h.train) + _ids(h.test)]
    assert sorted(ids) == sorted(heart["id"].tolist())
    for h in nodes:
        assert set(h.train["site"].astype(str)) == set(h.sites) == set(h.test["site"].astype(str))
        assert h.index == nodes.index(h)


def test_held_out_split_is_stratified_and_seeded(heart: pd.DataFrame) -> None:
    nodes = build_hospitals(data=heart, test_size=0.25, seed=3)

    for h in nodes:
        n = len(h.train) + len(h.test)
        assert abs(len(h.test) - 0.25 * n) <= 1
        positives = h.train[LABEL].sum() + h.test[LABEL].sum()
        assert abs(h.test[LABEL].sum() - 0.25 * positives) <= 0.5 + 1e-9  # stratified to the row
    again = build_hospitals(data=heart, test_size=0.25, seed=3)
    assert [_ids(h.test) for h in nodes] == [_ids(h.test) for h in again]
    assert [dict(h.imputation) for h in nodes] == [dict(h.imputation) for h in again]
    assert [h.data_sha256() for h in nodes] == [h.data_sha256() for h in again]
    assert len({h.data_sha256() for h in nodes}) == len(nodes)
    other = build_hospitals(data=heart, test_size=0.25, seed=4)
    assert [_ids(h.test) for h in nodes] != [_ids(h.test) for h in other]
    assert nodes[0].data_sha256() != other[0].data_sha256()


def test_merge_switzerland_into_va_long_beach(heart: pd.DataFrame) -> None:
    nodes = build_hospitals(data=heart, merge={"Switzerland": "VA Long Beach"})

    assert [h.name for h in nodes] == ["cleveland", "hungary", "va-long-beach+switzerland"]
    merged = nodes[-1]
    assert merged.sites == ("VA Long Beach", "Switzerland")
    assert len(merged.train) + len(merged.test) == 200 + 123
    assert merged.never_recorded == ()  # VA Long Beach records cholesterol; Switzerland never does


def test_split_cleveland_in_two_by_a_stratified_seeded_split(heart: pd.DataFrame) -> None:
    nodes = build_hospitals(data=heart, split={"Cleveland": 2}, seed=1)

    assert [h.name for h in nodes] == ["cleveland-1", "cleveland-2", "hungary", "va-long-beach", "switzerland"]
    one, two = nodes[0], nodes[1]
    rows_one, rows_two = set(_ids(one.train) + _ids(one.test)), set(_ids(two.train) + _ids(two.test))
    assert not rows_one & rows_two
    assert rows_one | rows_two == set(heart.loc[heart["site"] == "Cleveland", "id"])
    rates = [pd.concat([h.train, h.test])[LABEL].mean() for h in (one, two)]
    assert abs(rates[0] - rates[1]) < 0.01
    # other nodes do not move when a site is split: each split has its own seed stream
    plain = {h.name: _ids(h.test) for h in build_hospitals(data=heart, seed=1)}
    assert all(plain[h.name] == _ids(h.test) for h in nodes[2:])


def test_imputation_is_fitted_on_each_hospitals_training_rows_only(heart: pd.DataFrame) -> None:
    nodes = build_hospitals(data=heart)
    hungary, switzerland = nodes[1], nodes[3]

    assert hungary.imputation["cholesterol"] == hungary.train["cholesterol"].median()
    assert hungary.imputation["cholesterol"] != pd.concat([hungary.train, hungary.test])["cholesterol"].median()
    assert switzerland.never_recorded == ("cholesterol",)
    assert switzerland.imputation["cholesterol"] is None
    for h in nodes:
        for split in ("train", "test"):
            filled = h.imputed(split)
            gaps = filled[list(FEATURES)].isna().any()
            assert sorted(gaps[gaps].index) == sorted(h.never_recorded)
            assert h.missing(split).to_numpy().sum() == h.rows(split)[list(FEATURES)].isna().to_numpy().sum()
        assert h.imputation["sex"] in ("Male", "Female")
    # the raw rows keep their gaps (notes say "not recorded")
    assert hungary.rows("train")["cholesterol"].isna().any()


def test_imputation_ignores_held_out_rows(heart: pd.DataFrame) -> None:
    base = build_hospitals(data=heart)[1]
    changed = heart.copy()
    changed.loc[changed["id"].isin(_ids(base.test)), "resting_bp"] = 199.0

    again = build_hospitals(data=changed)[1]

    assert dict(again.imputation) == dict(base.imputation)


@pytest.mark.parametrize(
    ("options", "where", "message", "hint"),
    [
        ({"split": {"Cleveland": 3}}, "hospitals.split", "6 hospital nodes", "split fewer"),
        ({"merge": {"Switzerland": "VA Long Beach", "Hungary": "Cleveland"}}, "hospitals.merge", "2 hospital nodes", "merge fewer"),
        ({"split": {"Clevland": 2}}, "hospitals.split", "unknown site 'Clevland'", "did you mean 'Cleveland'"),
        ({"merge": {"Zurich": "Hungary"}}, "hospitals.merge", "unknown site 'Zurich'", "the sites are"),
        ({"merge": {"Hungary": "Hungary"}}, "hospitals.merge", "merged into itself", "remove"),
        ({"merge": {"Switzerland": "Hungary", "Hungary": "Cleveland"}}, "hospitals.merge", "itself merged", "straight into"),
        ({"merge": {"Switzerland": "Cleveland"}, "split": {"Cleveland": 2}}, "hospitals.merge", "both merged and split", "not both"),
        ({"split": {"Hungary": 1}}, "hospitals.split", "split into 1 parts", "≥ 2"),
        ({"test_size": 0.9}, "hospitals.test_size", "test_size", "0.25"),
    ],
)
def test_impossible_layouts_say_what_where_and_how_to_fix(
    heart: pd.DataFrame, options: dict[str, object], where: str, message: str, hint: str
) -> None:
    with pytest.raises(SpecError) as raised:
        build_hospitals(data=heart, **options)  # type: ignore[arg-type]

    assert raised.value.where == where
    assert message in raised.value.message
    assert raised.value.hint and hint in raised.value.hint


def test_a_split_too_fine_for_a_class_is_refused(heart: pd.DataFrame) -> None:
    tiny = heart[(heart["site"] != "Switzerland") | (heart[LABEL] == 1) | (heart["id"] == heart["id"].max())]
    with pytest.raises(SpecError) as raised:
        build_hospitals(data=tiny.reset_index(drop=True))
    assert "switzerland" in raised.value.message and "only class(es) [1]" in raised.value.message
    assert raised.value.hint


def test_nodes_do_not_depend_on_the_input_row_order(heart: pd.DataFrame) -> None:
    shuffled = heart.sample(frac=1.0, random_state=0).reset_index(drop=True)

    a, b = build_hospitals(data=heart), build_hospitals(data=shuffled)

    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.train["id"].to_numpy(), y.train["id"].to_numpy())
        assert np.array_equal(x.test["id"].to_numpy(), y.test["id"].to_numpy())
