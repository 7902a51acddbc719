"""Representation: group shares, representation ratios against a declared population, small
cells of intersections, and the population's checks — each figure against pandas, scipy or a
hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from guardrail.core.errors import DataError
from guardrail.data_audit.representation import (
    SHARE_TOLERANCE,
    Population,
    check_population,
    grouping_counts,
    representation_metrics,
)
from guardrail.fairness.groups import tabulate

LEVEL = 0.95


def _frame(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sex": pd.Categorical(rng.choice(["F", "M", "X"], n, p=[0.55, 0.43, 0.02]), categories=["F", "M", "X"]),
            "race": rng.choice(["a", "b", "c", "d"], n, p=[0.5, 0.3, 0.15, 0.05]),
            "age": rng.integers(1, 4, n).astype(float),
        }
    )


def _metrics(data: pd.DataFrame, sets: list[tuple[str, ...]], population: dict[str, Population] | None = None) -> dict[str, object]:
    found = representation_metrics(data, sets, population=population or {}, level=LEVEL, min_group_size=30)
    return {m.ref: m for m in found}


def _cp(x: int, n: int, tail: float) -> tuple[float, float]:
    """Clopper–Pearson from scipy's beta quantiles, independently of guardrail."""
    low = 0.0 if x == 0 else float(beta.ppf(tail, x, n - x + 1))
    high = 1.0 if x == n else float(beta.ppf(1 - tail, x + 1, n - x))
    return low, high


@pytest.mark.parametrize("sets", [[("sex",)], [("race",)], [("sex",), ("race",), ("sex", "race")]])
def test_group_shares_match_pandas(sets: list[tuple[str, ...]]) -> None:
    data = _frame()
    found = _metrics(data, sets)
    for features in sets:
        metric = found[f"data.group_share[{'+'.join(features)}]"]
        expected = data.groupby(list(features), observed=True).size() / len(data)
        by_group = {g.group: g for g in metric.by_group}
        assert len(by_group) == len(expected)
        for key, share in expected.items():
            label = " × ".join(map(str, key if isinstance(key, tuple) else (key,)))
            assert by_group[label].value == pytest.approx(share, abs=1e-12)
            assert by_group[label].n == round(share * len(data))
            assert by_group[label].small == (round(share * len(data)) < 30)
        assert metric.value == pytest.approx(expected.min(), abs=1e-12)
        assert metric.n == len(data)
        assert metric.details["smallest_group"] == by_group_label(expected.idxmin())


def by_group_label(key: object) -> str:
    return " × ".join(map(str, key if isinstance(key, tuple) else (key,)))


def test_group_intervals_are_clopper_pearson_and_contain_shares() -> None:
    data = _frame(1)
    metric = _metrics(data, [("race",)])["data.group_share[race]"]
    for g in metric.by_group:
        assert g.ci is not None and g.value is not None
        low, high = _cp(g.n, len(data), 0.025)
        assert (g.ci.low, g.ci.high) == pytest.approx((low, high), abs=1e-9)
        assert g.ci.low <= g.value <= g.ci.high


def test_smallest_share_box_is_bonferroni_and_wider_than_its_group_interval() -> None:
    data = _frame(2)
    metric = _metrics(data, [("race",)])["data.group_share[race]"]
    assert metric.ci is not None and metric.value is not None
    groups = len(metric.by_group)
    bounds = [_cp(g.n, len(data), 0.025 / groups) for g in metric.by_group]
    assert metric.ci.low == pytest.approx(min(b[0] for b in bounds), abs=1e-9)
    assert metric.ci.high == pytest.approx(min(b[1] for b in bounds), abs=1e-9)
    smallest = next(g for g in metric.by_group if g.group == metric.details["smallest_group"])
    assert smallest.ci is not None
    assert metric.ci.low <= metric.value <= metric.ci.high
    assert metric.ci.low < smallest.ci.low and metric.ci.high > smallest.ci.high
    assert metric.ci.quantiles  # a policy can read other levels


def test_small_groups_are_flagged() -> None:
    data = pd.DataFrame({"sex": ["F"] * 100 + ["M"] * 80 + ["X"] * 12})
    metric = _metrics(data, [("sex",)])["data.group_share[sex]"]
    assert metric.details["small_groups"] == ["X"]
    assert [g.small for g in metric.by_group] == [False, False, True]


def test_representation_ratio_by_hand() -> None:
    data = pd.DataFrame({"sex": ["F"] * 300 + ["M"] * 700})
    population = {"sex": Population({"F": 0.5, "M": 0.5}, "census 2021, table 3")}
    metric = _metrics(data, [("sex",)], population)["data.representation_ratio[sex]"]
    assert metric.value == pytest.approx(0.3 / 0.5, abs=1e-12)
    by_group = {g.group: g for g in metric.by_group}
    assert by_group["M"].value == pytest.approx(0.7 / 0.5, abs=1e-12)
    low, high = _cp(300, 1000, 0.025)
    assert by_group["F"].ci is not None
    assert (by_group["F"].ci.low, by_group["F"].ci.high) == pytest.approx((low / 0.5, high / 0.5), abs=1e-9)
    box = [_cp(x, 1000, 0.025 / 2) for x in (300, 700)]
    assert metric.ci is not None
    assert metric.ci.low == pytest.approx(min(box[0][0] / 0.5, box[1][0] / 0.5), abs=1e-9)
    assert metric.ci.high == pytest.approx(min(box[0][1] / 0.5, box[1][1] / 0.5), abs=1e-9)
    assert metric.details == {
        "population": {"F": 0.5, "M": 0.5}, "source": "census 2021, table 3",
        "lowest_group": "F", "highest_group": "M", "highest_ratio": pytest.approx(1.4),
    }  # fmt: skip
    assert metric.higher_is_better is True


