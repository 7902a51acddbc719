"""The privacy auditor end to end on a real model: an overfit forest on Heart Disease leaks
membership, a model that never saw the members does not, and the loss attack's AUC equals
scikit-learn's ROC AUC of the negated losses on the audited rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import guardrail
from guardrail.core.types import AuditStatus, RunRecord
from guardrail.datasets import load_heart_disease

FEATURES = ["age", "resting_bp", "max_heart_rate", "st_depression", "exercise_angina"]
SPEC = """\
schema_version: 1
kind: audit
name: heart-privacy
model: {{adapter: sklearn, path: model.skops, trusted_types: [sklearn.tree._tree.Tree]}}
data: {{path: data.csv, target: heart_disease, sensitive: [sex], features: {features}}}
audits:
  - id: privacy
    use: privacy
    params: {{membership_column: member, groupings: [sex, site], reference_models: 3, bootstrap: 200, attacks: {attacks}}}
report: {{out: out, history: false}}
"""


def _audit(tmp_path: Path, *, trained_on_members: bool, attacks: str = "[loss, lira]") -> RunRecord:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    frame = load_heart_disease()[["sex", "site", "heart_disease", *FEATURES]].dropna().reset_index(drop=True)
    frame["exercise_angina"] = frame["exercise_angina"].astype(int)
    rng = np.random.default_rng(0)
    frame["member"] = rng.random(len(frame)) < 0.5
    train = frame[frame["member"]] if trained_on_members else frame[~frame["member"]].sample(frac=0.5, random_state=1)
    if not trained_on_members:  # the model saw none of the audited rows: neither members nor the rest
        frame = frame.drop(index=train.index).reset_index(drop=True)
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(train[FEATURES], train["heart_disease"])
    sio.dump(model, tmp_path / "model.skops")
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "spec.yaml").write_text(SPEC.format(features=FEATURES, attacks=attacks))
    return guardrail.audit(tmp_path / "spec.yaml", write=False)


def _metric(record: RunRecord, key: str, scope: str | None = None) -> float:
    return next(m.value for m in record.metrics() if m.key == key and m.scope == scope)  # type: ignore[return-value]


def test_an_overfit_model_leaks_and_the_loss_auc_matches_sklearn(tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    record = _audit(tmp_path, trained_on_members=True)
    (result,) = record.results
    assert result.status is AuditStatus.OK, result.error
    assert _metric(record, "privacy.mia.loss.auc") > 0.6
    assert _metric(record, "privacy.mia.lira.auc") > 0.6
    by_site = next(m for m in record.metrics() if m.key == "privacy.mia.loss.auc" and m.scope == "site")
    assert {g.group for g in by_site.by_group} == {"Cleveland", "Hungary", "VA Long Beach", "Switzerland"}

    # oracle: the loss attack on the audited rows (every member, held-out rows outside the LiRA population)
    import skops.io as sio

    frame = __import__("pandas").read_csv(tmp_path / "data.csv")
    model = sio.load(tmp_path / "model.skops", trusted=sio.get_untrusted_types(file=tmp_path / "model.skops"))
    proba = model.predict_proba(frame[FEATURES])[:, 1]
    y = frame["heart_disease"].to_numpy()
    loss = -np.log(np.clip(np.where(y == 1, proba, 1 - proba), 1e-12, None))
    rows = result.artifacts["rows"]
    assert rows["members"] == int(frame["member"].sum())
    record_loss = _audit_loss_only(tmp_path)
    assert abs(_metric(record_loss, "privacy.mia.loss.auc") - roc_auc_score(frame["member"], -loss)) < 1e-12


def _audit_loss_only(tmp_path: Path) -> RunRecord:
    spec = (tmp_path / "spec.yaml").read_text().replace("attacks: [loss, lira]", "attacks: [loss]")
    (tmp_path / "loss.yaml").write_text(spec)
    return guardrail.audit(tmp_path / "loss.yaml", write=False)


def test_a_model_that_never_saw_the_members_shows_no_leak(tmp_path: Path) -> None:
    record = _audit(tmp_path, trained_on_members=False)
    for attack in ("loss", "lira"):
        auc = next(m for m in record.metrics() if m.key == f"privacy.mia.{attack}.auc" and m.scope is None)
        assert auc.ci is not None and auc.ci.low <= 0.5 <= auc.ci.high, (attack, auc.value, auc.ci)


def _predictions_spec(tmp_path: Path, frame: pd.DataFrame, attacks: str) -> Path:
    """A spec auditing ``frame`` as a predictions table (a constant score of 0.5): a model that
    cannot be retrained."""
    frame = frame.assign(score=0.5, pred=1)
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "spec.yaml").write_text(
        SPEC.replace("{{adapter: sklearn, path: model.skops, trusted_types: [sklearn.tree._tree.Tree]}}", "{{adapter: predictions, column: pred, score_column: score}}")
        .replace(", features: {features}", "")
        .format(attacks=attacks)
    )
    return tmp_path / "spec.yaml"


def test_lira_needs_a_retrainable_model(tmp_path: Path) -> None:
    frame = load_heart_disease()[["sex", "site", "heart_disease", "age"]]
    frame["member"] = np.arange(len(frame)) % 2 == 0
    record = guardrail.audit(_predictions_spec(tmp_path, frame, "[lira]"), write=False)
    (result,) = record.results
    assert result.status is AuditStatus.ERROR and result.error is not None
    assert "LiRA retrains reference models" in result.error.message


@pytest.mark.parametrize("values", [["yes", "no"], [1.0, None]])
def test_a_bad_membership_column_is_a_data_error(tmp_path: Path, values: list[object]) -> None:
    frame = load_heart_disease()[["sex", "site", "heart_disease", "age"]].head(40).copy()
    frame["member"] = values * 20
    (result,) = guardrail.audit(_predictions_spec(tmp_path, frame, "[loss]"), write=False).results
    assert result.status is AuditStatus.ERROR and result.error is not None and result.error.type == "DataError"


# --- precision: confident models are attacked on float64 logits (issue 14, defect 6) -----

NET = """\
import torch


