"""The Flower ServerApp: rounds of FedAvg/FedProx with per-hospital privacy budgets and fairness.

The round loop is guardrail's, the federated learning is Flower's: node sampling, message
construction and weighted aggregation come from the ``flwr.serverapp.strategy`` FedAvg or
FedProx object, while the loop adds what a hospital federation needs between rounds:

1. **Handshake** (a ``query`` to every node): which hospital each node serves, its privacy
   history so far and the spend one round costs it.
2. **Budget**: a hospital whose next round would take its ε above ``max_epsilon`` is left
   out of the round (and said so in the history); when no hospital can train, training stops.
3. **Train** with the strategy; error replies (a crashed hospital) are logged and the rest
   aggregated; a round with no usable reply keeps the previous global model.
4. **Evaluate** on every hospital's held-out notes; confusion counts by group become
   per-hospital and federation-wide fairness metrics (:mod:`guardrail.federation.fairness`).
5. **Judge** the round's metrics against the job's ``round_policies``: a failing deny rule stops
   training; other findings are flagged.
6. **Checkpoint** the global weights, the history and every hospital's privacy history
   (atomically), so a resumed run continues the ledgers instead of restarting them.

At the end each node's history is queried once more and the result is written as
``result.json`` in the work folder, which the runner turns into the output folder.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    RecordDict,
)
from flwr.serverapp import Grid, ServerApp

from guardrail.core.atomic import write_all_atomic, write_atomic
from guardrail.core.serialize import to_jsonable
from guardrail.core.types import AuditResult, AuditStatus, MetricResult, OutcomeStatus, Severity
from guardrail.federation import ledgers
from guardrail.federation.fairness import aggregate_fairness
from guardrail.federation.flower.client_app import (
    REFUSED_BUDGET,
    RESUME_PREFIX,
    array_record,
    weights_of,
)
from guardrail.federation.flower.local import load_weights, over_budget, save_weights
from guardrail.federation.history import (
    STATUS_FAILED,
    STATUS_NO_REPLY,
    STATUS_NOT_SAMPLED,
    STATUS_REFUSED_BUDGET,
    RoundEntry,
    entry_metrics,
    evaluated,
    new_round,
    not_training,
    trained,
)
from guardrail.federation.job import (
    CHECKPOINT_STATE,
    CHECKPOINT_WEIGHTS,
    INITIAL_MODEL,
    RESULT_FILE,
    Job,
    job_for,
)

if TYPE_CHECKING:
    from guardrail.policy.engine import Policy

app = ServerApp()
log = logging.getLogger("guardrail.federate")
POLICY_STOP = "stopped after round"


@app.main()
def main(grid: Grid, context: Context) -> None:
    FederatedServer(job_for(context.run_config), grid).run()


class FederatedServer:
    def __init__(self, job: Job, grid: Grid) -> None:
        self.job = job
        self.grid = grid
        self.strategy = _strategy(job)
        self.node_hospital: dict[int, str] = {}
        self.records: dict[str, dict[str, Any]] = {name: ledgers.empty_record() for name in job.hospital_names}
        self.round_spend: dict[str, tuple[float, float, int]] = {}
        self.rounds: list[RoundEntry] = []
        self.stopped_reason: str | None = None
        self.start_round = 1
        self.started = time.perf_counter()
        self.weights = load_weights(job.work / INITIAL_MODEL / "model.safetensors")
        if job.resume and (job.checkpoint_dir / CHECKPOINT_STATE).is_file():
            state = json.loads((job.checkpoint_dir / CHECKPOINT_STATE).read_text())
            self.weights = load_weights(job.checkpoint_dir / CHECKPOINT_WEIGHTS)
            self.records = {name: dict(record) for name, record in state["records"].items()}
            self.rounds = list(state["rounds"])
            self.start_round = int(state["rounds_done"]) + 1
            # a policy stop is final; a budget or availability stop is judged again (budgets, nodes may differ now)
            stopped = state.get("stopped_reason")
            self.stopped_reason = stopped if stopped and stopped.startswith(POLICY_STOP) else None

    # -- messages --------------------------------------------------------------------
    def _carried_histories(self) -> ConfigRecord:
        """Each hospital's history from the checkpoint, for nodes whose state is new (a resumed run)."""
        carried: dict[str, Any] = {}
        for name, record in self.records.items():
            if record["round"]:
                carried.update({f"{RESUME_PREFIX}{name}/{key}": value for key, value in record.items()})
        return ConfigRecord(carried)

    def _await_nodes(self, wanted: int, before: str) -> bool:
        """Wait up to one round timeout for ``wanted`` connected nodes (Flower's own wait has no timeout);
        stop training ``before`` (a phrase) when fewer than ``min_nodes`` are connected by then."""
        deadline = time.monotonic() + self.job.round_timeout
        while (connected := len(list(self.grid.get_node_ids()))) < wanted and time.monotonic() < deadline:
            time.sleep(0.2)
        if connected < self.job.min_nodes:
            self.stopped_reason = (
                f"stopped before {before}: {connected} node(s) connected within {self.job.round_timeout:g} s, "
                f"fewer than min_nodes={self.job.min_nodes}"
            )
            return False
        return True

    def _query_all(self, only_unknown: bool = False) -> dict[str, dict[str, Any]]:
        config = self._carried_histories()
        messages = [
            Message(RecordDict({"config": config}), dst_node_id=node_id, message_type=MessageType.QUERY)
            for node_id in self.grid.get_node_ids()
            if not (only_unknown and node_id in self.node_hospital)
        ]
        if not messages:
            return {}
        found: dict[str, dict[str, Any]] = {}
        for reply in self.grid.send_and_receive(messages, timeout=self.job.round_timeout):
            if reply.has_error():
                log.warning("node %s did not answer the query: %s", reply.metadata.src_node_id, reply.error.reason)
                continue
            claimed = self._claimed(reply)
            if claimed is not None:
                found[claimed[0]] = claimed[1]
        return found

    def _claimed(self, reply: Message) -> tuple[str, dict[str, Any]] | None:
        """The hospital a successful reply speaks for (:meth:`_claim`) and the reply's metrics."""
        metrics: dict[str, Any] = dict(reply.content["metrics"])
        name = self._claim(reply.metadata.src_node_id, metrics)
        return None if name is None else (name, metrics)

    def _claim(self, node_id: int, metrics: Mapping[str, Any]) -> str | None:
        """The hospital a node's reply speaks for; ``None`` (and a warning) for an index out of
        range or a hospital another live node already serves — two nodes training one hospital's
        records would each keep half of its privacy spend."""
        index = int(metrics["hospital-index"])
        if not 0 <= index < len(self.job.hospital_names):
            log.warning("node %s claims hospital index %s; there are %s hospitals", node_id, index, len(self.job.hospital_names))
            return None
        name = self.job.hospital_names[index]
        owner = next((other for other, claimed in self.node_hospital.items() if claimed == name and other != node_id), None)
        if owner is not None and owner in set(self.grid.get_node_ids()):
            log.warning("node %s claims %s, which node %s serves; its reply is ignored", node_id, name, owner)
            return None
        self.node_hospital[node_id] = name
        return name

    def _discover(self, *, only_unknown: bool) -> None:
        """Ask nodes which hospital they serve, their privacy history and what a round costs them."""
        for name, metrics in self._query_all(only_unknown=only_unknown).items():
            self._update_records(name, metrics)
            if metrics.get("planned-steps"):
                self.round_spend[name] = (
                    float(metrics["planned-noise-multiplier"]),
                    float(metrics["planned-sample-rate"]),
                    int(metrics["planned-steps"]),
                )

    def _update_records(self, name: str, metrics: Mapping[str, Any]) -> None:
        record = ledgers.without_prefix(metrics)
        if len(record["round"]) >= len(self.records[name]["round"]):
            self.records[name] = dict(record)

    # -- the loop --------------------------------------------------------------------
    def run(self) -> None:
        job = self.job
        self._await_nodes(len(job.hospital_names), "training")  # every hospital, if they come in time
        self._discover(only_unknown=False)
        arrays = array_record(self.weights)
        for server_round in range(self.start_round, job.rounds + 1):
            if self.stopped_reason or not self._await_nodes(job.min_nodes, f"round {server_round}"):
                break
            self._discover(only_unknown=True)  # nodes that joined (or came back) since
            arrays = self._round(server_round, arrays)
            if self.rounds and self.rounds[-1]["round"] == server_round:
                self._checkpoint(server_round, arrays)
        for name, metrics in self._query_all().items():
            self._update_records(name, metrics)
        self._write_result(arrays)

    def _round(self, server_round: int, arrays: ArrayRecord) -> ArrayRecord:
        job = self.job
        started = time.perf_counter()
        entry = new_round(server_round, job.hospital_names)
        config = ConfigRecord({"server-round": server_round, **self._carried_histories()})
        messages = list(self.strategy.configure_train(server_round, arrays, config, self.grid))
        to_send = []
        for message in messages:
            name = self.node_hospital.get(message.metadata.dst_node_id)
            if name is not None and self._over_budget(name):
                reason = f"the round would take its ε above max_epsilon={job.max_epsilon}"
                entry["hospitals"][name] = not_training(STATUS_REFUSED_BUDGET, reason)
                continue
            if name is not None:
                entry["hospitals"][name] = not_training(STATUS_NO_REPLY, f"no reply within {job.round_timeout:g} s")
            to_send.append(message)
        if not to_send:
            self.stopped_reason = (
                f"stopped before round {server_round}: every hospital's next round would pass max_epsilon={job.max_epsilon}"
                if any(h["status"] == STATUS_REFUSED_BUDGET for h in entry["hospitals"].values())
                else f"stopped before round {server_round}: no hospital was available"
            )
            return arrays
        pending = self._write_ahead(server_round, to_send)
        replies = list(self.grid.send_and_receive(to_send, timeout=job.round_timeout))
        refused = self._read_train_replies(replies, entry)
        self._settle(server_round, {name: spend for name, spend in pending.items() if name not in refused})
        aggregated, _ = self.strategy.aggregate_train(server_round, replies)
        entry["aggregated"] = aggregated is not None
        if aggregated is not None:
            arrays = aggregated
        self._evaluate(server_round, arrays, entry)
        entry["seconds"] = time.perf_counter() - started
        self.rounds.append(entry)
        return arrays

    def _write_ahead(self, server_round: int, messages: Iterable[Message]) -> dict[str, tuple[float, float, int]]:
        """Count the round's spend of every hospital asked to train *before* asking (checkpointed):
        if the server dies after the updates left the hospitals, a resumed run still counts them."""
        pending = {
            name: self.round_spend[name]
            for message in messages
            if (name := self.node_hospital.get(message.metadata.dst_node_id)) is not None and name in self.round_spend
        }
        if pending and self.job.dp is not None:
            ahead = {
                name: ledgers.append_spend(record, server_round, *pending[name]) if name in pending else record
                for name, record in self.records.items()
            }
            state = {**self._state(server_round - 1), "records": ahead}
            write_atomic(self.job.checkpoint_dir / CHECKPOINT_STATE, json.dumps(state, indent=1, default=_json_default))
        return pending

    def _settle(self, server_round: int, pending: Mapping[str, tuple[float, float, int]]) -> None:
        """A hospital asked to train whose reply did not show the round's spend (it failed or did not
        answer) is counted as having spent it: the update may have been computed and sent."""
        if self.job.dp is None:
            return
        for name, spend in pending.items():
            if server_round not in self.records[name]["round"]:
                self.records[name] = ledgers.append_spend(self.records[name], server_round, *spend)

    def _over_budget(self, name: str) -> bool:
        return over_budget(self.job, self.records[name], self.round_spend.get(name))

    def _read_train_replies(self, replies: Iterable[Message], entry: RoundEntry) -> set[str]:
        """Record each hospital's reply in the round entry; returns the hospitals that refused to train."""
        refused = set()
        for reply in replies:
            name = self.node_hospital.get(reply.metadata.src_node_id, f"node-{reply.metadata.src_node_id}")
            if reply.has_error():
                reason = reply.error.reason or "unknown error"
                if reason.startswith(REFUSED_BUDGET):
                    refused.add(name)  # it checked its own ledger and did not train: nothing spent
                    entry["hospitals"][name] = not_training(STATUS_REFUSED_BUDGET, reason)
                else:
                    entry["hospitals"][name] = not_training(STATUS_FAILED, reason)
                continue
            claimed = self._claimed(reply)
            if claimed is None:
                continue
            name, metrics = claimed
            self._update_records(name, metrics)
            entry["hospitals"][name] = trained(
                int(metrics["num-examples"]), metrics["train-loss"], int(metrics["steps"]), float(metrics["compute-seconds"])
            )
        return refused

    def _evaluate(self, server_round: int, arrays: ArrayRecord, entry: RoundEntry) -> None:
        job = self.job
        messages = list(self.strategy.configure_evaluate(server_round, arrays, ConfigRecord(), self.grid))
        counts: dict[str, dict[str, Any]] = {}
        for reply in self.grid.send_and_receive(messages, timeout=job.round_timeout):
            if reply.has_error():
                continue
            claimed = self._claimed(reply)
            if claimed is None:
                continue
            name, metrics = claimed
            self._update_records(name, metrics)
            evaluated(
                entry,
                name,
                accuracy=float(metrics["accuracy"]),
                eval_loss=metrics["eval-loss"],
                test_examples=int(metrics["num-examples"]),
                eval_seconds=float(metrics["compute-seconds"]),
            )
            counts[name] = {k: v for k, v in metrics.items() if k.startswith("cm/")}
        epsilons = self._epsilons()
        for name, epsilon in epsilons.items():
            entry["hospitals"].setdefault(name, {"status": STATUS_NOT_SAMPLED})["epsilon"] = epsilon
        entry["epsilon_max"] = max(epsilons.values(), default=None) if job.dp else None
        metrics_of_round: list[MetricResult] = []
        if counts:
            fairness = aggregate_fairness(
                counts,
                min_group_size=job.min_group_size,
                bootstrap=job.bootstrap,
                confidence=job.confidence,
                seed=job.seed + server_round,
            )
            metrics_of_round += fairness.all()
        metrics_of_round += entry_metrics(entry)
        entry["metrics"] = to_jsonable(metrics_of_round)
        entry["policy"] = self._judge(metrics_of_round, server_round)

    def _epsilons(self) -> dict[str, float]:
        job = self.job
        if job.dp is None:
            return {}
        report = ledgers.epsilon_report(self.records, job.dp.delta, job.dp.accountant)
        return report.current

    @functools.cached_property
    def _round_policies(self) -> list[Policy]:
        from guardrail.policy.engine import Policy
        from guardrail.spec.loader import load_policy

        return [Policy.from_loaded(load_policy(path)) for path in self.job.round_policies]

    def _judge(self, metrics: list[MetricResult], server_round: int) -> list[dict[str, Any]]:
        if not self.job.round_policies:
            return []
        from guardrail.policy.engine import evaluate

        verdict = evaluate(self._round_policies, [AuditResult("federated-round", "federated", AuditStatus.OK, tuple(metrics))])
        outcomes = [
            {
                "rule_id": o.rule_id,
                "policy": o.policy,
                "metric": o.metric,
                "severity": o.severity.value,
                "status": o.status.value,
                "message": o.message,
            }
            for o in verdict.outcomes
        ]
        failed = [o for o in verdict.outcomes if o.severity is Severity.DENY and o.status is OutcomeStatus.FAIL]
        if failed:
            self.stopped_reason = f"stopped after round {server_round}: " + "; ".join(o.message for o in failed)
        return outcomes

    # -- files -----------------------------------------------------------------------
    def _state(self, rounds_done: int) -> dict[str, Any]:
        return {
            "rounds_done": rounds_done,
            "records": self.records,
            "rounds": self.rounds,
            "stopped_reason": self.stopped_reason,
        }

    def _checkpoint(self, rounds_done: int, arrays: ArrayRecord) -> None:
        folder = self.job.checkpoint_dir
        write_all_atomic(
            {
                folder / CHECKPOINT_WEIGHTS: save_weights(weights_of(arrays)),
                folder / CHECKPOINT_STATE: json.dumps(self._state(rounds_done), indent=1, default=_json_default),
            }
        )

    def _write_result(self, arrays: ArrayRecord) -> None:
        rounds_done = self.rounds[-1]["round"] if self.rounds else self.start_round - 1
        self._checkpoint(rounds_done, arrays)
        result = {**self._state(rounds_done), "seconds": time.perf_counter() - self.started}
        write_atomic(self.job.work / RESULT_FILE, json.dumps(result, indent=1, default=_json_default))


