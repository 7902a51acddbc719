"""Codes of columns and the (normalised) mutual information of count tables, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mutual_info_score, normalized_mutual_info_score

from guardrail.data_audit.association import (
    MAX_VALUES,
    MISSING,
    as_float,
    bin_edges,
    code_column,
    code_pair,
    contingency,
    mutual_information,
    nmi,
    quantile_edges,
)


def _labels_of(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two labellings whose contingency table is ``table``."""
    rows, cols = np.nonzero(table)
    counts = table[rows, cols]
    return np.repeat(rows, counts), np.repeat(cols, counts)


def test_random_tables_match_sklearn_one_by_one_and_batched() -> None:
    rng = np.random.default_rng(0)
    for shape in [(2, 2), (3, 5), (4, 11), (1, 4), (5, 1), (6, 6)]:
        tables = rng.integers(0, 6, size=(30, *shape)) * rng.integers(0, 2, size=(30, *shape))
        got_nmi, got_mi = nmi(tables), mutual_information(tables)
        for t, v, m in zip(tables, got_nmi, got_mi, strict=True):
            a, b = _labels_of(t)
            if a.size == 0:
                assert v == 1.0 and m == 0.0  # scikit-learn: two empty labellings are a perfect match
                continue
            assert v == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)
            assert m == pytest.approx(mutual_info_score(a, b), abs=1e-12)
            assert float(nmi(t)) == v  # batched and single calls agree


def test_edge_cases_follow_sklearn_except_the_constant_override() -> None:
    both_constant = np.array([[7]])
    assert float(nmi(both_constant)) == normalized_mutual_info_score([0] * 7, [3] * 7) == 1.0
    assert float(nmi(both_constant, constant=0.0)) == 0.0
    one_class = np.array([[3, 4, 0]])  # one class, several clusters
    assert float(nmi(one_class)) == normalized_mutual_info_score([0] * 7, [0, 0, 0, 1, 1, 1, 1]) == 0.0
    assert float(mutual_information(one_class)) == 0.0
    perfect = np.array([[5, 0], [0, 9]])
    assert float(nmi(perfect)) == pytest.approx(1.0, abs=1e-12)
    empty_rows = np.array([[0, 0, 0], [2, 3, 0], [0, 0, 0], [4, 1, 0]])  # empty rows and columns change nothing
    a, b = _labels_of(empty_rows)
    assert float(nmi(empty_rows)) == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)


def test_binned_real_data_matches_sklearn_on_the_same_labels() -> None:
    rng = np.random.default_rng(1)
    n = 5000
    group = pd.Series(rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]))
    income = pd.Series(rng.lognormal(10, 1, size=n) * np.where(group == "a", 1.3, 1.0))
    income[rng.random(n) < 0.05] = np.nan
    g, f = code_column(group, bins=None), code_column(income, bins=10)
    table = contingency(g.codes, g.k, f.codes, f.k)
    assert table.sum() == n and f.labels[-1] == MISSING and f.k == 11
    assert float(nmi(table)) == pytest.approx(normalized_mutual_info_score(g.codes, f.codes), abs=1e-12)
    assert float(mutual_information(table)) == pytest.approx(mutual_info_score(g.codes, f.codes), abs=1e-12)


def test_numeric_codes_are_digitize_of_the_quantiles() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(size=2001)
    values[::7] = np.nan
    valid = values[~np.isnan(values)]
    edges = np.unique(np.quantile(valid, np.linspace(0, 1, 6)[1:-1]))
    assert np.array_equal(quantile_edges(values, 5), edges)
    coded = code_column(pd.Series(values), bins=5)
    expected = np.where(np.isnan(values), len(edges) + 1, np.digitize(values, edges))
    assert np.array_equal(coded.codes, expected)
    many = code_column(pd.Series(np.arange(100.0)), bins=50)  # more than 32 edges: binary search
    assert np.array_equal(many.codes, np.digitize(np.arange(100.0), many.edges))  # type: ignore[arg-type]
    given = code_column(pd.Series([0.5, 1.5, 2.5, np.nan]), bins=10, edges=[1.0, 2.0])
    assert given.codes.tolist() == [0, 1, 2, 3] and given.labels == ("< 1", "[1, 2)", "≥ 2", MISSING)
    constant = code_column(pd.Series([4.0] * 5), bins=10)
    assert len(set(constant.codes.tolist())) == 1  # one bin holds every row (the one below the edge is empty)


