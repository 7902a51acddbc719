"""A federated job: everything the ServerApp and ClientApps need, as one JSON file.

The runner (:mod:`guardrail.run.federate`) turns a validated ``federate:`` section into
a :class:`Job`, writes it into the run's work folder with the initial model, and the Flower
apps read it back — in the simulation subprocess, in Ray's workers, or on another machine
under the deployment engine (``job`` in the run config). Paths in a job are absolute.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guardrail.core.atomic import write_atomic
from guardrail.core.errors import UsageError

JOB_FILE = "job.json"
JOB_ENV = "GUARDRAIL_FEDERATE_JOB"
"""Environment variable naming the job file (the simulation engine passes no run config)."""
INITIAL_MODEL = "initial"
"""Folder (in the work folder) with the initial global model, its config and tokenizer."""
CHECKPOINT_WEIGHTS = "global.safetensors"
CHECKPOINT_STATE = "state.json"
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class DPSettings:
    noise_multiplier: float
    delta: float
    max_grad_norm: float = 1.0
    accountant: Literal["rdp", "prv"] = "rdp"
    grad_sample_mode: str = "ew"


@dataclass(frozen=True)
class Fault:
    hospital: str
    round: int
    stage: str = "after_training"


@dataclass(frozen=True)
class Job:
    """One federated training run."""

    work_dir: str
    hospital_names: tuple[str, ...]
    """Node names in partition order (partition-id i serves ``hospital_names[i]``)."""
    merge: dict[str, str] = field(default_factory=dict)
    split: dict[str, int] = field(default_factory=dict)
    test_size: float = 0.25
    model_source: str = "bert-tiny"
    max_length: int = 96
    tiny: dict[str, int] = field(default_factory=dict)
    """TinyBertConfig keyword arguments (``model_source == "bert-tiny"``)."""
    pretrain_notes: int = 0
    """Template notes the tiny BERT reader is pretrained on (0: no pretraining)."""
    pretrain_epochs: int = 0
    rounds: int = 5
    local_epochs: int = 1
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0
    strategy: str = "fedavg"
    proximal_mu: float = 0.0
    fraction_train: float = 1.0
    min_nodes: int = 2
    round_timeout: float = 300.0
    dp: DPSettings | None = None
    max_epsilon: float | None = None
    min_group_size: int = 30
    bootstrap: int = 200
    confidence: float = 0.95
    round_policies: tuple[str, ...] = ()
    faults: tuple[Fault, ...] = ()
    device: str = "auto"
    resume: bool = False
    reproducible_noise: bool = False
    """Seed DP noise and sampling from (seed, hospital, round); else a fresh secret seed each round."""

    @property
    def work(self) -> Path:
        return Path(self.work_dir)

    @property
    def checkpoint_dir(self) -> Path:
        return self.work / "checkpoint"

    def fault_for(self, hospital: str, server_round: int, stage: str) -> Fault | None:
        return next(
            (f for f in self.faults if f.hospital == hospital and f.round == server_round and f.stage == stage), None
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Job:
        data: dict[str, Any] = json.loads(text)
        dp = data.pop("dp")
        faults = data.pop("faults")
        return cls(
            **{
                **data,
                "hospital_names": tuple(data["hospital_names"]),
                "round_policies": tuple(data["round_policies"]),
            },
            dp=None if dp is None else DPSettings(**dp),
            faults=tuple(Fault(**f) for f in faults),
        )

    def save(self) -> Path:
        return write_atomic(self.work / JOB_FILE, self.to_json())


def job_for(run_config: Mapping[str, Any] | None) -> Job:
    """The job of a Flower app: the run config's ``job`` (deployment engine), else :data:`JOB_ENV` (simulation)."""
    path = run_config.get("job") if run_config else None
    return load_job(str(path) if path else None)


def load_job(path: str | os.PathLike[str] | None = None) -> Job:
    """The job at ``path``, or at the path in :data:`JOB_ENV`."""
    where = path or os.environ.get(JOB_ENV)
    if not where:
        raise UsageError(
            f"no federated job given: set {JOB_ENV} or the run config's `job`",
            hint="start federated training with `guardrail federate SPEC`",
        )
    return Job.from_json(Path(where).read_text())
