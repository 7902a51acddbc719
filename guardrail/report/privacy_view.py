"""What the HTML report shows for a privacy audit: the ledger, the DP-claim check, the attack
ROC curves and the membership-inference risk of every group.

Built only from the audit's metrics and artifacts in the run record (``ledger``,
``dp_audit``, ``roc.<attack>``, ``rows``), so a report re-rendered from ``run.json`` shows
the same. Every string is plain text here; the template and :mod:`.curves` escape it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from guardrail.core.types import AuditResult, GroupValue, Interval, MetricResult
from guardrail.report import _format
from guardrail.report.curves import Curve, roc_chart

ATTACK_NAMES = {"loss": "Loss", "lira": "LiRA"}
"""Short names of the membership-inference attacks; unknown ones show their key."""

ATTACK_DESCRIPTIONS = {
    "loss": "Loss: members are the rows with the lowest loss (Yeom et al., 2018).",
    "lira": "LiRA: the likelihood-ratio attack, offline, calibrated by reference models trained on held-out rows (Carlini et al., 2022).",
}

RISK_MEASURES = (("auc", "AUC"), ("tpr_at_1pct_fpr", "TPR at 1% FPR"))
"""The per-group columns shown for each attack (the rest are in the metrics table)."""


@dataclass(frozen=True)
class RiskCell:
    """One attack measure for one group: the value, its interval (text) and, when there is
    no value, the number of the footnote that says why."""

    text: str
    ci: str
    note: int | None = None


@dataclass(frozen=True)
class RiskRow:
    """One group's membership-inference risk, one cell per (attack, measure)."""

    group: str
    members: str
    non_members: str
    small: bool
    cells: tuple[RiskCell, ...]


@dataclass(frozen=True)
class RiskTable:
    """The risk of every group of one grouping (e.g. ``sex``), with footnoted reasons."""

    grouping: str
    rows: tuple[RiskRow, ...]
    footnotes: tuple[str, ...]


@dataclass(frozen=True)
class ClaimView:
    """The canary audit of the DP claim: does ε_lower stay at or below ε_claimed?"""

    violated: bool
    message: str
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PrivacyView:
    """The privacy section of one audit."""

    ledger: tuple[tuple[str, str], ...]
    history: tuple[tuple[str, str, str], ...]
    ledger_notes: tuple[str, ...]
    claim: ClaimView | None
    roc: Markup | None
    columns: tuple[str, ...]
    attacks: tuple[str, ...]
    risk: tuple[RiskTable, ...]
    rows_note: str


def privacy_view(result: AuditResult) -> PrivacyView:
    """The privacy section of ``result`` (an audit by the ``privacy`` auditor)."""
    artifacts = result.artifacts
    attacks = [str(a["attack"]) for key, a in artifacts.items() if key.startswith("roc.") and isinstance(a, Mapping)]
    ledger = artifacts.get("ledger")
    ledger_rows, history, notes = _ledger(ledger) if isinstance(ledger, Mapping) else ((), (), ())
    claim = artifacts.get("dp_audit")
    return PrivacyView(
        ledger=ledger_rows,
        history=history,
        ledger_notes=notes,
        claim=_claim(claim) if isinstance(claim, Mapping) else None,
        roc=_roc(artifacts, attacks, result.metrics),
        columns=tuple(f"{ATTACK_NAMES.get(a, a)} {label}" for a in attacks for _, label in RISK_MEASURES),
        attacks=tuple(ATTACK_DESCRIPTIONS.get(a, a) for a in attacks),
        risk=_risk(result.metrics, attacks),
        rows_note=_rows_note(artifacts.get("rows")),
    )


def _ledger(
    ledger: Mapping[str, Any],
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, str], ...], tuple[str, ...]]:
    accountant = str(ledger.get("accountant", ""))
    rows = [
        ("ε (the accountant training used)", f"{_num(ledger.get(f'epsilon_{accountant}'))} by {accountant.upper()}"),
        ("ε by RDP", _num(ledger.get("epsilon_rdp"))),
        ("ε by PRV", _num(ledger.get("epsilon_prv"))),
        ("δ", f"{ledger.get('delta')}"),
        ("Clipping norm C", _num(ledger.get("max_grad_norm"))),
        ("Steps", f"{ledger.get('steps')}"),
        (
            "Sampling",
            "Poisson (each row in each step independently)"
            if ledger.get("sampling") == "poisson"
            else f"{ledger.get('sampling')}: ε assumes Poisson sampling, which this run did not use",
        ),
        ("Stopped early", str(ledger.get("stopped_reason") or "no: training ran every planned step")),
        ("Training data SHA-256", str(ledger.get("data_sha256", ""))),
    ]
    history = tuple(
        (_num(float(sigma)), _num(float(rate)), f"{int(steps):,}")
        for sigma, rate, steps in ledger.get("history", ())
    )
    notes = tuple(str(note) for note in ledger.get("notes", ()))
    return tuple(rows), history, notes


