"""Writing a trained model folder (and reading it back for a resume), atomically.

Layout of the output folder::

    guardrail-model.json    what the model is: architecture, features or text column, classes,
                            the tabular encoder, the weights file (schema_version 1; written and
                            read by :mod:`guardrail.adapters.model_folder`)
    model.safetensors       weights (MLP), or the Hugging Face files from save_pretrained
    config.json, tokenizer* (Hugging Face models: config and the tokenizer)
    ledger.json             the privacy ledger (DP training only)
    history.json            per-epoch loss, steps, seconds and ε
    checkpoint/state.json   epochs and steps done, seed, σ and q: what a resume needs
    checkpoint/optimizer.safetensors + optimizer.json   the optimizer state

Every file is staged and renamed together (:func:`guardrail.core.atomic.write_all_atomic`):
a reader sees the previous model folder or the complete new one. Nothing is pickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.huggingface import quiet_transformers
from guardrail.adapters.model_folder import MODEL_FILE, WEIGHTS_FILE, description_json
from guardrail.core.atomic import write_all_atomic
from guardrail.core.errors import DataError
from guardrail.core.serialize import finite_or_none
from guardrail.privacy.ledger import LEDGER_FILE, Ledger, load_ledger
from guardrail.training.config import EpochRecord, TrainState

if TYPE_CHECKING:
    import torch

HISTORY_FILE = "history.json"
STATE_FILE = "checkpoint/state.json"
OPTIMIZER_FILE = "checkpoint/optimizer.safetensors"
OPTIMIZER_META_FILE = "checkpoint/optimizer.json"


def _json(data: Any) -> str:
    return (
        json.dumps(data, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"
    )


def optimizer_files(optimizer: torch.optim.Optimizer) -> dict[str, bytes | str]:
    """The optimizer's state as safetensors (tensors) plus JSON (everything else)."""
    from safetensors.torch import save

    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if hasattr(value, "detach"):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    meta = {"param_groups": state["param_groups"], "scalars": scalars}
    return {OPTIMIZER_FILE: save(tensors), OPTIMIZER_META_FILE: _json(meta)}


def load_optimizer_state(folder: Path, optimizer: torch.optim.Optimizer) -> None:
    from safetensors.torch import load_file

    meta = json.loads((folder / OPTIMIZER_META_FILE).read_text())
    tensors = load_file(str(folder / OPTIMIZER_FILE))
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def model_files(
    module: Any, description: dict[str, Any], tokenizer: Any | None = None
) -> dict[str, bytes | str]:
    """Weights (+ HF config and tokenizer) and the model description, as files to write
    (the description's ``weights`` is :data:`~guardrail.adapters.model_folder.WEIGHTS_FILE`,
    also the name ``save_pretrained`` gives an unsharded model's weights)."""
    files: dict[str, bytes | str] = {}
    if tokenizer is not None:
        with tempfile.TemporaryDirectory() as tmp:
            with quiet_transformers():
                module.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            for path in Path(tmp).rglob("*"):
                if path.is_file():
                    files[path.relative_to(tmp).as_posix()] = path.read_bytes()
    else:
        from safetensors.torch import save

        state = {
            k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()
        }
        files[WEIGHTS_FILE] = save(state)
    files[MODEL_FILE] = description_json({**description, "weights": WEIGHTS_FILE})
    return files


def write_output(
    out: Path,
    *,
    module: Any,
    description: dict[str, Any],
    tokenizer: Any | None,
    ledger: Ledger | None,
    state: TrainState,
    optimizer: torch.optim.Optimizer,
    resume_info: dict[str, Any],
) -> tuple[list[Path], Ledger | None]:
    """Write the whole model folder atomically; returns the paths written and the ledger
    as written (its ``extra.weights_sha256`` names the weights it accounts for)."""
    files = model_files(module, description, tokenizer)
    if ledger is not None:
        weights = files[WEIGHTS_FILE]
        digest = hashlib.sha256(
            weights if isinstance(weights, bytes) else weights.encode()
        ).hexdigest()
        ledger = dataclasses.replace(
            ledger, extra={**ledger.extra, "weights_sha256": digest}
        )
        files[LEDGER_FILE] = ledger.to_json()
    files[HISTORY_FILE] = _json(
        {
            "epochs": [_finite(dataclasses.asdict(r)) for r in state.history],
            "steps": state.steps_done,
        }
    )
    files.update(optimizer_files(optimizer))
    files[STATE_FILE] = _json(
        {
            "epochs_done": state.epochs_done,
            "steps_done": state.steps_done,
            **resume_info,
        }
    )
    return write_all_atomic({out / name: data for name, data in files.items()}), ledger


def read_resume_state(folder: Path) -> tuple[TrainState, dict[str, Any], Ledger | None]:
    """Epochs done, the saved resume info and the ledger of a previous output folder."""
    try:
        saved = json.loads((folder / STATE_FILE).read_text())
        history = json.loads((folder / HISTORY_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"cannot resume: the checkpoint is missing or unreadable ({exc})",
            where=str(folder),
            hint="resume from a folder written by `guardrail train`",
        ) from None
    records = [
        EpochRecord(**{**r, "loss": float("nan") if r["loss"] is None else r["loss"]})
        for r in history["epochs"]
    ]
    state = TrainState(
        epochs_done=int(saved["epochs_done"]),
        steps_done=int(saved["steps_done"]),
        history=records,
    )
    ledger = (
        load_ledger(folder / LEDGER_FILE) if (folder / LEDGER_FILE).exists() else None
    )
    return state, saved, ledger


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its non-finite floats (a NaN loss) as ``None``, everything else as it is."""
    return {k: finite_or_none(v) if isinstance(v, float) else v for k, v in record.items()}
