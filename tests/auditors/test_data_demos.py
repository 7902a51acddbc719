"""The data audit's two demos end to end through the command line (issue 17): the four UCI
heart-disease hospitals (audits/heart-sites.yaml, no model) and the Adult test file against
its training file and the 1990 US census (the `data` audit of audits/adult-income.yaml).

Each figure asserted is recomputed here from the CSV files with pandas, scipy or
scikit-learn, never copied from a run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, run_cli

HEART_SPEC = REPO / "audits" / "heart-sites.yaml"
ADULT_SPEC = REPO / "audits" / "adult-income.yaml"


def _script(name: str) -> Any:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def _metrics(record: dict[str, Any], audit: str) -> dict[str, dict[str, Any]]:
    result = next(r for r in record["results"] if r["audit_id"] == audit)
    assert result["status"] == "ok", result["error"]
    return {m["key"] + (f"[{m['scope']}]" if m["scope"] else ""): m for m in result["metrics"]}


def _artifacts(record: dict[str, Any], audit: str) -> dict[str, Any]:
    artifacts: dict[str, Any] = next(r for r in record["results"] if r["audit_id"] == audit)["artifacts"]
    return artifacts


def _outcomes(record: dict[str, Any], rule: str) -> dict[str, dict[str, Any]]:
    return {o["metric"]: o for o in record["verdict"]["outcomes"] if o["rule_id"] == rule}


def _labels(column: pd.Series) -> pd.Series:
    """A column's values as text, a missing value its own label."""
    return column.astype(object).where(column.notna(), "<missing>").astype(str)


def _nmi(a: pd.Series, b: pd.Series) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(_labels(a), _labels(b)))


# -- heart: four hospitals, no model ---------------------------------------------------------


@pytest.fixture(scope="module")
def heart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], pd.DataFrame]:
    """A repository-like folder with data/heart-disease.csv.gz written by the export script,
    the spec validated and audited; the run record and the exported table."""
    root = tmp_path_factory.mktemp("heart")
    assert _script("export_heart_data").main(["--root", str(root)]) == 0
    (root / "audits").mkdir()
    shutil.copy(HEART_SPEC, root / "audits" / HEART_SPEC.name)
    checked = run_cli("validate", "audits/heart-sites.yaml", cwd=root)
    assert checked.returncode == 0, checked.stderr
    assert "ok (audit spec 'heart-sites', 1 audit(s), 1 policy file(s))" in checked.stdout
    done = run_cli("audit", "audits/heart-sites.yaml", "--quiet", "--no-history", cwd=root)
    assert done.returncode == 1, done.stderr  # the data fails the pack's blocking rules: a verdict, not a crash
    record = json.loads((root / "reports" / "heart-sites" / "run.json").read_text())
    return root, record, pd.read_csv(root / "data" / "heart-disease.csv.gz")


def test_the_export_keeps_the_sites_gaps_and_adds_the_federated_demos_columns(heart: tuple[Path, dict[str, Any], pd.DataFrame]) -> None:
    from guardrail.datasets import load_heart_disease

    _, _, table = heart
    raw = load_heart_disease().sort_values("id").reset_index(drop=True)
    assert len(table) == len(raw) == 920
    assert table["hospital"].value_counts().to_dict() == {"cleveland": 304, "hungary": 293, "va-long-beach": 200, "switzerland": 123}
    assert (table["hospital"] == raw["site"].astype(str).str.lower().str.replace(" ", "-")).all()
    assert (table["age_group"] == np.where(raw["age"] >= 55, "55 and over", "under 55")).all()
    pd.testing.assert_series_equal(table["cholesterol"].isna(), raw["cholesterol"].isna())  # gaps kept, not imputed
    assert table.loc[table["hospital"] == "switzerland", "cholesterol"].isna().all()


def test_heart_site_shares_are_reported(heart: tuple[Path, dict[str, Any], pd.DataFrame]) -> None:
    _, record, table = heart
    share = _metrics(record, "sites")["data.group_share[hospital]"]
    expected = table["hospital"].value_counts(normalize=True)
    by_group = {g["group"]: g for g in share["by_group"]}
    assert set(by_group) == set(expected.index)
    for site, value in expected.items():
        assert by_group[site]["value"] == pytest.approx(value, abs=1e-12)
        assert by_group[site]["n"] == (table["hospital"] == site).sum()
    assert share["value"] == pytest.approx(123 / 920, abs=1e-12)  # Switzerland, the smallest site
    assert share["ci"]["low"] <= share["value"] <= share["ci"]["high"]


