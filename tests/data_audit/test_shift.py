"""Shift between reference and audit data: JS distance and chi-square against scipy, Holm by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from guardrail.core.errors import DataError
from guardrail.data_audit.association import code_pair
from guardrail.data_audit.shift import chi_square, holm, js_distance, shift_metrics


def _frame(rng: np.random.Generator, n: int, *, shift: float = 0.0, shift_in: str | None = None) -> pd.DataFrame:
    group = rng.choice(["a", "b"], size=n)
    x = rng.normal(size=n)
    if shift_in is None:
        x = x + shift
    else:
        x = x + np.where(group == shift_in, shift, 0.0)
    return pd.DataFrame({"group": group, "x": x, "y": rng.normal(size=n), "c": rng.choice(["p", "q", "r"], size=n)})


def _by_ref(metrics: list) -> dict:  # type: ignore[type-arg]
    return {m.ref: m for m in metrics}


def test_js_and_chi_square_match_scipy() -> None:
    rng = np.random.default_rng(0)
    for k in (2, 5, 11):
        for _ in range(10):
            p, q = rng.integers(0, 50, size=k), rng.integers(0, 50, size=k)
            p[0], q[-1] = 1, 1  # neither empty
            assert float(js_distance(p, q)) == pytest.approx(float(jensenshannon(p, q, base=2)), abs=1e-12)
            table = np.stack([p, q])
            expected = chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
            statistic, dof, pvalue = chi_square(p, q)
            assert statistic == pytest.approx(expected.statistic, rel=1e-12) and dof == expected.dof
            assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    batch_p, batch_q = rng.integers(1, 9, size=(4, 6)), rng.integers(1, 9, size=(4, 6))
    assert np.allclose(js_distance(batch_p, batch_q), [jensenshannon(a, b, base=2) for a, b in zip(batch_p, batch_q, strict=True)])
    assert chi_square(np.array([5, 0]), np.array([7, 0])) == (0.0, 0, 1.0)  # one bin left: nothing to test
    assert np.isnan(js_distance(np.array([0, 0]), np.array([1, 2])))


def test_holm_against_a_hand_computation() -> None:
    p = [0.01, 0.04, 0.03, 0.20]
    # sorted: 0.01 (×4 = 0.04), 0.03 (×3 = 0.09), 0.04 (×2 = 0.08 → running max 0.09), 0.20 (×1 = 0.20)
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    try:
        from statsmodels.stats.multitest import multipletests
    except ImportError:
        return
    rng = np.random.default_rng(1)
    values = rng.random(20) ** 3
    assert holm(values.tolist()) == pytest.approx(multipletests(values, method="holm")[1].tolist())


def test_identical_distributions_shift_nothing() -> None:
    rng = np.random.default_rng(2)
    metrics, artifact = shift_metrics(_frame(rng, 6000), _frame(rng, 4000), ["x", "y", "c"], ["group"], bootstrap=200, seed=0)
    found = _by_ref(metrics)
    assert found["data.shifted_features"].value == 0.0 and found["data.shifted_features"].details["features"] == []
    for f in ("x", "y", "c"):
        m = found[f"data.shift_js[column={f}]"]
        assert m.value is not None and m.value < 0.05 and m.ci is not None and m.ci.low <= m.value <= m.ci.high
        assert m.details["shifted"] is False and m.details["test"] == "chi-square test of homogeneity"
    assert len(artifact["table"]) == 3 + 3 * 2 and artifact["correction"] == "holm"


def test_planted_shift_is_found_with_values_equal_to_scipy() -> None:
    rng = np.random.default_rng(3)
    audit, reference = _frame(rng, 6000, shift=0.5), _frame(rng, 4000)
    metrics, artifact = shift_metrics(audit, reference, ["x", "y", "c"], ["group"], bootstrap=200, seed=0, threshold=0.1)
    found = _by_ref(metrics)
    m = found["data.shift_js[column=x]"]
    coded_audit, coded_reference = code_pair(audit["x"], reference["x"], bins=10)
    p = np.bincount(coded_reference.codes, minlength=coded_reference.k)
    q = np.bincount(coded_audit.codes, minlength=coded_audit.k)
    assert m.value == pytest.approx(float(jensenshannon(p, q, base=2)), abs=1e-12)
    expected = chi2_contingency(np.stack([p, q]), correction=False)
    assert m.details["statistic"] == pytest.approx(expected.statistic, rel=1e-12) and m.details["dof"] == expected.dof
    assert m.details["p_adjusted"] < 1e-12 and m.details["shifted"] is True and m.value >= 0.1
    assert found["data.shifted_features"].value == 1.0 and found["data.shifted_features"].details["features"] == ["x"]
    assert found["data.max_shift_js"].details["feature"] == "x" and found["data.max_shift_js"].value == m.value
    # Holm over every test of the audit: overall (3) and per group (3 features × 2 groups)
    rows = artifact["table"]
    assert len(rows) == 9
    assert [r["p_adjusted"] for r in rows] == pytest.approx(holm([r["p_value"] for r in rows]))


def test_shift_within_one_group_is_found_in_that_group_only() -> None:
    rng = np.random.default_rng(4)
    audit, reference = _frame(rng, 8000, shift=0.8, shift_in="b"), _frame(rng, 8000)
    metrics, _ = shift_metrics(audit, reference, ["x", "y"], ["group"], bootstrap=200, seed=0)
    m = _by_ref(metrics)["data.shift_js[group/column=x]"]
    by = {g.group: g for g in m.by_group}
    assert m.details["p_adjusted"]["b"] < 1e-12 and m.details["p_adjusted"]["a"] > 0.05
    assert by["b"].value is not None and by["a"].value is not None and by["b"].value > 0.15 > by["a"].value
    assert m.value == by["b"].value and by["b"].n == int((audit["group"] == "b").sum())
    in_b = (audit["group"] == "b").to_numpy(), (reference["group"] == "b").to_numpy()
    coded_audit, coded_reference = code_pair(audit["x"], reference["x"], bins=10)
    p = np.bincount(coded_reference.codes[in_b[1]], minlength=coded_reference.k)
    q = np.bincount(coded_audit.codes[in_b[0]], minlength=coded_audit.k)
    assert by["b"].value == pytest.approx(float(jensenshannon(p, q, base=2)), abs=1e-12)


def test_same_seed_same_intervals() -> None:
    rng = np.random.default_rng(5)
    audit, reference = _frame(rng, 2000, shift=0.2), _frame(rng, 2000)
    first, _ = shift_metrics(audit, reference, ["x"], ["group"], bootstrap=100, seed=7)
    second, _ = shift_metrics(audit, reference, ["x"], ["group"], bootstrap=100, seed=7)
    assert [m.ci for m in first] == [m.ci for m in second]


def test_a_column_missing_from_one_frame_is_named() -> None:
    rng = np.random.default_rng(6)
    audit, reference = _frame(rng, 100), _frame(rng, 100).drop(columns=["y"])
    with pytest.raises(DataError, match="reference.*'y'"):
        shift_metrics(audit, reference, ["x", "y"], ["group"], bootstrap=10)
    with pytest.raises(DataError, match="audit data.*'c'"):
        shift_metrics(audit.drop(columns=["c"]), _frame(rng, 100), ["c"], [], bootstrap=10)


def test_groups_only_in_one_frame_and_no_sensitive() -> None:
    audit = pd.DataFrame({"g": ["a"] * 50 + ["new"] * 50, "x": np.arange(100.0)})
    reference = pd.DataFrame({"g": ["a"] * 100, "x": np.arange(100.0)})
    metrics, artifact = shift_metrics(audit, reference, ["x"], ["g"], bootstrap=50)
    grouped = _by_ref(metrics)["data.shift_js[g/column=x]"]
    by = {g.group: g for g in grouped.by_group}
    assert by["new"].value is None and by["new"].reason == "no training rows in this group" and by["new"].n == 50
    assert grouped.details["groups_without_reference"] == ["new"] and by["a"].value is not None
    assert grouped.value == by["a"].value  # the largest over the groups compared
    row = next(r for r in artifact["table"] if r["group"] == "new")
    assert row["js"] is None and row["reason"] == "no training rows in this group"
    assert next(r for r in artifact["table"] if r["group"] == "a")["reason"] is None
    plain, _ = shift_metrics(audit, reference, ["x"], [], bootstrap=0)
    assert [m.ref for m in plain] == ["data.shift_js[column=x]", "data.max_shift_js", "data.shifted_features"]


def test_a_rare_flag_and_a_mostly_zero_column_shift_is_found() -> None:
    """8 % → 60 % ones: the flag used to be one quantile bin of the reference (JS 0)."""
    rng = np.random.default_rng(7)
    n = 4000
    reference = pd.DataFrame({"flag": (rng.random(n) < 0.08).astype(int),
                              "gain": np.where(rng.random(n) < 0.92, 0.0, rng.lognormal(8, 1, size=n))})  # fmt: skip
    audit = pd.DataFrame({"flag": (rng.random(n) < 0.6).astype(int),
                          "gain": np.where(rng.random(n) < 0.5, 0.0, rng.lognormal(8, 1, size=n))})  # fmt: skip
    metrics, _ = shift_metrics(audit, reference, ["flag", "gain"], [], bootstrap=100, seed=0)
    found = _by_ref(metrics)
    for f in ("flag", "gain"):
        hist = [np.bincount((frame[f] > 0).to_numpy().astype(int), minlength=2) for frame in (reference, audit)]
        m = found[f"data.shift_js[column={f}]"]
        assert m.value == pytest.approx(float(jensenshannon(hist[0], hist[1], base=2)), abs=1e-12)
        assert m.details["shifted"] is True and m.details["bins"] == 2
    assert found["data.shifted_features"].value == 2.0


def test_time_zone_aware_column_is_compared() -> None:
    rng = np.random.default_rng(8)
    seconds = [rng.integers(0, 10**7, size=1000), rng.integers(0, 10**7, size=1000) + 2 * 10**6]
    frames = [pd.DataFrame({"when": pd.Series(pd.to_datetime(s, unit="s")).dt.tz_localize("Asia/Tokyo")}) for s in seconds]
    metrics, _ = shift_metrics(frames[1], frames[0], ["when"], [], bootstrap=50)
    plain, _ = shift_metrics(pd.DataFrame({"when": seconds[1]}), pd.DataFrame({"when": seconds[0]}), ["when"], [], bootstrap=50)
    assert metrics[0].value == pytest.approx(plain[0].value, abs=1e-12) and metrics[0].value > 0.1  # type: ignore[operator]


def test_nothing_compared_is_no_value_and_an_empty_reference_is_an_error() -> None:
    rng = np.random.default_rng(9)
    reference = _frame(rng, 100)
    for audit, features in ((_frame(rng, 100), []), (_frame(rng, 100).head(0), ["x"])):
        metrics, _ = shift_metrics(audit, reference, features, ["group"], bootstrap=10)
        found = _by_ref(metrics)
        assert found["data.shifted_features"].value is None and found["data.shifted_features"].reason == "no column was compared"
        assert found["data.max_shift_js"].value is None and found["data.max_shift_js"].reason
    with pytest.raises(DataError, match="no rows") as error:
        shift_metrics(_frame(rng, 100), reference.head(0), ["x"], ["group"], bootstrap=10, where="audits[0]")
    assert error.value.where == "audits[0]" and error.value.hint
