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

import bisect
import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from guardrail.auditors.base import AuditContext, AuditorParams, coerce_params
from guardrail.core.errors import AuditError, DataError
from guardrail.core.scopes import hospital_scope
from guardrail.core.serialize import from_jsonable
from guardrail.core.types import AuditResult, AuditStatus, MetricResult

if TYPE_CHECKING:
    from guardrail.auditors.catalog import MetricCatalog

FEDERATED_FILE = "federated.json"
FEDERATED_KIND = "guardrail-federated-history"
FEDERATED_SCHEMA_VERSION = 1
LEDGERS_DIR = "ledgers"
TRAIN_HINT = "train it with `guardrail federate SPEC` and point the spec's model.path at its output folder"
NO_MODEL_FOLDER = "the federated audit reads federated.json from the model folder, and this model is not a folder"
NO_HISTORY = "the model folder has no federated.json: the model was not trained by `guardrail federate`"
NOT_A_HISTORY = f"not a federated training history (kind is not {FEDERATED_KIND!r})"
BAD_HISTORY = "malformed federated.json"
NO_DP = "trained without DP-SGD (settings.dp is null): there is no ε, and no privacy guarantee"
NO_NOISE = "a round trained with noise multiplier 0: ε is unbounded"
NEVER_EVALUATED = "the hospital was never evaluated (no round recorded its accuracy)"

GAP_METRICS = ("equalized_odds_difference", "demographic_parity_difference")
"""The fairness gap charted per round: the first of these the rounds report."""
GAP_ATTRIBUTE = "sex"
STATUSES = ("ok", "failed", "refused-budget", "not-sampled", "no-reply")
AGREE_REL = 1e-9
"""Relative tolerance within which the recorded ε agrees with the recomputed one."""


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
HOSPITAL_KEYS = ("federated.epsilon", "federated.accuracy")
"""Keys reported once per hospital, in scope ``hospital=<name>``."""


class FederatedAuditor:
    """Audit of a model trained by ``guardrail federate``; see the module docstring."""

    name: ClassVar[str] = "federated"
    extra: ClassVar[str] = "privacy"
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
                *((key, {"hospital=*"}) for key in HOSPITAL_KEYS),
                ("federated.fairness.*", {"hospital=*/*", "federation/*"}),
            ],
            possible=self.METRIC_KEYS,
        )

    def run(self, ctx: AuditContext) -> AuditResult:
        started = time.perf_counter()
        path = history_file(ctx.model_path)
        history = load_history(path)
        metrics, artifacts = audit_history(history, path.parent, self.params.fairness_round)
        return AuditResult(
            audit_id=ctx.audit_id,
            auditor=self.name,
            status=AuditStatus.OK,
            metrics=tuple(metrics),
            params=self.params.model_dump(mode="json"),
            artifacts=artifacts,
            duration_s=time.perf_counter() - started,
        )


# -- reading -------------------------------------------------------------------------------
def history_file(model_path: Path | None) -> Path:
    """``<model folder>/federated.json``; :class:`AuditError` if there is none."""
    if model_path is None or not model_path.is_dir():
        raise AuditError(NO_MODEL_FOLDER, where=None if model_path is None else str(model_path), hint=TRAIN_HINT)
    path = model_path / FEDERATED_FILE
    if not path.is_file():
        raise AuditError(NO_HISTORY, where=str(model_path), hint=TRAIN_HINT)
    return path


def load_history(path: Path) -> dict[str, Any]:
    """Read ``federated.json`` and check its kind, version and the shape of what is audited.

    Raises :class:`DataError` naming the file (and the field) when it is not such a history.
    """
    where = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {FEDERATED_FILE} ({exc})", where=where, hint=TRAIN_HINT) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON (line {exc.lineno}: {exc.msg})", where=where, hint=TRAIN_HINT) from None
    if not isinstance(data, dict) or data.get("kind") != FEDERATED_KIND:
        raise DataError(NOT_A_HISTORY, where=where, hint=TRAIN_HINT)
    if data.get("schema_version") != FEDERATED_SCHEMA_VERSION:
        raise DataError(
            f"unsupported {FEDERATED_FILE} schema_version {data.get('schema_version')!r} "
            f"(this guardrail reads {FEDERATED_SCHEMA_VERSION})",
            where=where,
            hint="upgrade guardrail, or retrain with this version of `guardrail federate`",
        )
    try:
        _check_shape(data)
    except _Malformed as exc:
        raise DataError(f"{BAD_HISTORY}: {exc}", where=where, hint=TRAIN_HINT) from None
    return data


