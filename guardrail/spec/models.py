"""The audit spec and policy file formats, validated strictly (unknown keys are errors).

Paths are kept as written here; :mod:`guardrail.spec.loader` resolves them against the
spec file's folder and checks they exist.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guardrail.core.vocab import DEFAULT_FORMATS, FormatName, Task
from guardrail.spec.federate import FederateSpec
from guardrail.spec.training import TrainSpec

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A finite number as YAML writes one: ``yes``, ``.nan`` and ``.inf`` are refused, not read as 1.0 or NaN."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SklearnModelSpec(StrictModel):
    """A scikit-learn model saved with skops (``.skops``)."""

    adapter: Literal["sklearn"]
    path: str = Field(description="Path to the .skops file, relative to the spec file.")
    trusted_types: tuple[str, ...] = Field(
        default=(),
        description="Extra fully-qualified types to trust when loading, beyond skops' defaults. "
        "Only list types whose code you trust.",
    )


class PredictionsModelSpec(StrictModel):
    """The model's outputs are columns of the data table (any model, any language)."""

    adapter: Literal["predictions"]
    column: str = Field(min_length=1, description="Column holding the predicted label.")
    score_column: str | None = Field(
        default=None, description="Optional column holding the predicted probability of the positive class."
    )


ClassLabel = str | int | bool


class TorchModelSpec(StrictModel):
    """A torch model, weights from safetensors only and no code from the model files. One of:

    * ``path``: a folder written by ``guardrail train`` (an MLP, or a Hugging Face classifier
      with its tokenizer), or any local Hugging Face sequence-classification folder with a
      fast tokenizer (then ``text_column`` says which column holds the text);
    * ``module`` + ``weights``: a plain ``torch.nn.Module`` from your own code, named by its
      import path, with its state dict in a safetensors file. It reads the numeric columns
      ``data.features`` as one float tensor and returns one logit per class (or a single
      logit: the probability of ``classes[1]`` by the sigmoid).
    """

    adapter: Literal["torch"]
    path: str | None = Field(default=None, description="The model folder, relative to the spec file.")
    module: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="Import path 'package.module:Name' of an nn.Module class or a function that builds one; "
        "the spec's folder is searched first. This runs your code, never code from the weights.",
    )
    weights: str | None = Field(default=None, description="The module's state dict (.safetensors), relative to the spec file.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments that build the module.")
    classes: tuple[ClassLabel, ...] | None = Field(
        default=None,
        min_length=2,
        description="The class of each output, in order. Default: [0, 1] for a module; a Hugging Face "
        "folder's id2label.",
    )
    text_column: str | None = Field(
        default=None, min_length=1, description="Text column, for a Hugging Face folder not written by guardrail train."
    )
    max_length: int | None = Field(default=None, ge=8, le=8192, description="Tokens per text (default: the tokenizer's, at most 512).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where to run the model: 'auto' uses CUDA when present."
    )

    @model_validator(mode="after")
    def _one_source(self) -> TorchModelSpec:
        if (self.path is None) == (self.module is None):
            raise ValueError("give exactly one of path (a model folder) and module (an import path, with weights)")
        if self.module is not None:
            if self.weights is None:
                raise ValueError("module needs weights: the safetensors file with its state dict")
            if not self.weights.lower().endswith(".safetensors"):
                raise ValueError(
                    f"weights must be a .safetensors file, not {self.weights!r} (pickle-based .pt/.pth/.bin files "
                    "are never loaded); save them with safetensors.torch.save_file(module.state_dict(), path)"
                )
            misplaced = [k for k in ("text_column", "max_length") if getattr(self, k) is not None]
            if misplaced:
                verb = "applies" if len(misplaced) == 1 else "apply"
                raise ValueError(f"{' and '.join(misplaced)} {verb} to a Hugging Face folder (path), not to a module")
        elif self.weights is not None or self.kwargs:
            raise ValueError("weights and kwargs apply to a module, not to a model folder (path)")
        return self


