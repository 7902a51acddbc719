"""``federated.json``: the round-by-round record of a federated training run (stdlib + core only).

``guardrail federate`` writes it into the model folder beside the global model; the federated
auditor reads it back. This module owns the file: its name, kind and schema version, the
statuses a hospital can have in a round, the round record the ServerApp builds
(:class:`RoundEntry`, :class:`HospitalRound`, made with :func:`new_round`, :func:`trained`,
:func:`evaluated`, …), the writer (:func:`history_document` and :func:`history_json`) and the
reader (:func:`load_history`, :func:`read_round_metrics`). The document, in this key order::

    {"schema_version": 1, "kind": "guardrail-federated-history", "provenance": …, "engine": …,
     "strategy": …, "settings": {"rounds": …, "dp": {…} | null, "max_epsilon": …, …},
     "hospitals": [{"name", "sites", "train_rows", "test_rows", "epsilon", "epsilon_by_round",
                    "history": {"round": […], "noise_multiplier": […], "sample_rate": […], "steps": […]}}],
     "rounds": [{"round", "hospitals": {name: {"status", …}}, "aggregated", "epsilon_max",
                 "metrics", "policy", "seconds"}],
     "rounds_done", "stopped_reason", "epsilon_max", "delta", "seconds", "simulation_seconds"}

Nothing here imports Flower, numpy or the accountants: a hospital's privacy history is checked
for shape only; its entries are checked (and ε recomputed) by whoever accounts for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, Required, TypedDict

from guardrail.core.errors import DataError
from guardrail.core.scopes import hospital_scope
from guardrail.core.serialize import finite_or_none, from_jsonable
from guardrail.core.types import MetricResult

FEDERATED_FILE = "federated.json"
"""The history's name in the model folder."""
FEDERATED_KIND = "guardrail-federated-history"
FEDERATED_SCHEMA_VERSION = 1
LEDGERS_DIR = "ledgers"
"""Beside the history, with DP: ``ledgers/<hospital>.json``, one privacy ledger per hospital."""

TRAIN_HINT = "train it with `guardrail federate SPEC` and point the spec's model.path at its output folder"
NOT_A_HISTORY = f"not a federated training history (kind is not {FEDERATED_KIND!r})"
BAD_HISTORY = f"malformed {FEDERATED_FILE}"

Status = Literal["ok", "failed", "refused-budget", "not-sampled", "no-reply"]
"""What became of a hospital in one round."""
STATUS_OK: Final = "ok"
"""It trained and its update reached the server."""
STATUS_FAILED: Final = "failed"
"""Its node answered with an error (a crash in local training)."""
STATUS_REFUSED_BUDGET: Final = "refused-budget"
"""The round would have taken its ε above the budget: the server (or the node) left it out."""
STATUS_NOT_SAMPLED: Final = "not-sampled"
"""The strategy did not ask it to train this round."""
STATUS_NO_REPLY: Final = "no-reply"
"""It was asked to train and did not answer within the round timeout."""
STATUSES: tuple[Status, ...] = (STATUS_OK, STATUS_FAILED, STATUS_REFUSED_BUDGET, STATUS_NOT_SAMPLED, STATUS_NO_REPLY)

EPSILON_KEY = "federated.epsilon"
"""A hospital's ε (scope ``hospital=<name>``); ``federated.epsilon_max`` the round's largest."""
ACCURACY_KEY = "federated.accuracy"
"""A hospital's accuracy on its held-out rows (scope ``hospital=<name>``)."""


# -- the round record ----------------------------------------------------------------------
class HospitalRound(TypedDict, total=False):
    """One hospital in one round's entry, as the ServerApp records it (keys in this order)."""

    status: Required[Status]
    reason: str
    """Why it did not train (failed, refused-budget, no-reply)."""
    num_examples: int
    """Training rows (status ok), then what its reply reported."""
    train_loss: float | None
    steps: int
    """DP-SGD (or plain) optimizer steps this round."""
    compute_seconds: float
    accuracy: float
    """The round's global model on the hospital's held-out rows (when it was evaluated)."""
    eval_loss: float | None
    test_examples: int
    eval_seconds: float
    epsilon: float
    """Its cumulative ε after the round (with DP; ``inf`` when σ = 0)."""