def test_heart_small_intersectional_cells_are_counted(heart: tuple[Path, dict[str, Any], pd.DataFrame]) -> None:
    _, record, table = heart
    cells = _metrics(record, "sites")["data.small_cells[hospital+sex+age_group]"]
    counts = table.groupby(["hospital", "sex", "age_group"]).size()
    full = counts.reindex(pd.MultiIndex.from_product([sorted(table[c].unique()) for c in ("hospital", "sex", "age_group")]), fill_value=0)
    assert len(full) == 16
    assert cells["value"] == (full < 30).sum() == 5  # the women of VA Long Beach, Switzerland and (over 55) Hungary
    assert _outcomes(record, "DATA-CELLS")["data.small_cells[hospital+sex+age_group]"]["status"] == "fail"


def test_heart_differential_missingness_by_site_is_flagged(heart: tuple[Path, dict[str, Any], pd.DataFrame]) -> None:
    _, record, table = heart
    examined = [c for c in table.columns if c not in ("id", "site", "diagnosis", "age", "hospital", "sex", "age_group", "heart_disease")]
    rates = table[examined].isna().groupby(table["hospital"]).mean()
    gaps = rates.max() - rates.min()
    worst = _metrics(record, "sites")["data.max_missing_rate_difference[hospital]"]
    assert worst["value"] == pytest.approx(gaps.max(), abs=1e-12) == 1.0  # Switzerland records no cholesterol, Cleveland all
    assert worst["details"]["worst_feature"] == "cholesterol"
    assert sorted(worst["details"]["features_with_missing"]) == sorted(gaps[rates.max() > 0].index)
    piece = next(p for p in _artifacts(record, "sites")["missingness"] if p["scope"] == "hospital")
    for i, feature in enumerate(piece["features"]):
        for j, site in enumerate(piece["groups"]):
            assert piece["rates"][i][j] == pytest.approx(rates.loc[site, feature], abs=1e-12)
    for feature in ("cholesterol", "major_vessels", "thalassemia"):  # far more often missing outside Cleveland
        column = rates[feature].to_numpy(dtype=float)
        assert column[list(rates.index).index("cleveland")] < 0.02 and column.max() > 0.9
    outcome = _outcomes(record, "DATA-MISS")["data.max_missing_rate_difference[hospital]"]
    assert outcome["status"] == "fail" and outcome["severity"] == "deny"


def test_heart_columns_that_reveal_the_site_are_proxies_of_it(heart: tuple[Path, dict[str, Any], pd.DataFrame]) -> None:
    _, record, table = heart
    metrics = _metrics(record, "sites")
    # a categorical column: its values (missing its own bin) against the sites, as scikit-learn defines NMI
    thal = metrics["data.proxy_nmi[hospital/column=thalassemia]"]
    assert thal["value"] == pytest.approx(_nmi(table["hospital"], table["thalassemia"]), abs=1e-9)
    worst = metrics["data.max_proxy_nmi[hospital]"]
    assert worst["value"] == max(m["value"] for k, m in metrics.items() if k.startswith("data.proxy_nmi[hospital/"))
    assert worst["value"] > 0.3 and "cholesterol" in worst["details"]["proxies"]
    assert metrics["data.max_proxy_nmi[sex]"]["value"] < 0.1  # no column reveals sex
    assert _outcomes(record, "DATA-PROXY")["data.max_proxy_nmi[hospital]"]["status"] == "fail"


def test_heart_verdict_judges_each_rule_only_where_its_metric_exists(heart: tuple[Path, dict[str, Any], pd.DataFrame]) -> None:
    """Exit 1 (DATA-MISS fails), and no rule reports missing evidence for a scope its metric
    never has (such as a per-column scope of another data.* metric)."""
    root, record, _ = heart
    produced = set(_metrics(record, "sites"))
    spurious = [o["metric"] for o in record["verdict"]["outcomes"] if "[" in o["metric"] and o["metric"] not in produced]
    assert not spurious, f"{len(spurious)} outcomes on scopes the rule's metric never has, e.g. {spurious[:3]}"
    done = run_cli("audit", "audits/heart-sites.yaml", "--quiet", "--no-history", "--out", root / "again", cwd=root)
    assert done.returncode == 1, done.stderr


# -- adult: the test file against the training file and the 1990 census ----------------------


CENSUS_1990 = {  # US Census Bureau, 1990 CP-1-1, persons
    "sex": {"Female": 127_470_455, "Male": 121_239_418},
    "race": {"White": 199_686_070, "Black": 29_986_060, "Amer-Indian-Eskimo": 1_959_234,
             "Asian-Pac-Islander": 7_273_662, "Other": 9_804_847},
}  # fmt: skip


