"""guardrail train, then guardrail audit of what it trained: DP-SGD with a ledger whose ε
the privacy audit reports as Opacus' own accountant computes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_exit_codes import _assert_one_clear_line
from tests.conftest import REPO, run_cli

SPEC = """\
schema_version: 1
kind: audit
name: heart-dp-small
train:
  data: {{dataset: heart_disease, holdout: 0.3}}
  target: heart_disease
  features: [age, sex, max_heart_rate, st_depression, exercise_angina]
  model: {{kind: mlp, hidden: [8]}}
  epochs: {epochs}
  batch_size: 64
  lr: 0.5
  out: model
  privacy:
    dp: {{noise_multiplier: 1.0, delta: 1.0e-5, max_grad_norm: 1.0, accountant: rdp}}
model: {{adapter: torch, path: model}}
data: {{path: model/audit-data.csv.gz, target: heart_disease, sensitive: [sex]}}
audits:
  - id: privacy
    use: privacy
    params: {{membership_column: member, groupings: [sex, site], reference_models: 2, bootstrap: 200}}
  - id: robustness
    use: robustness
    params: {{probes: [counterfactual, perturbation], training_column: member, bootstrap: 200}}
policies: [{policy}]
report: {{out: out, history: false}}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(epochs=3, policy=REPO / "policies" / "clinical-high-risk.yaml"))
    return path


def test_train_then_audit_reports_the_ledgers_epsilon(spec: Path, tmp_path: Path) -> None:
    from opacus.accountants import RDPAccountant

    trained = run_cli("train", spec, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "privacy: DP-SGD, noise multiplier 1" in trained.stdout
    assert "audit table: model/audit-data.csv.gz" in trained.stdout
    ledger = json.loads((tmp_path / "model" / "ledger.json").read_text())

    audited = run_cli("audit", spec, cwd=tmp_path)
    assert audited.returncode in (0, 1), audited.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    metrics = {(m["key"], m["scope"]): m for r in record["results"] for m in r["metrics"]}
    accountant = RDPAccountant()
    accountant.history = [(s["noise_multiplier"], s["sample_rate"], s["steps"]) for s in ledger["segments"]]
    epsilon = metrics[("privacy.dp.epsilon", None)]
    assert epsilon["details"]["epsilon_rdp"] == pytest.approx(accountant.get_epsilon(delta=1e-5), rel=1e-12)
    assert metrics[("privacy.dp.delta", None)]["value"] == 1e-5
    for attack in ("loss", "lira"):
        assert 0.3 < metrics[(f"privacy.mia.{attack}.auc", None)]["value"] < 0.8
        assert metrics[(f"privacy.mia.{attack}.auc", "site")]["by_group"]
    model_files = {f["path"] for f in record["provenance"]["files"] if f["role"] == "model"}
    assert str(tmp_path / "model" / "model.safetensors") in model_files and str(tmp_path / "model" / "ledger.json") in model_files

    # the canary audit ran after training, and its claim is the ledger's ε (same recipe)
    assert "DP claim holds: ε_lower = " in trained.stdout
    dp_audit = json.loads((tmp_path / "model" / "dp_audit.json").read_text())
    claimed = metrics[("privacy.dp_audit.epsilon_claimed", None)]["value"]
    assert claimed == pytest.approx(dp_audit["epsilon_claimed"]) and claimed == pytest.approx(epsilon["value"], rel=0.05)
    assert metrics[("privacy.dp_audit.claim_excess", None)]["value"] < 0
    page = (tmp_path / "out" / "report.html").read_text()
    for heading in ("Does the DP claim hold?", "Privacy ledger", "Membership-inference attacks",
                    "Membership-inference risk by <code>sex</code>", "Membership-inference risk by <code>site</code>"):
        assert heading in page
    import re

    rocs = re.findall(r'<svg class="chart roc".*?</svg>', page, flags=re.S)
    assert sum(svg.count("<polyline") for svg in rocs) == 2, "one ROC curve per attack"


def test_canary_audit_can_be_switched_off_and_a_stale_report_goes(spec: Path, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "dp_audit.json").write_text("{}")
    spec.write_text(spec.read_text().replace("accountant: rdp}", "accountant: rdp}\n    canary_audit: {enabled: false}"))
    trained = run_cli("train", spec, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "DP claim" not in trained.stdout
    assert not (tmp_path / "model" / "dp_audit.json").exists(), "a report of an earlier model must not survive"


def test_train_errors_are_one_line_with_exit_3(tmp_path: Path) -> None:
    no_train = tmp_path / "plain.yaml"
    no_train.write_text(SPEC.split("train:")[0].format() + "model: {adapter: predictions, column: p}\n"
                        "data: {path: d.csv, target: y, sensitive: [s]}\naudits: [{id: f, use: fairness}]\nreport: {out: out}\n")
    done = run_cli("train", no_train)
    assert done.returncode == 3 and "has no `train:` section" in done.stderr
    _assert_one_clear_line(done.stderr)
    typo = tmp_path / "typo.yaml"
    typo.write_text(SPEC.format(epochs=1, policy=REPO / "policies" / "baseline.yaml").replace("max_heart_rate", "max_heart_rat"))
    done = run_cli("train", typo)
    assert done.returncode == 3 and "'max_heart_rat'" in done.stderr
    _assert_one_clear_line(done.stderr)
    assert not (tmp_path / "model").exists()
