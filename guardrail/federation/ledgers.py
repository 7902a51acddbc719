"""A hospital's privacy ledger in a form that lives in Flower's node state.

Each hospital trains with DP-SGD; its accountant history — ``(noise_multiplier,
sample_rate, steps)`` segments, Opacus' ``accountant.history`` shape — must survive from
round to round or ε silently restarts. Flower keeps node state in a ``RecordDict`` whose
``ConfigRecord``/``MetricRecord`` values are numbers and flat lists of numbers, so the
history is kept as four parallel lists (a :data:`HistoryRecord`)::

    {"round": [1, 2], "noise_multiplier": [1.0, 1.0], "sample_rate": [0.02, 0.02], "steps": [50, 50]}

Store it in ``context.state`` under :data:`STATE_KEY` (``ConfigRecord(record)``) and send
it to the server in the round's metrics (``MetricRecord(with_prefix(record))``). Record a
round's spend with :func:`append_spend` *before* anything that can fail after training
started: Flower drops a handler's context changes when it raises.

Every ε comes from :mod:`guardrail.privacy.accounting` (Opacus' RDP or PRV accountant), so
it equals :class:`guardrail.privacy.ledger.Ledger`'s and Opacus' for the same history.
The server reads each hospital's ε per round and the maximum with :func:`epsilon_report`
and refuses a round that would pass a hospital's budget with :func:`would_exceed`;
:func:`hospital_ledger` gives the :class:`~guardrail.privacy.ledger.Ledger` written to disk
at the end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guardrail.core.errors import DataError
from guardrail.privacy.accounting import Accountant, HistoryEntry, check_entry, epsilon
from guardrail.privacy.ledger import Ledger

STATE_KEY = "guardrail.privacy-history"
"""Name of the ConfigRecord holding the history in a node's ``context.state``."""
METRIC_PREFIX = "privacy/"
"""Prefix of the history's keys when sent in a MetricRecord beside other metrics."""
FIELDS = ("round", "noise_multiplier", "sample_rate", "steps")
HistoryRecord = dict[str, list[int] | list[float]]
"""Parallel lists, one element per recorded spend: what a Flower ConfigRecord holds."""
WHERE = "privacy history record"
BAD_RECORD_HINT = "the record must come from guardrail.federation.ledgers (empty_record / append_spend)"


def empty_record() -> HistoryRecord:
    """A history with no spend yet (empty lists are valid ConfigRecord values)."""
    return {"round": [], "noise_multiplier": [], "sample_rate": [], "steps": []}


def append_spend(
    record: Mapping[str, object], server_round: int, noise_multiplier: float, sample_rate: float, steps: int
) -> HistoryRecord:
    """A new record with ``steps`` DP-SGD steps at (σ, q) spent in ``server_round`` appended.

    Rounds must not go backwards (a round may hold several segments, e.g. when σ changes).

    >>> record = append_spend(empty_record(), 1, 1.0, 0.02, 50)
    >>> record = append_spend(record, 2, 1.0, 0.02, 50)
    >>> record["round"], record["steps"]
    ([1, 2], [50, 50])
    """
    rounds, history = read_record(record)
    check_entry(noise_multiplier, sample_rate, steps)
    if isinstance(server_round, bool) or not isinstance(server_round, int) or server_round < 0:
        raise DataError(f"server_round must be an integer ≥ 0, got {server_round!r}", where=WHERE)
    if rounds and server_round < rounds[-1]:
        raise DataError(
            f"round {server_round} recorded after round {rounds[-1]}",
            where=WHERE,
            hint="record each round's spend once, in order; a replayed round must not be recorded twice",
        )
    return make_record([*history, (float(noise_multiplier), float(sample_rate), int(steps))], [*rounds, server_round])


def make_record(history: Sequence[HistoryEntry], rounds: Sequence[int]) -> HistoryRecord:
    """The record of ``history`` with the round each entry was spent in."""
    if len(history) != len(rounds):
        raise DataError(f"{len(history)} history entries but {len(rounds)} rounds", where=WHERE)
    return {
        "round": [int(r) for r in rounds],
        "noise_multiplier": [float(s) for s, _, _ in history],
        "sample_rate": [float(q) for _, q, _ in history],
        "steps": [int(n) for _, _, n in history],
    }


def read_record(record: Mapping[str, object]) -> tuple[list[int], list[HistoryEntry]]:
    """The rounds and the ``(σ, q, steps)`` history of a record, validated.

    A Flower ``ConfigRecord`` or ``MetricRecord`` (both mappings) is read directly; keys
    other than :data:`FIELDS` are ignored.
    """
    missing = [name for name in FIELDS if name not in record]
    if missing:
        raise DataError(f"the record lacks {', '.join(missing)}", where=WHERE, hint=BAD_RECORD_HINT)
    columns = {name: record[name] for name in FIELDS}
    for name, values in columns.items():
        if not isinstance(values, list):
            raise DataError(f"{name!r} must be a list, got {type(values).__name__}", where=WHERE, hint=BAD_RECORD_HINT)
    lengths = {len(values) for values in columns.values()}  # type: ignore[arg-type]
    if len(lengths) != 1:
        raise DataError("the record's lists differ in length", where=WHERE, hint=BAD_RECORD_HINT)
    rounds: list[int] = list(columns["round"])  # type: ignore[call-overload]
    history: list[HistoryEntry] = []
    for sigma, rate, steps in zip(columns["noise_multiplier"], columns["sample_rate"], columns["steps"]):  # type: ignore[call-overload]
        try:
            check_entry(sigma, rate, steps)
        except DataError as exc:
            raise DataError(exc.message, where=WHERE, hint=BAD_RECORD_HINT) from None
        history.append((float(sigma), float(rate), int(steps)))
    if any(isinstance(r, bool) or not isinstance(r, int) for r in rounds) or rounds != sorted(rounds):
        raise DataError("rounds must be integers in order", where=WHERE, hint=BAD_RECORD_HINT)
    return rounds, history


