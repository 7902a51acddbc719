"""``use: data``: a spec without a model, the reference data as an input of the run, and bad
input (population, reference file, reference column) refused before any audit runs, with
what to fix — the same from ``guardrail validate`` as from ``guardrail audit``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli

SPEC = """\
schema_version: 1
kind: audit
name: data-only
data: {{path: data.csv, target: y, sensitive: [group]}}
audits:
  - id: data
    use: data
    params: {params}
{extra}report: {{out: out, history: false}}
"""
FAST = "{bootstrap: 100, min_group_size: 5"


def _frames(rows: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], size=rows, p=[0.3, 0.7])
    x = rng.normal(size=rows)
    x[(group == "a") & (rng.random(rows) < 0.4)] = np.nan  # missing far more often in group a
    data = pd.DataFrame({"group": group, "x": x, "z": rng.integers(0, 5, rows), "y": (rng.random(rows) < 0.3).astype(int)})
    train = pd.DataFrame(
        {"group": rng.choice(["a", "b"], size=rows), "x": rng.normal(1.0, 1.0, rows), "z": rng.integers(0, 5, rows),
         "y": (rng.random(rows) < 0.3).astype(int)}
    )  # fmt: skip
    return data, train


def _folder(tmp_path: Path, params: str, extra: str = "", name: str = "spec.yaml") -> Path:
    data, train = _frames()
    data.to_csv(tmp_path / "data.csv", index=False)
    train.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / name).write_text(SPEC.format(params=params, extra=extra))
    return tmp_path / name


def _lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_spec_without_a_model_runs_data_audits_and_records_the_reference_file(tmp_path: Path) -> None:
    spec = _folder(tmp_path, FAST + ", reference_data: train.csv}")
    assert run_cli("validate", spec).returncode == 0
    done = run_cli("audit", spec, "--quiet", "--no-gate")  # measured, judged by no policy
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    [result] = record["results"]
    assert result["status"] == "ok"
    values = {(m["key"], m.get("scope")): m for m in result["metrics"]}
    data = pd.read_csv(tmp_path / "data.csv")
    share = values[("data.group_share", "group")]
    expected = data["group"].value_counts(normalize=True)
    assert {g["group"]: g["value"] for g in share["by_group"]} == pytest.approx(expected.to_dict(), abs=1e-12)
    missing = values[("data.missing_rate", "group/column=x")]
    assert {g["group"]: g["value"] for g in missing["by_group"]} == pytest.approx(
        data["x"].isna().groupby(data["group"]).mean().to_dict(), abs=1e-12
    )
    assert values[("data.shift_js", "column=x")]["value"] > 0.2  # the training x is centred at 1, the audit's at 0
    files = {item["role"]: item for item in record["provenance"]["files"]}
    reference = files["reference"]
    import hashlib

    assert reference["sha256"] == hashlib.sha256((tmp_path / "train.csv").read_bytes()).hexdigest()
    assert result["artifacts"]["reference"]["sha256"] == reference["sha256"]


def test_audits_that_need_a_model_are_refused_each_by_name_when_the_spec_has_none(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    _folder(tmp_path, FAST + "}")
    text = spec.read_text().replace("audits:\n", "audits:\n  - {id: fair, use: fairness}\n  - {id: why, use: explainability}\n")
    spec.write_text(text)
    for command in ("validate", "audit"):
        done = run_cli(command, spec)
        assert done.returncode == 3
        lines = _lines(done.stderr)
        assert len(lines) == 2 and all("needs a model, and the spec has no model section" in line for line in lines), lines
        assert "'fair' (use: fairness)" in lines[0] and "'why' (use: explainability)" in lines[1]
    assert not (tmp_path / "out").exists()


def test_a_baseline_without_a_model_is_a_spec_error(tmp_path: Path) -> None:
    spec = _folder(tmp_path, FAST + "}", extra="baseline: {adapter: predictions, column: y}\n")
    done = run_cli("validate", spec)
    assert done.returncode == 3
    assert "a baseline is compared with the model" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("population", "message"),
    [
        ("{group: {shares: {a: 0.5, b: 0.4}, source: s}}", "sum to 0.9000, not 1"),
        ("{group: {shares: {a: 1.5, b: -0.5}, source: s}}", "outside (0, 1]"),
        ("{other: {shares: {a: 0.5, b: 0.5}, source: s}}", "'other' is not one of the examined sensitive columns"),
        ("{group: {shares: {a: 0.5, b: 0.5}}}", "source"),
    ],
)
def test_a_bad_population_is_refused_before_anything_runs(tmp_path: Path, population: str, message: str) -> None:
    spec = _folder(tmp_path, FAST + f", population: {population}}}")
    for command in ("validate", "audit"):
        done = run_cli(command, spec)
        assert done.returncode == 3, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_population_group_the_data_lacks_is_a_data_error_naming_it(tmp_path: Path) -> None:
    spec = _folder(tmp_path, FAST + ", population: {group: {shares: {a: 0.3, b: 0.6, c: 0.1}, source: census}}}")
    done = run_cli("audit", spec)
    assert done.returncode == 3
    [line] = _lines(done.stderr)
    assert "'c'" in line and "Hint:" in line
    assert not (tmp_path / "out").exists()


def test_reference_data_that_lacks_columns_or_does_not_exist_is_refused_by_validate_and_audit(tmp_path: Path) -> None:
    spec = _folder(tmp_path, FAST + ", reference_data: narrow.csv}")
    _frames()[1].drop(columns=["z"]).to_csv(tmp_path / "narrow.csv", index=False)
    for command in ("validate", "audit"):
        done = run_cli(command, spec)
        assert done.returncode == 3
        [line] = _lines(done.stderr)
        assert "the reference (training) data lacks column(s) 'z'" in line and "Hint:" in line
    missing = _folder(tmp_path, FAST + ", reference_data: nowhere.csv}", name="missing.yaml")
    done = run_cli("validate", missing)
    assert done.returncode == 3 and "params.reference_data names 'nowhere.csv', which does not exist" in done.stderr


def test_a_reference_column_must_mark_some_rows_true_and_some_false(tmp_path: Path) -> None:
    spec = _folder(tmp_path, FAST + ", reference_column: z}")  # z holds 0..4, not true/false
    done = run_cli("audit", spec)
    assert done.returncode == 3
    assert "must be true/false" in done.stderr and not (tmp_path / "out").exists()


def test_a_reference_column_splits_training_rows_from_audited_rows(tmp_path: Path) -> None:
    from guardrail.auditors.data import DataAuditor, DataParams

    data, _ = _frames()
    data["member"] = np.arange(len(data)) % 4 == 0
    auditor = DataAuditor(DataParams(reference_column="member", bootstrap=0, min_group_size=5))
    examined = data.loc[~data["member"]].reset_index(drop=True)
    found = auditor.examine(
        examined, sensitive=("group",), target="y", labels=examined["y"].to_numpy() == 1,
        reference=data.loc[data["member"]].reset_index(drop=True), seed=0,
    )  # fmt: skip
    metrics = {m.ref: m for m in found.metrics}
    assert metrics["data.group_share[group]"].n == len(examined)
    assert "member" not in found.artifacts["features"]


def test_audit_data_on_a_frame_matches_pandas_and_the_runner(tmp_path: Path) -> None:
    import guardrail

    data, train = _frames()
    result = guardrail.audit_data(data, sensitive="group", target="y", reference=train, bootstrap=100, min_group_size=5)
    metrics = {m.ref: m for m in result.metrics}
    base = metrics["data.base_rate[group]"]
    assert {g.group: g.value for g in base.by_group} == pytest.approx(data["y"].groupby(data["group"]).mean().to_dict(), abs=1e-12)
    assert metrics["data.duplicate_rows"].value == pytest.approx(data.duplicated().mean(), abs=1e-12)
    frame = result.to_frame()
    assert set(frame["metric"]) >= {"data.group_share", "data.base_rate", "data.shift_js"}
    assert result.artifacts["reference"]["rows"] == len(train)
    spec = _folder(tmp_path, FAST + ", reference_data: train.csv}")
    assert run_cli("audit", spec, "--quiet", "--no-gate").returncode == 0
    [recorded] = json.loads((tmp_path / "out" / "run.json").read_text())["results"]
    by_ref = {(m["key"], m.get("scope")): m["value"] for m in recorded["metrics"]}
    for metric in result.metrics:  # the API and the CLI give the same figures for the same data and seed
        assert by_ref[(metric.key, metric.scope)] == pytest.approx(metric.value, abs=1e-12), metric.ref


def test_audit_data_refuses_what_is_not_a_frame() -> None:
    import guardrail
    from guardrail.core.errors import DataError, UsageError

    with pytest.raises(UsageError):
        guardrail.audit_data([[1, 2]], sensitive="a")
    with pytest.raises(DataError, match="no column"):
        guardrail.audit_data(pd.DataFrame({"a": [1, 2]}), sensitive="b")


def test_a_data_audit_shows_inline_in_a_notebook_heatmap_included() -> None:
    """The missingness heatmap's cell colours are inline styles: allowed (and checked) by the
    notebook's allow-list, so the result shows inline, not in the sandboxed fallback frame."""
    import guardrail

    data, train = _frames()
    html = guardrail.audit_data(data, sensitive="group", target="y", reference=train, bootstrap=50, min_group_size=5)._repr_html_()
    assert not html.startswith("<iframe") and "<iframe" not in html[:500]
    assert "Missing values by group: each cell is the percent" in html
    assert 'style="background' in html  # the heatmap's colours survived the allow-list


