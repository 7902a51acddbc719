"""The DP figures of a trained model folder: the privacy ledger's ε and δ, recomputed by
Opacus' accountants, and the one-run canary audit's check of the DP claim when training
ran it (``dp_audit.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guardrail.core.serialize import to_jsonable
from guardrail.core.types import MetricResult
from guardrail.privacy.accounting import ACCOUNTANTS
from guardrail.privacy.canary_report import DP_AUDIT_FILE, DP_AUDIT_KEYS, load_canary_report
from guardrail.privacy.ledger import LEDGER_FILE, load_ledger

__all__ = ["DP_AUDIT_KEYS", "LEDGER_KEYS", "dp_audit_metrics", "ledger_metrics"]

EPSILON_KEY = "privacy.dp.epsilon"
DELTA_KEY = "privacy.dp.delta"
LEDGER_KEYS = (EPSILON_KEY, DELTA_KEY)
"""The metric keys of :func:`ledger_metrics`."""

NO_LEDGER = "the model folder has no privacy ledger (ledger.json): it was not trained with DP-SGD by `guardrail train`"


def ledger_metrics(model_path: Path | None) -> tuple[list[MetricResult], dict[str, Any] | None]:
    """ε and δ from the model's privacy ledger, recomputed by Opacus' accountants, and the
    ledger's view for the report (``None`` without a ledger: the metrics then say why)."""
    ledger_file = None if model_path is None or not model_path.is_dir() else model_path / LEDGER_FILE
    if ledger_file is None or not ledger_file.is_file():
        return [
            MetricResult(EPSILON_KEY, None, reason=NO_LEDGER, higher_is_better=False),
            MetricResult(DELTA_KEY, None, reason=NO_LEDGER, higher_is_better=False),
        ], None
    ledger = load_ledger(ledger_file)
    by_accountant: dict[str, float] = {name: ledger.epsilon(accountant=name) for name in ACCOUNTANTS} if ledger.steps else {}
    # the accountant training used for its budget; otherwise the tighter of two valid upper bounds
    accountant = str(ledger.extra.get("accountant") or min(by_accountant, key=by_accountant.__getitem__, default="rdp"))
    details = {
        "accountant": accountant,
        "epsilon_rdp": by_accountant.get("rdp"),
        "epsilon_prv": by_accountant.get("prv"),
        "steps": ledger.steps,
        "history": [list(entry) for entry in ledger.history],
        "max_grad_norm": ledger.max_grad_norm,
        "sampling": ledger.sampling,
        "stopped_reason": ledger.stopped_reason,
        "data_sha256": ledger.data_sha256,
        "notes": list(ledger.notes),
    }
    value = by_accountant.get(accountant, 0.0)
    epsilon = MetricResult(EPSILON_KEY, value, higher_is_better=False, details=details)
    delta = MetricResult(DELTA_KEY, ledger.delta, higher_is_better=False)
    return [epsilon, delta], {"delta": ledger.delta, **details}


def dp_audit_metrics(model_path: Path | None) -> tuple[list[MetricResult], dict[str, Any] | None]:
    """The canary audit written beside the model (:data:`DP_AUDIT_FILE`) as metrics, and its
    view for the report; nothing when training did not run one."""
    audit_file = None if model_path is None else model_path / DP_AUDIT_FILE
    if audit_file is None or not audit_file.is_file():
        return [], None
    canary = load_canary_report(audit_file)
    return list(canary.to_metrics()), {"message": canary.message, **to_jsonable(canary)}