class RoundEntry(TypedDict, total=False):
    """One round of the history (keys in the order the ServerApp adds them)."""

    round: Required[int]
    hospitals: Required[dict[str, HospitalRound]]
    """Every hospital of the federation (and any unknown node that replied), by name."""
    aggregated: bool
    """Whether any update was aggregated (else the previous global model was kept)."""
    epsilon_max: float | None
    metrics: list[Any]
    """The round's :class:`~guardrail.core.types.MetricResult` as JSON: fairness and :func:`entry_metrics`."""
    policy: list[dict[str, Any]]
    """The round policies' outcomes."""
    seconds: float


def new_round(server_round: int, hospitals: Iterable[str]) -> RoundEntry:
    """A round's entry before anything is sent: every hospital not sampled."""
    return {"round": server_round, "hospitals": {name: {"status": STATUS_NOT_SAMPLED} for name in hospitals}}


def not_training(status: Literal["failed", "refused-budget", "no-reply"], reason: str) -> HospitalRound:
    """A hospital that did not train this round, and why."""
    return {"status": status, "reason": reason}


def trained(num_examples: int, train_loss: Any, steps: int, compute_seconds: float) -> HospitalRound:
    """A hospital whose update reached the server (a non-finite loss is written as null)."""
    return {
        "status": STATUS_OK,
        "num_examples": num_examples,
        "train_loss": finite_or_none(train_loss),
        "steps": steps,
        "compute_seconds": compute_seconds,
    }


def evaluated(
    entry: RoundEntry, name: str, *, accuracy: float, eval_loss: Any, test_examples: int, eval_seconds: float
) -> None:
    """Add a hospital's evaluation of the round's global model to ``entry`` (a non-finite loss as null)."""
    hospital = entry["hospitals"].setdefault(name, {"status": STATUS_NOT_SAMPLED})
    hospital["accuracy"] = accuracy
    hospital["eval_loss"] = finite_or_none(eval_loss)
    hospital["test_examples"] = test_examples
    hospital["eval_seconds"] = eval_seconds


def entry_metrics(entry: RoundEntry) -> list[MetricResult]:
    """The metrics a round's entry gives the round policies: each hospital's ε and accuracy and
    the round's largest ε (fairness metrics come from the counts, not from here)."""
    metrics = []
    for name, hospital in entry["hospitals"].items():
        scope = hospital_scope(name)
        if "epsilon" in hospital:
            metrics.append(MetricResult(EPSILON_KEY, hospital["epsilon"], scope=scope, higher_is_better=False))
        if "accuracy" in hospital:
            metrics.append(
                MetricResult(ACCURACY_KEY, hospital["accuracy"], scope=scope, n=hospital["test_examples"], higher_is_better=True)
            )
    if entry.get("epsilon_max") is not None:
        metrics.append(MetricResult(f"{EPSILON_KEY}_max", entry["epsilon_max"], higher_is_better=False))
    return metrics


# -- the document --------------------------------------------------------------------------
class Settings(TypedDict):
    """How the federation was trained (the job's settings, as ``guardrail federate`` writes them)."""

    rounds: int
    local_epochs: int
    batch_size: int
    lr: float
    optimizer: str
    proximal_mu: float
    fraction_train: float
    min_nodes: int
    round_timeout: float
    model: str
    max_length: int
    dp: dict[str, Any] | None
    """noise_multiplier, delta, max_grad_norm, accountant, grad_sample_mode; null without DP."""
    max_epsilon: float | None
    min_group_size: int
    faults: list[dict[str, Any]]
    round_policies: list[str]
    pretraining: dict[str, Any] | None
    reproducible_noise: bool