def _strategy(job: Job) -> Any:
    from flwr.serverapp.strategy import FedAvg, FedProx

    nodes = len(job.hospital_names)
    common: dict[str, Any] = {
        "fraction_train": job.fraction_train,
        "fraction_evaluate": 1.0,
        "min_train_nodes": max(1, min(job.min_nodes, nodes)),
        "min_evaluate_nodes": max(1, min(job.min_nodes, nodes)),
        "min_available_nodes": 1,  # guardrail enforces min_nodes with a timeout (_enough_nodes); Flower's wait has none
        "train_metrics_aggr_fn": _mean_loss,
        "evaluate_metrics_aggr_fn": _mean_accuracy,
    }
    if job.strategy == "fedprox":
        return FedProx(proximal_mu=job.proximal_mu, **common)
    return FedAvg(**common)


def _weighted_mean(records: list[RecordDict], weight_key: str, key: str) -> Any:
    from flwr.app import MetricRecord

    pairs = [(float(m[key]), float(m[weight_key])) for r in records for m in r.metric_records.values()]  # type: ignore[arg-type]
    total = sum(w for _, w in pairs)
    return MetricRecord({key: sum(v * w for v, w in pairs) / total if total else 0.0})


def _mean_loss(records: list[RecordDict], weight_key: str) -> Any:
    return _weighted_mean(records, weight_key, "train-loss")


def _mean_accuracy(records: list[RecordDict], weight_key: str) -> Any:
    return _weighted_mean(records, weight_key, "accuracy")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
