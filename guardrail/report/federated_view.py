"""What the HTML report shows for a federated audit: where the notes come from, how training
was set up, ε, accuracy and a fairness gap per hospital round by round, every hospital's
status in every round, why training stopped, and each hospital's privacy ledger.

Built only from the audit's metrics and artifacts in the run record (see
:mod:`guardrail.auditors.federated` for their shape), so a report re-rendered from
``run.json`` shows the same. Every string is plain text here; the template and
:mod:`.curves` escape it (hospital names included).

One module (about 500 lines) for one job: its tables and charts share the round statuses'
words and classes and the number formats, and each piece is a few lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from guardrail.core.scopes import hospital_scope
from guardrail.core.types import AuditResult, MetricResult
from guardrail.federation.history import (
    FEDERATED_FILE,
    STATUS_FAILED,
    STATUS_NO_REPLY,
    STATUS_NOT_SAMPLED,
    STATUS_OK,
    STATUS_REFUSED_BUDGET,
)
from guardrail.report import _format
from guardrail.report.curves import Line, line_chart

STATUS_CLASSES = {
    STATUS_OK: "st-ok",
    STATUS_FAILED: "st-fail",
    STATUS_REFUSED_BUDGET: "st-inconclusive",
    STATUS_NO_REPLY: "st-error",
    STATUS_NOT_SAMPLED: "st-skipped",
}
"""Badge style of each hospital-round status (an unknown status shows as skipped)."""

STATUS_WORDS = {
    STATUS_OK: "trained",
    STATUS_FAILED: "failed",
    STATUS_REFUSED_BUDGET: "refused: ε budget",
    STATUS_NO_REPLY: "no reply",
    STATUS_NOT_SAMPLED: "not sampled",
}

FAIRNESS_COLUMNS = (
    ("equalized_odds_difference", "Equalized odds difference"),
    ("demographic_parity_difference", "Demographic parity difference"),
    ("equal_opportunity_difference", "Equal opportunity difference"),
)
"""The gaps shown per scope in the fairness table (all metrics are in the metrics table)."""

GAP_NAMES = {key: title.lower() for key, title in FAIRNESS_COLUMNS}

ROUND_COUNTS = (
    ("rounds_ok", "trained"),
    ("failed", "failed"),
    ("refused_budget", "refused (ε budget)"),
    ("no_reply", "no reply"),
    ("not_sampled", "not sampled"),
)

FEDERATION_LINE = "federation (pooled)"


@dataclass(frozen=True)
class ChartView:
    title: str
    svg: Markup
    note: str = ""


@dataclass(frozen=True)
class HospitalRow:
    name: str
    sites: str
    train_rows: str
    test_rows: str
    epsilon: str
    epsilon_note: str
    accuracy: str
    accuracy_ci: str
    accuracy_note: str
    rounds: str
    """How the hospital's rounds went: trained, and any failed, refused or unanswered."""
    trouble: bool


@dataclass(frozen=True)
class StatusCell:
    status: str
    word: str
    css: str
    reason: str
    detail: str


@dataclass(frozen=True)
class RoundRow:
    round: str
    aggregated: str
    epsilon_max: str
    cells: tuple[StatusCell, ...]


@dataclass(frozen=True)
class ValueCell:
    text: str
    ci: str = ""
    note: int | None = None


@dataclass(frozen=True)
class FairnessRow:
    scope: str
    cells: tuple[ValueCell, ...]


@dataclass(frozen=True)
class PolicyRow:
    round: str
    rule_id: str
    policy: str
    severity: str
    status: str
    metric: str
    message: str


@dataclass(frozen=True)
class LedgerTable:
    hospital: str
    rows: tuple[tuple[str, str, str, str, str], ...]
    """Round, noise multiplier σ, sample rate q, steps, ε after the entry."""
    source: str