def test_an_empty_reference_is_refused_not_passed() -> None:
    """No training rows cannot show that nothing shifted or leaked."""
    import guardrail
    from guardrail.core.errors import DataError

    data, train = _frames()
    with pytest.raises(DataError, match="reference \\(training\\) data has no rows"):
        guardrail.audit_data(data, sensitive="group", reference=train.iloc[:0], bootstrap=0)


def test_with_a_reference_column_the_population_is_checked_on_the_examined_rows(tmp_path: Path) -> None:
    """A population group present only among the training rows is absent from the examined data:
    exit 3 naming it, before any audit runs (not a crashed audit)."""
    spec = _folder(tmp_path, FAST + ", reference_column: member, population: {group: {shares: {a: 0.3, b: 0.6, c: 0.1}, source: s}}}")
    data = pd.read_csv(tmp_path / "data.csv")
    data["member"] = False
    data.loc[:9, "group"] = "c"
    data.loc[:49, "member"] = True
    data.to_csv(tmp_path / "data.csv", index=False)
    done = run_cli("audit", spec)
    assert done.returncode == 3, done.stderr
    [line] = _lines(done.stderr)
    assert "'c'" in line and "no rows" in line


def test_audit_data_reads_a_declared_positive_label_as_one_class_versus_the_others() -> None:
    import guardrail

    frame = pd.DataFrame({"g": ["a", "b"] * 60, "y": ["low", "mid", "high"] * 40})
    result = guardrail.audit_data(frame, sensitive="g", target="y", positive_label="high", bootstrap=0, min_group_size=5)
    base = {m.ref: m for m in result.metrics}["data.base_rate[g]"]
    assert base.value == pytest.approx((frame["y"] == "high").mean(), abs=1e-12)
    unlabelled = guardrail.audit_data(frame, sensitive="g", target="y", bootstrap=0, min_group_size=5)
    assert "data.base_rate[g]" not in {m.ref for m in unlabelled.metrics}
    assert any("not binary" in note for note in unlabelled.artifacts["notes"])


def test_a_group_without_training_rows_is_named_in_the_shift_table_not_dropped() -> None:
    import guardrail

    data, train = _frames()
    data.loc[:40, "group"] = "c"  # a group the training data never had
    result = guardrail.audit_data(data, sensitive="group", reference=train, bootstrap=50, min_group_size=5)
    shift = {m.ref: m for m in result.metrics}["data.shift_js[group/column=x]"]
    assert shift.details["groups_without_reference"] == ["c"]
    assert [g.reason for g in shift.by_group if g.group == "c"] == ["no training rows in this group"]
    assert "no training rows in this group" in result._repr_html_()


def test_audit_data_takes_a_frame_with_numbered_columns() -> None:
    import guardrail

    frame = pd.DataFrame({0: ["a", "b"] * 50, 1: np.arange(100.0)})
    result = guardrail.audit_data(frame, sensitive="0", bootstrap=0, min_group_size=5)
    assert "1" in result.artifacts["features"]
