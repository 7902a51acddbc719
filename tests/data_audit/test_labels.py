"""Labels: base rates by group (against pandas), their difference and ratio (by hand and by
AIF360's definitions), the details renamed for base rates, and conflicting labels (against a
pandas groupby over the actual values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.core.types import MetricResult
from guardrail.data_audit.labels import conflicting_labels, label_metrics

LEVEL = 0.95


def _frame(seed: int = 0, n: int = 4000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "sex": pd.Categorical(rng.choice(["F", "M"], n, p=[0.4, 0.6])),
            "race": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        }
    )
    p = np.where(data["sex"] == "F", 0.2, 0.35) + np.where(data["race"] == "c", 0.1, 0.0)
    return data, rng.random(n) < p


def _metrics(data: pd.DataFrame, y: np.ndarray, sets: list[tuple[str, ...]], **options: int) -> dict[str, MetricResult]:
    settings = {"min_group_size": 30, "bootstrap": 400, "seed": 3, **options}
    return {m.ref: m for m in label_metrics(data, sets, y, level=LEVEL, **settings)}


def test_base_rates_match_pandas() -> None:
    data, y = _frame()
    sets = [("sex",), ("race",), ("sex", "race")]
    found = _metrics(data, y, sets)
    for features in sets:
        metric = found[f"data.base_rate[{'+'.join(features)}]"]
        expected = pd.Series(y).groupby([data[f] for f in features], observed=True).mean()
        got = {g.group: g.value for g in metric.by_group}
        assert len(got) == len(expected)
        for key, rate in expected.items():
            label = " × ".join(map(str, key if isinstance(key, tuple) else (key,)))
            assert got[label] == pytest.approx(rate, abs=1e-12)
        assert metric.value == pytest.approx(y.mean(), abs=1e-12)
        for g in metric.by_group:
            assert g.ci is not None and g.value is not None and g.ci.low <= g.value <= g.ci.high
        assert metric.ci is not None and metric.value is not None and metric.ci.low <= metric.value <= metric.ci.high


def test_difference_and_ratio_by_hand_and_aif360_definitions() -> None:
    data, y = _frame(1)
    found = _metrics(data, y, [("sex",)])
    rates = {sex: float(y[data["sex"] == sex].mean()) for sex in ("F", "M")}
    # AIF360 BinaryLabelDatasetMetric: statistical_parity_difference = base_rate(unprivileged) − base_rate(privileged),
    # disparate_impact = base_rate(unprivileged) / base_rate(privileged); here F unprivileged, M privileged
    spd = rates["F"] - rates["M"]
    disparate_impact = rates["F"] / rates["M"]
    difference, ratio = found["data.base_rate_difference[sex]"], found["data.base_rate_ratio[sex]"]
    assert difference.value == pytest.approx(max(rates.values()) - min(rates.values()), abs=1e-12)
    assert difference.value == pytest.approx(abs(spd), abs=1e-12)
    assert ratio.value == pytest.approx(min(rates.values()) / max(rates.values()), abs=1e-12)
    assert ratio.value == pytest.approx(min(disparate_impact, 1 / disparate_impact), abs=1e-12)
    for metric in (difference, ratio):
        assert metric.ci is not None and metric.value is not None
        assert metric.ci.low <= metric.value <= metric.ci.high
        assert metric.ci.method.startswith("simultaneous pairwise bootstrap")
    assert difference.higher_is_better is False and ratio.higher_is_better is True


def test_details_name_the_base_rate() -> None:
    data, y = _frame(2)
    found = _metrics(data, y, [("sex", "race")])
    difference = found["data.base_rate_difference[sex+race]"]
    assert difference.details["based_on"] == ["base_rate"]
    assert difference.details["worst_rate"] == "base_rate"
    assert difference.details["detectable_gap_basis"]["rate"] == "base_rate"
    assert difference.details["sensitive_features"] == ["sex", "race"]
    assert {difference.details["min_group"], difference.details["max_group"]} <= {g.group for g in difference.by_group}
    assert "selection_rate" not in repr(difference.details)
    assert "selection" not in repr([m.details for m in found.values()])


def test_ratio_without_positive_labels_says_base_rate() -> None:
    data = pd.DataFrame({"sex": ["F", "M"] * 50})
    found = _metrics(data, np.zeros(100, dtype=bool), [("sex",)])
    ratio = found["data.base_rate_ratio[sex]"]
    assert ratio.value is None and ratio.reason is not None
    assert ratio.reason.startswith("base rate is 0 in every group")


def test_same_seed_same_interval_and_bootstrap_zero_gives_no_interval() -> None:
    data, y = _frame(3)
    first = _metrics(data, y, [("sex",)])["data.base_rate_difference[sex]"]
    again = _metrics(data, y, [("sex",)])["data.base_rate_difference[sex]"]
    assert first.ci == again.ci
    assert _metrics(data, y, [("sex",)], bootstrap=0)["data.base_rate_difference[sex]"].ci is None


def test_labels_are_checked() -> None:
    data, y = _frame(4, n=10)
    with pytest.raises(DataError, match="labels for 10 rows"):
        label_metrics(data, [("sex",)], y[:5], level=LEVEL, min_group_size=30, bootstrap=0, seed=0)
    with pytest.raises(DataError, match="not binary") as raised:
        label_metrics(data, [("sex",)], np.arange(10), level=LEVEL, min_group_size=30, bootstrap=0, seed=0)
    assert raised.value.hint
    as_ints = _metrics(data, y.astype(int), [("sex",)], bootstrap=0)
    assert as_ints["data.base_rate[sex]"].value == _metrics(data, y, [("sex",)], bootstrap=0)["data.base_rate[sex]"].value


# -- conflicting labels --------------------------------------------------------------------------


def _conflicts_by_groupby(data: pd.DataFrame, y: np.ndarray) -> tuple[int, int]:
    """Rows in conflict and sets of identical rows in conflict, by a pandas groupby on the values."""
    frame = data.assign(_y=y)
    labels = frame.groupby(list(data.columns), dropna=False, observed=True)["_y"].agg(["min", "max", "size"])
    mixed = labels[labels["min"] != labels["max"]]
    return int(mixed["size"].sum()), len(mixed)


def test_conflicting_labels_match_a_groupby() -> None:
    rng = np.random.default_rng(5)
    n = 5000
    data = pd.DataFrame(
        {
            "x": rng.integers(0, 6, n).astype(float),
            "flag": rng.random(n) < 0.5,
            "grade": pd.Categorical(rng.choice(["lo", "mid", "hi"], n)),
            "city": rng.choice(["Oslo", "Rome", "Lima", "Kyiv"], n).astype(object),
            "k": rng.integers(0, 5, n),
        }
    )
    data.loc[rng.random(n) < 0.1, "x"] = np.nan
    data.loc[rng.random(n) < 0.1, "city"] = None
    y = rng.random(n) < 0.3
    metric = conflicting_labels(data, list(data.columns), y, level=LEVEL)
    rows, sets = _conflicts_by_groupby(data, y)
    assert 0 < rows < n  # the data are built to have both
    assert metric.details == {"conflicting_rows": rows, "rows": n, "feature_groups_with_conflict": sets}
    assert metric.value == pytest.approx(rows / n, abs=1e-12)
    assert metric.ci is not None and metric.ci.low <= metric.value <= metric.ci.high
    assert metric.scope is None and metric.higher_is_better is False


def test_conflicting_labels_by_hand() -> None:
    data = pd.DataFrame({"a": [1.0, 1.0, 1.0, 2.0, 2.0, np.nan, np.nan, -0.0, 0.0], "b": ["u", "u", "v", "u", "u", "w", "w", "z", "z"]})
    y = np.array([True, False, True, True, True, False, True, False, True])
    metric = conflicting_labels(data, ["a", "b"], y, level=LEVEL)
    # (1, u) ×2 with both labels, (NaN, w) ×2 with both labels, (0, z) ×2 with both labels: 6 rows, 3 sets
    assert metric.details == {"conflicting_rows": 6, "rows": 9, "feature_groups_with_conflict": 3}


def test_conflicting_labels_without_rows_or_columns() -> None:
    empty = conflicting_labels(pd.DataFrame({"a": []}), ["a"], np.zeros(0, dtype=bool), level=LEVEL)
    assert empty.value is None and empty.reason == "no rows"
    none = conflicting_labels(pd.DataFrame({"a": [1]}), [], np.ones(1, dtype=bool), level=LEVEL)
    assert none.value is None and none.reason


def test_conflicting_labels_name_absent_columns() -> None:
    with pytest.raises(DataError, match="'b'") as raised:
        conflicting_labels(pd.DataFrame({"a": [1]}), ["a", "b"], np.ones(1, dtype=bool), level=LEVEL)
    assert raised.value.hint and "a" in raised.value.hint
