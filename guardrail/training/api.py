"""Train a model on a table and write it, with its ledger, to a folder audits can read.

Entry points (thin wrappers over :class:`guardrail.training.loop.Trainer`):

* :func:`train_tabular` — an MLP on feature columns of a DataFrame.
* :func:`train_text` — a tiny BERT (tokenizer trained locally) or a local pretrained
  Hugging Face folder, on a text column.
* :func:`train_from_spec` — the same from a validated ``train:`` spec section
  (:class:`guardrail.spec.training.TrainSpec`).

With ``resume=True`` and a previous output folder at ``out``, training continues from its
checkpoint (weights, optimizer, epochs done, ledger) up to ``config.epochs`` in total; the
ledger continues. With a fixed ``noise_multiplier`` ε after 2 + 2 epochs therefore equals
ε after 4 epochs straight. With ``target_epsilon`` the target bounds the whole ledger: the
remaining epochs are planned at the σ that keeps the ledger's ε (the epochs already done at
their σ, plus the new ones) within the target, and the ledger notes the re-plan; when
nothing is left to plan with (the first run spent the target), the resume is refused with
a :class:`~guardrail.core.errors.UsageError` before any step, and the folder stays as it was.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.model_folder import HF_ARCHITECTURE, MLP_ARCHITECTURE, WEIGHTS_FILE, read_model_description
from guardrail.core.errors import DataError, UsageError
from guardrail.privacy.ledger import Ledger
from guardrail.training import io
from guardrail.training.config import (
    REPRODUCIBLE_NOISE_NOTE,
    DPConfig,
    TrainConfig,
    TrainState,
)
from guardrail.training.data import (
    NON_PRIVATE_PREPROCESSING_NOTE,
    TabularEncoder,
    encode_labels,
    tensor_sha256,
)
from guardrail.training.loop import Trainer
from guardrail.training.models import (
    MLPConfig,
    TinyBertConfig,
    build_mlp,
    build_tiny_bert,
    load_pretrained,
    pretrained_folder,
    text_batch_forward,
)

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader

    from guardrail.spec.training import TrainSpec


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced. ε fields are ``None`` without DP."""

    out: Path
    files: tuple[Path, ...]
    architecture: str
    epochs_done: int
    steps_done: int
    final_loss: float | None
    train_accuracy: float
    seconds: float
    private: bool
    epsilon: float | None = None
    epsilon_rdp: float | None = None
    epsilon_prv: float | None = None
    delta: float | None = None
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    sampling: str | None = None
    stopped_reason: str | None = None
    ledger: Ledger | None = None


def _mlp_forward(model: Any, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    out: torch.Tensor = model(inputs[0])
    return out


def train_tabular(
    frame: pd.DataFrame,
    target: str,
    features: Sequence[str],
    out: str | Path,
    config: TrainConfig,
    *,
    hidden: Sequence[int] = (32,),
    resume: bool = False,
    loader: DataLoader[Any] | None = None,
    data_file_sha256: str | None = None,
) -> TrainResult:
    """Train an MLP classifier on ``features`` → ``target`` and write it to ``out``."""
    import torch

    out = Path(out)
    _require_column(frame, target)
    state, saved, ledger = _resume(out, resume)
    if saved:
        description = read_model_description(out)
        encoder = TabularEncoder.from_dict(description["encoder"])
        classes: tuple[Any, ...] | None = tuple(description["classes"])
        mlp = MLPConfig.from_dict(description["mlp"])
    else:
        encoder, classes = TabularEncoder.fit(frame, features), None
    x = torch.tensor(encoder.transform(frame))
    labels, classes = encode_labels(frame[target].tolist(), classes)
    y = torch.tensor(labels)
    if not saved:
        mlp = MLPConfig(encoder.width, len(classes), tuple(hidden))
    torch.manual_seed(config.seed)
    model = build_mlp(mlp)
    if saved:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(out / WEIGHTS_FILE)))
    description = {
        "architecture": MLP_ARCHITECTURE,
        "mlp": mlp.to_dict(),
        "encoder": encoder.to_dict(),
        "features": list(encoder.features),
        "target": target,
        "classes": list(classes),
    }
    return _run(
        model,
        [x, y],
        _mlp_forward,
        config,
        out,
        description,
        None,
        state,
        saved,
        ledger,
        loader,
        data_file_sha256,
    )


