"""Per-(hospital, group) confusion counts as flat metrics; server-side fairness equals the
pooled computation from raw predictions (fairlearn's MetricFrame as the oracle)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.core.types import SMALL_GROUP, MetricResult
from guardrail.federation.fairness import (
    CELLS,
    FEDERATION,
    GROUP_LABELS,
    CountTable,
    aggregate_fairness,
    confusion_tables,
    count_key,
    decode_counts,
    encode_counts,
    groups_of,
    hospital_counts,
    parse_key,
    sum_counts,
)
from guardrail.federation.sites import LABEL, Hospital, build_hospitals

TOL = 1e-12
RATE_FUNCS = ("selection_rate", "tpr", "fpr", "accuracy")


def _predict(rows: pd.DataFrame) -> np.ndarray:
    """A fixed, deterministic decision rule standing in for the federated model."""
    asymptomatic = rows["chest_pain_type"].astype(str).eq("asymptomatic").to_numpy()
    angina = rows["exercise_angina"].fillna(0).to_numpy(dtype=int) == 1
    return (asymptomatic | angina | (rows["age"].to_numpy() >= 62)).astype(int)


@pytest.fixture(scope="module")
def hospitals() -> tuple[Hospital, ...]:
    return build_hospitals(seed=0)


@pytest.fixture(scope="module")
def records(hospitals: tuple[Hospital, ...]) -> dict[str, dict[str, int]]:
    return {h.name: hospital_counts(h.rows("test"), _predict(h.rows("test"))) for h in hospitals}


def _oracle(rows: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, dict[str, float]]]:
    from fairlearn import metrics as flm
    from sklearn.metrics import accuracy_score

    y_true, y_pred = rows[LABEL].to_numpy(), _predict(rows)
    out = {}
    for attribute, members in groups_of(rows).items():
        sensitive = pd.Series(members, name=attribute)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = flm.MetricFrame(
                metrics={
                    "count": flm.count,
                    "selection_rate": flm.selection_rate,
                    "tpr": flm.true_positive_rate,
                    "fpr": flm.false_positive_rate,
                    "accuracy": accuracy_score,
                },
                y_true=y_true,
                y_pred=y_pred,
                sensitive_features=sensitive,
            )
            gaps = {
                "demographic_parity_difference": flm.demographic_parity_difference(y_true, y_pred, sensitive_features=sensitive),
                "demographic_parity_ratio": flm.demographic_parity_ratio(y_true, y_pred, sensitive_features=sensitive),
                "equalized_odds_difference": flm.equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive),
                "equal_opportunity_difference": flm.equal_opportunity_difference(y_true, y_pred, sensitive_features=sensitive),
            }
        out[attribute] = (frame, gaps)
    return out


def _metric(results: tuple[MetricResult, ...], scope: str, key: str) -> MetricResult:
    (found,) = [m for m in results if m.scope == scope and m.key == f"fairness.{key}"]
    return found


def _assert_matches_oracle(results: tuple[MetricResult, ...], scope_prefix: str, rows: pd.DataFrame) -> int:
    compared = 0
    for attribute, (frame, gaps) in _oracle(rows).items():
        scope = f"{scope_prefix}/{attribute}"
        for name in RATE_FUNCS:
            metric = _metric(results, scope, name)
            assert metric.value == pytest.approx(float(frame.overall[name]), abs=TOL)
            for group in metric.by_group:
                if group.group not in frame.by_group.index:
                    assert group.n == 0
                    continue
                expected = float(frame.by_group.loc[group.group, name])
                assert group.n == int(frame.by_group.loc[group.group, "count"])
                if group.value is None:
                    # undefined (a 0 denominator); fairlearn says NaN or, for TPR/FPR, 0 with a warning
                    assert group.reason and (math.isnan(expected) or expected == 0.0), (scope, name, group)
                else:
                    assert group.value == pytest.approx(expected, abs=TOL), (scope, name, group)
                    compared += 1
        for name, expected in gaps.items():
            metric = _metric(results, scope, name)
            if metric.value is not None:
                assert metric.value == pytest.approx(expected, abs=TOL), (scope, name)
                compared += 1
    return compared


def test_per_hospital_fairness_from_counts_equals_the_raw_predictions(
    hospitals: tuple[Hospital, ...], records: dict[str, dict[str, int]]
) -> None:
    result = aggregate_fairness(records, min_group_size=1, bootstrap=0)

    compared = sum(
        _assert_matches_oracle(result.per_hospital[h.name], f"hospital={h.name}", h.rows("test")) for h in hospitals
    )
    assert compared > 80


def test_federation_fairness_equals_the_pooled_raw_predictions(
    hospitals: tuple[Hospital, ...], records: dict[str, dict[str, int]]
) -> None:
    pooled = pd.concat([h.rows("test") for h in hospitals], ignore_index=True)

    result = aggregate_fairness(records, min_group_size=1, bootstrap=0)

    assert _assert_matches_oracle(result.federation, FEDERATION, pooled) > 20
    assert decode_counts(sum_counts(records.values()))["sex"].counts.tolist() == (
        confusion_tables(pooled[LABEL].to_numpy(), _predict(pooled), groups_of(pooled))["sex"].counts.tolist()
    )


def test_small_groups_are_inconclusive_never_a_perfect_score(records: dict[str, dict[str, int]]) -> None:
    result = aggregate_fairness(records, min_group_size=30, bootstrap=200, seed=1)

    # VA Long Beach has 6 women in all; its held-out split has 1 or 2
    va = result.per_hospital["va-long-beach"]
    for name in ("demographic_parity_difference", "equalized_odds_difference", "equal_opportunity_ratio"):
        metric = _metric(va, "hospital=va-long-beach/sex", name)
        assert metric.value is None and metric.ci is None
        assert metric.reason and metric.reason.startswith(SMALL_GROUP) and "'Female'" in metric.reason
    accuracy = _metric(va, "hospital=va-long-beach/sex", "accuracy")
    female = next(g for g in accuracy.by_group if g.group == "Female")
    assert female.small and female.value is None and female.ci is None and female.reason
    # a tiny group that is all correct is not scored 1.0
    tiny = CountTable("sex", GROUP_LABELS["sex"], np.array([[[2, 0], [0, 1]], [[30, 5], [6, 40]]]))
    perfect = aggregate_fairness({"h": encode_counts({"sex": tiny})}, bootstrap=100)
    tiny_accuracy = _metric(perfect.per_hospital["h"], "hospital=h/sex", "accuracy")
    assert [g.value for g in tiny_accuracy.by_group][0] is None
    assert all(m.value is None for m in perfect.per_hospital["h"] if m.key.endswith(("difference", "ratio")))


def test_large_groups_get_intervals_and_the_same_seed_gives_the_same_ones(records: dict[str, dict[str, int]]) -> None:
    first = aggregate_fairness(records, bootstrap=300, seed=7)
    again = aggregate_fairness(records, bootstrap=300, seed=7)

    metric = _metric(first.federation, f"{FEDERATION}/age", "equalized_odds_difference")
    assert metric.value is not None and metric.ci is not None
    assert metric.ci.low <= metric.value <= metric.ci.high
    assert metric == _metric(again.federation, f"{FEDERATION}/age", "equalized_odds_difference")
    assert metric.n == sum(sum(r[k] for k in r if k.startswith("cm/age=")) for r in records.values())


def test_count_keys_are_flat_ints_and_round_trip(records: dict[str, dict[str, int]]) -> None:
    record = next(iter(records.values()))

    assert len(record) == sum(len(g) for g in GROUP_LABELS.values()) * len(CELLS)
    assert all(type(v) is int and v >= 0 for v in record.values())
    assert "cm/sex=Female/tp" in record and "cm/age=55 and over/fn" in record
    decoded = decode_counts({**record, "num-examples": 99, "privacy/steps": [3]})
    assert encode_counts(decoded) == record


@pytest.mark.parametrize("attribute, group", [("sex", "Male"), ("a/b", "x=y"), ("age", "100%"), ("site=", "/"), ("é", "")])
def test_any_label_round_trips_through_a_key(attribute: str, group: str) -> None:
    for cell in CELLS:
        assert parse_key(count_key(attribute, group, cell)) == (attribute, group, cell)


def test_unknown_groups_are_kept_in_text_order() -> None:
    tables = confusion_tables([1, 0, 1], [1, 1, 0], {"site_size": np.array(["small", "large", "small"])})
    back = decode_counts(encode_counts(tables))
    assert back["site_size"].labels == ("large", "small")
    assert back["site_size"].counts.tolist() == tables["site_size"].counts.tolist()


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"cm/sex=Male/xx": 1}, "malformed"),
        ({"cm/sex/tp": 1}, "malformed"),
        ({"cm/sex=Male/tp": 1.5}, "whole number"),
        ({"cm/sex=Male/tp": -1}, "whole number"),
        ({"cm/sex=Male/tp": "3"}, "not a number"),
        ({"cm/sex=Male/tp": 3}, "lacks cell"),
        ({f"cm/sex=Other/{c}": 1 for c in CELLS}, "unexpected group"),
    ],
)
def test_bad_count_records_are_refused(metrics: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        decode_counts(metrics)


def test_fractional_counts_say_how_to_aggregate() -> None:
    with pytest.raises(DataError) as raised:
        sum_counts([{"cm/sex=Male/tp": 2.5}])
    assert raised.value.hint and "sum_counts" in raised.value.hint


def test_hospital_side_input_errors() -> None:
    with pytest.raises(DataError, match="0/1"):
        confusion_tables([0, 2], [0, 1], {"sex": ["Male", "Male"]})
    with pytest.raises(DataError, match="unexpected group"):
        confusion_tables([0, 1], [0, 1], {"sex": ["Male", "Other"]})
    with pytest.raises(DataError, match="rows"):
        confusion_tables([0, 1], [0, 1], {"sex": ["Male"]})


def test_a_disparity_with_a_small_group_carries_the_one_without_it() -> None:
    """The federated builder leaves a disparity with a small group undefined; the disparity
    over the other groups, and its interval on the same resamples, ride in its details."""
    from guardrail.fairness.bootstrap import grouping_rng, resample_counts
    from guardrail.fairness.results import GroupTable, disparity_estimate
    from guardrail.federation.fairness import fairness_metrics

    counts = np.array([[[300, 60], [40, 100]], [[280, 45], [60, 85]], [[4, 1], [2, 3]]])
    table = CountTable("site_size", ("large", "medium", "small"), counts)
    results = fairness_metrics(table, scope="federation/site_size", bootstrap=300, seed=2)
    ratio = next(m for m in results if m.key == "fairness.demographic_parity_ratio")
    assert ratio.value is None and ratio.reason is not None and ratio.reason.startswith(SMALL_GROUP)
    reduced = ratio.details["without_small"]
    boot = resample_counts(counts, 300, grouping_rng(2, "site_size"))
    expected = disparity_estimate(GroupTable(("large", "medium"), counts[:2], boot[:, :2]), "demographic_parity_ratio")
    assert expected.ci is not None
    assert reduced["excluded"] == ["small"] and reduced["min_group_n"] == 30
    assert reduced["value"] == pytest.approx(expected.disparity.value, abs=1e-12)
    assert (reduced["ci"]["low"], reduced["ci"]["high"]) == (expected.ci.low, expected.ci.high)


def test_hospital_names_holding_scope_syntax_name_only_their_own_metrics(records: dict[str, dict[str, int]]) -> None:
    """Hospital names are escaped in scopes like every other name from outside: a hospital
    named ``a/sex`` is not hospital ``a`` by attribute ``sex``, and a policy's ``hospital=a/*``
    matches hospital ``a``'s metrics alone."""
    from fnmatch import fnmatchcase

    from guardrail.core.scopes import hospital_of

    record = next(iter(records.values()))
    names = ("a", "a/sex", "a=b", "a+b", "50%", "x*")
    result = aggregate_fairness(dict.fromkeys(names, record), bootstrap=0)
    for name in names:
        scopes = {m.scope for m in result.per_hospital[name]}
        assert scopes and all(scope is not None and hospital_of(scope) == name for scope in scopes), name
        assert {scope.rpartition("/")[2] for scope in scopes if scope} == {"sex", "age"}
    matched = {hospital_of(m.scope) for m in result.all() if m.scope and fnmatchcase(m.scope, "hospital=a/*")}
    assert matched == {"a"}


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({f"cm/site=g{i}/{c}": 1 for i in range(1001) for c in CELLS}, "1,001 groups, more than the limit of 1,000"),
        ({f"cm/site={'x' * 201}/{c}": 1 for c in CELLS}, "201 characters"),
        ({f"cm/{'y' * 201}=g/{c}": 1 for c in CELLS}, "201 characters"),
    ],
)
def test_a_record_beyond_the_group_bounds_is_refused(metrics: dict[str, object], message: str) -> None:
    """A node's count record meets the bounds every audit applies to one grouping."""
    with pytest.raises(DataError, match=message):
        decode_counts(metrics)
    assert decode_counts({f"cm/site=g{i}/{c}": 1 for i in range(1000) for c in CELLS})["site"].counts.shape == (1000, 2, 2)