class _Malformed(Exception):
    """A field of federated.json is missing or of the wrong type (message: which and why)."""


def _field(
    data: Mapping[str, Any], key: str, kind: type, at: str, *, optional: bool = False, finite: bool = True
) -> Any:
    """``data[key]`` if it is a ``kind`` (for ``float`` any number, finite unless ``finite`` is
    false; never a bool), else :class:`_Malformed`; with ``optional``, a missing key or null is None."""
    if key not in data or (optional and data[key] is None):
        if optional:
            return None
        raise _Malformed(f"{at} lacks {key!r}")
    value = data[key]
    if kind is float:
        ok = isinstance(value, int | float) and (math.isfinite(value) or not finite)
    else:
        ok = isinstance(value, kind)
    if isinstance(value, bool) or not ok:
        raise _Malformed(f"{at}.{key} has the wrong type or value ({value!r})"[:200])
    return value


def _check_shape(data: Mapping[str, Any]) -> None:
    settings = _field(data, "settings", dict, "$")
    _field(settings, "rounds", int, "settings")
    dp = _field(settings, "dp", dict, "settings", optional=True)
    if dp is not None:
        delta = _field(dp, "delta", float, "settings.dp")
        if not 0 < delta < 1:
            raise _Malformed(f"settings.dp.delta must be in (0, 1), got {delta!r}")
        if _field(dp, "accountant", str, "settings.dp") not in ("rdp", "prv"):
            raise _Malformed(f"settings.dp.accountant must be 'rdp' or 'prv', got {dp['accountant']!r}")
    _field(settings, "max_epsilon", float, "settings", optional=True)
    _field(data, "provenance", str, "$")
    _field(data, "rounds_done", int, "$")
    _field(data, "stopped_reason", str, "$", optional=True)
    _field(data, "epsilon_max", float, "$", optional=True, finite=False)
    names = set()
    for i, hospital in enumerate(_field(data, "hospitals", list, "$")):
        at = f"hospitals[{i}]"
        if not isinstance(hospital, dict):
            raise _Malformed(f"{at} is not an object")
        names.add(_field(hospital, "name", str, at))
        _field(hospital, "train_rows", int, at)
        _field(hospital, "test_rows", int, at)
        _field(hospital, "epsilon", float, at, optional=True, finite=False)
        if not all(isinstance(s, str) for s in _field(hospital, "sites", list, at)):
            raise _Malformed(f"{at}.sites must be a list of names")
        record = _field(hospital, "history", dict, at)
        columns = [_field(record, key, list, f"{at}.history") for key in ("round", "noise_multiplier", "sample_rate", "steps")]
        if len({len(c) for c in columns}) != 1:
            raise _Malformed(f"{at}.history's lists differ in length")
        if any(isinstance(r, bool) or not isinstance(r, int) for r in columns[0]) or columns[0] != sorted(columns[0]):
            raise _Malformed(f"{at}.history.round must be round numbers in order")
    if len(names) != len(data["hospitals"]):
        raise _Malformed("two hospitals share a name")
    for i, entry in enumerate(_field(data, "rounds", list, "$")):
        at = f"rounds[{i}]"
        if not isinstance(entry, dict):
            raise _Malformed(f"{at} is not an object")
        _field(entry, "round", int, at)
        for name, hospital in _field(entry, "hospitals", dict, at).items():
            if not isinstance(hospital, dict) or hospital.get("status") not in STATUSES:
                raise _Malformed(f"{at}.hospitals[{name!r}].status must be one of {', '.join(STATUSES)}")
            if "accuracy" in hospital:
                accuracy = _field(hospital, "accuracy", float, f"{at}.hospitals[{name!r}]")
                if not 0 <= accuracy <= 1:
                    raise _Malformed(f"{at}.hospitals[{name!r}].accuracy must be in [0, 1], got {accuracy!r}")
                _field(hospital, "test_examples", int, f"{at}.hospitals[{name!r}]")
        _field(entry, "metrics", list, at, optional=True)
        for j, finding in enumerate(_field(entry, "policy", list, at, optional=True) or ()):
            if not isinstance(finding, dict):
                raise _Malformed(f"{at}.policy[{j}] is not an object")