@dataclass(frozen=True)
class FederatedView:
    """The federated section of one audit."""

    provenance: str
    settings: tuple[tuple[str, str], ...]
    stopped_early: bool
    stopped: str
    charts: tuple[ChartView, ...]
    hospitals: tuple[HospitalRow, ...]
    hospital_names: tuple[str, ...]
    round_columns: tuple[str, ...]
    """The hospitals (and any other node a round names) of the round-by-round table."""
    rounds: tuple[RoundRow, ...]
    fairness_round: str
    fairness_columns: tuple[str, ...]
    fairness: tuple[FairnessRow, ...]
    fairness_footnotes: tuple[str, ...]
    policy: tuple[PolicyRow, ...]
    ledgers: tuple[LedgerTable, ...]
    privacy_note: str
    notes: tuple[str, ...]


def federated_view(result: AuditResult) -> FederatedView:
    """The federated section of ``result`` (an audit by the ``federated`` auditor)."""
    a = result.artifacts
    run = _mapping(a.get("run"))
    privacy = _mapping(a.get("privacy"))
    hospitals = [_mapping(h) for h in a.get("hospitals") or ()]
    names = tuple(str(h.get("name", "")) for h in hospitals)
    series = {name: _mapping(s) for name, s in _mapping(a.get("series")).items()}
    reason = a.get("stopped_reason")
    done, planned = run.get("rounds_done"), run.get("rounds_planned")
    stopped_early = bool(reason) or (isinstance(done, int) and isinstance(planned, int) and done < planned)
    if reason:
        stopped = f"Training stopped early after {done} of {planned} planned rounds: {reason}"
    elif stopped_early:
        stopped = f"Training stopped early after {done} of {planned} planned rounds (no reason recorded)."
    else:
        stopped = f"Training ran all {planned} planned rounds."
    columns = [(key, title) for key, title in FAIRNESS_COLUMNS if any(m.key == f"federated.fairness.{key}" for m in result.metrics)]
    footnotes: list[str] = []
    chosen = a.get("fairness_round")
    # nodes a round names that are not among the hospitals (e.g. an unknown node) get a column too
    columns_of_rounds = tuple(
        dict.fromkeys([*names, *(str(n) for r in a.get("rounds") or () for n in _mapping(_mapping(r).get("hospitals")))])
    )
    return FederatedView(
        provenance=str(a.get("provenance") or ""),
        settings=_settings(_mapping(a.get("settings")), run),
        stopped_early=stopped_early,
        stopped=stopped,
        charts=_charts(names, series, _mapping(a.get("fairness_gap")), privacy),
        hospitals=tuple(_hospital_row(h) for h in hospitals),
        hospital_names=names,
        round_columns=columns_of_rounds,
        rounds=tuple(_round_row(_mapping(r), columns_of_rounds, series) for r in a.get("rounds") or ()),
        fairness_round="" if chosen is None else str(chosen),
        fairness_columns=tuple(title for _, title in columns),
        fairness=_fairness(result.metrics, [key for key, _ in columns], names, footnotes),
        fairness_footnotes=tuple(footnotes),
        policy=tuple(_policy_row(_mapping(p)) for p in a.get("policy") or ()),
        ledgers=tuple(_ledger(name, _mapping(ledger)) for name, ledger in _mapping(a.get("ledgers")).items()),
        privacy_note=_privacy_note(privacy),
        notes=tuple(str(note) for note in a.get("notes") or ()),
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _settings(settings: Mapping[str, Any], run: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    strategy = str(run.get("strategy") or "")
    if strategy == "fedprox":
        strategy += f" (proximal μ = {_num(settings.get('proximal_mu'))})"
    training = (
        f"{settings.get('local_epochs')} epoch(s) per round, batch size {settings.get('batch_size')}, "
        f"{settings.get('optimizer')} at learning rate {_num(settings.get('lr'))}"
    )
    sampling = (
        f"{_percent(settings.get('fraction_train'))} sampled, at least {settings.get('min_nodes')}; "
        f"a hospital has {_num(settings.get('round_timeout'))} s to reply"
    )
    rows = [
        ("Strategy", strategy),
        ("Engine", str(run.get("engine") or "")),
        ("Rounds", f"{run.get('rounds_done')} done of {settings.get('rounds')} planned"),
        ("Model", f"{settings.get('model')} (max length {settings.get('max_length')} tokens)"),
        ("Local training", training),
        ("Hospitals per round", sampling),
    ]
    dp = settings.get("dp")
    if isinstance(dp, Mapping):
        noise = (
            f"noise multiplier σ = {_num(dp.get('noise_multiplier'))}, clipping norm C = {_num(dp.get('max_grad_norm'))}, "
            f"δ = {dp.get('delta')}, {str(dp.get('accountant', '')).upper()} accountant"
        )
        rows.append(("DP-SGD", noise))
    else:
        rows.append(("DP-SGD", "none: trained without differential privacy"))
    budget = settings.get("max_epsilon")
    rows.append(("ε budget per hospital", "none set" if budget is None else f"{_num(budget)} (a round that would pass it is refused)"))
    rows.append(("Minimum group size (fairness)", str(settings.get("min_group_size"))))
    faults = settings.get("faults") or []
    if faults:
        rows.append(("Faults injected", "; ".join(_fault(f) for f in faults)))
    policies = settings.get("round_policies") or []
    if policies:
        rows.append(("Policies judged every round", ", ".join(map(str, policies))))
    seconds = run.get("seconds")
    if isinstance(seconds, int | float):
        rows.append(("Wall time", _format.duration(float(seconds))))
    return tuple(rows)


def _fault(fault: object) -> str:
    if not isinstance(fault, Mapping):
        return str(fault)
    return ", ".join(f"{key} {value}" for key, value in fault.items())


def _charts(
    names: Sequence[str],
    series: Mapping[str, Mapping[str, Any]],
    gap: Mapping[str, Any],
    privacy: Mapping[str, Any],
) -> tuple[ChartView, ...]:
    charts: list[ChartView] = []
    if not any(series.get(name, {}).get("round") for name in names):
        return ()  # no round was recorded: nothing to draw
    if privacy.get("delta") is not None:
        budget = privacy.get("max_epsilon")
        lines = [_line(name, series.get(name, {}), "epsilon") for name in names]
        charts.append(
            ChartView(
                "Privacy spent: ε by round",
                line_chart(
                    lines,
                    title=f"ε by round for each hospital (δ = {privacy.get('delta')})",
                    x_label="round",
                    y_label="ε (cumulative)",
                    reference=(float(budget), f"budget ε = {_num(budget)}") if isinstance(budget, int | float) else None,
                ),
                "ε is recomputed from each hospital's accountant history and never decreases: privacy spent is not returned.",
            )
        )
    lines = [
        dataclasses.replace(
            _line(name, series.get(name, {}), "accuracy"),
            why=[f"not evaluated ({STATUS_WORDS.get(str(status), str(status))})" for status in series.get(name, {}).get("status") or ()],
        )
        for name in names
    ]
    charts.append(
        ChartView(
            "Accuracy by round",
            line_chart(lines, title="Accuracy of the global model on each hospital's held-out rows, by round",
                       x_label="round", y_label="accuracy", y_max=1.0),
            _undefined_note(lines, "Not evaluated (marked ?)"),
        )
    )
    metric = gap.get("metric")
    if isinstance(metric, str):
        attribute = str(gap.get("attribute", ""))
        lines = [_line(name, series.get(name, {}), "fairness_gap", "fairness_gap_reason") for name in names]
        federation = _mapping(gap.get("federation"))
        if federation.get("round"):
            lines.append(Line(FEDERATION_LINE, federation["round"], federation.get("value") or (), federation.get("reason") or ()))
        name = GAP_NAMES.get(metric, metric.replace("_", " "))
        charts.append(
            ChartView(
                f"Fairness by round: {name} by {attribute}",
                line_chart(lines, title=f"{name.capitalize()} by {attribute}, by round, per hospital and pooled",
                           x_label="round", y_label=name),
                _undefined_note(lines),
            )
        )
    return tuple(charts)


def _line(name: str, series: Mapping[str, Any], key: str, why: str | None = None) -> Line:
    return Line(
        label=name,
        x=[float(r) for r in series.get("round") or ()],
        y=[float(v) if isinstance(v, int | float) else None for v in series.get(key) or ()],
        why=[str(w) if w else None for w in series.get(why) or ()] if why else (),
    )


def _undefined_note(lines: Sequence[Line], lead: str = "No value (marked ?) — inconclusive, not zero") -> str:
    """One sentence per line with undefined points: which rounds, and why (never a 0)."""
    parts = []
    for line in lines:
        by_reason: dict[str, list[str]] = {}
        for x, y, why in zip(line.x, line.y, [*line.why, *[None] * len(line.x)], strict=False):
            if y is None:
                by_reason.setdefault(why or "undefined", []).append(f"{x:g}")
        for reason, rounds in by_reason.items():
            parts.append(f"{line.label}, round{'s' if len(rounds) > 1 else ''} {', '.join(rounds)}: {reason}")
    if not parts:
        return "Every round has a value."
    return f"{lead}: " + "; ".join(parts) + "."


def _hospital_row(hospital: Mapping[str, Any]) -> HospitalRow:
    ci = hospital.get("accuracy_ci")
    accuracy_round = hospital.get("accuracy_round")
    return HospitalRow(
        name=str(hospital.get("name", "")),
        sites=", ".join(map(str, hospital.get("sites") or ())),
        train_rows=_count(hospital.get("train_rows")),
        test_rows=_count(hospital.get("test_rows")),
        epsilon=_num(hospital.get("epsilon")),
        epsilon_note=str(hospital.get("epsilon_reason") or ""),
        accuracy=_format.number(hospital.get("accuracy")),
        accuracy_ci=(f"{_format.number(ci[0])}–{_format.number(ci[1])} (95%, Clopper–Pearson)" if isinstance(ci, Sequence) and len(ci) == 2 else ""),
        accuracy_note=(f"round {accuracy_round}, n = {hospital.get('test_examples')}" if accuracy_round is not None else "never evaluated"),
        rounds=", ".join(
            f"{hospital.get(key)} {word}"
            for key, word in ROUND_COUNTS
            if key == "rounds_ok" or (isinstance(hospital.get(key), int) and hospital.get(key))
        ),
        trouble=any(isinstance(hospital.get(key), int) and hospital.get(key) for key in ("failed", "refused_budget", "no_reply")),
    )


def _round_row(entry: Mapping[str, Any], columns: Sequence[str], series: Mapping[str, Mapping[str, Any]]) -> RoundRow:
    server_round = entry.get("round")
    hospitals = _mapping(entry.get("hospitals"))
    epsilons = []
    for name in columns:
        s = series.get(name, {})
        rounds = list(s.get("round") or ())
        if server_round in rounds and (value := (s.get("epsilon") or [])[rounds.index(server_round)]) is not None:
            epsilons.append(float(value))
    return RoundRow(
        round=str(server_round),
        aggregated={True: "yes", False: "no"}.get(entry.get("aggregated"), _format.DASH),  # type: ignore[arg-type]
        epsilon_max=_num(max(epsilons)) if epsilons else _format.DASH,
        cells=tuple(_status_cell(_mapping(hospitals.get(name))) for name in columns),
    )


def _status_cell(hospital: Mapping[str, Any]) -> StatusCell:
    status = str(hospital.get("status", STATUS_NOT_SAMPLED))
    details = []
    if isinstance(hospital.get("train_loss"), int | float):
        details.append(f"loss {_num(hospital['train_loss'])}")
    if isinstance(hospital.get("accuracy"), int | float):
        details.append(f"accuracy {_format.number(hospital['accuracy'])} (n = {hospital.get('test_examples')})")
    reason = str(hospital.get("reason") or "")
    return StatusCell(
        status=status,
        word=STATUS_WORDS.get(status, status),
        css=STATUS_CLASSES.get(status, "st-skipped"),
        reason=reason,
        detail=", ".join(details),
    )


def _fairness(
    metrics: Sequence[MetricResult], keys: Sequence[str], names: Sequence[str], footnotes: list[str]
) -> tuple[FairnessRow, ...]:
    by_ref = {(m.key, m.scope): m for m in metrics}
    scopes = list(
        dict.fromkeys(m.scope for m in metrics if m.scope is not None and m.key.startswith("federated.fairness."))
    )
    attributes = list(dict.fromkeys(scope.rpartition("/")[2] for scope in scopes))
    hospitals = list(
        dict.fromkeys(
            [hospital_scope(name) for name in names]
            + [scope.rpartition("/")[0] for scope in scopes if not scope.startswith("federation/")]
        )
    )
    # by attribute (as reported), each hospital in the report's order, the pooled federation last
    scopes.sort(
        key=lambda scope: (
            attributes.index(scope.rpartition("/")[2]),
            scope.startswith("federation/"),
            hospitals.index(scope.rpartition("/")[0]) if not scope.startswith("federation/") else 0,
        )
    )
    rows = []
    for scope in scopes:
        cells = []
        for key in keys:
            metric = by_ref.get((f"federated.fairness.{key}", scope))
            if metric is None or metric.value is None:
                reason = "not reported" if metric is None else (metric.reason or "undefined")
                if reason not in footnotes:
                    footnotes.append(reason)
                cells.append(ValueCell(_format.DASH, note=footnotes.index(reason) + 1))
            else:
                cells.append(ValueCell(_format.number(metric.value), _format.interval(metric.ci)))
        rows.append(FairnessRow(scope=scope, cells=tuple(cells)))
    return tuple(rows)


def _policy_row(finding: Mapping[str, Any]) -> PolicyRow:
    return PolicyRow(
        round=str(finding.get("round", "")),
        rule_id=str(finding.get("rule_id", "")),
        policy=str(finding.get("policy", "")),
        severity=str(finding.get("severity", "")),
        status=str(finding.get("status", "")),
        metric=str(finding.get("metric", "")),
        message=str(finding.get("message", "")),
    )


def _ledger(name: str, ledger: Mapping[str, Any]) -> LedgerTable:
    rows = tuple(
        (
            str(entry.get("round", "")),
            _num(entry.get("noise_multiplier")),
            _num(entry.get("sample_rate")),
            _count(entry.get("steps")),
            _num(entry.get("epsilon")),
        )
        for entry in (_mapping(e) for e in ledger.get("entries") or ())
    )
    file = ledger.get("file")
    if file is None:
        source = f"from {FEDERATED_FILE} (no ledger file beside it)"
    elif ledger.get("matches"):
        source = f"{file} holds the same history (C = {_num(ledger.get('max_grad_norm'))}, {ledger.get('sampling')} sampling)"
    else:
        source = f"{file} does NOT hold the same history as {FEDERATED_FILE}"
    return LedgerTable(hospital=name, rows=rows, source=source)


def _privacy_note(privacy: Mapping[str, Any]) -> str:
    if privacy.get("delta") is None:
        return "Trained without DP-SGD: no hospital has a privacy guarantee, and there is no ε to report."
    return (
        f"ε at δ = {privacy.get('delta')} by Opacus' {str(privacy.get('accountant', '')).upper()} accountant, recomputed "
        "by the audit from each hospital's accountant history. Each patient's records sit at one hospital, so each "
        "patient's guarantee is that hospital's ε."
    )


def _num(value: object, digits: int = 4) -> str:
    if value is None:
        return _format.DASH
    return f"{float(value):.{digits}g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _format.DASH


def _percent(value: object) -> str:
    return f"{float(value):.0%}" if isinstance(value, int | float) else _format.DASH


__all__ = ["FederatedView", "federated_view"]