class HospitalRecord(TypedDict):
    """A hospital's summary and its whole accountant history."""

    name: str
    sites: list[str]
    train_rows: int
    test_rows: int
    epsilon: float | None
    epsilon_by_round: dict[str, float]
    history: dict[str, Any]
    """Parallel lists ``round``, ``noise_multiplier``, ``sample_rate``, ``steps`` (:mod:`.ledgers`)."""


class FederatedHistory(TypedDict):
    """The whole of ``federated.json``."""

    schema_version: int
    kind: str
    provenance: str
    engine: str
    strategy: str
    settings: Settings
    hospitals: list[HospitalRecord]
    rounds: list[RoundEntry]
    rounds_done: int
    stopped_reason: str | None
    epsilon_max: float | None
    delta: float | None
    seconds: float
    simulation_seconds: float | None


def hospital_record(
    name: str,
    sites: Sequence[str],
    train_rows: int,
    test_rows: int,
    epsilon: float | None,
    epsilon_by_round: Mapping[int, float],
    history: dict[str, Any],
) -> HospitalRecord:
    """A hospital's part of the document; ``epsilon_by_round`` keyed by round (written as strings)."""
    return {
        "name": name,
        "sites": list(sites),
        "train_rows": train_rows,
        "test_rows": test_rows,
        "epsilon": epsilon,
        "epsilon_by_round": {str(r): e for r, e in epsilon_by_round.items()},
        "history": history,
    }


def history_document(
    *,
    provenance: str,
    engine: str,
    strategy: str,
    settings: Settings,
    hospitals: Sequence[HospitalRecord],
    rounds: Sequence[RoundEntry],
    rounds_done: int,
    stopped_reason: str | None,
    epsilon_max: float | None,
    delta: float | None,
    seconds: float,
    simulation_seconds: float | None,
) -> FederatedHistory:
    """The history of a finished (or stopped) run, this guardrail's kind and version."""
    return {
        "schema_version": FEDERATED_SCHEMA_VERSION,
        "kind": FEDERATED_KIND,
        "provenance": provenance,
        "engine": engine,
        "strategy": strategy,
        "settings": settings,
        "hospitals": list(hospitals),
        "rounds": list(rounds),
        "rounds_done": rounds_done,
        "stopped_reason": stopped_reason,
        "epsilon_max": epsilon_max,
        "delta": delta,
        "seconds": seconds,
        "simulation_seconds": simulation_seconds,
    }


def history_json(document: FederatedHistory) -> str:
    """The text of ``federated.json`` (an infinite ε, σ = 0, is written as ``Infinity``)."""
    return json.dumps(document, indent=1, sort_keys=False)


# -- reading -------------------------------------------------------------------------------
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


def read_round_metrics(data: Mapping[str, Any], where: str) -> dict[int, list[MetricResult]]:
    """Each round's metrics of a history read by :func:`load_history`, by round; :class:`DataError`
    (at ``where``) for one that is not a metric."""
    try:
        return {int(entry["round"]): _round_metrics(entry) for entry in data["rounds"]}
    except _Malformed as exc:
        raise DataError(f"{BAD_HISTORY}: {exc}", where=where, hint=TRAIN_HINT) from None


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


__all__ = [
    "ACCURACY_KEY",
    "BAD_HISTORY",
    "EPSILON_KEY",
    "FEDERATED_FILE",
    "FEDERATED_KIND",
    "FEDERATED_SCHEMA_VERSION",
    "LEDGERS_DIR",
    "NOT_A_HISTORY",
    "STATUSES",
    "TRAIN_HINT",
    "FederatedHistory",
    "HospitalRecord",
    "HospitalRound",
    "RoundEntry",
    "Settings",
    "Status",
    "entry_metrics",
    "evaluated",
    "history_document",
    "history_json",
    "hospital_record",
    "load_history",
    "new_round",
    "not_training",
    "read_round_metrics",
    "trained",
]
