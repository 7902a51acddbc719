"""Federated training audit: what ``guardrail federate`` recorded, checked and made judgeable.

The model folder of a federated run holds ``federated.json`` (the per-round history: every
hospital's status, loss, accuracy, ε and the round's fairness metrics) and, with DP,
``ledgers/<hospital>.json``. This auditor reads them as plain JSON (no torch, Flower or
Ray) and turns them into metrics a policy can judge:

* ``federated.rounds_completed`` — rounds done (details: rounds planned, why it stopped);
* ``federated.stopped_early`` — 1.0 when training stopped before its planned rounds;
* ``federated.epsilon`` [scope ``hospital=<name>``] — the hospital's final ε, **recomputed**
  from its accountant history by Opacus' accountants (:mod:`guardrail.privacy.accounting`);
  the copy in the file is only compared (``details["recorded_agrees"]``);
* ``federated.epsilon_max`` — the largest of them (details: δ, accountant, ε budget);
* ``federated.accuracy`` [scope ``hospital=<name>``] — accuracy in the last round that
  evaluated the hospital, ``n`` its test rows, with the exact (Clopper–Pearson) 95% interval every rate gets;
* ``federated.failures`` and ``federated.refused_budget`` — hospital-rounds that failed, and
  that the privacy budget refused;
* ``federated.fairness.<metric>`` [scopes ``hospital=<name>/<attribute>`` and
  ``federation/<attribute>``] — the fairness metrics of one round (``params.fairness_round``,
  the last by default), re-keyed from ``fairness.<metric>`` and otherwise unchanged: a metric
  over a group below the minimum size stays undefined with its ``small_group`` reason.

Artifacts (JSON-able, for the report): ``provenance``, ``run`` (engine, strategy, rounds
done and planned, stopped reason, seconds), ``settings``, ``privacy`` (δ, accountant, budget),
``hospitals`` (one summary each), ``series`` (per hospital, by round: ε, accuracy, status and
the fairness gap named by ``fairness_gap``), ``fairness_gap``, ``rounds`` (status table),
``policy`` (round-policy findings), ``ledgers`` (per hospital: the accountant history with
ε after each entry, and whether ``ledgers/<hospital>.json`` agrees), ``stopped_reason`` and
``notes`` (disagreements found between the files).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from guardrail.auditors.base import AuditContext, AuditorParams, audit_result, coerce_params
from guardrail.auditors.federated_privacy import HospitalPrivacy, epsilon_metrics, epsilon_value, ledger_summary
from guardrail.core.errors import AuditError
from guardrail.core.scopes import HOSPITAL, hospital_scope
from guardrail.core.serialize import finite_or_none
from guardrail.core.types import AuditResult, MetricResult
from guardrail.federation.history import (
    ACCURACY_KEY,
    EPSILON_KEY,
    FEDERATED_FILE,
    STATUS_FAILED,
    STATUS_NO_REPLY,
    STATUS_NOT_SAMPLED,
    STATUS_OK,
    STATUS_REFUSED_BUDGET,
    STATUSES,
    TRAIN_HINT,
    load_history,
    read_round_metrics,
)

if TYPE_CHECKING:
    from guardrail.auditors.catalog import MetricCatalog

NO_MODEL_FOLDER = f"the federated audit reads {FEDERATED_FILE} from the model folder, and this model is not a folder"
NO_HISTORY = f"the model folder has no {FEDERATED_FILE}: the model was not trained by `guardrail federate`"
NEVER_EVALUATED = "the hospital was never evaluated (no round recorded its accuracy)"

GAP_METRICS = ("equalized_odds_difference", "demographic_parity_difference")
"""The fairness gap charted per round: the first of these the rounds report."""
GAP_ATTRIBUTE = "sex"


class FederatedParams(AuditorParams):
    fairness_round: Literal["last"] | PositiveInt = Field(
        default="last",
        description="The round whose fairness metrics become federated.fairness.*: "
        "'last' (the last round that evaluated fairness) or a round number.",
    )


RUN_KEYS = (
    "federated.rounds_completed",
    "federated.stopped_early",
    "federated.epsilon_max",
    "federated.failures",
    "federated.refused_budget",
)
HOSPITAL_KEYS = (EPSILON_KEY, ACCURACY_KEY)
"""Keys reported once per hospital, in scope ``hospital=<name>``."""


class FederatedAuditor:
    """Audit of a model trained by ``guardrail federate``; see the module docstring."""

    name: ClassVar[str] = "federated"
    Params: ClassVar[type[AuditorParams]] = FederatedParams
    METRIC_KEYS: ClassVar[tuple[str, ...]] = (
        *RUN_KEYS, *HOSPITAL_KEYS, "federated.fairness.*",
    )

    def __init__(self, params: AuditorParams | None = None) -> None:
        self.params = coerce_params(FederatedParams, params)

    def metric_catalog(self, spec: object) -> MetricCatalog:
        """The keys of a federated run's audit; hospitals and attributes come from the run's files."""
        from guardrail.auditors.catalog import UNSCOPED, MetricCatalog

        return MetricCatalog.of(
            [
                *((key, {UNSCOPED}) for key in RUN_KEYS),
                *((key, {f"{HOSPITAL}*"}) for key in HOSPITAL_KEYS),
                ("federated.fairness.*", {f"{HOSPITAL}*/*", "federation/*"}),
            ],
            possible=self.METRIC_KEYS,
        )

    def run(self, ctx: AuditContext) -> AuditResult:
        started = time.perf_counter()
        path = history_file(ctx.model_path)
        history = load_history(path)
        metrics, artifacts = audit_history(history, path.parent, self.params.fairness_round)
        return audit_result(ctx, self.name, self.params, metrics, started, artifacts)


def history_file(model_path: Path | None) -> Path:
    """``<model folder>/federated.json``; :class:`AuditError` if there is none."""
    if model_path is None or not model_path.is_dir():
        raise AuditError(NO_MODEL_FOLDER, where=None if model_path is None else str(model_path), hint=TRAIN_HINT)
    path = model_path / FEDERATED_FILE
    if not path.is_file():
        raise AuditError(NO_HISTORY, where=str(model_path), hint=TRAIN_HINT)
    return path


# -- auditing ------------------------------------------------------------------------------
def audit_history(
    data: Mapping[str, Any], folder: Path, fairness_round: Literal["last"] | int = "last"
) -> tuple[list[MetricResult], dict[str, Any]]:
    """The metrics and report artifacts of a history read by :func:`load_history`.

    ``folder`` is where the history lies (its ``ledgers/`` are compared with it).
    """
    where = str(folder / FEDERATED_FILE)
    round_metrics = read_round_metrics(data, where)
    settings = data["settings"]
    dp = settings.get("dp")
    accountant: Literal["rdp", "prv"] = "prv" if dp and dp.get("accountant") == "prv" else "rdp"
    delta = float(dp["delta"]) if dp else None
    rounds = [int(entry["round"]) for entry in data["rounds"]]
    notes: list[str] = []

    privacy = {
        hospital["name"]: HospitalPrivacy.of(hospital, rounds, delta, accountant, where) for hospital in data["hospitals"]
    }
    metrics: list[MetricResult] = [*_progress_metrics(data)]
    metrics += epsilon_metrics(data, privacy, delta, accountant, notes)
    accuracy_metrics = {hospital["name"]: _accuracy(hospital["name"], data["rounds"]) for hospital in data["hospitals"]}
    metrics += accuracy_metrics.values()
    metrics += _status_metrics(data["rounds"])
    chosen, fairness = _fairness(round_metrics, fairness_round, where)
    metrics += fairness

    gap = next(
        (name for name in GAP_METRICS if any(m.key == f"fairness.{name}" for ms in round_metrics.values() for m in ms)),
        None,
    )
    artifacts: dict[str, Any] = {
        "provenance": data["provenance"],
        "run": {
            "engine": data.get("engine"),
            "strategy": data.get("strategy"),
            "rounds_done": data["rounds_done"],
            "rounds_planned": settings["rounds"],
            "stopped_reason": data["stopped_reason"],
            "seconds": finite_or_none(data.get("seconds")),
            "simulation_seconds": finite_or_none(data.get("simulation_seconds")),
        },
        "settings": _jsonable(settings),
        "privacy": {"delta": delta, "accountant": accountant if dp else None, "max_epsilon": settings.get("max_epsilon")},
        "hospitals": [_hospital_summary(h, privacy[h["name"]], accuracy_metrics[h["name"]], data["rounds"]) for h in data["hospitals"]],
        "series": {
            h["name"]: _series(h["name"], data["rounds"], round_metrics, privacy[h["name"]], gap) for h in data["hospitals"]
        },
        "fairness_gap": {"metric": gap, "attribute": GAP_ATTRIBUTE, "federation": _federation_gap(data["rounds"], round_metrics, gap)},
        "fairness_round": chosen,
        "rounds": [_round_row(entry) for entry in data["rounds"]],
        "policy": [
            {"round": int(entry["round"]), **{k: _jsonable(v) for k, v in finding.items()}}
            for entry in data["rounds"]
            for finding in entry.get("policy") or ()
        ],
        "ledgers": {h["name"]: ledger_summary(h["name"], privacy[h["name"]], folder, dp, notes) for h in data["hospitals"]},
        "stopped_reason": data["stopped_reason"],
        "notes": notes,
    }
    return metrics, artifacts


def _progress_metrics(data: Mapping[str, Any]) -> list[MetricResult]:
    planned = int(data["settings"]["rounds"])
    done = int(data["rounds_done"])
    reason = data["stopped_reason"]
    stopped = reason is not None or done < planned
    why = reason or (f"{done} of {planned} planned rounds ran" if stopped else None)
    return [
        MetricResult(
            "federated.rounds_completed",
            float(done),
            details={"rounds_planned": planned, "stopped_reason": reason},
        ),
        MetricResult(
            "federated.stopped_early",
            1.0 if stopped else 0.0,
            higher_is_better=False,
            details={"reason": why, "rounds_done": done, "rounds_planned": planned},
        ),
    ]


def _accuracy(name: str, rounds: Sequence[Mapping[str, Any]]) -> MetricResult:
    """The hospital's accuracy in the last round that evaluated it, with the exact binomial
    interval every rate gets (:func:`guardrail.fairness.intervals.rate_interval`)."""
    from guardrail.fairness.intervals import rate_interval

    scope = hospital_scope(name)
    for entry in reversed(rounds):
        hospital = entry["hospitals"].get(name, {})
        if "accuracy" in hospital and hospital.get("test_examples"):
            n = int(hospital["test_examples"])
            accuracy = float(hospital["accuracy"])
            return MetricResult(
                ACCURACY_KEY,
                accuracy,
                scope=scope,
                ci=rate_interval(round(accuracy * n), n, 0.95, table=False),
                n=n,
                higher_is_better=True,
                details={"round": int(entry["round"]), "correct": round(accuracy * n)},
            )
    return MetricResult(ACCURACY_KEY, None, scope=scope, reason=NEVER_EVALUATED, higher_is_better=True)


def _status_metrics(rounds: Sequence[Mapping[str, Any]]) -> list[MetricResult]:
    by_status: dict[str, list[dict[str, Any]]] = {status: [] for status in STATUSES}
    for entry in rounds:
        for name, hospital in entry["hospitals"].items():
            by_status[hospital["status"]].append(
                {"round": int(entry["round"]), "hospital": name, "reason": _jsonable(hospital.get("reason"))}
            )
    hospital_rounds = sum(len(entry["hospitals"]) for entry in rounds)
    return [
        MetricResult(
            "federated.failures",
            float(len(by_status[STATUS_FAILED])),
            n=hospital_rounds,
            higher_is_better=False,
            details={"failed": by_status[STATUS_FAILED], "no_reply": by_status[STATUS_NO_REPLY]},
        ),
        MetricResult(
            "federated.refused_budget",
            float(len(by_status[STATUS_REFUSED_BUDGET])),
            n=hospital_rounds,
            higher_is_better=False,
            details={"refused": by_status[STATUS_REFUSED_BUDGET]},
        ),
    ]


def _fairness(
    round_metrics: Mapping[int, Sequence[MetricResult]], fairness_round: Literal["last"] | int, where: str
) -> tuple[int | None, list[MetricResult]]:
    with_fairness = [r for r, ms in round_metrics.items() if any(m.key.startswith("fairness.") for m in ms)]
    if fairness_round == "last":
        if not with_fairness:
            return None, []
        chosen = with_fairness[-1]
    elif fairness_round in with_fairness:
        chosen = fairness_round
    else:
        raise AuditError(
            f"params.fairness_round: round {fairness_round} recorded no fairness metrics",
            where=where,
            hint=f"rounds with fairness metrics: {', '.join(map(str, with_fairness)) or 'none'}; or use fairness_round: last",
        )
    rekeyed = [
        dataclasses.replace(m, key=f"federated.{m.key}", details={**m.details, "round": chosen})
        for m in round_metrics[chosen]
        if m.key.startswith("fairness.")
    ]
    return chosen, rekeyed


def _gap_of(metrics: Sequence[MetricResult], gap: str | None, scope: str) -> tuple[float | None, str | None]:
    found = next((m for m in metrics if gap and m.key == f"fairness.{gap}" and m.scope == scope), None)
    if found is None:
        return None, "not reported"
    return found.value, found.reason


def _series(
    name: str,
    rounds: Sequence[Mapping[str, Any]],
    round_metrics: Mapping[int, Sequence[MetricResult]],
    privacy: HospitalPrivacy,
    gap: str | None,
) -> dict[str, list[Any]]:
    series: dict[str, list[Any]] = {
        "round": [], "status": [], "epsilon": [], "accuracy": [], "fairness_gap": [], "fairness_gap_reason": []
    }
    for entry in rounds:
        server_round = int(entry["round"])
        hospital = entry["hospitals"].get(name, {})
        value, reason = _gap_of(round_metrics[server_round], gap, hospital_scope(name, GAP_ATTRIBUTE))
        epsilon = privacy.by_round.get(server_round)
        series["round"].append(server_round)
        series["status"].append(hospital.get("status", STATUS_NOT_SAMPLED))
        series["epsilon"].append(finite_or_none(epsilon))
        series["accuracy"].append(finite_or_none(hospital.get("accuracy")))
        series["fairness_gap"].append(value)
        series["fairness_gap_reason"].append(reason if value is None else None)
    return series


def _federation_gap(
    rounds: Sequence[Mapping[str, Any]], round_metrics: Mapping[int, Sequence[MetricResult]], gap: str | None
) -> dict[str, list[Any]]:
    values = [_gap_of(round_metrics[int(entry["round"])], gap, f"federation/{GAP_ATTRIBUTE}") for entry in rounds]
    return {
        "round": [int(entry["round"]) for entry in rounds],
        "value": [value for value, _ in values],
        "reason": [reason if value is None else None for value, reason in values],
    }


def _hospital_summary(
    hospital: Mapping[str, Any], spent: HospitalPrivacy, accuracy: MetricResult, rounds: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    name = hospital["name"]
    statuses = [entry["hospitals"][name]["status"] for entry in rounds if name in entry["hospitals"]]
    value, reason = epsilon_value(spent.final)
    return {
        "name": name,
        "sites": list(hospital["sites"]),
        "train_rows": hospital["train_rows"],
        "test_rows": hospital["test_rows"],
        "epsilon": value,
        "epsilon_reason": reason,
        "epsilon_recorded": finite_or_none(spent.recorded),
        "accuracy": accuracy.value,
        "accuracy_ci": None if accuracy.ci is None else [accuracy.ci.low, accuracy.ci.high],
        "accuracy_round": accuracy.details.get("round"),
        "test_examples": accuracy.n,
        "rounds_ok": statuses.count(STATUS_OK),
        "failed": statuses.count(STATUS_FAILED),
        "refused_budget": statuses.count(STATUS_REFUSED_BUDGET),
        "no_reply": statuses.count(STATUS_NO_REPLY),
        "not_sampled": statuses.count(STATUS_NOT_SAMPLED),
    }


ROUND_FIELDS = ("status", "reason", "num_examples", "train_loss", "steps", "accuracy", "test_examples")


def _round_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "round": int(entry["round"]),
        "aggregated": entry.get("aggregated"),
        "seconds": finite_or_none(entry.get("seconds")),
        "epsilon_max": finite_or_none(entry.get("epsilon_max")),
        "hospitals": {
            name: {key: _jsonable(hospital[key]) for key in ROUND_FIELDS if key in hospital}
            for name, hospital in entry["hospitals"].items()
        },
    }


def _jsonable(value: Any) -> Any:
    """``value`` with non-finite numbers as None (run.json stays strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


__all__ = ["FederatedAuditor", "FederatedParams", "audit_history", "history_file", "load_history"]