def _round_metrics(entry: Mapping[str, Any]) -> list[MetricResult]:
    metrics = []
    for j, item in enumerate(entry.get("metrics") or ()):
        try:
            metrics.append(from_jsonable(MetricResult, item))
        except (TypeError, ValueError) as exc:
            raise _Malformed(f"rounds[round {entry['round']}].metrics[{j}]: {exc}") from None
    return metrics


# -- auditing ------------------------------------------------------------------------------
def audit_history(
    data: Mapping[str, Any], folder: Path, fairness_round: Literal["last"] | int = "last"
) -> tuple[list[MetricResult], dict[str, Any]]:
    """The metrics and report artifacts of a history read by :func:`load_history`.

    ``folder`` is where the history lies (its ``ledgers/`` are compared with it).
    """
    where = str(folder / FEDERATED_FILE)
    try:
        round_metrics = {int(entry["round"]): _round_metrics(entry) for entry in data["rounds"]}
    except _Malformed as exc:
        raise DataError(f"{BAD_HISTORY}: {exc}", where=where, hint=TRAIN_HINT) from None
    settings = data["settings"]
    dp = settings.get("dp")
    accountant: Literal["rdp", "prv"] = "prv" if dp and dp.get("accountant") == "prv" else "rdp"
    delta = float(dp["delta"]) if dp else None
    rounds = [int(entry["round"]) for entry in data["rounds"]]
    notes: list[str] = []

    privacy = {
        hospital["name"]: _Privacy.of(hospital, rounds, delta, accountant, where) for hospital in data["hospitals"]
    }
    metrics: list[MetricResult] = [*_progress_metrics(data)]
    metrics += _epsilon_metrics(data, privacy, delta, accountant, notes)
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
            "seconds": _finite(data.get("seconds")),
            "simulation_seconds": _finite(data.get("simulation_seconds")),
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
        "ledgers": {h["name"]: _ledger_summary(h["name"], privacy[h["name"]], folder, dp, notes) for h in data["hospitals"]},
        "stopped_reason": data["stopped_reason"],
        "notes": notes,
    }
    return metrics, artifacts


@dataclasses.dataclass(frozen=True)
class _Privacy:
    """One hospital's accountant history and the ε recomputed from it."""

    entries: tuple[tuple[int, float, float, int], ...]
    """``(round, σ, q, steps)`` as recorded, in order."""
    after_entry: tuple[float | None, ...]
    """Cumulative ε after each entry (None without DP; ``inf`` when σ = 0)."""
    by_round: Mapping[int, float | None]
    """Cumulative ε at the end of each round of the history file (0.0 before any spend)."""
    final: float | None
    recorded: float | None
    recorded_by_round: Mapping[int, float]

    @classmethod
    def of(
        cls, hospital: Mapping[str, Any], rounds: Sequence[int], delta: float | None, accountant: Literal["rdp", "prv"], where: str
    ) -> _Privacy:
        from guardrail.privacy.accounting import check_entry, epsilon

        record = hospital["history"]
        entries = []
        for position, values in enumerate(
            zip(record["round"], record["noise_multiplier"], record["sample_rate"], record["steps"], strict=True)
        ):
            server_round, sigma, rate, steps = values
            try:
                check_entry(sigma, rate, steps)
            except DataError as exc:
                raise DataError(
                    f"{BAD_HISTORY}: hospital {hospital['name']!r} history entry {position}: {exc.message}",
                    where=where,
                    hint=TRAIN_HINT,
                ) from None
            entries.append((int(server_round), float(sigma), float(rate), int(steps)))
        if delta is None:
            after: list[float | None] = [None] * len(entries)
            by_round: dict[int, float | None] = dict.fromkeys(rounds)
            final = None
        else:
            history = [(sigma, rate, steps) for _, sigma, rate, steps in entries]
            after = [epsilon(history[: i + 1], delta, accountant) for i in range(len(entries))]
            # rounds are in order, so ε at the end of a round is ε after its last entry (0 before any spend)
            spent = [er for er, *_ in entries]
            by_round = {}
            for r in rounds:
                count = bisect.bisect_right(spent, r)  # entries spent in rounds up to r
                by_round[r] = after[count - 1] if count else 0.0
            final = after[-1] if after else 0.0
        recorded_by_round = {
            int(r): float(e) for r, e in (hospital.get("epsilon_by_round") or {}).items() if isinstance(e, int | float)
        }
        recorded = hospital.get("epsilon")
        return cls(tuple(entries), tuple(after), by_round, final, None if recorded is None else float(recorded), recorded_by_round)

    @property
    def steps(self) -> int:
        return sum(steps for *_, steps in self.entries)

    def agrees(self) -> bool:
        """Whether the ε recorded in the file (final and per round) equals the recomputed one."""
        if self.final is None:
            return self.recorded is None and not self.recorded_by_round
        if self.recorded is None or not _close(self.recorded, self.final):
            return False
        spent_in = {server_round for server_round, *_ in self.entries}
        return all(
            r in spent_in and (mine := self._after_round(r)) is not None and _close(e, mine)
            for r, e in self.recorded_by_round.items()
        )

    def _after_round(self, server_round: int) -> float | None:
        last = max((i for i, (r, *_) in enumerate(self.entries) if r <= server_round), default=None)
        return None if last is None else self.after_entry[last]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=AGREE_REL, abs_tol=1e-12)


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