def _claim(report: Mapping[str, Any]) -> ClaimView:
    violated = report.get("verdict") == "claim violated"
    rows = (
        ("ε_lower (from the canaries)", _num(report.get("epsilon_lower"))),
        ("ε_claimed (the accountant)", _num(report.get("epsilon_claimed"))),
        ("Confidence", _format.level(float(report.get("confidence", 0.95)))),
        ("Canaries (included at random)", f"{report.get('canaries')} ({report.get('included')} included)"),
        ("Guesses right", f"{report.get('correct')} of {report.get('guesses')}"),
    )
    return ClaimView(violated=violated, message=str(report.get("message", "")), rows=rows)


def _roc(artifacts: Mapping[str, Any], attacks: Sequence[str], metrics: Sequence[MetricResult]) -> Markup | None:
    auc = {m.key: m.value for m in metrics if m.scope is None}
    curves = []
    for attack in attacks:
        roc = artifacts[f"roc.{attack}"].get("roc")
        if not isinstance(roc, Mapping) or not roc.get("fpr"):
            continue
        value = auc.get(f"privacy.mia.{attack}.auc")
        label = f"{ATTACK_NAMES.get(attack, attack)}, AUC {_num(value, 2)}"
        curves.append(Curve(label=label, fpr=roc["fpr"], tpr=roc["tpr"]))
    if not curves:
        return None
    return roc_chart(curves, title="Membership-inference ROC curves: members found against non-members flagged")


def _risk(metrics: Sequence[MetricResult], attacks: Sequence[str]) -> tuple[RiskTable, ...]:
    if not attacks:
        return ()
    by_ref = {(m.key, m.scope): m for m in metrics}
    lead = f"privacy.mia.{attacks[0]}.auc"
    tables: list[RiskTable] = []
    for scope in [m.scope for m in metrics if m.scope is not None and m.key == lead]:
        first = by_ref[(lead, scope)]
        counts = first.details.get("members_nonmembers", {})
        reasons: list[str] = []
        rows = []
        for value in first.by_group:
            members, non_members = counts.get(value.group, (None, None))
            cells = tuple(
                _cell(by_ref.get((f"privacy.mia.{attack}.{measure}", scope)), value.group, reasons)
                for attack in attacks
                for measure, _ in RISK_MEASURES
            )
            rows.append(
                RiskRow(
                    group=value.group,
                    members=_format.integer(members),
                    non_members=_format.integer(non_members),
                    small=value.small,
                    cells=cells,
                )
            )
        tables.append(RiskTable(grouping=scope, rows=tuple(rows), footnotes=tuple(reasons)))
    return tuple(tables)


def _cell(metric: MetricResult | None, group: str, reasons: list[str]) -> RiskCell:
    found: GroupValue | None = None
    if metric is not None:
        found = next((v for v in metric.by_group if v.group == group), None)
    if found is None or found.value is None:
        reason = "not computed" if found is None else _generic(found.reason or "undefined")
        if reason not in reasons:
            reasons.append(reason)
        return RiskCell(_format.DASH, "", reasons.index(reason) + 1)
    return RiskCell(_format.number(found.value), _interval(found.ci))


def _generic(reason: str) -> str:
    """A reason without its group's own count ("...; there are 30"), so that groups share
    one footnote; the counts are in the table."""
    return reason.split("; there are ")[0]


def _interval(ci: Interval | None) -> str:
    return _format.interval(ci)


def _rows_note(rows: object) -> str:
    if not isinstance(rows, Mapping):
        return ""
    text = (
        f"Attacked {rows.get('members')} training rows (members) against {rows.get('non_members')} held-out rows "
        "(non-members)"
    )
    if rows.get("population"):
        text += f"; {rows.get('population')} other held-out rows trained the attack's reference models"
    return text + "."


def _num(value: object, digits: int = 3) -> str:
    if value is None:
        return _format.DASH
    return f"{float(value):.{digits}g}" if isinstance(value, int | float) else str(value)


__all__ = ["PrivacyView", "privacy_view"]
