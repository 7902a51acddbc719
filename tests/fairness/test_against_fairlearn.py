"""Every fairness number equals fairlearn's MetricFrame (the oracle) to 1e-12."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from guardrail.api import audit_fairness
from guardrail.datasets import load_adult

TOL = 1e-12


def _fairlearn_frame(y_true: np.ndarray, y_pred: np.ndarray, sensitive: pd.DataFrame):  # type: ignore[no-untyped-def]
    from fairlearn import metrics as flm
    from sklearn.metrics import accuracy_score, precision_score

    metrics = {
        "count": flm.count,
        "selection_rate": flm.selection_rate,
        "tpr": flm.true_positive_rate,
        "fpr": flm.false_positive_rate,
        "fnr": flm.false_negative_rate,
        "precision": lambda t, p: precision_score(t, p, zero_division=np.nan),
        "accuracy": accuracy_score,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flm.MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive)


def _fairlearn_disparities(y_true: np.ndarray, y_pred: np.ndarray, sensitive: pd.DataFrame) -> dict[str, float]:
    from fairlearn import metrics as flm

    kwargs = {"sensitive_features": sensitive}
    return {
        "demographic_parity_difference": flm.demographic_parity_difference(y_true, y_pred, **kwargs),
        "demographic_parity_ratio": flm.demographic_parity_ratio(y_true, y_pred, **kwargs),
        "equalized_odds_difference": flm.equalized_odds_difference(y_true, y_pred, **kwargs),
        "equalized_odds_ratio": flm.equalized_odds_ratio(y_true, y_pred, **kwargs),
        "equal_opportunity_difference": flm.equal_opportunity_difference(y_true, y_pred, **kwargs),
        "equal_opportunity_ratio": flm.equal_opportunity_ratio(y_true, y_pred, **kwargs),
    }


@pytest.fixture(scope="module")
def adult_predictions() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """A real classifier's decisions on Adult test (logistic regression on a few columns)."""
    from sklearn.linear_model import LogisticRegression

    train, test = load_adult("train"), load_adult("test")
    columns = ["age", "education_num", "hours_per_week", "capital_gain", "capital_loss"]
    model = LogisticRegression(max_iter=1000).fit(train[columns], train["income_over_50k"])
    y_pred = model.predict(test[columns])
    sensitive = test[["sex", "race"]].astype(str).reset_index(drop=True)
    return test["income_over_50k"].to_numpy(), y_pred, sensitive


@pytest.mark.parametrize("features", [["sex"], ["race"], ["sex", "race"]], ids=["sex", "race", "sex+race"])
def test_every_rate_matches_metricframe(adult_predictions, features) -> None:  # type: ignore[no-untyped-def]
    y_true, y_pred, sensitive = adult_predictions
    scope = "+".join(features)
    result = audit_fairness(y_true, y_pred, sensitive_features=sensitive[features], groupings="intersection")
    frame = _fairlearn_frame(y_true, y_pred, sensitive[features])
    ours = {m.key.removeprefix("fairness."): m for m in result.metrics if m.scope == scope}
    for name in ("count", "selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy"):
        metric = ours[name]
        assert metric.value == pytest.approx(frame.overall[name], abs=TOL, rel=0), name
        expected = frame.by_group[name]
        assert len(metric.by_group) == len(expected)
        for group in metric.by_group:
            key = tuple(group.group.split(" × ")) if len(features) > 1 else group.group
            assert group.value == pytest.approx(expected.loc[key], abs=TOL, rel=0), (name, key)
            assert group.n == int(frame.by_group["count"].loc[key])


@pytest.mark.parametrize("features", [["sex"], ["race"], ["sex", "race"]], ids=["sex", "race", "sex+race"])
def test_every_disparity_matches_fairlearn(adult_predictions, features) -> None:  # type: ignore[no-untyped-def]
    y_true, y_pred, sensitive = adult_predictions
    scope = "+".join(features)
    result = audit_fairness(y_true, y_pred, sensitive_features=sensitive[features], groupings="intersection")
    ours = {m.key.removeprefix("fairness."): m.value for m in result.metrics if m.scope == scope}
    for name, expected in _fairlearn_disparities(y_true, y_pred, sensitive[features]).items():
        assert ours[name] == pytest.approx(expected, abs=TOL, rel=0), name


def test_separate_and_intersectional_scopes_are_all_reported(adult_predictions) -> None:  # type: ignore[no-untyped-def]
    y_true, y_pred, sensitive = adult_predictions
    result = audit_fairness(y_true, y_pred, sensitive_features=sensitive)
    assert {m.scope for m in result.metrics} == {"sex", "race", "sex+race"}