def _epsilon_metrics(
    data: Mapping[str, Any],
    privacy: Mapping[str, _Privacy],
    delta: float | None,
    accountant: str,
    notes: list[str],
) -> list[MetricResult]:
    budget = data["settings"].get("max_epsilon")
    common = {"delta": delta, "accountant": accountant if delta is not None else None, "max_epsilon": budget}
    metrics = []
    for name, spent in privacy.items():
        agrees = spent.agrees()
        if not agrees:
            notes.append(
                f"{FEDERATED_FILE} records ε = {_text(spent.recorded)} for hospital {name!r}, but its accountant history "
                f"gives {_text(spent.final)}; the audit uses the history's"
            )
        details = {
            **common,
            "steps": spent.steps,
            "rounds_with_spend": sorted({r for r, *_ in spent.entries}),
            "recorded": _finite(spent.recorded),
            "recorded_agrees": agrees,
        }
        value, reason = _epsilon_value(spent.final)
        metrics.append(
            MetricResult("federated.epsilon", value, scope=hospital_scope(name), reason=reason, higher_is_better=False, details=details)
        )
    finals = {name: spent.final for name, spent in privacy.items()}
    recorded = data.get("epsilon_max")
    if delta is None or not finals:
        value, reason, worst = None, NO_DP if delta is None else "no hospital in the history", None
    elif any(final is not None and not math.isfinite(final) for final in finals.values()):
        value, reason, worst = None, NO_NOISE, next(n for n, f in finals.items() if f is not None and not math.isfinite(f))
    else:
        worst = max(finals, key=lambda n: finals[n] or 0.0)
        value, reason = finals[worst], None
    if value is None or recorded is None:
        agrees = value is None and (recorded is None or not math.isfinite(recorded))
    else:
        agrees = _close(float(recorded), value)
    if not agrees:
        notes.append(f"{FEDERATED_FILE} records ε_max = {_text(recorded)}, but the hospitals' histories give {_text(value)}")
    metrics.append(
        MetricResult(
            "federated.epsilon_max",
            value,
            reason=reason,
            higher_is_better=False,
            details={**common, "hospital": worst, "recorded": _finite(recorded), "recorded_agrees": agrees},
        )
    )
    return metrics


