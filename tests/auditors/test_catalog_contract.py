"""Every built-in auditor's declared metric catalog covers what it really produces.

The catalogs decide which policy rules are refused before a run (exit 3), so a catalog that
missed a key or a scope would refuse a valid policy. Each real result below (the demo's
golden run, the fairness auditor in every task and option, a federated history, a privacy
audit) must have every (key, scope) it reports declared by its auditor for that spec, and
every declared key must be within the auditor's ``METRIC_KEYS``.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import guardrail
from guardrail.auditors.catalog import UNSCOPED, MetricCatalog
from guardrail.auditors.registry import default_registry
from guardrail.core.serialize import from_jsonable
from guardrail.core.types import AuditResult, AuditStatus, MetricResult
from guardrail.spec.models import AuditSpec
from tests.conftest import REPO

GOLDEN_RUN = REPO / "tests" / "golden" / "data" / "adult-income.run.json"


def _spec(**overrides: Any) -> AuditSpec:
    raw: dict[str, Any] = {
        "schema_version": 1,
        "kind": "audit",
        "name": "contract",
        "model": {"adapter": "predictions", "column": "pred"},
        "data": {"path": "data.csv", "target": "y", "sensitive": ["sex", "race"]},
        "audits": [{"id": "a", "use": "fairness"}],
        "report": {"out": "out"},
    }
    for key, value in overrides.items():
        raw[key] = {**raw[key], **value} if key in raw and isinstance(value, dict) else value
    return AuditSpec.model_validate(raw)


def _catalog(use: str, params: dict[str, Any], spec: AuditSpec) -> MetricCatalog:
    cls = default_registry().resolve(use)
    catalog: MetricCatalog = cls(cls.Params.model_validate(params)).metric_catalog(spec)  # type: ignore[attr-defined]
    return catalog


def _undeclared(result: AuditResult, catalog: MetricCatalog) -> list[str]:
    missing = []
    for metric in result.metrics:
        scopes = catalog.scopes(metric.key)
        scope = metric.scope or UNSCOPED
        if scopes is None or not any(fnmatchcase(scope, pattern) for pattern in scopes):
            missing.append(metric.ref)
    return missing


def _within_vocabulary(use: str, catalog: MetricCatalog) -> list[str]:
    vocabulary = default_registry().resolve(use).METRIC_KEYS  # type: ignore[attr-defined]
    return [key for key in catalog.keys() if not any(fnmatchcase(key, p) for p in vocabulary)]


def test_the_demo_runs_metrics_are_all_declared() -> None:
    """The golden run (volatile fields normalised, so read result by result)."""
    record = json.loads(GOLDEN_RUN.read_text(encoding="utf-8"))
    spec = AuditSpec.model_validate(record["spec"])
    entries = {entry.id: entry for entry in spec.audits}
    results = [
        AuditResult(r["audit_id"], r["auditor"], AuditStatus(r["status"]), tuple(from_jsonable(MetricResult, m) for m in r["metrics"]))
        for r in record["results"]
    ]
    assert {r.auditor for r in results} >= {"fairness", "mitigation", "explainability"}
    for result in results:
        catalog = _catalog(entries[result.audit_id].use, dict(entries[result.audit_id].params), spec)
        assert _undeclared(result, catalog) == [], result.audit_id
        assert _within_vocabulary(result.auditor, catalog) == []


def _fairness(task: str = "binary", **kwargs: Any) -> AuditResult:
    rng = np.random.default_rng(0)
    n = 400
    sensitive = {"sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b", "c"], n)}
    if task == "multiclass":
        y, pred = rng.choice(["x", "y", "z"], n), rng.choice(["x", "y", "z"], n)
    elif task == "regression":
        y, pred = rng.normal(size=n), rng.normal(size=n)
    else:
        y, pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    return guardrail.audit_fairness(y, pred, sensitive_features=sensitive, task=task, bootstrap=50, **kwargs)


@pytest.mark.parametrize(
    ("case", "task", "kwargs", "params", "spec_overrides"),
    [
        ("binary", "binary", {}, {}, {}),
        ("scores", "binary", {"y_score": np.linspace(0.01, 0.99, 400)}, {}, {}),
        ("baseline", "binary", {"y_pred_baseline": np.tile([0, 1], 200)}, {}, {"baseline": {"adapter": "predictions", "column": "b"}}),
        ("custom", "binary", {"custom_metrics": {"acc": "sklearn.metrics:accuracy_score"}}, {"custom_metrics": {"acc": "sklearn.metrics:accuracy_score"}}, {}),
        ("intersection only", "binary", {"groupings": "intersection"}, {"groupings": "intersection"}, {}),
        ("each only", "binary", {"groupings": "each"}, {"groupings": "each"}, {}),
        ("multiclass", "multiclass", {}, {}, {"data": {"task": "multiclass"}}),
        ("regression", "regression", {}, {}, {"data": {"task": "regression"}}),
    ],
)
def test_the_fairness_auditor_declares_every_metric_it_produces(
    case: str, task: str, kwargs: dict[str, Any], params: dict[str, Any], spec_overrides: dict[str, Any]
) -> None:
    result = _fairness(task, **kwargs)
    catalog = _catalog("fairness", params, _spec(**spec_overrides))
    assert _undeclared(result, catalog) == [], case
    assert _within_vocabulary("fairness", catalog) == []


def test_the_federated_auditor_declares_every_metric_it_produces(tmp_path: Path) -> None:
    from tests.auditors.test_federated_auditor import model_folder, run

    result = run(model_folder(tmp_path))
    catalog = _catalog("federated", {}, _spec())
    assert result.metrics and _undeclared(result, catalog) == []
    assert _within_vocabulary("federated", catalog) == []


def test_the_privacy_auditor_declares_every_metric_it_produces(tmp_path: Path) -> None:
    from tests.auditors.test_privacy_auditor import _audit

    record = _audit(tmp_path, trained_on_members=True, attacks="[loss]")
    (result,) = record.results
    spec = AuditSpec.model_validate(record.spec)
    catalog = _catalog("privacy", dict(spec.audits[0].params), spec)
    assert result.metrics and _undeclared(result, catalog) == []
    assert _within_vocabulary("privacy", catalog) == []


def test_a_declared_catalog_would_catch_an_undeclared_metric() -> None:
    """The contract check itself can fail: a scope the catalog does not name is reported."""
    result = _fairness()
    catalog = _catalog("fairness", {"groupings": "each"}, _spec())
    assert "fairness.selection_rate[sex+race]" in _undeclared(result, catalog)
