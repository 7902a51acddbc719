"""One hospital's part of a round — local DP-SGD training and held-out evaluation — without Flower.

The ClientApp (:mod:`guardrail.federation.flower.client_app`) is a thin wrapper around
:func:`train_round` and :func:`evaluate`; the plain sequential loop
(:func:`plain_loop`, the benchmark's reference and the tests' oracle) calls the very same
functions, so per-hospital ε and weights can be compared between the two exactly.

Local training is :class:`guardrail.training.loop.Trainer` (Opacus DP-SGD, Poisson sampling
at q = batch_size / N of the hospital's own training rows), started each round from the
global weights with a seed derived from (job seed, hospital, round). FedProx adds
μ (w − w_global) to the gradient just before the optimizer step — after Opacus has clipped
and noised it, since the term depends on no patient data, so it costs no privacy.
"""

from __future__ import annotations

import copy
import secrets
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.federation import ledgers
from guardrail.federation.fairness import hospital_counts
from guardrail.federation.flower.data import HospitalData, hospital_data
from guardrail.federation.job import INITIAL_MODEL, Job
from guardrail.privacy.ledger import Ledger

if TYPE_CHECKING:
    import torch

Weights = dict[str, np.ndarray]
"""A model's state as numpy arrays (what an ``ArrayRecord`` carries)."""


@dataclass(frozen=True)
class Node:
    """A hospital node's loaded model template, tokenizer and data (built once per process)."""

    job: Job
    data: HospitalData
    template: Any
    tokenizer: Any

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def round_spend(self) -> tuple[float, float, int] | None:
        """What one round of local DP-SGD spends here (:func:`planned_spend`); ``None`` without DP."""
        return planned_spend(self.job, int(self.data.train.labels.shape[0]))


@lru_cache(maxsize=8)
def _node(job_json: str, index: int) -> Node:
    from guardrail.adapters.huggingface import load_hf_classifier

    job = Job.from_json(job_json)
    template, tokenizer = load_hf_classifier(job.work / INITIAL_MODEL, what="initial federated model")
    return Node(job, hospital_data(job, index, tokenizer), template, tokenizer)


def load_node(job: Job, index: int) -> Node:
    return _node(job.to_json(), index)


def load_weights(path: Any) -> Weights:
    """Model weights from a safetensors file (numpy; no torch needed)."""
    from safetensors.numpy import load_file

    return dict(load_file(str(path)))


def save_weights(weights: Mapping[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in weights.items()})


def round_seed(job: Job, hospital: str, server_round: int) -> int:
    """Seed of a hospital's local training in a round when it may be known (no DP, or the job's
    ``reproducible_noise``): the same in Flower and in the plain loop."""
    return job.seed * 1_000_003 + zlib.crc32(f"{hospital}:{server_round}".encode()) % 1_000_000


def planned_spend(job: Job, n_train: int) -> tuple[float, float, int] | None:
    """(σ, q, steps) one round of local DP-SGD spends at a hospital with ``n_train`` rows; ``None`` without DP.

    Opacus' Poisson loader draws ``int(1 / q)`` batches an epoch, each counted as a step.
    """
    if job.dp is None:
        return None
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    sample_rate = min(1.0, job.batch_size / n_train)
    steps = len(UniformWithReplacementSampler(num_samples=n_train, sample_rate=sample_rate))
    return job.dp.noise_multiplier, sample_rate, steps * job.local_epochs


def record_ledger(job: Job, node: Node, record: Mapping[str, object]) -> Ledger | None:
    """The hospital's ledger so far, rebuilt from its history record (for the Trainer to continue)."""
    if job.dp is None:
        return None
    return ledgers.hospital_ledger(
        record, delta=job.dp.delta, max_grad_norm=job.dp.max_grad_norm, data_sha256=node.data.data_sha256,
        model=node.name, hospital=node.name,
    )


def over_budget(job: Job, record: Mapping[str, object], spend: tuple[float, float, int] | None) -> bool:
    """Whether spending ``spend`` next would take the hospital's ε (from ``record``) above the job's ``max_epsilon``."""
    if spend is None or job.max_epsilon is None or job.dp is None:
        return False
    return ledgers.would_exceed(ledgers.history_of(record), spend, job.dp.delta, job.max_epsilon, job.dp.accountant)


@dataclass(frozen=True)
class LocalResult:
    weights: Weights
    num_examples: int
    loss: float
    steps: int
    seconds: float


def model_with(node: Node, weights: Mapping[str, np.ndarray]) -> Any:
    """A fresh copy of the node's model holding ``weights``."""
    import torch

    model = copy.deepcopy(node.template)
    state = {name: torch.from_numpy(np.array(value, copy=True)) for name, value in weights.items()}
    model.load_state_dict(state, strict=True)
    return model.train()  # from_pretrained returns eval mode; Opacus trains only in training mode


def weights_of(model: Any) -> Weights:
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in model.state_dict().items()}


