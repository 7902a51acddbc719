"""Results as DataFrames: tidy rows, and a by-group view equal to fairlearn's MetricFrame.by_group."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import guardrail
from guardrail.core.frames import GROUP_SEPARATOR, METRIC_COLUMNS, OUTCOME_COLUMNS, is_disparity, split_group
from guardrail.core.types import AuditResult, AuditStatus, ErrorInfo, GroupValue, MetricResult
from guardrail.datasets import load_adult
from tests.report.conftest import make_record

TOL = 1e-12
COMPARED = {"selection_rate": "selection_rate", "tpr": "true_positive_rate", "fpr": "false_positive_rate", "accuracy": None}


@pytest.fixture(scope="module")
def adult() -> tuple[np.ndarray, np.ndarray, pd.DataFrame, AuditResult]:
    """A real classifier's decisions on Adult test, audited by sex, race and sex × race."""
    from sklearn.linear_model import LogisticRegression

    train, test = load_adult("train"), load_adult("test")
    columns = ["age", "education_num", "hours_per_week", "capital_gain", "capital_loss"]
    model = LogisticRegression(max_iter=1000).fit(train[columns], train["income_over_50k"])
    y_true, y_pred = test["income_over_50k"].to_numpy(), model.predict(test[columns])
    sensitive = test[["sex", "race"]].astype(str).reset_index(drop=True)
    result = guardrail.audit_fairness(y_true, y_pred, sensitive_features=sensitive, bootstrap=0)
    return y_true, y_pred, sensitive, result


def _metricframe_by_group(y_true: np.ndarray, y_pred: np.ndarray, sensitive: pd.DataFrame) -> pd.DataFrame:
    from fairlearn import metrics as flm
    from sklearn.metrics import accuracy_score

    metrics = {name: accuracy_score if fn is None else getattr(flm, fn) for name, fn in COMPARED.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flm.MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive).by_group


@pytest.mark.parametrize("features", [["sex"], ["race"], ["sex", "race"]], ids=["sex", "race", "sex+race"])
def test_by_group_equals_fairlearns_metricframe(adult, features: list[str]) -> None:  # type: ignore[no-untyped-def]
    y_true, y_pred, sensitive, result = adult
    ours = result.by_group_frame(features)[[f"fairness.{name}" for name in COMPARED]]
    theirs = _metricframe_by_group(y_true, y_pred, sensitive[features]).dropna(how="all")
    assert list(ours.index.names) == features == list(theirs.index.names)
    if len(features) > 1:
        assert isinstance(ours.index, pd.MultiIndex) and len(ours) >= 10
    assert set(ours.index) == set(theirs.index)
    expected = theirs.loc[ours.index].set_axis(ours.columns, axis=1).astype(float)
    pd.testing.assert_frame_equal(ours, expected, check_exact=False, atol=TOL, rtol=0)


def test_by_group_by_scope_name_or_features_and_only_when_unambiguous(adult) -> None:  # type: ignore[no-untyped-def]
    result = adult[3]
    pd.testing.assert_frame_equal(result.by_group_frame("sex+race"), result.by_group_frame(["sex", "race"]))
    with pytest.raises(ValueError, match="several scopes; pass scope=, one of: sex, race, sex\\+race"):
        result.by_group_frame()
    with pytest.raises(ValueError, match="no metric has groups in scope 'age'"):
        result.by_group_frame("age")
    columns = set(result.by_group_frame("sex").columns)
    assert {"fairness.count", "fairness.selection_rate", "fairness.tpr", "fairness.fpr", "fairness.accuracy"} <= columns
    # disparities' groups hold the rate they are based on; min_group_size's hold the sizes
    assert not any("parity" in c or "odds" in c or "opportunity" in c or c.endswith("min_group_size") for c in columns)


def test_tidy_rows_hold_every_value_interval_and_size() -> None:
    frame = pd.DataFrame({"sex": ["F", "M"] * 50, "age": ["<55", "55+"] * 25 + ["55+", "<55"] * 25})
    result = guardrail.audit_fairness([1, 0, 0, 1] * 25, [1, 0, 1, 1] * 25, sensitive_features=frame, bootstrap=50)
    tidy = result.to_frame()
    assert tuple(tidy.columns) == METRIC_COLUMNS
    assert len(tidy) == sum(1 + (0 if is_disparity(m) else len(m.by_group)) for m in result.metrics)
    metric = next(m for m in result.metrics if m.key == "fairness.tpr" and m.scope == "sex+age")
    rows = tidy[(tidy.metric == "fairness.tpr") & (tidy.scope == "sex+age")]
    overall = rows[rows.group.isna()].iloc[0]
    assert metric.ci is not None
    assert (overall.value, overall.ci_low, overall.ci_high, overall.n) == (metric.value, metric.ci.low, metric.ci.high, metric.n)
    for group in metric.by_group:
        row = rows[rows.group == group.group].iloc[0]
        assert group.ci is not None and group.value is not None
        assert row.value == pytest.approx(group.value, abs=TOL) and row.n == group.n
        assert (row.ci_low, row.ci_high) == (group.ci.low, group.ci.high)
        assert row.status == "small" and group.small, "25 people each, below min_group_size 30: flagged"
    assert set(tidy.audit) == {"fairness"} and tidy["value"].dtype == float and str(tidy["n"].dtype) == "Int64"
    pd.testing.assert_frame_equal(metric.to_frame(), rows.assign(audit=None).reset_index(drop=True))


