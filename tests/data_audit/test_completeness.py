"""Completeness: missing rates by group (against pandas), a planted differential missingness
found, clean data not flagged, the largest difference over features, and the heatmap pieces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.core.types import MetricResult
from guardrail.data_audit import completeness
from guardrail.data_audit.completeness import missingness_metrics

LEVEL = 0.95


def _run(
    data: pd.DataFrame, sets: list[tuple[str, ...]], features: list[str], *, bootstrap: int = 400, seed: int = 0
) -> tuple[dict[str, MetricResult], list[dict[str, object]]]:
    found, pieces = missingness_metrics(data, sets, features, level=LEVEL, min_group_size=30, bootstrap=bootstrap, seed=seed)
    return {m.ref: m for m in found}, pieces


def _planted(seed: int, rate_a: float, rate_b: float, n: int = 1500) -> pd.DataFrame:
    """Feature ``x`` missing at ``rate_a`` in group A and ``rate_b`` in group B (exactly)."""
    rng = np.random.default_rng(seed)
    group = np.repeat(["A", "B"], n)
    x = rng.standard_normal(2 * n)
    for i, rate in enumerate((rate_a, rate_b)):
        rows = rng.choice(n, round(rate * n), replace=False) + i * n
        x[rows] = np.nan
    return pd.DataFrame({"group": group, "x": x, "full": rng.standard_normal(2 * n)})


def test_missing_rates_match_pandas() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    data = pd.DataFrame(
        {
            "sex": pd.Categorical(rng.choice(["F", "M"], n)),
            "race": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "income": rng.standard_normal(n),
            "city": rng.choice(["x", "y"], n).astype(object),
            "age": rng.integers(18, 90, n).astype(float),
        }
    )
    data.loc[rng.random(n) < np.where(data["sex"] == "F", 0.2, 0.05), "income"] = np.nan
    data.loc[rng.random(n) < 0.03, "city"] = None
    sets = [("sex",), ("race",), ("sex", "race")]
    features = ["income", "city", "age"]
    found, pieces = _run(data, sets, features)
    for features_set in sets:
        scope = "+".join(features_set)
        grouped = data[["income", "city", "age"]].isna().groupby([data[f] for f in features_set], observed=True).mean()
        labels = [" × ".join(map(str, k if isinstance(k, tuple) else (k,))) for k in grouped.index]
        for feature in ("income", "city"):
            rate = found[f"data.missing_rate[{scope}/column={feature}]"]
            got = {g.group: g.value for g in rate.by_group}
            assert got == pytest.approx(dict(zip(labels, grouped[feature], strict=True)), abs=1e-12)
            assert rate.value == pytest.approx(data[feature].isna().mean(), abs=1e-12)
            difference = found[f"data.missing_rate_difference[{scope}/column={feature}]"]
            assert difference.value == pytest.approx(grouped[feature].max() - grouped[feature].min(), abs=1e-12)
            assert difference.details["based_on"] == ["missing_rate"] and difference.details["column"] == feature
            for g in rate.by_group:
                assert g.ci is not None and g.value is not None and g.ci.low <= g.value <= g.ci.high
        assert f"data.missing_rate[{scope}/column=age]" not in found  # never missing
        worst = found[f"data.max_missing_rate_difference[{scope}]"]
        differences = {f: found[f"data.missing_rate_difference[{scope}/column={f}]"] for f in ("income", "city")}
        assert worst.value == max(m.value or 0.0 for m in differences.values())
        assert worst.details["worst_feature"] == max(differences, key=lambda f: differences[f].value or 0.0)
        assert worst.details["features_with_missing"] == ["income", "city"]
        assert worst.ci is not None
        columns = 3  # income, city, and the columns never missing (age), which count as one candidate at 0
        bonferroni = max(m.ci.bound(0.025 / columns, "low") for m in differences.values() if m.ci)
        assert worst.ci.low == pytest.approx(bonferroni, abs=1e-12)  # holds for whichever column truly has the largest gap
        assert worst.ci.low <= max(m.ci.low for m in differences.values() if m.ci)
        assert worst.ci.high >= max(m.ci.high for m in differences.values() if m.ci)
        piece = next(p for p in pieces if p["scope"] == scope)
        assert piece["features"] == ["income", "city"]  # highest overall rate first
        assert piece["groups"] == labels
        np.testing.assert_allclose(piece["rates"], [list(grouped["income"]), list(grouped["city"])], rtol=0, atol=1e-12)
        assert piece["group_n"] == list(data.groupby(list(features_set), observed=True).size())


def test_planted_differential_missingness_is_found() -> None:
    data = _planted(2, 0.30, 0.02)
    found, _ = _run(data, [("group",)], ["x", "full"], bootstrap=1000)
    difference = found["data.missing_rate_difference[group/column=x]"]
    assert difference.value == pytest.approx(0.28, abs=1e-12)
    assert difference.ci is not None and difference.ci.low > 0.2
    assert difference.details["max_group"] == "A" and difference.details["min_group"] == "B"
    worst = found["data.max_missing_rate_difference[group]"]
    assert worst.details["worst_feature"] == "x" and worst.value == pytest.approx(0.28)
    assert worst.ci is not None and worst.ci.low > 0.2


def test_clean_data_interval_contains_the_true_zero_gap() -> None:
    data = _planted(3, 0.10, 0.10)
    found, _ = _run(data, [("group",)], ["x"], bootstrap=1000)
    difference = found["data.missing_rate_difference[group/column=x]"]
    assert difference.value == pytest.approx(0.0, abs=1e-12)
    assert difference.ci is not None and difference.ci.low == 0.0 < difference.ci.high < 0.05


def test_nothing_missing() -> None:
    data = _planted(4, 0.0, 0.0)
    found, pieces = _run(data, [("group",)], ["x", "full"])
    assert list(found) == ["data.max_missing_rate_difference[group]"]
    worst = found["data.max_missing_rate_difference[group]"]
    assert worst.value == 0.0 and worst.details["worst_feature"] is None and worst.details["features_with_missing"] == []
    # no missing value in 1500 rows per group still allows a small true gap: exact bounds say how small
    assert worst.ci is not None and worst.ci.low == 0.0 and 0 < worst.ci.high < 0.01
    assert pieces == [{"scope": "group", "features": [], "groups": ["A", "B"], "rates": [], "group_n": [1500, 1500]}]


def test_many_features_take_several_batches_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    n = 2000
    data = pd.DataFrame({"s": rng.choice(["p", "q", "r"], n)})
    for i in range(7):
        column = rng.standard_normal(n)
        column[rng.random(n) < 0.02 * (i + 1)] = np.nan
        data[f"f{i}"] = column
    features = [f"f{i}" for i in range(7)]
    sets = [("s",)]
    one_pass, pieces = _run(data, sets, features)
    monkeypatch.setattr(completeness, "BATCH_FEATURES", 2)
    batched, batched_pieces = _run(data, sets, features)
    assert {k: (m.value, m.ci) for k, m in one_pass.items()} == {k: (m.value, m.ci) for k, m in batched.items()}
    assert pieces == batched_pieces
    assert pieces[0]["features"] == features[::-1]


def test_each_feature_has_its_own_random_stream() -> None:
    data = _planted(6, 0.2, 0.1)
    data["y"] = data["x"]
    found, _ = _run(data, [("group",)], ["x", "y"])
    x, y = found["data.missing_rate_difference[group/column=x]"], found["data.missing_rate_difference[group/column=y]"]
    assert x.value == y.value and x.ci != y.ci
    again, _ = _run(data, [("group",)], ["x", "y"])
    assert again["data.missing_rate_difference[group/column=x]"].ci == x.ci


def test_scopes_escape_column_names() -> None:
    data = _planted(7, 0.2, 0.1).rename(columns={"x": "a/b=c"})
    found, _ = _run(data, [("group",)], ["a/b=c"])
    assert "data.missing_rate[group/column=a%2Fb%3Dc]" in found


def test_no_examined_column_is_no_evidence_of_completeness() -> None:
    """With every column left out, the largest gap is undefined, never a 0 a policy could pass."""
    found, _ = _run(_planted(5, 0.3, 0.0), [("group",)], [])
    worst = found["data.max_missing_rate_difference[group]"]
    assert worst.value is None and worst.reason is not None and "no column was examined" in worst.reason