ModelSpec = Annotated[SklearnModelSpec | PredictionsModelSpec | TorchModelSpec, Field(discriminator="adapter")]


class DataSpec(StrictModel):
    path: str | None = Field(
        default=None,
        description="The audit rows, relative to the spec file: a CSV (optionally .gz) or Parquet file, a folder of "
        "partitions (hive-style key=value folders become text columns), a glob such as 'log/month=*/*.parquet', or, "
        "with query, a DuckDB or SQLite database file.",
    )
    query: str | None = Field(
        default=None,
        description="SQL giving the audit rows, run in an embedded DuckDB (relative file paths resolve in the spec's "
        "folder, e.g. SELECT * FROM read_parquet('log/*.parquet') WHERE month >= '2026-07'), or in the database "
        "that path names.",
    )
    target: str = Field(min_length=1, description="Column with the true label.")
    sensitive: tuple[str, ...] = Field(min_length=1, description="Sensitive-feature columns.")
    features: tuple[str, ...] | None = Field(
        default=None,
        description="Model input columns, in the model's order; default: the columns the model records "
        "(scikit-learn's feature_names_in_).",
    )
    positive_label: str | int | bool | None = Field(
        default=None,
        description="Label of the positive class; default 1 (or True) when the target is 0/1 or boolean.",
    )
    task: Task = Field(
        default="binary",
        description="binary (rates for the positive class), multiclass (one-vs-rest per class) or "
        "regression (per-group errors and mean predictions).",
    )
    missing_sensitive: Literal["error", "group"] = Field(
        default="error",
        description="'error': a missing sensitive value is a data error; 'group': it forms an explicit 'missing' group.",
    )

    groups: dict[str, tuple[str | int | float | bool, ...]] | None = Field(
        default=None,
        description="Expected values of sensitive columns, e.g. {sex: [Female, Male]}: a value not "
        "listed (an unseen group) or a listed value without rows (an empty group) is a data error.",
    )

    @field_validator("sensitive")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("sensitive columns must be unique")
        return value

    @model_validator(mode="after")
    def _rows_come_from_somewhere(self) -> DataSpec:
        if self.path is None and self.query is None:
            raise ValueError("data needs a path (a file, a folder or a glob of partitions) or a query")
        return self

    @model_validator(mode="after")
    def _positive_label_only_for_binary(self) -> DataSpec:
        if self.positive_label is not None and self.task != "binary":
            raise ValueError(f"positive_label applies to binary targets only (task is {self.task})")
        return self

    @model_validator(mode="after")
    def _groups_name_sensitive_columns(self) -> DataSpec:
        unknown = sorted(set(self.groups or {}) - set(self.sensitive))
        if unknown:
            raise ValueError(f"groups names column(s) {', '.join(unknown)} that are not in data.sensitive")
        return self


EngineKind = Literal["auto", "memory", "stream", "ray"]


class EngineSpec(StrictModel):
    kind: EngineKind = Field(
        default="auto",
        description="memory: read every row into memory; stream: one pass over record batches on this machine, memory "
        "bounded by the batch; ray: the partitions scored on a Ray cluster; auto: memory for one file up to "
        "stream_above_mb, else stream (ray when address is set). Every engine gives the same group metrics; audits "
        "that read rows read a stratified sample when streaming.",
    )
    address: str | None = Field(
        default=None,
        description="Address of a running Ray cluster (e.g. 10.0.0.5:6379); default $RAY_ADDRESS, else a local "
        "cluster on loopback.",
    )
    workers: int | None = Field(default=None, ge=1, le=4096, description="CPUs of a local Ray cluster; default all.")
    batch_rows: int = Field(default=262_144, ge=1, le=16_777_216, description="Rows per record batch when streaming.")
    sample_rows: int = Field(
        default=50_000,
        ge=100,
        le=10_000_000,
        description="Rows of the stratified, row-keyed sample that audits needing rows (explainability, mitigation, "
        "privacy, robustness) read when streaming.",
    )
    stream_above_mb: int = Field(
        default=1024, ge=1, description="With kind auto, a single data file larger than this (MiB) is streamed."
    )