def test_no_group_row_of_a_disparity_is_labelled_as_the_disparity(adult) -> None:  # type: ignore[no-untyped-def]
    """A disparity's groups hold the rate it compares (equalized odds: the worse of tpr and fpr),
    not a per-group disparity: the tidy frame keeps its overall row, the groups' values stay
    under the rate's own key."""
    result: AuditResult = adult[3]
    tidy = result.to_frame()
    disparities = [m for m in result.metrics if is_disparity(m)]
    keys = {m.key for m in disparities}
    assert {"fairness.equalized_odds_difference", "fairness.demographic_parity_ratio", "fairness.equal_opportunity_ratio"} <= keys
    assert not keys & {"fairness.tpr", "fairness.selection_rate", "fairness.count", "fairness.min_group_size"}
    grouped = tidy[tidy.group.notna()]
    assert not set(grouped.metric) & keys, "no group row carries a disparity's name"
    assert len(tidy[tidy.metric.isin(keys)]) == len(disparities), "one overall row each, with the disparity's value"
    for metric in disparities:
        row = tidy[(tidy.metric == metric.key) & (tidy.scope == metric.scope)].iloc[0]
        assert pd.isna(row.group) and row.value == pytest.approx(metric.value, abs=TOL) and metric.by_group
        rate = f"fairness.{metric.details['worst_rate']}"
        shown = grouped[(grouped.metric == rate) & (grouped.scope == metric.scope)].set_index("group").value
        assert {g.group: g.value for g in metric.by_group} == pytest.approx(shown.to_dict(), abs=TOL), "under the rate's key"
        assert metric.to_frame().group.isna().all()


def test_gaps_are_disparities_and_per_group_maxima_are_not() -> None:
    groups = (GroupValue("a", 0.3, 40), GroupValue("b", 0.5, 40))
    gap = MetricResult("fairness.mae_difference", 0.2, scope="g", by_group=groups, details={"aggregation": "difference"})
    most_vulnerable = {"aggregation": "max over groups (the most vulnerable group)"}
    worst = MetricResult("privacy.mia.auc", 0.5, scope="g", by_group=groups, details=most_vulnerable)
    assert is_disparity(gap) and list(gap.to_frame().group.isna()) == [True]
    assert not is_disparity(worst) and list(worst.to_frame().group[1:]) == ["a", "b"], "each group's own AUC"


def test_values_withheld_or_missing_say_why() -> None:
    metric = MetricResult(
        "fairness.tpr", None, scope="g", reason="undefined overall (no positives)",
        by_group=(GroupValue("a", None, 3, small=True, reason="small_group: n=3 below 30"), GroupValue("b", 0.5, 40)),
    )
    tidy = metric.to_frame()
    assert list(tidy.status) == ["undefined", "undefined", "ok"]
    assert list(tidy.reason[:2]) == ["undefined overall (no positives)", "small_group: n=3 below 30"] and pd.isna(tidy.reason[2])
    assert np.isnan(tidy.value[0]) and np.isnan(metric.by_group_frame().loc["a", "fairness.tpr"])
    errored = AuditResult("explain", "explainability", AuditStatus.ERROR, error=ErrorInfo("MissingExtra", "pip install x"))
    row = errored.to_frame().iloc[0]
    assert (row.audit, row.status, row.reason) == ("explain", "error", "MissingExtra: pip install x")
    assert row.metric is None and np.isnan(row.value)


