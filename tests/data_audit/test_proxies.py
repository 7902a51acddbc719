"""Proxies of sensitive columns: NMI against scikit-learn, a planted proxy found, noise not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mutual_info_score, normalized_mutual_info_score

from guardrail.core.errors import DataError
from guardrail.data_audit.association import code_column
from guardrail.data_audit.proxies import proxy_metrics


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 4000
    group = rng.choice(["a", "b", "c", "d"], size=n)
    sex = rng.choice(["F", "M"], size=n)
    noisy = np.where(rng.random(n) < 0.05, rng.choice(["a", "b", "c", "d"], size=n), group)  # copies group, 5% noise
    income = rng.normal(size=n)
    income[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "group": pd.Categorical(group), "sex": sex, "zip": noisy, "income": income,
        "noise": rng.normal(size=n), "colour": rng.choice(["r", "g", "b"], size=n),
    })  # fmt: skip


def _by_ref(metrics: list) -> dict:  # type: ignore[type-arg]
    return {m.ref: m for m in metrics}


def test_nmi_equals_sklearn_on_the_same_binned_labels(frame: pd.DataFrame) -> None:
    metrics, artifact = proxy_metrics(frame, ["group", "sex"], ["zip", "income", "noise", "colour"], bins=8, bootstrap=200, seed=1)
    found = _by_ref(metrics)
    for s in ("group", "sex"):
        groups = code_column(frame[s], bins=None).codes
        for f in ("zip", "income", "noise", "colour"):
            labels = code_column(frame[f], bins=8).codes
            metric = found[f"data.proxy_nmi[{s}/column={f}]"]
            assert metric.value == pytest.approx(normalized_mutual_info_score(groups, labels), abs=1e-12)
            assert metric.details["mi"] == pytest.approx(mutual_info_score(groups, labels), abs=1e-12)
            assert metric.n == len(frame) and metric.higher_is_better is False
            assert metric.ci is not None and metric.ci.low <= metric.value <= metric.ci.high
    assert found["data.proxy_nmi[group/column=income]"].details["bins"] == 9  # 8 quantile bins and the missing bin
    table = artifact["table"]
    assert [row["nmi"] for row in table] == sorted((row["nmi"] for row in table), reverse=True)
    assert len(table) == 8 and artifact["bins"] == 8 and artifact["threshold"] == 0.1


def test_planted_proxy_is_found_and_noise_is_not(frame: pd.DataFrame) -> None:
    metrics, artifact = proxy_metrics(
        frame, ["group", "sex"], ["zip", "income", "noise", "colour"], bins=10, threshold=0.1, bootstrap=200, seed=1
    )
    found = _by_ref(metrics)
    worst = found["data.max_proxy_nmi[group]"]
    assert worst.details["feature"] == "zip" and worst.details["proxies"] == ["zip"] and worst.value is not None
    assert worst.value >= 0.8 and worst.value == found["data.proxy_nmi[group/column=zip]"].value
    for f in ("income", "noise", "colour"):
        ci = found[f"data.proxy_nmi[group/column={f}]"].ci
        assert ci is not None and ci.high < 0.02
    assert found["data.max_proxy_nmi[sex]"].details["proxies"] == []
    pairs = [found[f"data.proxy_nmi[group/column={f}]"].ci for f in ("zip", "income", "noise", "colour")]
    assert worst.ci is not None and all(ci is not None for ci in pairs)
    # the lower bound is Bonferroni over the 4 features (each read at tail 0.025 / 4), the upper one is not
    assert worst.ci.low == pytest.approx(max(ci.bound(0.025 / 4, "low") for ci in pairs if ci is not None))
    assert worst.ci.high == pytest.approx(max(ci.high for ci in pairs if ci is not None))
    assert worst.ci.low <= max(ci.low for ci in pairs if ci is not None) and "Bonferroni" in worst.ci.method
    assert artifact["table"][0]["feature"] == "zip" and artifact["table"][0]["sensitive"] == "group"


def test_same_seed_same_intervals_and_other_seed_differs(frame: pd.DataFrame) -> None:
    def cis(seed: int) -> list[tuple[float, float]]:
        metrics, _ = proxy_metrics(frame, ["group"], ["income", "zip"], bootstrap=100, seed=seed)
        return [(m.ci.low, m.ci.high) for m in metrics if m.ci is not None]

    assert cis(3) == cis(3)
    assert cis(3) != cis(4)
    alone, _ = proxy_metrics(frame, ["group"], ["zip"], bootstrap=100, seed=3)  # the interval depends on its table only
    assert alone[0].ci == proxy_metrics(frame, ["group"], ["income", "zip"], bootstrap=100, seed=3)[0][1].ci


def test_single_group_and_missing_sensitive_values() -> None:
    frame = pd.DataFrame({"s": ["x"] * 6, "t": ["u", None, "u", "v", None, "v"], "f": [1.0, 1, 1, 1, 1, 1]})
    metrics, artifact = proxy_metrics(frame, ["s", "t"], ["f"], bootstrap=20)
    found = _by_ref(metrics)
    for ref in ("data.proxy_nmi[s/column=f]", "data.max_proxy_nmi[s]"):  # one group: nothing to compare, not a pass
        assert found[ref].value is None and found[ref].ci is None and found[ref].reason == "fewer than two groups to compare"
    assert found["data.proxy_nmi[t/column=f]"].value == 0.0 and found["data.max_proxy_nmi[t]"].value == 0.0
    assert next(row for row in artifact["table"] if row["sensitive"] == "s")["nmi"] is None
    t = code_column(frame["t"], bins=None)
    assert t.labels == ("u", "v", "missing")


def test_no_feature_and_absent_columns() -> None:
    frame = pd.DataFrame({"s": ["a", "b"], "x": [1.0, 2.0]})
    metrics, artifact = proxy_metrics(frame, ["s"], ["s"], bootstrap=10)
    assert [m.ref for m in metrics] == ["data.max_proxy_nmi[s]"] and metrics[0].value is None and metrics[0].reason
    assert artifact["table"] == []
    empty, _ = proxy_metrics(frame.head(0), ["s"], ["x"], bootstrap=10)
    assert [m.value for m in empty] == [None, None] and all(m.reason for m in empty)
    with pytest.raises(DataError, match="'nope'"):
        proxy_metrics(frame, ["s"], ["x", "nope"], bootstrap=10)


def test_scopes_escape_column_names() -> None:
    frame = pd.DataFrame({"a+b": ["x", "y"] * 10, "c/d": [1.0, 2.0] * 10})
    metrics, _ = proxy_metrics(frame, ["a+b"], ["c/d"], bootstrap=0)
    assert metrics[0].scope == "a%2Bb/column=c%2Fd" and metrics[0].ci is None
    assert metrics[0].value == pytest.approx(1.0)


def test_a_rare_flag_is_a_proxy_with_sklearns_nmi() -> None:
    """A 0/1 column with under 10 % ones used to be one quantile bin (NMI 0): it is now coded by value."""
    rng = np.random.default_rng(9)
    n = 6000
    group = rng.choice(["a", "b"], size=n)
    flag = (rng.random(n) < np.where(group == "a", 0.005, 0.15)).astype(int)  # 7.7 % ones overall
    gain = np.where(rng.random(n) < np.where(group == "a", 0.97, 0.87), 0.0, rng.lognormal(8, 1, size=n))  # ~92 % zeros
    frame = pd.DataFrame({"group": group, "flag": flag, "gain": gain})
    metrics, _ = proxy_metrics(frame, ["group"], ["flag", "gain"], bins=10, bootstrap=100, seed=0)
    found = _by_ref(metrics)
    assert found["data.proxy_nmi[group/column=flag]"].value == pytest.approx(normalized_mutual_info_score(group, flag), abs=1e-12)
    assert found["data.proxy_nmi[group/column=flag]"].value > 0.05
    zero_or_not = gain > 0  # the zeros are one bin; the positives (8 %) are under a tenth of the rows: one more bin
    assert found["data.proxy_nmi[group/column=gain]"].value == pytest.approx(normalized_mutual_info_score(group, zero_or_not), abs=1e-12)
    assert found["data.proxy_nmi[group/column=gain]"].details["bins"] == 2


def test_time_zone_aware_feature() -> None:
    rng = np.random.default_rng(10)
    n = 3000
    group = rng.choice(["a", "b"], size=n)
    seconds = rng.integers(0, 86_400 * 365, size=n) + np.where(group == "a", 0, 86_400 * 90)
    stamps = pd.Series(pd.to_datetime(seconds, unit="s")).dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    frame = pd.DataFrame({"group": group, "when": stamps})
    metrics, _ = proxy_metrics(frame, ["group"], ["when"], bins=10, bootstrap=50)
    labels = pd.qcut(seconds, 10, labels=False)  # the same instants as plain numbers, binned by pandas
    assert metrics[0].value == pytest.approx(normalized_mutual_info_score(group, labels), abs=1e-12) and (metrics[0].value or 0.0) > 0.01


def test_max_interval_lower_bound_covers_the_largest_of_many_equal_values() -> None:
    """20 features with the same true value: the largest of 20 lower bounds at tail 0.025 exceeds
    it in 1 − 0.975²⁰ ≈ 40 % of samples; Bonferroni's tail / 20 keeps the miss rate at the tail."""
    from statistics import NormalDist

    from guardrail.core.types import Interval, Quantile
    from guardrail.data_audit.proxies import max_interval
    from guardrail.fairness.intervals import TABLE_LEVELS

    rng = np.random.default_rng(11)
    truth, sigma, features, runs = 0.3, 0.02, 20, 600
    z = np.array([NormalDist().inv_cdf(q) for q in TABLE_LEVELS])
    low_miss = high_miss = naive_miss = 0
    for _ in range(runs):
        estimates = truth + sigma * rng.normal(size=features)
        intervals = [
            Interval(e - 1.96 * sigma, e + 1.96 * sigma, 0.95, "normal", 1000,
                     quantiles=tuple(Quantile(q, float(e + v * sigma)) for q, v in zip(TABLE_LEVELS, z, strict=True)))
            for e in estimates
        ]  # fmt: skip
        found = max_interval(intervals, float(estimates.max()), 0.95)
        assert found is not None
        low_miss += found.low > truth
        high_miss += found.high < truth
        naive_miss += max(i.low for i in intervals) > truth
    assert low_miss / runs <= 0.025 + 0.015 and high_miss / runs <= 0.025 + 0.015
    assert naive_miss / runs > 0.25  # the uncorrected bound the test guards against
    plain = [Interval(0.1, 0.3, 0.95, "wilson"), Interval(0.2, 0.25, 0.95, "wilson")]  # no quantile tables
    found = max_interval(plain, 0.22, 0.95)
    assert found is not None and (found.low, found.high) == (0.2, 0.3) and "not corrected" in found.method
