"""``guardrail validate`` opens a scikit-learn model and the data file's header far enough to
report, before any audit runs, what the audit would refuse, with the audit's exit code: types
skops does not trust (and how to trust them), columns the model or the spec needs that the
data file lacks. It reads no row of the data and imports no torch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.sklearn_folder import POLICY, TREE_PREDICTOR, SklearnFolder, build, probe
from tests.conftest import run_cli

PREDICTIONS_SPEC = """\
schema_version: 1
kind: audit
name: t
model: {adapter: predictions, column: pred}
data: {path: data.csv, target: y, sensitive: [group]}
audits:
  - {id: fairness, use: fairness, params: {min_group_size: 1}}
policies: [policy.yaml]
report: {out: out, history: false}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> SklearnFolder:
    return build(tmp_path_factory.mktemp("preflight"))


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if not line.startswith("guardrail: ")]


def test_validate_reports_untrusted_types_as_the_audit_does_and_how_to_trust_them(folder: SklearnFolder) -> None:
    spec = folder.spec(model="hgb.skops", name="hgb.yaml")
    validated = probe(["validate", spec.name], folder.root)
    audited = probe(["audit", spec.name, "--out", "out-hgb"], folder.root)
    assert validated.code == audited.code == 3
    assert validated.torch == []
    [line] = _errors(validated.stderr)
    assert f"it contains types that are not trusted by default: {TREE_PREDICTOR}" in line
    assert f"list them under `model.trusted_types` in the spec: `trusted_types: [{TREE_PREDICTOR}]`" in line
    assert _errors(audited.stderr) == [line], "validate says what the audit says"
    assert not (folder.root / "out-hgb").exists()
    trusted = folder.spec(model="hgb.skops", name="hgb-trusted.yaml", trusted=(TREE_PREDICTOR,))
    ok = probe(["validate", trusted.name], folder.root)
    assert ok.code == 0 and ok.stdout.startswith("hgb-trusted.yaml: ok (audit spec 'credit'"), ok.stderr


def test_validate_names_the_model_columns_missing_from_the_data_header(folder: SklearnFolder) -> None:
    folder.data.drop(columns=["hours_per_week", "occupation"]).to_csv(folder.root / "narrow.csv", index=False)
    spec = folder.spec(data="narrow.csv", name="narrow.yaml")
    validated = probe(["validate", spec.name], folder.root)
    audited = probe(["audit", spec.name, "--out", "out-narrow"], folder.root)
    assert validated.code == audited.code == 3
    assert _errors(validated.stderr) == [
        "error: narrow.csv: the model needs column(s) 'hours_per_week', 'occupation', which the data does not have "
        "Hint: audit the model on data with the columns it was trained on"
    ]
    assert "the model needs column(s) 'hours_per_week', 'occupation'" in audited.stderr


def test_validate_names_every_spec_column_missing_from_the_header_before_opening_the_model(folder: SklearnFolder) -> None:
    folder.data.rename(columns={"sex": "gender", "income_over_50k": "income"}).to_csv(folder.root / "renamed.csv", index=False)
    spec = folder.spec(data="renamed.csv", name="renamed.yaml")
    validated = probe(["validate", spec.name], folder.root)
    audited = probe(["audit", spec.name, "--out", "out-renamed"], folder.root)
    assert validated.code == audited.code == 3
    lines = _errors(validated.stderr)
    assert [line.split(" Hint: ")[0] for line in lines] == [
        "error: renamed.csv: data.target names column 'income_over_50k', which the data file does not have",
        "error: renamed.csv: data.sensitive names column 'sex', which the data file does not have",
    ]
    assert _errors(audited.stderr) == lines  # the audit names every one too, not only the first
    assert validated.torch == []


def test_validate_reads_the_header_of_the_data_file_only(tmp_path: Path) -> None:
    """A row the CSV parser cannot split stops the audit, which reads every row; validate reads
    the first line only (a data file of any size is checked in the same time). The header is
    checked for the prediction columns a predictions-only spec names, too."""
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "spec.yaml").write_text(PREDICTIONS_SPEC)
    (tmp_path / "data.csv").write_text("y,pred,group\n1,1,a\n0,0,b\n1,2,3,4,5,6\n")
    assert run_cli("validate", "spec.yaml", cwd=tmp_path).returncode == 0
    audited = run_cli("audit", "spec.yaml", cwd=tmp_path)
    assert audited.returncode == 3 and "cannot read the data file" in audited.stderr
    (tmp_path / "data.csv").write_text("y,prediction,group\n1,1,a\n0,0,b\n")
    validated = run_cli("validate", "spec.yaml", cwd=tmp_path)
    assert validated.returncode == 3
    assert validated.stderr.startswith("error: data.csv: model.column names column 'pred', which the data file does not have")