def test_representation_ratio_of_a_column_seen_only_in_the_intersection() -> None:
    data = _frame(4)
    shares = (data["race"].value_counts(normalize=True) + 0.01).round(3)
    population = {"race": Population((shares / shares.sum()).to_dict(), "made up")}
    found = _metrics(data, [("sex", "race")], population)
    assert "data.representation_ratio[race]" in found
    assert "data.group_share[race]" not in found


def test_numeric_population_keys_read_as_labels() -> None:
    data = _frame(5)
    counts = data["age"].value_counts(normalize=True)
    population = {"age": Population({1.0: 0.3, 2.0: 0.3, 3.0: 0.4}, "x")}  # type: ignore[dict-item]
    metric = _metrics(data, [("age",)], population)["data.representation_ratio[age]"]
    by_group = {g.group: g.value for g in metric.by_group}
    assert by_group == pytest.approx({"1": counts[1.0] / 0.3, "2": counts[2.0] / 0.3, "3": counts[3.0] / 0.4}, abs=1e-12)


def test_small_cells_counts_empty_cells_of_the_cross_product() -> None:
    data = pd.DataFrame({"sex": ["F"] * 100 + ["M"] * 60 + ["M"] * 10, "race": ["a"] * 50 + ["b"] * 50 + ["a"] * 60 + ["c"] * 10})
    metric = _metrics(data, [("sex",), ("race",), ("sex", "race")])["data.small_cells[sex+race]"]
    sizes = {g.group: g.n for g in metric.by_group}
    # cross product 2 × 3: F×c and M×b are empty, M×c has 10 rows
    assert sizes == {"F × a": 50, "F × b": 50, "F × c": 0, "M × a": 60, "M × b": 0, "M × c": 10}
    assert metric.value == 3.0
    assert metric.details == {"cells": 6, "empty_cells": 2, "min_group_size": 30}
    assert metric.ci is None and metric.higher_is_better is False
    assert "data.small_cells[sex]" not in _metrics(data, [("sex",)])


def test_marginals_equal_their_own_tabulation() -> None:
    data = _frame(6)
    y = (np.arange(len(data)) % 3 == 0)
    sets = [("sex",), ("race",), ("race", "sex"), ("sex", "race")]
    tables = grouping_counts(data, sets, [(y, 2)], missing="error", where="data")
    for features in sets:
        grouping, counts = tables[features]
        direct, direct_counts = tabulate(data, features, [(y, 2)])
        assert grouping.labels == direct.labels and grouping.scope == direct.scope
        np.testing.assert_array_equal(counts, direct_counts)
        np.testing.assert_array_equal(grouping.combos, direct.combos)


# -- the population's checks -------------------------------------------------------------------

BAD_POPULATIONS = [
    ("sums to 0.9", {"F": 0.45, "M": 0.45}, "sum to 0.9000"),
    ("share 0", {"F": 0.0, "M": 1.0}, "outside (0, 1]"),
    ("share above 1", {"F": 1.5, "M": -0.5}, "outside (0, 1]"),
    ("share NaN", {"F": float("nan"), "M": 0.5}, "outside (0, 1]"),
    ("no shares", {}, "has no shares"),
    ("absent group", {"F": 0.5, "M": 0.4, "Z": 0.1}, "'Z' of 'sex' have no rows"),
    ("unshared group", {"F": 0.5, "M": 0.5}, "'X' of 'sex' have no population share"),
    ("same label twice", {"1": 0.5, 1.0: 0.5}, "more than once"),
]


@pytest.mark.parametrize(("case", "shares", "message"), BAD_POPULATIONS, ids=[c[0] for c in BAD_POPULATIONS])
def test_bad_population_raises_data_error_with_a_hint(case: str, shares: dict[str, float], message: str) -> None:
    data = _frame(7) if case != "same label twice" else pd.DataFrame({"sex": [1, 2]})
    population = {"sex": Population(shares, "source")}
    with pytest.raises(DataError) as raised:
        check_population(data, population, sensitive=["sex", "race"], where="audit.yaml")
    assert message in raised.value.message
    assert raised.value.hint and raised.value.where == "audit.yaml"
    assert raised.value.exit_code == 3
    with pytest.raises(DataError):  # the metrics check the same, whoever calls them
        representation_metrics(data, [("sex",)], population=population, level=LEVEL, min_group_size=30)


def test_population_of_a_column_that_is_not_sensitive() -> None:
    with pytest.raises(DataError, match="not an audited sensitive column") as raised:
        check_population(_frame(), {"age": Population({"1": 1.0}, "x")}, sensitive=["sex"], where="data")
    assert raised.value.hint and "'sex'" in raised.value.hint


def test_rounded_shares_are_accepted_within_the_tolerance() -> None:
    data = pd.DataFrame({"sex": ["F", "M", "X"] * 10})
    ok = {"sex": Population({"F": 0.333, "M": 0.333, "X": 0.333}, "rounded to 0.1%")}
    check_population(data, ok, sensitive=["sex"], where="data")
    off = {"sex": Population({"F": 0.333, "M": 0.333, "X": 0.333 - SHARE_TOLERANCE}, "x")}
    with pytest.raises(DataError):
        check_population(data, off, sensitive=["sex"], where="data")


def test_missing_sensitive_values_as_a_group_need_a_share() -> None:
    data = pd.DataFrame({"sex": ["F", "M", None, "F"]})
    with pytest.raises(DataError, match="'missing' of 'sex' have no population share"):
        check_population(data, {"sex": Population({"F": 0.5, "M": 0.5}, "x")}, sensitive=["sex"], where="data")
    check_population(data, {"sex": Population({"F": 0.5, "M": 0.4, "missing": 0.1}, "x")}, sensitive=["sex"], where="data")
