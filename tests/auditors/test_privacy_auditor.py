"""The privacy auditor end to end on a real model: an overfit forest on Heart Disease leaks
membership, a model that never saw the members does not, and the loss attack's AUC equals
scikit-learn's ROC AUC of the negated losses on the audited rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def test_lira_needs_a_retrainable_model(tmp_path: Path) -> None:
    frame = load_heart_disease()[["sex", "site", "heart_disease", "age"]]
    frame["member"] = np.arange(len(frame)) % 2 == 0
    frame["score"] = 0.5
    frame["pred"] = 1
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "spec.yaml").write_text(
        SPEC.replace("{{adapter: sklearn, path: model.skops, trusted_types: [sklearn.tree._tree.Tree]}}", "{{adapter: predictions, column: pred, score_column: score}}")
        .replace(", features: {features}", "")
        .format(attacks="[lira]")
    )
    record = guardrail.audit(tmp_path / "spec.yaml", write=False)
    (result,) = record.results
    assert result.status is AuditStatus.ERROR and result.error is not None
    assert "LiRA retrains reference models" in result.error.message


@pytest.mark.parametrize("values", [["yes", "no"], [1.0, None]])
def test_a_bad_membership_column_is_a_data_error(tmp_path: Path, values: list[object]) -> None:
    frame = load_heart_disease()[["sex", "site", "heart_disease", "age"]].head(40).copy()
    frame["member"] = values * 20
    frame["score"] = 0.5
    frame["pred"] = 1
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "spec.yaml").write_text(
        SPEC.replace("{{adapter: sklearn, path: model.skops, trusted_types: [sklearn.tree._tree.Tree]}}", "{{adapter: predictions, column: pred, score_column: score}}")
        .replace(", features: {features}", "")
        .format(attacks="[loss]")
    )
    (result,) = guardrail.audit(tmp_path / "spec.yaml", write=False).results
    assert result.status is AuditStatus.ERROR and result.error is not None and result.error.type == "DataError"