class AuditEntry(StrictModel):
    id: Name
    use: str = Field(min_length=1, description="Registered auditor name, e.g. 'fairness'.")
    params: dict[str, Any] = Field(default_factory=dict)


class ReportSpec(StrictModel):
    out: str = Field(description="Output folder, relative to the spec file.")
    formats: tuple[FormatName, ...] = Field(default=DEFAULT_FORMATS, min_length=1)
    history: str | bool = Field(
        default=True,
        description="Audit history (SQLite) that records every run: true for history.sqlite in the output "
        "folder, a path relative to the spec file, or false to record nothing.",
    )


class TrainDataSpec(StrictModel):
    """Where ``guardrail train`` reads its rows, and how it holds some out."""

    path: str | None = Field(default=None, description="CSV (optionally .gz) or Parquet table, relative to the spec file.")
    dataset: Literal["heart_disease", "adult", "drug_reviews"] | None = Field(
        default=None, description="A data set shipped with guardrail, instead of a path."
    )
    holdout: float = Field(
        default=0.3, gt=0, lt=1,
        description="Share of rows held out of training (stratified by the target, seeded by train.seed); "
        "they are the non-members of the privacy audit.",
    )
    audit_table: str = Field(
        default="audit-data.csv.gz",
        description="File written into train.out: every row with the membership column, for the audit's data.path.",
    )
    membership_column: str = Field(default="member", min_length=1, description="Column that marks training rows.")

    @model_validator(mode="after")
    def _one_source(self) -> TrainDataSpec:
        if (self.path is None) == (self.dataset is None):
            raise ValueError("give exactly one of path and dataset")
        return self


class TrainSection(TrainSpec):
    """The ``train:`` section of an audit spec: what ``guardrail train`` trains (see
    :class:`guardrail.spec.training.TrainSpec`) and on which rows."""

    data: TrainDataSpec


class AuditSpec(StrictModel):
    schema_version: Literal[1]
    kind: Literal["audit"]
    name: Name
    description: str | None = None
    seed: int = Field(default=0, ge=0, description="Seed for every random choice the audits make.")
    model: ModelSpec | None = Field(
        default=None,
        description="The audited model; leave it out to run audits that need no model (use: data) alone.",
    )
    baseline: ModelSpec | None = Field(
        default=None,
        description="A baseline model (e.g. the one in production) audited on the same rows; "
        "fairness.delta.* metrics give candidate − baseline with paired-bootstrap intervals.",
    )
    train: TrainSection | None = Field(
        default=None, description="What `guardrail train` trains before the audit (a torch model, optionally with DP-SGD)."
    )
    federate: FederateSpec | None = Field(
        default=None,
        description="What `guardrail federate` trains before the audit: a Transformer across simulated hospital "
        "nodes on Flower, with DP-SGD and a privacy ledger per hospital.",
    )
    data: DataSpec
    engine: EngineSpec = Field(default_factory=EngineSpec, description="How the audit rows are read and scored.")
    audits: tuple[AuditEntry, ...] = Field(min_length=1)
    policies: tuple[str, ...] = ()
    report: ReportSpec

    @model_validator(mode="after")
    def _unique_ids(self) -> AuditSpec:
        _require_unique("audit ids", [entry.id for entry in self.audits])
        return self

    @model_validator(mode="after")
    def _baseline_needs_model(self) -> AuditSpec:
        if self.baseline is not None and self.model is None:
            raise ValueError("a baseline is compared with the model: add a model section, or remove baseline")
        return self

    @model_validator(mode="after")
    def _module_inputs(self) -> AuditSpec:
        for role, model in (("model", self.model), ("baseline", self.baseline)):
            if isinstance(model, TorchModelSpec) and model.module is not None and not self.data.features:
                raise ValueError(f"a torch module ({role}.module) needs data.features: its input columns, in order")
        return self