@pytest.mark.parametrize("seed", range(20))
def test_random_small_data_matches_metricframe(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 400))
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true)
    sensitive = pd.DataFrame({"a": rng.choice(["x", "y", "z"], n), "b": rng.choice(["p", "q"], n, p=[0.8, 0.2])})
    result = audit_fairness(y_true, y_pred, sensitive_features=sensitive, min_group_size=1)
    for features in (["a"], ["b"], ["a", "b"]):
        scope = "+".join(features)
        frame = _fairlearn_frame(y_true, y_pred, sensitive[features])
        ours = {m.key.removeprefix("fairness."): m for m in result.metrics if m.scope == scope}
        for name in ("selection_rate", "tpr", "fpr", "precision", "accuracy"):
            for group in ours[name].by_group:
                key = tuple(group.group.split(" × ")) if len(features) > 1 else group.group
                expected = frame.by_group[name].loc[key]
                if np.isnan(expected):
                    assert group.value is None and group.reason
                else:
                    assert group.value == pytest.approx(expected, abs=TOL, rel=0)
        disparities = _fairlearn_disparities(y_true, y_pred, sensitive[features])
        for name, expected in disparities.items():
            if ours[name].value is not None:
                assert ours[name].value == pytest.approx(expected, abs=TOL, rel=0), name


def test_undefined_rate_makes_disparity_undefined_not_silently_dropped() -> None:
    # group "b" has no positive labels: its TPR is undefined, so TPR-based disparities are too
    result = audit_fairness([1, 0, 1, 0, 0, 0], [1, 0, 0, 1, 0, 1], sensitive_features=["a", "a", "a", "b", "b", "b"])
    by_key = {m.key: m for m in result.metrics}
    tpr_b = next(g for g in by_key["fairness.tpr"].by_group if g.group == "b")
    assert tpr_b.value is None and tpr_b.reason == "no positive labels"
    eo = by_key["fairness.equal_opportunity_difference"]
    assert eo.value is None and "undefined for group 'b'" in (eo.reason or "")
    assert by_key["fairness.demographic_parity_difference"].value == pytest.approx(2 / 3 - 1 / 3)


def test_small_groups_are_flagged_never_dropped() -> None:
    y = np.array([1, 0] * 50)
    groups = np.array(["big"] * 90 + ["tiny"] * 10)
    result = audit_fairness(y, y, sensitive_features=groups, min_group_size=30)
    selection = next(m for m in result.metrics if m.key == "fairness.selection_rate")
    flags = {g.group: (g.small, g.n) for g in selection.by_group}
    assert flags == {"big": (False, 90), "tiny": (True, 10)}
    assert selection.details["small_groups"] == ["tiny"]


def test_missing_sensitive_value_is_a_clear_error_or_an_explicit_group() -> None:
    from guardrail.core.errors import DataError

    sensitive = pd.Series(["a", None, "b", "a"], name="sex")
    with pytest.raises(DataError, match=r"'sex' has 1 missing value\(s\).*missing_sensitive: group"):
        audit_fairness([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features=sensitive)
    result = audit_fairness([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features=sensitive, missing_sensitive="group")
    groups = [g.group for g in result.metrics[0].by_group]
    assert groups == ["a", "b", "missing"]


def test_equalized_odds_ratio_takes_the_defined_worst_case() -> None:
    # TPR 1 vs 0 (ratio 0); FPR 0 in both groups (0/0): the worst case is 0, as fairlearn gives
    from fairlearn.metrics import equalized_odds_ratio

    y_true, y_pred, groups = [1, 0, 1, 0], [1, 0, 0, 0], ["a", "a", "b", "b"]
    result = audit_fairness(y_true, y_pred, sensitive_features=groups)
    ratio = next(m for m in result.metrics if m.key == "fairness.equalized_odds_ratio")
    assert ratio.value == 0.0 == equalized_odds_ratio(y_true, y_pred, sensitive_features=groups)
    assert ratio.details["worst_rate"] == "tpr"
    nobody = audit_fairness([1, 0, 1, 0], [0, 0, 0, 0], sensitive_features=groups)
    dp_ratio = next(m for m in nobody.metrics if m.key == "fairness.demographic_parity_ratio")
    assert dp_ratio.value is None and dp_ratio.reason == "selection rate is 0 in every group; the ratio is undefined"


def test_group_order_follows_the_data_type() -> None:
    frame = pd.DataFrame(
        {"n": [10, 2, 9, 2.0], "c": pd.Categorical(["b", "a", "b", "a"], categories=["b", "a", "z"])}
    )
    result = audit_fairness([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features=frame, min_group_size=1)
    labels = {m.scope: [g.group for g in m.by_group] for m in result.metrics if m.key == "fairness.count"}
    assert labels == {"n": ["2", "9", "10"], "c": ["b", "a"], "n+c": ["2 × a", "9 × b", "10 × b"]}


def test_custom_metric_callables_go_through_metricframe(adult_predictions) -> None:  # type: ignore[no-untyped-def]
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import balanced_accuracy_score

    y_true, y_pred, sensitive = adult_predictions
    result = audit_fairness(
        y_true,
        y_pred,
        sensitive_features=sensitive[["sex"]],
        custom_metrics={"balanced_accuracy": "sklearn.metrics:balanced_accuracy_score"},
        bootstrap=20,
    )
    metric = next(m for m in result.metrics if m.key == "fairness.custom.balanced_accuracy")
    frame = MetricFrame(metrics=balanced_accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive["sex"])
    assert metric.value == pytest.approx(frame.overall, abs=TOL)
    for group in metric.by_group:
        assert group.value == pytest.approx(frame.by_group[group.group], abs=TOL)
        assert group.ci is not None
    assert metric.ci is not None and "fairlearn MetricFrame" in metric.ci.method