def test_quantile_edges_are_numpys_bit_for_bit() -> None:
    for seed in range(300):
        rng = np.random.default_rng(seed)
        size = int(rng.integers(1, 2000))
        values = rng.normal(size=size) * rng.choice([1e-3, 1.0, 1e6]) if seed % 3 else rng.integers(0, 5, size=size).astype(float)
        for bins in (2, 3, 7, 10, 13, 100):
            expected = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
            assert np.array_equal(quantile_edges(values, bins), expected), (seed, bins)
            scratch = np.full(size + 3, np.nan)  # a longer buffer, sorted in place
            assert np.array_equal(quantile_edges(values, bins, scratch=scratch), expected), (seed, bins)
    assert quantile_edges(np.array([np.nan, np.nan]), 4).size == 0 and quantile_edges(np.array([1.0, 2.0]), 1).size == 0


def test_values_are_coded_sorted_with_missing_last() -> None:
    text = code_column(pd.Series(["b", None, "a", "c", "a"]), bins=10)
    assert text.labels == ("a", "b", "c", MISSING) and text.codes.tolist() == [1, 3, 0, 2, 0]
    flags = code_column(pd.Series([True, False, True]), bins=10)
    assert flags.labels == ("False", "True") and flags.codes.tolist() == [1, 0, 1]
    category = pd.Series(pd.Categorical(["lo", "hi", "lo"], categories=["unused", "lo", "hi"]))
    cat = code_column(category, bins=10)
    assert cat.labels == ("hi", "lo") and cat.codes.tolist() == [1, 0, 1]
    numbers = code_column(pd.Series([3, 1, 2, 1]), bins=None)  # bins=None: every column by value
    assert numbers.labels == ("1", "2", "3") and numbers.codes.tolist() == [2, 0, 1, 0]


def test_id_like_columns_keep_the_most_frequent_values() -> None:
    values = pd.Series([f"id{i}" for i in range(MAX_VALUES + 50)] + ["id7"] * 3)
    coded = code_column(values, bins=10)
    assert coded.k == MAX_VALUES and coded.labels[-1] == "other (51 values)"
    assert np.bincount(coded.codes)[coded.labels.index("id7")] == 4
    assert np.bincount(coded.codes).sum() == len(values)


def test_code_pair_shares_reference_bins_and_value_union() -> None:
    rng = np.random.default_rng(3)
    reference, audit = pd.Series(rng.normal(size=500)), pd.Series(np.append(rng.normal(1, 1, size=499), np.nan))
    coded_audit, coded_reference = code_pair(audit, reference, bins=4)
    edges = np.unique(np.quantile(reference, [0.25, 0.5, 0.75]))
    assert np.array_equal(coded_reference.edges, edges) and np.array_equal(coded_audit.edges, edges)  # type: ignore[arg-type]
    assert coded_audit.labels == coded_reference.labels and coded_audit.labels[-1] == MISSING
    assert np.array_equal(coded_audit.codes[:-1], np.digitize(audit[:-1], edges)) and coded_audit.codes[-1] == 4
    a, r = code_pair(pd.Series(["x", "z"]), pd.Series(pd.Categorical(["y", "x"])), bins=4)
    assert a.labels == r.labels == ("x", "y", "z") and a.codes.tolist() == [0, 2] and r.codes.tolist() == [1, 0]


def test_contingency_counts_across_chunks() -> None:
    from guardrail.data_audit import association

    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 3, size=association.CHUNK_ROWS * 2 + 17), rng.integers(0, 5, size=association.CHUNK_ROWS * 2 + 17)
    expected = pd.crosstab(a, b).to_numpy()
    assert np.array_equal(contingency(a.astype(np.int8), 3, b.astype(np.int8), 5), expected)


