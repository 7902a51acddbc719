"""The Flower ClientApp: a hospital node (Message API).

* ``train`` — local DP-SGD from the global weights. The round's privacy spend (σ, q, steps)
  is appended to the node's history in ``context.state`` **before** training starts, and
  a failure after that is answered with an error reply instead of an exception, so Flower
  keeps the state: a crashed round's spend stays in the hospital's ledger. A round that
  would take the hospital past ``max_epsilon`` is refused without training.
* ``evaluate`` — the global model on the node's own held-out notes: accuracy, loss and the
  per-(grouping, group) confusion counts for fairness.
* ``query`` — the node's privacy history, which the server collects at the end.

Every reply names its node (``hospital-index``) and carries the full history, so the
server can always rebuild each hospital's ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp

from guardrail.federation import ledgers
from guardrail.federation.flower import local
from guardrail.federation.job import job_for

app = ClientApp()

FAILED_AFTER_TRAINING = 4201
REFUSED_CODE = 4202
REFUSED_BUDGET = "budget-refused"
RESUME_PREFIX = "resume/"


class InjectedFault(RuntimeError):
    """A failure the job's ``faults`` asked for (resilience drills and tests)."""


def _index(context: Context) -> int:
    return int(context.node_config["partition-id"])


def _record(context: Context, node: local.Node, config: ConfigRecord | None) -> dict[str, Any]:
    """The node's history: the longer of its own state and the server's copy (a resumed federation,
    a restarted node, or a round the server counted for it after a failure): never the shorter."""
    own: dict[str, Any] = dict(context.state[ledgers.STATE_KEY]) if ledgers.STATE_KEY in context.state else ledgers.empty_record()
    if config is not None:
        carried = {
            key[len(RESUME_PREFIX) + len(node.name) + 1 :]: value
            for key, value in config.items()
            if key.startswith(f"{RESUME_PREFIX}{node.name}/")
        }
        if carried:
            rounds, history = ledgers.read_record(carried)
            if len(rounds) > len(own["round"]):
                return ledgers.make_record(history, rounds)
    return own


def _save(context: Context, record: dict[str, Any]) -> None:
    context.state[ledgers.STATE_KEY] = ConfigRecord(record)


def _metrics(index: int, record: dict[str, Any], **values: float) -> MetricRecord:
    return MetricRecord({"hospital-index": index, **values, **ledgers.with_prefix(record)})


@app.train()
def train(msg: Message, context: Context) -> Message:
    job, index = job_for(context.run_config), _index(context)
    node = local.load_node(job, index)
    config = msg.content.config_records["config"]
    server_round = int(config["server-round"])  # type: ignore[arg-type]
    record = _record(context, node, config)
    spend = node.round_spend
    if local.over_budget(job, record, spend):
        _save(context, record)
        return Message(Error(code=REFUSED_CODE, reason=f"{REFUSED_BUDGET}: {node.name} would pass max_epsilon"), reply_to=msg)
    if job.fault_for(node.name, server_round, "before_training"):
        raise InjectedFault(f"{node.name} failed before training in round {server_round} (injected fault)")
    before = record
    if spend is not None:
        record = ledgers.append_spend(record, server_round, *spend)
    _save(context, record)  # the spend is recorded before anything that can fail
    try:
        result = local.train_round(job, node, weights_of(msg.content.array_records["arrays"]), server_round, before)
        if job.fault_for(node.name, server_round, "after_training"):
            raise InjectedFault(f"{node.name} failed after training in round {server_round} (injected fault)")
    except Exception as error:  # noqa: BLE001 — answered as an error reply so the spend stays in state
        return Message(
            Error(code=FAILED_AFTER_TRAINING, reason=f"{type(error).__name__}: {error}; its privacy spend is recorded"),
            reply_to=msg,
        )
    arrays = array_record(result.weights)
    metrics = _metrics(
        index,
        record,
        **{
            "num-examples": result.num_examples,
            "train-loss": result.loss,  # NaN when every Poisson draw of the round was empty
            "steps": result.steps,
            "compute-seconds": result.seconds,
        },
    )
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


def weights_of(arrays: ArrayRecord) -> local.Weights:
    """The numpy weights an ``ArrayRecord`` carries, by name."""
    return dict(zip(list(arrays.keys()), arrays.to_numpy_ndarrays(), strict=True))


def array_record(weights: Mapping[str, Any]) -> ArrayRecord:
    """Weights as the ``ArrayRecord`` Flower sends (contiguous arrays)."""
    return ArrayRecord({name: Array(np.ascontiguousarray(value)) for name, value in weights.items()})


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    job, index = job_for(context.run_config), _index(context)
    node = local.load_node(job, index)
    result = local.evaluate(job, node, weights_of(msg.content.array_records["arrays"]))
    record = _record(context, node, None)
    metrics = _metrics(
        index,
        record,
        **{
            "num-examples": result.num_examples,
            "eval-loss": result.loss,
            "accuracy": result.accuracy,
            "compute-seconds": result.seconds,
            **result.counts,
        },
    )
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    node = local.load_node(job_for(context.run_config), _index(context))
    config = msg.content.config_records.get("config")
    record = _record(context, node, config)
    _save(context, record)
    spend = node.round_spend or (0.0, 0.0, 0)
    planned = {"planned-noise-multiplier": spend[0], "planned-sample-rate": spend[1], "planned-steps": spend[2]}
    return Message(RecordDict({"metrics": _metrics(node.data.index, record, **planned)}), reply_to=msg)
