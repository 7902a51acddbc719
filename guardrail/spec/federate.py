"""The ``federate:`` spec section: federated training across simulated hospital nodes.

Example::

    federate:
      hospitals: {merge: {Switzerland: VA Long Beach}, test_size: 0.25}
      model: {kind: bert-tiny, max_length: 96}
      rounds: 5
      local_epochs: 1
      batch_size: 16
      lr: 0.001
      optimizer: adam
      strategy: {name: fedprox, proximal_mu: 0.01}
      privacy:
        dp: {noise_multiplier: 1.0, delta: 1.0e-5, max_grad_norm: 1.0}
        max_epsilon: 8
      out: ../models/heart-federated

Paths are relative to the spec file. Nothing here imports torch or Flower.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guardrail.spec.training import (
    GradSampleModeName,
    PretrainedModelSpec,
    TinyBertModelSpec,
)

SiteName = Literal["Cleveland", "Hungary", "VA Long Beach", "Switzerland"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HospitalsSpec(_Strict):
    """Which nodes the four UCI Heart Disease sites become, and each node's held-out share."""

    merge: dict[SiteName, SiteName] = Field(
        default_factory=dict, description="Site → the site whose node it joins (3–5 nodes must result)."
    )
    split: dict[SiteName, Annotated[int, Field(ge=2, le=4)]] = Field(
        default_factory=dict, description="Site → number of nodes it is split into (stratified, seeded)."
    )
    test_size: float = Field(default=0.25, ge=0.05, le=0.5, description="Share of each node's rows held out.")
    only: tuple[str, ...] | None = Field(
        default=None,
        min_length=2,
        description="Run with these nodes only (node names such as cleveland, hungary); for drills and tests.",
    )


class FederatedDPSpec(_Strict):
    """Record-level DP-SGD (Opacus) inside every hospital, with the same σ everywhere."""

    noise_multiplier: float = Field(gt=0, description="σ of the Gaussian noise, at every hospital.")
    delta: float = Field(gt=0, lt=1, description="δ of every hospital's guarantee.")
    max_grad_norm: float = Field(default=1.0, gt=0, description="Per-example clipping norm C.")
    accountant: Literal["rdp", "prv"] = "rdp"
    grad_sample_mode: GradSampleModeName = "ew"


class FederatedPrivacySpec(_Strict):
    dp: FederatedDPSpec | None = None
    max_epsilon: float | None = Field(
        default=None,
        gt=0,
        description="Each hospital's budget: the server leaves a hospital out of any round that would take "
        "its ε above this, and stops when no hospital can train.",
    )

    @model_validator(mode="after")
    def _budget_needs_dp(self) -> FederatedPrivacySpec:
        if self.max_epsilon is not None and self.dp is None:
            raise ValueError("max_epsilon is a DP budget, but there is no privacy.dp")
        return self


class StrategySpec(_Strict):
    name: Literal["fedavg", "fedprox"] = "fedavg"
    proximal_mu: float = Field(
        default=0.0, ge=0, description="FedProx: weight of the proximal term ‖w − w_global‖²/2 (0 for fedavg)."
    )

    @model_validator(mode="after")
    def _mu_for_fedprox(self) -> StrategySpec:
        if self.name == "fedavg" and self.proximal_mu != 0:
            raise ValueError("proximal_mu applies to fedprox; use name: fedprox")
        return self


class FederatedFairnessSpec(_Strict):
    """Per-(hospital, group) fairness computed every round from confusion counts."""

    min_group_size: int = Field(default=30, ge=1, description="Smaller groups come out inconclusive.")
    bootstrap: int = Field(default=200, ge=0, le=10_000, description="Bootstrap resamples per interval.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class PretrainSpec(_Strict):
    """Public pretraining of a bert-tiny reader on template notes from random records (no patient data)."""

    enabled: bool = Field(
        default=True,
        description="Pretrain the tiny BERT to read the note templates before federated DP-SGD "
        "(without it, DP noise keeps a randomly initialised reader at the majority class).",
    )
    notes: int = Field(default=4000, ge=100, le=100_000, description="Template notes to pretrain on.")
    epochs: int = Field(default=10, ge=1, le=100)


class FaultSpec(_Strict):
    """An injected failure, for resilience drills: the node fails in that round."""

    hospital: str = Field(min_length=1, description="Node name, e.g. hungary.")
    round: int = Field(ge=1)
    stage: Literal["after_training", "before_training"] = Field(
        default="after_training",
        description="after_training: the DP steps ran (their spend is recorded) and then the node fails.",
    )


class FederateSpec(_Strict):
    """The ``federate:`` section."""

    hospitals: HospitalsSpec = Field(default_factory=HospitalsSpec)
    model: Annotated[TinyBertModelSpec | PretrainedModelSpec, Field(discriminator="kind")]
    pretrain: PretrainSpec = Field(default_factory=PretrainSpec)
    rounds: int = Field(default=5, ge=1, le=1000)
    local_epochs: int = Field(default=1, ge=1, le=100)
    batch_size: int = Field(default=16, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    optimizer: Literal["sgd", "adam"] = "adam"
    seed: int = Field(default=0, ge=0)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    fraction_train: float = Field(default=1.0, gt=0, le=1, description="Share of nodes sampled each round.")
    min_nodes: int = Field(default=2, ge=1, description="Nodes that must be connected before a round starts.")
    round_timeout: float = Field(default=300, gt=0, description="Seconds the server waits for a round's replies.")
    timeout: float = Field(
        default=1800, gt=0, description="Hard limit in seconds on the whole simulation (it runs in a subprocess)."
    )
    privacy: FederatedPrivacySpec = Field(default_factory=FederatedPrivacySpec)
    fairness: FederatedFairnessSpec = Field(default_factory=FederatedFairnessSpec)
    round_policies: tuple[str, ...] = Field(
        default=(),
        description="Policy files judged after every round on that round's metrics: a failing deny rule "
        "stops training, a failing warn rule is flagged in the history.",
    )
    faults: tuple[FaultSpec, ...] = ()
    reproducible_noise: bool = Field(
        default=False,
        description="Seed the DP noise and sampling from the job's seed (for tests and benchmarks only): "
        "whoever knows the seed — the server does — can subtract the noise from an update, so no ε holds "
        "against it. By default every round draws a fresh unpredictable seed at the hospital.",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    out: str = Field(min_length=1, description="Output folder: global model, ledgers, history, audit table.")
    resume: bool = Field(default=False, description="Continue from the checkpoint in `out` if there is one.")

    @model_validator(mode="after")
    def _pretrain_for_tiny_bert(self) -> FederateSpec:
        if self.model.kind == "pretrained" and "pretrain" in self.model_fields_set and self.pretrain.enabled:
            raise ValueError("pretrain applies to bert-tiny; a pretrained model is already pretrained (set pretrain.enabled: false)")
        return self