def test_explain_proxy_associations_still_equal_sklearn() -> None:
    """guardrail.explain.proxy computes through this module; its results are scikit-learn's."""
    from guardrail.explain.proxy import associations, binned
    from guardrail.explain.tabular import TabularView

    rng = np.random.default_rng(5)
    n = 800
    group = rng.choice(["a", "b", "c"], size=n)
    frame = pd.DataFrame({
        "zip": np.where(rng.random(n) < 0.1, "z0", group), "age": rng.normal(40, 10, size=n) + (group == "a") * 5,
        "flag": rng.choice(np.array(["y", None], dtype=object), size=n), "const": np.ones(n),
    })  # fmt: skip
    view = TabularView.from_frame(frame, ("zip", "age", "flag", "const"))
    single = np.full(n, "x")
    found = associations(view, {"group": group, "single": single}, 6)
    assert len(found) == 8
    for a in found:
        labels = binned(view, view.features.index(a.feature), 6)
        groups = group if a.sensitive == "group" else single
        assert a.nmi == pytest.approx(normalized_mutual_info_score(groups, labels), abs=1e-12)
        assert a.mi == pytest.approx(mutual_info_score(groups, labels), abs=1e-12)
    assert next(a for a in found if a.feature == "const" and a.sensitive == "single").nmi == 1.0  # scikit-learn's convention kept


def test_a_column_with_few_values_is_binned_by_value() -> None:
    """A 0/1 flag with 5 % ones was one bin (every decile is 0): now each value is its own bin."""
    rng = np.random.default_rng(6)
    flag = (rng.random(5000) < 0.05).astype(float)
    coded = code_column(pd.Series(flag), bins=10)
    assert coded.k == 2 and np.array_equal(coded.codes, flag.astype(int)) and coded.labels == ("< 1", "≥ 1")
    levels = rng.choice([3.0, 7.0, 8.0, 20.0], size=3000, p=[0.9, 0.04, 0.03, 0.03])
    coded = code_column(pd.Series(levels), bins=4)  # four values, four bins
    assert np.array_equal(coded.codes, np.unique(levels, return_inverse=True)[1])
    assert bin_edges(levels, 4).tolist() == [7.0, 8.0, 20.0]


def test_a_heavily_tied_value_keeps_a_bin_of_its_own() -> None:
    """Adult's capital_gain is 92 % zeros: its deciles are all 0 and the old edges made one bin."""
    rng = np.random.default_rng(7)
    n = 20_000
    gain = np.where(rng.random(n) < 0.92, 0.0, rng.lognormal(8, 1, size=n))
    coded = code_column(pd.Series(gain), bins=10)
    zero_codes = set(coded.codes[gain == 0].tolist())
    assert len(zero_codes) == 1 and not zero_codes & set(coded.codes[gain > 0].tolist())  # zeros alone in their bin
    assert coded.labels[next(iter(zero_codes))] == "≤ 0" and np.all(np.bincount(coded.codes) > 0)
    # half zeros, a heavy 7 in the middle, the rest spread: each tied value alone, other bins ~ a tenth
    values = np.where(rng.random(n) < 0.5, 0.0, rng.normal(5, 1, size=n))
    values[rng.random(n) < 0.15] = 7.0
    coded = code_column(pd.Series(values), bins=10)
    counts = np.bincount(coded.codes, minlength=coded.k)
    for tied in (0.0, 7.0):
        (code,) = set(coded.codes[values == tied].tolist())
        assert counts[code] == int((values == tied).sum())  # nothing else in the bin
    assert coded.labels[coded.codes[values == 7.0][0]] == "7"
    assert np.all(counts > 0)  # no bin is always empty (the one below the smallest value is gone)
    assert np.array_equal(coded.codes, np.digitize(values, coded.edges))  # type: ignore[arg-type]
    plain = rng.normal(size=1001)  # no ties: the plain quantile bins
    deciles = np.unique(np.quantile(plain, np.linspace(0, 1, 11)[1:-1]))
    assert np.array_equal(code_column(pd.Series(plain), bins=10).edges, deciles)  # type: ignore[arg-type]