def test_a_run_frames_every_audit_and_its_verdict() -> None:
    record = make_record()
    tidy = record.to_frame()
    assert len(tidy) == sum(len(r.to_frame()) for r in record.results)
    assert list(dict.fromkeys(tidy.audit)) == [r.audit_id for r in record.results]
    fairness = record.results[0]
    pd.testing.assert_frame_equal(record.by_group_frame("sex", audit=fairness.audit_id), fairness.by_group_frame("sex"))
    with pytest.raises(ValueError, match="no audit 'nope' in this run"):
        record.by_group_frame("sex", audit="nope")
    twice = dataclasses.replace(record, results=(fairness, dataclasses.replace(fairness, audit_id="again")))
    with pytest.raises(ValueError, match="take the by-group view of one audit result"):
        twice.by_group_frame("sex")

    outcomes = record.verdict.to_frame()
    assert tuple(outcomes.columns) == OUTCOME_COLUMNS and len(outcomes) == len(record.verdict.outcomes)
    for outcome, row in zip(record.verdict.outcomes, outcomes.itertuples(), strict=True):
        assert (row.rule, row.status, row.severity, row.message) == (outcome.rule_id, outcome.status.value, outcome.severity.value, outcome.message)
        assert f"{row.metric}[{row.scope}]" == outcome.metric if isinstance(row.scope, str) else row.metric == outcome.metric
        if outcome.ci is not None:
            assert (row.ci_low, row.ci_high) == (outcome.ci.low, outcome.ci.high)
    pd.testing.assert_frame_equal(record.verdict.outcomes[1].to_frame(), outcomes.iloc[[1]].reset_index(drop=True))


def test_intersection_labels_split_on_the_fairness_engines_separator() -> None:
    from guardrail.fairness.groups import INTERSECTION_SEPARATOR

    assert GROUP_SEPARATOR == INTERSECTION_SEPARATOR
    # a value holding the separator is told apart by the features' own groups
    frame = pd.DataFrame({"x": ["a × b", "c"] * 40, "y": ["d", "d", "e", "e"] * 20})
    result = guardrail.audit_fairness([1, 0] * 40, [1, 1] * 40, sensitive_features=frame, bootstrap=0)
    assert set(result.by_group_frame("x+y").index) == {("a × b", "d"), ("a × b", "e"), ("c", "d"), ("c", "e")}
    assert split_group("a × b × c", ["x", "y"]) is None, "ambiguous without the features' groups"
    alone = guardrail.audit_fairness([1, 0] * 40, [1, 1] * 40, sensitive_features=frame, bootstrap=0, groupings="intersection")
    flat = alone.by_group_frame()
    assert flat.index.name == "x+y" and "a × b × d" in flat.index, "the labels as written when they cannot be split"


def test_reprs_are_short_and_say_what_matters() -> None:
    from tests.report.large_records import many_groups_record

    big = many_groups_record(400)
    record = make_record()
    metric = next(m for m in record.metrics() if m.key == "fairness.tpr" and m.scope == "sex")
    shown = {
        "record": repr(record),
        "big": repr(big),
        "audit": repr(big.results[0]),
        "metric": repr(metric),
        "verdict": repr(record.verdict),
        "outcome": repr(record.verdict.outcomes[0]),
    }
    assert all(len(text) < 300 and "\n" not in text for text in shown.values()), shown
    assert shown["record"].startswith(f"<RunRecord {record.name} {record.run_id}: {record.judged().word} (exit {int(record.exit_code())})")
    assert f"{len(record.results)} audits, {len(record.metrics())} metrics, {len(record.verdict.outcomes)} outcomes" in shown["record"]
    result = big.results[0]
    assert len(result.audit_id) > 100, "a long id is cut"
    assert shown["audit"].startswith(f"<AuditResult {result.audit_id[:50]}")
    assert shown["audit"].endswith(f"… ({result.auditor}): {len(result.metrics)} metrics, status ok, {result.duration_s:.1f} s>")
    assert shown["metric"].startswith("<MetricResult fairness.tpr[sex] = ") and f"{len(metric.by_group)} groups" in shown["metric"]
    counts = record.verdict.counts()
    assert all(f"{n} {status}" in shown["verdict"] for status, n in counts.items() if n)
    outcome = record.verdict.outcomes[0]
    assert shown["outcome"].startswith(f"<RuleOutcome {outcome.rule_id} {outcome.status.value} ({outcome.severity.value}): {outcome.metric}")
    errored = AuditResult("a", "b", AuditStatus.ERROR, error=ErrorInfo("E", "x" * 5000))
    assert len(repr(errored)) < 200 and "status error, E: xxx" in repr(errored)
    hostile = make_record(group_a="g" * 5000, scope="s" * 5000, rule_id="r" * 5000, message="m" * 5000, name="n" * 5000)
    for value in (hostile, hostile.results[0], hostile.metrics()[0], hostile.verdict, hostile.verdict.outcomes[0]):
        assert len(repr(value)) < 400, type(value).__name__


def test_dir_lists_the_public_api() -> None:
    listed = dir(guardrail)
    for name in ("audit", "audit_fairness", "check", "train", "federate", "open_history", "load_run", "diff_runs", "__version__"):
        assert name in listed
        assert getattr(guardrail, name) is not None
    assert set(guardrail.__all__) <= set(listed) and "TYPE_CHECKING" not in listed


def test_import_and_repr_need_no_pandas() -> None:
    probe = (
        "import sys, guardrail\n"
        "from guardrail.core.types import MetricResult\n"
        "repr(MetricResult('m.x', 1.0)); dir(guardrail)\n"
        "print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.replace("'", '"')) == []