Operator = Literal["le", "ge", "lt", "gt", "between", "eq", "present"]
Bound = Literal["value", "ci_low", "ci_high", "worst"]


class WaiverSpec(StrictModel):
    """A time-limited, accountable exception to a rule: while it runs, a rule that does not
    pass is reported as waived (and does not block); from ``expires`` on it no longer applies."""

    owner: str = Field(min_length=1, description="Who answers for the exception.")
    reason: str = Field(min_length=1, description="Why the rule may be set aside for now.")
    expires: date = Field(description="First day on which the waiver no longer applies (YYYY-MM-DD).")


class RuleSpec(StrictModel):
    id: Name
    metric: str = Field(
        min_length=1,
        description="Metric key, e.g. fairness.demographic_parity_ratio (every scope) "
        "or fairness.demographic_parity_ratio[sex] (one scope).",
    )
    op: Operator
    threshold: Number | tuple[Number, Number] | None = Field(
        default=None, description="A number; for 'between' a [low, high] pair; none for 'present'."
    )
    tolerance: Number = Field(default=0.0, ge=0, description="Absolute tolerance for 'eq'.")
    on: Bound = Field(default="value", description="Judge the value, an interval bound, or the worse bound.")
    severity: Literal["deny", "warn", "info"] = "deny"
    on_missing: Literal["fail", "warn", "skip"] = "fail"
    min_group_n: int | None = Field(default=None, ge=1)
    rationale: str = Field(min_length=1, description="Why the rule exists; shown in every report.")
    reference: str | None = Field(default=None, description="Regulation clause or document the rule serves.")
    waiver: WaiverSpec | None = None
    overrides: str | None = Field(
        default=None,
        min_length=1,
        description="Required when this rule replaces an inherited rule of the same id: the reason.",
    )

    @model_validator(mode="after")
    def _threshold_matches_op(self) -> RuleSpec:
        if self.op == "present":
            if self.threshold is not None:
                raise ValueError("op 'present' takes no threshold")
        elif self.op == "between":
            if not isinstance(self.threshold, tuple) or self.threshold[0] > self.threshold[1]:
                raise ValueError("op 'between' needs threshold: [low, high] with low <= high")
        elif not isinstance(self.threshold, float | int):
            raise ValueError(f"op {self.op!r} needs a single number as threshold")
        return self


class DisableSpec(StrictModel):
    id: Name
    reason: str = Field(min_length=1, description="Why the inherited rule does not apply here.")


class PolicySpec(StrictModel):
    schema_version: Literal[1]
    kind: Literal["policy"]
    name: Name
    description: str | None = None
    extends: tuple[str, ...] = Field(
        default=(),
        description="Policy files this one builds on (organisation → project → model), relative to this file. "
        "Their rules apply unless disabled here or replaced by a rule with `overrides: <reason>`.",
    )
    disable: tuple[DisableSpec, ...] = Field(default=(), description="Inherited rules that do not apply, each with a reason.")
    inconclusive: Literal["block", "warn"] = Field(
        default="block", description="Whether an inconclusive deny rule blocks (exit 1) or only warns."
    )
    correction: Literal["none", "bonferroni", "holm", "bh"] = Field(
        default="none",
        description="Multiple-comparison correction across the rules judged on interval bounds: "
        "family-wise (bonferroni, holm) or false discovery / coverage rate (bh).",
    )
    rules: tuple[RuleSpec, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> PolicySpec:
        _require_unique("rule ids", [rule.id for rule in self.rules])
        if not self.rules and not self.extends:
            raise ValueError("a policy needs rules, or `extends:` to inherit them")
        return self


def _require_unique(what: str, ids: list[str]) -> None:
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(duplicates)}")
