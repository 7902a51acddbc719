"""What a training run is told (:class:`TrainConfig`, :class:`DPConfig`) and what it records
per epoch and in its checkpoint (:class:`EpochRecord`, :class:`TrainState`).

Plain dataclasses, no heavy import: the trainer (:mod:`guardrail.training.loop`), the
model folder writer (:mod:`guardrail.training.io`) and federated training share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, cast

from guardrail.core.errors import UsageError
from guardrail.privacy.accounting import Accountant

GradSampleMode = Literal["hooks", "ghost", "ew", "functorch"]
GRAD_SAMPLE_MODES: tuple[GradSampleMode, ...] = ("hooks", "ghost", "ew", "functorch")
DEFAULT_GRAD_SAMPLE_MODE: GradSampleMode = "ew"
"""Fastest correct mode measured on tiny BERT (benchmarks/dp_step.py: ew ≈ 1.5× a non-private step,
ghost ≈ 2.1×, hooks ≈ 2.1–2.3×, functorch ≈ 2.6–5×); exact per-sample clipping, checked against
per-example backward passes in tests/training/test_per_sample_gradients.py."""

REPRODUCIBLE_NOISE_NOTE = (
    "DP sampling and noise were seeded from the run's seed (reproducible, for tests and benchmarks): "
    "anyone who knows that seed can regenerate the noise, so ε does not hold against them"
)
"""Ledger note of a DP run with ``TrainConfig.secret_noise=False``."""


class DPSection(Protocol):
    """The DP settings a spec or a job gives: a ``train.privacy.dp`` section
    (:class:`guardrail.spec.training.DPSpec`) or a federated job's
    (:class:`guardrail.federation.job.DPSettings`). :meth:`DPConfig.from_section` also reads
    ``target_epsilon``, ``max_epsilon`` and ``allow_non_poisson`` where the section has them."""

    @property
    def delta(self) -> float: ...

    @property
    def max_grad_norm(self) -> float: ...

    @property
    def noise_multiplier(self) -> float | None: ...

    @property
    def accountant(self) -> Accountant: ...

    @property
    def grad_sample_mode(self) -> str: ...


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD settings. Exactly one of ``noise_multiplier`` / ``target_epsilon``."""

    delta: float
    max_grad_norm: float = 1.0
    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    accountant: Accountant = "rdp"
    grad_sample_mode: GradSampleMode = DEFAULT_GRAD_SAMPLE_MODE
    max_epsilon: float | None = None
    allow_non_poisson: bool = False

    def __post_init__(self) -> None:
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise UsageError(
                "give exactly one of noise_multiplier and target_epsilon for DP training"
            )
        if not 0 < self.delta < 1:
            raise UsageError(f"delta must be in (0, 1), got {self.delta!r}")
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise UsageError(
                f"unknown grad_sample_mode {self.grad_sample_mode!r}",
                hint=f"use one of {GRAD_SAMPLE_MODES}",
            )

    @classmethod
    def from_section(cls, section: DPSection) -> DPConfig:
        """The settings of a spec's or a job's DP section; a setting the section does not have
        (a federated job has no ``target_epsilon``, ``max_epsilon`` or ``allow_non_poisson``)
        keeps its default here."""
        return cls(
            delta=section.delta,
            max_grad_norm=section.max_grad_norm,
            noise_multiplier=section.noise_multiplier,
            target_epsilon=getattr(section, "target_epsilon", None),
            accountant=section.accountant,
            grad_sample_mode=cast(GradSampleMode, section.grad_sample_mode),  # checked in __post_init__
            max_epsilon=getattr(section, "max_epsilon", None),
            allow_non_poisson=getattr(section, "allow_non_poisson", False),
        )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; ``dp=None`` trains without privacy."""

    epochs: int = 5
    batch_size: int = 64
    lr: float = 0.05
    optimizer: Literal["sgd", "adam"] = "sgd"
    seed: int = 0
    dp: DPConfig | None = None
    device: str | None = None
    """``None``: CUDA when available, else CPU."""
    secret_noise: bool = True
    """Under DP, seed sampling and noise from a fresh secret instead of ``seed`` (see
    :mod:`guardrail.training.loop`); ``False`` makes them reproducible from ``seed`` (tests,
    benchmarks, an auditor's own reference runs) and the ledger then says so. Without DP it
    has no effect."""


@dataclass(frozen=True)
class EpochRecord:
    """One epoch in ``history.json``: its steps, mean loss, time, ε after it and, under DP,
    the σ of its last step (a resumed run under ``target_epsilon`` changes σ between runs)."""

    epoch: int
    steps: int
    loss: float
    seconds: float
    epsilon: float | None = None
    noise_multiplier: float | None = None


@dataclass
class TrainState:
    """What a checkpoint must restore besides weights: epochs done and the ledger."""

    epochs_done: int = 0
    steps_done: int = 0
    history: list[EpochRecord] = field(default_factory=list)