def test_reference_bins_apply_to_an_audit_column_with_other_values() -> None:
    reference = pd.Series([0.0] * 90 + [1.0] * 10)
    audit = pd.Series([0.0, 0.5, 1.0, 2.0, -1.0, np.nan])
    coded_audit, coded_reference = code_pair(audit, reference, bins=10)
    assert coded_reference.codes.tolist() == [0] * 90 + [1] * 10
    assert coded_audit.codes.tolist() == [0, 0, 1, 1, 0, 2] and coded_audit.labels == ("< 1", "≥ 1", MISSING)


def test_time_zone_aware_dates_are_utc_nanoseconds() -> None:
    stamps = pd.to_datetime(pd.Series(["2020-01-01 00:00", None, "2021-06-01 12:30"])).dt.tz_localize("Europe/Berlin")
    naive = stamps.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[s]")  # another unit, no zone
    expected = [pd.Timestamp("2019-12-31 23:00").value, np.nan, pd.Timestamp("2021-06-01 10:30").value]
    assert np.array_equal(as_float(stamps), np.array(expected, dtype=float), equal_nan=True)
    assert np.array_equal(as_float(naive), as_float(stamps), equal_nan=True)
    coded = code_column(stamps, bins=10)
    assert coded.labels[-1] == MISSING and coded.codes.tolist() == [0, 2, 1]
    durations = pd.Series(pd.to_timedelta(["1s", None, "2min"])).astype("timedelta64[ms]")
    assert np.array_equal(as_float(durations), np.array([1e9, np.nan, 120e9]), equal_nan=True)


def test_explain_proxy_binning_keeps_a_rare_flag() -> None:
    from guardrail.explain.proxy import associations, binned
    from guardrail.explain.tabular import TabularView

    rng = np.random.default_rng(8)
    n = 2000
    group = rng.choice(["a", "b"], size=n)
    flag = (rng.random(n) < np.where(group == "a", 0.01, 0.09)).astype(int)
    view = TabularView.from_frame(pd.DataFrame({"flag": flag}), ("flag",))
    assert np.array_equal(binned(view, 0, 10), flag)
    (found,) = associations(view, {"group": group}, 10)
    assert found.nmi == pytest.approx(normalized_mutual_info_score(group, flag), abs=1e-12) and found.nmi > 0.01


def test_group_tables_are_crosstabs_with_or_without_the_joint_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one joint count of a column against every sensitive column (proxies and shift share it)."""
    from guardrail.data_audit import association

    rng = np.random.default_rng(9)
    n = 3000
    frame = pd.DataFrame({"s": rng.choice(np.array(["a", "b", None], dtype=object), size=n),
                          "t": rng.choice(["u", "v", "w", "x"], size=n),
                          "f": rng.choice(["p", "q", "r"], size=n)})  # fmt: skip
    groups = [code_column(frame[c], bins=None) for c in ("s", "t")]
    feature = code_column(frame["f"], bins=None)
    expected = [pd.crosstab(g.codes, feature.codes).to_numpy() for g in groups]
    histogram = np.bincount(feature.codes, minlength=feature.k)
    for limit in (association.JOINT_LIMIT, 4):  # 3 × 4 combinations: one joint count, then one count per column
        monkeypatch.setattr(association, "JOINT_LIMIT", limit)
        combined = association.combine(groups)
        assert (combined is None) == (limit == 4)
        overall, per = association.group_tables(feature, groups, combined)
        assert np.array_equal(overall, histogram) and all(np.array_equal(a, b) for a, b in zip(per, expected, strict=True))
    overall, per = association.group_tables(feature, [], association.combine([]))
    assert np.array_equal(overall, histogram) and per == []
    from guardrail.data_audit import proxies, shift

    assert not hasattr(proxies, "_JOINT_LIMIT") and not hasattr(shift, "_JOINT_LIMIT")  # one limit, in association