@pytest.fixture(scope="module")
def adult(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The demo spec validated as shipped; its `use: data` audit then run alone (a spec
    without a model, in the demo's folder so that its relative paths hold)."""
    checked = run_cli("validate", "audits/adult-income.yaml", cwd=demo_root)
    assert checked.returncode == 0, checked.stderr
    spec = yaml.safe_load(ADULT_SPEC.read_text())
    data_audits = [a for a in spec["audits"] if a["use"] == "data"]
    assert len(data_audits) == 1
    spec.pop("model")
    out = tmp_path_factory.mktemp("adult-data")
    spec.update(audits=data_audits, policies=["guardrail:data-governance"], report={"out": str(out), "history": False})
    only = demo_root / "audits" / "adult-data-only.yaml"
    only.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert run_cli("validate", only, cwd=demo_root).returncode == 0
    done = run_cli("audit", only, "--quiet", cwd=demo_root)
    assert done.returncode in (1, 2), done.stderr
    record = json.loads((out / "run.json").read_text())
    return record, pd.read_csv(demo_root / "data" / "adult-train.csv.gz"), pd.read_csv(demo_root / "data" / "adult-test.csv.gz")


def test_adult_population_shares_are_the_census_counts_rounded() -> None:
    params = next(a for a in yaml.safe_load(ADULT_SPEC.read_text())["audits"] if a["use"] == "data")["params"]
    for column, counts in CENSUS_1990.items():
        total = sum(counts.values())
        assert total == 248_709_873
        assert params["population"][column]["shares"] == {g: round(n / total, 4) for g, n in counts.items()}
        assert "1990 CP-1-1" in params["population"][column]["source"]


# the demo model is trained for the shared demo folder (about 20 s on its own)
@pytest.mark.slow
def test_adult_representation_is_computed_against_the_census(adult: tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]) -> None:
    record, _, test = adult
    metrics = _metrics(record, "data")
    for column, counts in CENSUS_1990.items():
        total = sum(counts.values())
        ratio = metrics[f"data.representation_ratio[{column}]"]
        share = test[column].value_counts(normalize=True)
        expected = {g: share[g] / round(n / total, 4) for g, n in counts.items()}
        assert {g["group"]: g["value"] for g in ratio["by_group"]} == pytest.approx(expected, abs=1e-12)
        assert ratio["value"] == pytest.approx(min(expected.values()), abs=1e-12)
        assert ratio["ci"]["low"] <= ratio["value"] <= ratio["ci"]["high"]
        assert "1990 CP-1-1" in ratio["details"]["source"]
    assert metrics["data.representation_ratio[sex]"]["details"]["lowest_group"] == "Female"  # a third of the rows, half the people
    assert metrics["data.representation_ratio[race]"]["details"]["lowest_group"] == "Other"
    assert _outcomes(record, "DATA-REP")["data.representation_ratio[sex]"]["status"] == "fail"


@pytest.mark.slow
def test_adult_shift_between_training_and_test_file_is_small(adult: tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]) -> None:
    from scipy.spatial.distance import jensenshannon

    record, train, test = adult
    metrics = _metrics(record, "data")
    for column in ("workclass", "occupation", "native_country", "relationship"):  # categorical: one bin per value, missing its own
        counts = pd.concat([train[column].fillna("<missing>").value_counts(), test[column].fillna("<missing>").value_counts()], axis=1).fillna(0)
        expected = jensenshannon(counts.iloc[:, 0], counts.iloc[:, 1], base=2)
        assert metrics[f"data.shift_js[column={column}]"]["value"] == pytest.approx(expected, abs=1e-9)
    worst = metrics["data.max_shift_js"]
    overall = {k: m["value"] for k, m in metrics.items() if k.startswith("data.shift_js[column=")}
    assert worst["value"] == max(overall.values()) < 0.05
    assert metrics["data.shifted_features"]["value"] == 0
    assert _outcomes(record, "DATA-SHIFT")["data.shifted_features"]["status"] == "pass"


@pytest.mark.slow
def test_adult_rows_leaked_from_the_training_file_are_counted(adult: tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]) -> None:
    record, train, test = adult
    compared = [c for c in test.columns if c != "income"]
    seen = set(map(tuple, train[compared].astype(str).to_numpy()))
    leaked = np.mean([row in seen for row in map(tuple, test[compared].astype(str).to_numpy())])
    metric = _metrics(record, "data")["data.leaked_rows"]
    assert metric["value"] == pytest.approx(leaked, abs=1e-12) and 0 < leaked < 0.01
    assert _outcomes(record, "DATA-LEAK")["data.leaked_rows"]["status"] == "pass"


@pytest.mark.slow
def test_adult_relationship_is_flagged_as_a_proxy_of_sex(adult: tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]) -> None:
    record, _, test = adult
    metrics = _metrics(record, "data")
    nmi = metrics["data.proxy_nmi[sex/column=relationship]"]["value"]
    assert nmi == pytest.approx(_nmi(test["sex"], test["relationship"]), abs=1e-9)
    assert metrics["data.max_proxy_nmi[sex]"]["details"]["feature"] == "relationship"
    assert _outcomes(record, "DATA-PROXY")["data.max_proxy_nmi[sex]"]["status"] == "fail"