def train_round(job: Job, node: Node, weights: Mapping[str, np.ndarray], server_round: int, record: Mapping[str, object]) -> LocalResult:
    """Train the hospital's local epochs from the global ``weights`` (DP-SGD when the job says so).

    ``record`` is the hospital's history *before* this round; the caller records the round's
    spend (:func:`planned_spend`) before calling, so a failure here still leaves it in the ledger.
    """
    import torch

    from guardrail.training.config import DPConfig, TrainConfig
    from guardrail.training.loop import Trainer
    from guardrail.training.models import text_batch_forward

    started = time.perf_counter()
    # Under DP the noise must be unpredictable to the server, which holds the job and its seed:
    # a fresh secret seed each round unless the job asks for reproducible noise (tests, benchmarks).
    # (40 bits: out of reach of a search, and the Trainer's derived seeds seed * 1_000_003 + epoch stay in int64)
    seed = round_seed(job, node.name, server_round) if job.reproducible_noise or job.dp is None else secrets.randbits(40)
    torch.manual_seed(seed)  # dropout draws from the global generator: the same masks in any process
    model = model_with(node, weights)
    dp = job.dp
    config = TrainConfig(
        epochs=job.local_epochs,
        batch_size=job.batch_size,
        lr=job.lr,
        optimizer="adam" if job.optimizer == "adam" else "sgd",
        seed=seed,
        secret_noise=False,  # the seed above is already the round's secret (or reproducible on request)
        device=None if job.device == "auto" else job.device,
        dp=None if dp is None else DPConfig.from_section(dp),
    )
    trainer = Trainer(
        model,
        node.data.train.tensors,
        text_batch_forward,
        config,
        ledger=record_ledger(job, node, record),
        data_sha256=node.data.data_sha256,
        model_ref=node.name,
    )
    if job.proximal_mu > 0:
        _add_proximal_term(trainer.base_optimizer, job.proximal_mu)
    epochs = trainer.run_epochs(job.local_epochs)
    seen = [e for e in epochs if np.isfinite(e.loss)]
    loss = float(np.mean([e.loss for e in seen])) if seen else float("nan")
    return LocalResult(
        weights_of(trainer.module),
        int(node.data.train.labels.shape[0]),
        loss,
        trainer.state.steps_done,
        time.perf_counter() - started,
    )


def _add_proximal_term(optimizer: torch.optim.Optimizer, mu: float) -> None:
    """FedProx: before each step, add μ (w − w_global) to every parameter's (already private) gradient."""
    import torch

    anchors = {
        id(p): p.detach().clone() for group in optimizer.param_groups for p in group["params"]
    }

    def hook(opt: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        with torch.no_grad():
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.add_(p.detach() - anchors[id(p)], alpha=mu)

    optimizer.register_step_pre_hook(hook)


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    num_examples: int
    counts: dict[str, int]
    """Per-(grouping, group) confusion counts (:func:`guardrail.federation.fairness.hospital_counts`)."""
    seconds: float


def evaluate(job: Job, node: Node, weights: Mapping[str, np.ndarray]) -> Evaluation:
    """The global model on the hospital's own held-out notes: loss, accuracy, confusion counts by group."""
    import torch

    from guardrail.adapters.torch import pick_device
    from guardrail.training.models import text_batch_forward

    started = time.perf_counter()
    device = pick_device(None if job.device == "auto" else job.device)
    model = model_with(node, weights).to(device).eval()
    test = node.data.test
    logits = []
    with torch.no_grad():
        for start in range(0, len(test.labels), 128):
            batch = [t[start : start + 128].to(device) for t in (test.input_ids, test.attention_mask)]
            logits.append(text_batch_forward(model, batch).float().cpu())
    all_logits = torch.cat(logits)
    loss = float(torch.nn.functional.cross_entropy(all_logits, test.labels))
    predicted = all_logits.argmax(-1).numpy()
    accuracy = float((predicted == test.labels.numpy()).mean())
    counts = hospital_counts(test.rows, predicted)
    return Evaluation(loss, accuracy, len(test.labels), counts, time.perf_counter() - started)


def average(updates: Sequence[tuple[Mapping[str, np.ndarray], int]]) -> Weights:
    """Weights averaged by number of examples — FedAvg's rule, computed as Flower computes it."""
    total = sum(n for _, n in updates)
    result: Weights = {}
    for weights, n in updates:
        factor = n / total
        for name, value in weights.items():
            if name in result:
                result[name] += value * factor
            else:
                result[name] = value * factor
    return result


@dataclass(frozen=True)
class PlainRun:
    """The same federated training in a plain sequential loop (no Flower, no Ray)."""

    weights: Weights
    records: dict[str, dict[str, list[int] | list[float]]]
    accuracy: dict[int, dict[str, float]]
    compute_seconds: float
    seconds: float


def plain_loop(job: Job, initial: Mapping[str, np.ndarray]) -> PlainRun:
    """Every round: each hospital trains from the global weights, then FedAvg; then evaluation."""
    started = time.perf_counter()
    nodes = [load_node(job, index) for index in range(len(job.hospital_names))]
    weights: Weights = {k: np.array(v, copy=True) for k, v in initial.items()}
    records: dict[str, dict[str, list[int] | list[float]]] = {node.name: ledgers.empty_record() for node in nodes}
    accuracy: dict[int, dict[str, float]] = {}
    compute = 0.0
    for server_round in range(1, job.rounds + 1):
        updates = []
        for node in nodes:
            spend = node.round_spend
            before = records[node.name]
            if spend is not None:
                records[node.name] = ledgers.append_spend(before, server_round, *spend)
            result = train_round(job, node, weights, server_round, before)
            compute += result.seconds
            updates.append((result.weights, result.num_examples))
        weights = average(updates)
        accuracy[server_round] = {}
        for node in nodes:
            evaluation = evaluate(job, node, weights)
            compute += evaluation.seconds
            accuracy[server_round][node.name] = evaluation.accuracy
    return PlainRun(weights, records, accuracy, compute, time.perf_counter() - started)