def history_of(record: Mapping[str, object]) -> list[HistoryEntry]:
    """The ``(σ, q, steps)`` history of a record, as fed to Opacus' accountants."""
    return read_record(record)[1]


def with_prefix(record: Mapping[str, object], prefix: str = METRIC_PREFIX) -> HistoryRecord:
    """The record with each key prefixed, to travel in a MetricRecord beside other metrics."""
    rounds, history = read_record(record)
    return {prefix + name: values for name, values in make_record(history, rounds).items()}


def without_prefix(metrics: Mapping[str, object], prefix: str = METRIC_PREFIX) -> HistoryRecord:
    """The history record inside a round's metrics (inverse of :func:`with_prefix`)."""
    rounds, history = read_record({name: metrics[prefix + name] for name in FIELDS if prefix + name in metrics})
    return make_record(history, rounds)


def epsilon_by_round(
    record: Mapping[str, object], delta: float, accountant: Accountant = "rdp"
) -> dict[int, float]:
    """Cumulative ε after each round that recorded spend (ε never restarts between rounds).

    >>> record = append_spend(append_spend(empty_record(), 1, 1.0, 1 / 128, 64), 2, 1.0, 1 / 128, 64)
    >>> {r: round(e, 2) for r, e in epsilon_by_round(record, 1e-5).items()}
    {1: 1.05, 2: 1.11}
    """
    rounds, history = read_record(record)
    result: dict[int, float] = {}
    for position, server_round in enumerate(rounds):
        if position + 1 < len(rounds) and rounds[position + 1] == server_round:
            continue  # ε at the end of the round
        result[server_round] = epsilon(history[: position + 1], delta, accountant)
    return result


@dataclass(frozen=True)
class EpsilonReport:
    """Each hospital's cumulative ε per round, and the largest current ε (the federation's worst case)."""

    per_hospital: Mapping[str, Mapping[int, float]]
    delta: float
    accountant: Accountant

    @property
    def current(self) -> dict[str, float]:
        """Each hospital's ε after its last recorded round (0.0 before any spend)."""
        return {name: (list(rounds.values())[-1] if rounds else 0.0) for name, rounds in self.per_hospital.items()}

    @property
    def maximum(self) -> float:
        return max(self.current.values(), default=0.0)


def epsilon_report(
    records: Mapping[str, Mapping[str, object]], delta: float, accountant: Accountant = "rdp"
) -> EpsilonReport:
    """ε per round of every hospital (hospital name → its history record) and the maximum.

    >>> spend = append_spend(empty_record(), 1, 1.0, 1 / 128, 128)
    >>> round(epsilon_report({"a": spend, "b": empty_record()}, 1e-5).maximum, 2)
    1.11
    """
    return EpsilonReport(
        {name: epsilon_by_round(record, delta, accountant) for name, record in records.items()}, delta, accountant
    )


def epsilon_after(
    history: Sequence[HistoryEntry], next_round_spend: HistoryEntry, delta: float, accountant: Accountant = "rdp"
) -> float:
    """ε once ``next_round_spend`` (σ, q, steps) is added to ``history``."""
    check_entry(*next_round_spend)
    return epsilon([*history, next_round_spend], delta, accountant)


def would_exceed(
    history: Sequence[HistoryEntry],
    next_round_spend: HistoryEntry,
    delta: float,
    max_epsilon: float,
    accountant: Accountant = "rdp",
) -> bool:
    """Whether the next round's spend would push the hospital's ε above ``max_epsilon``.

    The server asks this before sending a round to a hospital and leaves the hospital out
    (or stops) when the answer is yes.

    >>> would_exceed([(1.0, 1 / 128, 64)], (1.0, 1 / 128, 64), 1e-5, max_epsilon=1.0)
    True
    >>> would_exceed([(1.0, 1 / 128, 64)], (1.0, 1 / 128, 64), 1e-5, max_epsilon=1.2)
    False
    """
    return epsilon_after(history, next_round_spend, delta, accountant) > max_epsilon


def hospital_ledger(
    record: Mapping[str, object],
    *,
    delta: float,
    max_grad_norm: float,
    data_sha256: str,
    model: str = "",
    hospital: str = "",
    stopped_reason: str | None = None,
) -> Ledger:
    """The hospital's :class:`~guardrail.privacy.ledger.Ledger`, for ``ledger.json`` at the end.

    The ledger merges equal consecutive segments; the rounds each segment was spent in are
    kept in ``extra["federated"]`` so that per-round ε can be recomputed from the file.
    """
    rounds, history = read_record(record)
    ledger = Ledger(delta=float(delta), max_grad_norm=max_grad_norm, data_sha256=data_sha256, model=model)
    for sigma, rate, steps in history:
        ledger = ledger.record(sigma, rate, steps)
    federated = {"hospital": hospital, **make_record(history, rounds)}
    return dataclasses.replace(ledger, stopped_reason=stopped_reason, extra={"federated": federated})