class Net(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)
"""

NET_SPEC = """\
schema_version: 1
kind: audit
name: confident-module
model: {adapter: torch, module: "netmod:Net", kwargs: {width: 3}, weights: net.safetensors}
data: {path: data.csv, target: y, sensitive: [group], features: [a, b, c]}
audits:
  - id: privacy
    use: privacy
    params: {membership_column: member, attacks: [loss], bootstrap: 50}
report: {out: out, history: false}
"""
WEIGHTS = np.array([9.0, -6.0, 3.0])  # exact in float32: the logits are as confident as a memorising model's
BIAS = 0.5


def test_a_confident_torch_model_is_attacked_on_its_float64_logits(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    rng = np.random.default_rng(0)
    n_members, n_nonmembers = 300, 500
    x = rng.normal(size=(n_members + n_nonmembers, 3))
    y = (x @ WEIGHTS + BIAS + 3 * rng.logistic(size=len(x)) > 0).astype(int)
    member = np.arange(len(x)) < n_members
    # the members were "memorised": pushed away from the boundary along their own label
    x[member] += 1.5 * np.where(y[member] == 1, 1.0, -1.0)[:, None] * WEIGHTS / np.linalg.norm(WEIGHTS)
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=y, member=member, group=np.where(rng.random(len(x)) < 0.5, "p", "q"))
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "netmod.py").write_text(NET)
    save_file(
        {"linear.weight": torch.tensor(WEIGHTS[None, :], dtype=torch.float32), "linear.bias": torch.tensor([BIAS], dtype=torch.float32)},
        str(tmp_path / "net.safetensors"),
    )
    (tmp_path / "spec.yaml").write_text(NET_SPEC)

    record = guardrail.audit(tmp_path / "spec.yaml", write=False)
    (result,) = record.results
    assert result.status is AuditStatus.OK, result.error
    tpr = next(m for m in record.metrics() if m.key == "privacy.mia.loss.tpr_at_1pct_fpr" and m.scope is None)
    assert tpr.details["model_output"] == "float64 logits of the torch model"

    # the oracle, in float64 numpy from the CSV and the weights: the loss ranks rows by φ = ±log-odds
    data = pd.read_csv(tmp_path / "data.csv")
    log_odds = data[["a", "b", "c"]].to_numpy() @ WEIGHTS + BIAS
    phi = np.where(data["y"].to_numpy() == 1, log_odds, -log_odds)
    is_member = data["member"].to_numpy()
    sixth = np.sort(phi[~is_member])[::-1][5]  # 500 non-members: FPR 1% is the 5th, the curve rises until the 6th
    oracle = float(np.mean(phi[is_member] > sixth))
    # what the old path gave: the float32 softmax probability of the positive class
    p32 = torch.softmax(torch.tensor(np.stack([np.zeros_like(log_odds), log_odds], 1), dtype=torch.float32), 1)[:, 1].numpy()
    assert (p32[is_member & (data["y"].to_numpy() == 1)] == 1.0).mean() > 0.3
    from guardrail.privacy.membership import attack_metrics, cross_entropy_loss, loss_threshold_attack

    old = attack_metrics(
        loss_threshold_attack(cross_entropy_loss(p32.astype(np.float64), data["y"].to_numpy())), is_member, bootstrap=0
    ).metric("tpr_at_1pct_fpr").value
    print(f"\nTPR at 1% FPR: reported {tpr.value}, float64 oracle {oracle}, float32 probabilities {old}")
    assert tpr.value == pytest.approx(oracle, abs=1e-12)
    assert old is not None and abs(old - oracle) > 0.002


def test_scikit_learn_models_are_read_on_the_log_scale() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.privacy.model_logits import model_logits, reference_output
    from guardrail.privacy.outputs import Logits

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    frame["y"] = np.where(frame["a"] * 30 > 0, "sick", "well")  # separable: confident log-odds
    logistic = LogisticRegression(C=1e6, max_iter=5000).fit(frame[["a", "b"]], frame["y"])
    read = model_logits(SklearnAdapter(logistic, ["a", "b"]), frame, "well")
    assert read is not None and "decision_function" in read.source
    # the log-odds of the positive class: decision_function's for classes_[1] ("well"), negated for "sick"
    decision = logistic.decision_function(frame[["a", "b"]])
    assert np.array_equal(read.logits.array, decision)
    sick = model_logits(SklearnAdapter(logistic, ["a", "b"]), frame, "sick")
    assert sick is not None and np.array_equal(sick.logits.array, -decision)
    assert np.abs(decision).max() > 40  # beyond what 1 − p in float64 resolves (≈ 36.7)

    # naive Bayes: its log-probabilities stay finite where its probabilities round to 0
    shifted = frame.assign(a=frame["a"] + np.where(frame["y"] == "sick", 20.0, -20.0))
    bayes = GaussianNB().fit(shifted[["a", "b"]], shifted["y"])
    read = model_logits(SklearnAdapter(bayes, ["a", "b"]), shifted, "sick")
    assert read is not None and "predict_log_proba" in read.source and read.logits.array.shape == (200, 2)
    assert np.isfinite(read.logits.array).all() and read.logits.array.min() < -1000
    assert isinstance(reference_output(SklearnAdapter(bayes, ["a", "b"]), shifted, "sick"), Logits)

    # a forest: its probabilities are vote shares, all there is to read
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(frame[["a", "b"]], frame["y"])
    assert model_logits(SklearnAdapter(forest, ["a", "b"]), frame, "sick") is None
    shares = reference_output(SklearnAdapter(forest, ["a", "b"]), frame, "sick")
    assert np.array_equal(shares, forest.predict_proba(frame[["a", "b"]])[:, 0])
    assert model_logits(None, frame, "sick") is None


def test_lira_reads_target_and_references_the_same_way() -> None:
    """LiRA compares the target's confidence with the reference models': from logits when the
    retrained models give logits, else from probabilities on both sides (never mixed)."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.auditors.base import AuditContext
    from guardrail.auditors.privacy import PrivacyAuditor
    from guardrail.privacy.mia_audit import LIRA_FROM_PROBABILITY
    from guardrail.privacy.model_logits import reference_output

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(400, 30)), columns=[f"x{i}" for i in range(30)])
    frame["y"] = (frame["x0"] + rng.normal(size=400) > 0).astype(int)
    frame["member"] = np.arange(400) < 100
    frame["group"] = "all"
    features = [f"x{i}" for i in range(30)]
    model = SklearnAdapter(LogisticRegression(C=1e6, max_iter=5000).fit(frame.loc[frame["member"], features], frame.loc[frame["member"], "y"]), features)
    predictions = model.predict(frame, 1)

    def retrain(as_logits: bool):  # type: ignore[no-untyped-def]
        def fit(rows: pd.DataFrame):  # type: ignore[no-untyped-def]
            fresh = SklearnAdapter(clone(model.estimator).fit(rows[features], rows["y"]), features)
            return lambda data: reference_output(fresh, data, 1) if as_logits else fresh.predict(data, 1).scores

        return fit

    def lira(as_logits: bool):  # type: ignore[no-untyped-def]
        ctx = AuditContext(
            audit_id="privacy", data=frame, y_true=frame["y"].to_numpy() == 1, y_pred=predictions.labels == 1,
            y_score=predictions.scores, sensitive=("group",), missing_sensitive="error", positive_label=1, seed=0,
            where="test", model=model, features=tuple(features), retrain=retrain(as_logits),
        )
        params = {"membership_column": "member", "attacks": ["lira"], "reference_models": 3, "bootstrap": 0}
        return PrivacyAuditor(PrivacyAuditor.Params(**params)).run(ctx).metrics[0]

    from_probabilities, from_logits = lira(False), lira(True)
    assert from_probabilities.details["model_output"] == LIRA_FROM_PROBABILITY
    assert "decision_function" in from_logits.details["model_output"]
    assert from_logits.value != from_probabilities.value