def train_text(
    frame: pd.DataFrame,
    target: str,
    text_column: str,
    out: str | Path,
    config: TrainConfig,
    *,
    model: str | Path = "bert-tiny",
    max_length: int = 64,
    tiny: TinyBertConfig | None = None,
    resume: bool = False,
    data_file_sha256: str | None = None,
) -> TrainResult:
    """Fine-tune (or train from scratch, ``model="bert-tiny"``) a sequence classifier on ``text_column``."""
    import torch

    out = Path(out)
    _require_column(frame, target)
    _require_column(frame, text_column)
    texts = [str(t) for t in frame[text_column].fillna("")]
    state, saved, ledger = _resume(out, resume)
    previous = read_model_description(out) if saved else None
    classes: tuple[Any, ...] | None = tuple(previous["classes"]) if previous else None
    labels, classes = encode_labels(frame[target].tolist(), classes)
    torch.manual_seed(config.seed)
    if previous:
        hf_model, tokenizer = load_pretrained(out)
        source = previous.get("source", "bert-tiny")
    elif str(model) == "bert-tiny":
        hf_model, tokenizer = build_tiny_bert(
            texts, len(classes), tiny or TinyBertConfig(max_length=max_length)
        )
        source = "bert-tiny"
    else:
        hf_model, tokenizer = load_pretrained(Path(model), len(classes))
        source = str(model)
    encoded = tokenizer(
        texts,
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    tensors = [encoded["input_ids"], encoded["attention_mask"], torch.tensor(labels)]
    description = {
        "architecture": HF_ARCHITECTURE,
        "source": source,
        "text_column": text_column,
        "max_length": max_length,
        "features": [text_column],
        "target": target,
        "classes": list(classes),
    }
    return _run(
        hf_model,
        tensors,
        text_batch_forward,
        config,
        out,
        description,
        tokenizer,
        state,
        saved,
        ledger,
        None,
        data_file_sha256,
    )


def train_from_spec(
    spec: TrainSpec,
    frame: pd.DataFrame,
    base_dir: str | Path,
    *,
    data_file_sha256: str | None = None,
) -> TrainResult:
    """Train what a validated ``train:`` section describes; ``spec.out`` is relative to ``base_dir``."""
    out = Path(base_dir) / spec.out
    config = config_from_spec(spec)
    if spec.model.kind == "mlp":
        if not spec.features:
            raise UsageError(
                "train.features must list the feature columns for an mlp model"
            )
        return train_tabular(
            frame,
            spec.target,
            spec.features,
            out,
            config,
            hidden=spec.model.hidden,
            resume=spec.resume,
            data_file_sha256=data_file_sha256,
        )
    if spec.text_column is None:
        raise UsageError(f"train.text_column is required for a {spec.model.kind} model")
    source: str | Path = (
        "bert-tiny"
        if spec.model.kind == "bert-tiny"
        else pretrained_folder(spec.model.path, spec.model.package, Path(base_dir))
    )
    return train_text(
        frame,
        spec.target,
        spec.text_column,
        out,
        config,
        model=source,
        max_length=spec.model.max_length,
        tiny=TinyBertConfig(**spec.model.config()) if spec.model.kind == "bert-tiny" else None,
        resume=spec.resume,
        data_file_sha256=data_file_sha256,
    )


def config_from_spec(spec: TrainSpec) -> TrainConfig:
    """The trainer's :class:`TrainConfig` for a validated ``train:`` section."""
    dp = spec.privacy.dp
    return TrainConfig(
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        lr=spec.lr,
        optimizer=spec.optimizer,
        seed=spec.seed,
        device=None if spec.device == "auto" else spec.device,
        secret_noise=dp is not None and not dp.reproducible_noise,
        dp=None if dp is None else DPConfig.from_section(dp),
    )


def _require_column(frame: pd.DataFrame, column: str) -> None:
    if column not in frame.columns:
        raise DataError(
            f"column {column!r} is not in the data",
            hint=f"available: {', '.join(map(str, frame.columns))}",
        )


def _resume(
    out: Path, resume: bool
) -> tuple[TrainState, dict[str, Any], Ledger | None]:
    if resume and (out / io.STATE_FILE).exists():
        return io.read_resume_state(out)
    return TrainState(), {}, None


def _run(
    model: Any,
    tensors: list[torch.Tensor],
    forward: Any,
    config: TrainConfig,
    out: Path,
    description: dict[str, Any],
    tokenizer: Any,
    state: TrainState,
    saved: dict[str, Any],
    ledger: Ledger | None,
    loader: DataLoader[Any] | None,
    data_file_sha256: str | None,
) -> TrainResult:
    import torch

    started = time.perf_counter()
    data_sha = tensor_sha256(*tensors)
    if saved and saved.get("data_sha256") not in (None, data_sha):
        raise DataError(
            "cannot resume: the training data differ from the data the checkpoint was trained on (SHA-256 mismatch)",
            where=str(out),
            hint="resume with the same data, or train into a new output folder",
        )
    if saved and (config.dp is None) != (ledger is None):
        raise UsageError(
            "cannot resume: the checkpoint and this run disagree on DP training",
            where=str(out),
        )
    dp = config.dp
    if dp is not None and ledger is None:
        notes = (
            (NON_PRIVATE_PREPROCESSING_NOTE,)
            if description["architecture"] == MLP_ARCHITECTURE
            else ()
        )
        ledger = Ledger(
            delta=float(dp.delta),
            max_grad_norm=float(dp.max_grad_norm),
            data_sha256=data_sha,
            model=f"{description['architecture']}:{out.name}",
            notes=notes,
            extra={
                "accountant": dp.accountant,
                **({"data_file_sha256": data_file_sha256} if data_file_sha256 else {}),
            },
        )
    if ledger is not None and not config.secret_noise:
        ledger = ledger.with_notes(REPRODUCIBLE_NOISE_NOTE)
    trainer = Trainer(
        model, tensors, forward, config, ledger=ledger, loader=loader, state=state
    )
    if saved:
        io.load_optimizer_state(out, trainer.base_optimizer)
    remaining = max(0, config.epochs - state.epochs_done)
    trainer.run_epochs(remaining)
    module = trainer.module
    module.eval()
    with torch.no_grad():
        *inputs, labels = (t.to(trainer.device) for t in tensors)
        correct = 0
        for start in range(0, len(labels), 256):
            logits = forward(module, [t[start : start + 256] for t in inputs])
            correct += int((logits.argmax(-1) == labels[start : start + 256]).sum())
    module.train()
    accuracy = correct / len(labels)
    final = trainer.ledger
    description = {**description, "private": dp is not None, "train_accuracy": accuracy}
    files, final = io.write_output(
        out,
        module=module,
        description=description,
        tokenizer=tokenizer,
        ledger=final,
        state=trainer.state,
        optimizer=trainer.base_optimizer,
        resume_info={
            "seed": config.seed,
            "data_sha256": data_sha,
            "noise_multiplier": trainer.noise_multiplier if dp else None,
            "sample_rate": trainer.sample_rate,
        },
    )
    last = trainer.state.history[-1].loss if trainer.state.history else None
    return TrainResult(
        out=out,
        files=tuple(files),
        architecture=str(description["architecture"]),
        epochs_done=trainer.state.epochs_done,
        steps_done=trainer.state.steps_done,
        final_loss=last if last is not None and math.isfinite(last) else None,
        train_accuracy=accuracy,
        seconds=time.perf_counter() - started,
        private=dp is not None,
        epsilon=final.epsilon(accountant=dp.accountant) if final and dp else None,
        epsilon_rdp=final.epsilon(accountant="rdp") if final else None,
        epsilon_prv=final.epsilon(accountant="prv") if final else None,
        delta=final.delta if final else None,
        noise_multiplier=trainer.noise_multiplier if dp else None,
        sample_rate=trainer.sample_rate if dp else None,
        sampling=final.sampling if final else None,
        stopped_reason=final.stopped_reason if final else None,
        ledger=final,
    )


__all__ = [
    "DPConfig",
    "TrainConfig",
    "TrainResult",
    "config_from_spec",
    "train_from_spec",
    "train_tabular",
    "train_text",
]