def _epsilon_value(final: float | None) -> tuple[float | None, str | None]:
    if final is None:
        return None, NO_DP
    if not math.isfinite(final):
        return None, NO_NOISE
    return final, None


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
                "federated.accuracy",
                accuracy,
                scope=scope,
                ci=rate_interval(round(accuracy * n), n, 0.95, table=False),
                n=n,
                higher_is_better=True,
                details={"round": int(entry["round"]), "correct": round(accuracy * n)},
            )
    return MetricResult("federated.accuracy", None, scope=scope, reason=NEVER_EVALUATED, higher_is_better=True)


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
            float(len(by_status["failed"])),
            n=hospital_rounds,
            higher_is_better=False,
            details={"failed": by_status["failed"], "no_reply": by_status["no-reply"]},
        ),
        MetricResult(
            "federated.refused_budget",
            float(len(by_status["refused-budget"])),
            n=hospital_rounds,
            higher_is_better=False,
            details={"refused": by_status["refused-budget"]},
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
    privacy: _Privacy,
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
        series["status"].append(hospital.get("status", "not-sampled"))
        series["epsilon"].append(epsilon if epsilon is not None and math.isfinite(epsilon) else None)
        series["accuracy"].append(_finite(hospital.get("accuracy")))
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
    hospital: Mapping[str, Any], spent: _Privacy, accuracy: MetricResult, rounds: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    name = hospital["name"]
    statuses = [entry["hospitals"][name]["status"] for entry in rounds if name in entry["hospitals"]]
    value, reason = _epsilon_value(spent.final)
    return {
        "name": name,
        "sites": list(hospital["sites"]),
        "train_rows": hospital["train_rows"],
        "test_rows": hospital["test_rows"],
        "epsilon": value,
        "epsilon_reason": reason,
        "epsilon_recorded": _finite(spent.recorded),
        "accuracy": accuracy.value,
        "accuracy_ci": None if accuracy.ci is None else [accuracy.ci.low, accuracy.ci.high],
        "accuracy_round": accuracy.details.get("round"),
        "test_examples": accuracy.n,
        "rounds_ok": statuses.count("ok"),
        "failed": statuses.count("failed"),
        "refused_budget": statuses.count("refused-budget"),
        "no_reply": statuses.count("no-reply"),
        "not_sampled": statuses.count("not-sampled"),
    }


ROUND_FIELDS = ("status", "reason", "num_examples", "train_loss", "steps", "accuracy", "test_examples")


def _round_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "round": int(entry["round"]),
        "aggregated": entry.get("aggregated"),
        "seconds": _finite(entry.get("seconds")),
        "epsilon_max": _finite(entry.get("epsilon_max")),
        "hospitals": {
            name: {key: _jsonable(hospital[key]) for key in ROUND_FIELDS if key in hospital}
            for name, hospital in entry["hospitals"].items()
        },
    }


def _ledger_summary(
    name: str, spent: _Privacy, folder: Path, dp: Mapping[str, Any] | None, notes: list[str]
) -> dict[str, Any]:
    """The hospital's accountant history, and whether ``ledgers/<name>.json`` holds the same."""
    from guardrail.privacy.accounting import merge_history
    from guardrail.privacy.ledger import load_ledger

    summary: dict[str, Any] = {
        "entries": [
            {
                "round": server_round,
                "noise_multiplier": sigma,
                "sample_rate": rate,
                "steps": steps,
                "epsilon": after if after is not None and math.isfinite(after) else None,
            }
            for (server_round, sigma, rate, steps), after in zip(spent.entries, spent.after_entry, strict=True)
        ],
        "file": None,
        "matches": None,
    }
    if dp is None:
        return summary
    safe = Path(name).name == name and not name.startswith(".")
    path = folder / LEDGERS_DIR / f"{name}.json"
    relative = f"{LEDGERS_DIR}/{name}.json"
    if not safe or not path.is_file():
        return summary  # nothing to compare with; the report says the history comes from federated.json
    ledger = load_ledger(path)
    history = tuple(merge_history((sigma, rate, steps) for _, sigma, rate, steps in spent.entries))
    rounds = ledger.extra.get("federated", {}).get("round") if isinstance(ledger.extra.get("federated"), dict) else None
    matches = ledger.history == history and _close(ledger.delta, float(dp["delta"])) and (
        rounds is None or list(rounds) == [r for r, *_ in spent.entries]
    )
    if not matches:
        notes.append(f"{relative} does not hold the accountant history {FEDERATED_FILE} records for hospital {name!r}")
    summary.update(
        file=relative,
        matches=matches,
        max_grad_norm=ledger.max_grad_norm,
        sampling=ledger.sampling,
        data_sha256=ledger.data_sha256,
        delta=ledger.delta,
    )
    return summary


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    """``value`` with non-finite numbers as None (run.json stays strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _text(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


__all__ = ["FederatedAuditor", "FederatedParams", "audit_history", "history_file", "load_history"]
