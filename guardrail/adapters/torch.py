"""Torch models, loaded without running code from the model files:

* a folder written by ``guardrail train``: an MLP (safetensors + its JSON description,
  :mod:`guardrail.adapters.mlp`) or a Hugging Face sequence classifier with its tokenizer
  (:meth:`TorchAdapter.load`);
* any local Hugging Face sequence-classification folder with a fast tokenizer, given the
  column that holds the text (:meth:`TorchAdapter.load` with ``text_column``,
  :mod:`guardrail.adapters.huggingface`);
* a plain ``torch.nn.Module`` from the user's own code, named by its import path, with its
  state dict in a safetensors file (:meth:`TorchAdapter.from_module`). It reads numeric
  columns as one float tensor and returns a logit per class, or one logit for two classes.

* Weights are read only from ``.safetensors`` files; a pickle-based ``.pt``/``.pth``/``.bin``
  in the folder is refused (:mod:`guardrail.adapters.safety`) before anything is loaded.
* Hugging Face folders load with ``local_files_only=True``, ``use_safetensors=True`` and
  ``trust_remote_code=False``.
* Nothing in the folder may be a FIFO, a device or a symlink loop (a read would block or
  never end); ``guardrail-model.json`` is checked key by key
  (:mod:`guardrail.adapters.model_folder`), and an MLP's sizes against the shapes in its
  safetensors header, before a single layer is built (a lying description cannot allocate
  more than its weights file holds).
* Prediction runs in batches under ``torch.no_grad()`` in eval mode, on CPU unless a
  device is given.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.base import ModelSource, Predictions
from guardrail.adapters.huggingface import load_hf_classifier, load_hf_folder
from guardrail.adapters.mlp import encode_table, load_mlp
from guardrail.adapters.model_folder import (
    HF_ARCHITECTURE,
    MLP_ARCHITECTURE,
    MODEL_FILE,
    MODEL_KIND,
    MODULE_ARCHITECTURE,
    read_model_description,
)
from guardrail.adapters.safety import PICKLE_SUFFIXES, refuse_pickle
from guardrail.core.errors import MissingExtraError, ModelError
from guardrail.core.files import file_kind

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from guardrail.spec.models import TorchModelSpec


def pick_device(requested: str | None = None) -> str:
    """``requested``, or CUDA when it is available and nothing was requested, else CPU."""
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchAdapter:
    """A torch model; ``predict_proba``, ``logits`` and per-example ``loss`` for audits."""

    kind = "torch"

    def __init__(
        self,
        model: Any,
        description: dict[str, Any],
        tokenizer: Any = None,
        device: str = "cpu",
    ) -> None:
        self.model = model
        self.description = description
        self.tokenizer = tokenizer
        self.device = device
        self.classes: tuple[Any, ...] = tuple(description["classes"])

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.description["features"])

    @classmethod
    def from_spec(cls, model: TorchModelSpec, source: ModelSource) -> TorchAdapter:
        """The spec's ``adapter: torch`` section: a model folder (``path``) or a module with its
        ``weights`` (``source.path`` is the one the spec names), on ``model.device``."""
        assert source.path is not None
        device = pick_device(None if model.device == "auto" else model.device)
        if model.module is not None:
            return cls.from_module(
                model.module,
                source.path,
                features=source.features or (),
                classes=model.classes,
                kwargs=model.kwargs,
                search=source.spec_folder,
                device=device,
            )
        return cls.load(
            source.path, device=device, text_column=model.text_column, max_length=model.max_length, classes=model.classes
        )

    @classmethod
    def from_module(
        cls,
        import_path: str,
        weights: str | Path,
        *,
        features: Sequence[str],
        classes: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        search: Path | None = None,
        device: str = "cpu",
    ) -> TorchAdapter:
        """A plain ``nn.Module``: ``import_path`` (``package.module:Name``, a class or a function
        that builds the module, called with ``kwargs``) with the state dict in ``weights``.

        ``features`` are its input columns in order (numeric); ``classes`` name its outputs
        (default ``(0, 1)``; a single output is the logit of ``classes[1]``). A ``.py`` file in
        ``search`` (the spec's folder) comes before an installed package of that name. See
        :mod:`guardrail.adapters.torch_module`.
        """
        weights = Path(weights)
        refuse_pickle(weights)
        try:
            from guardrail.adapters.torch_module import load_module
        except ImportError:
            raise MissingExtraError("torch", "privacy") from None
        network, description = load_module(
            import_path, weights, features=features, classes=classes, kwargs=kwargs, search=search
        )
        return cls(network.to(device).eval(), {"kind": MODEL_KIND, **description}, None, device)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str = "cpu",
        text_column: str | None = None,
        max_length: int | None = None,
        classes: Sequence[Any] | None = None,
    ) -> TorchAdapter:
        """Load the folder ``path`` (or the folder of a ``guardrail-model.json`` given as ``path``).

        A Hugging Face folder not written by ``guardrail train`` (no ``guardrail-model.json``)
        needs ``text_column``; ``max_length`` and ``classes`` default to the tokenizer's limit
        (at most 512) and the config's ``id2label``.
        """
        folder = Path(path)
        if folder.is_file():
            refuse_pickle(folder)
            folder = folder.parent
        if not folder.is_dir():
            raise ModelError(
                "the model folder does not exist",
                where=str(folder),
                hint="train it with `guardrail train`",
            )
        _check_folder_entries(folder)
        for item in folder.iterdir():
            if item.is_file() and item.suffix.lower() in PICKLE_SUFFIXES:
                refuse_pickle(item)
        if not (folder / MODEL_FILE).exists() and (folder / "config.json").is_file():
            model, tokenizer, description = load_hf_folder(
                folder, text_column=text_column, max_length=max_length, classes=classes
            )
            return cls(model.to(device).eval(), description, tokenizer, device)
        given = [name for name, value in (("text_column", text_column), ("max_length", max_length), ("classes", classes))
                 if value is not None]
        if given and (folder / MODEL_FILE).exists():
            raise ModelError(
                f"model.{' and model.'.join(given)} {'applies' if len(given) == 1 else 'apply'} to a Hugging Face "
                "folder from elsewhere; "
                f"this folder's {MODEL_FILE} already says what they are",
                where=str(folder),
                hint=f"remove them from the spec (or delete {MODEL_FILE} to describe the folder yourself)",
            )
        description = read_model_description(folder)
        try:
            import torch  # noqa: F401
        except ImportError:
            raise MissingExtraError("torch", "privacy") from None
        if description["architecture"] == MLP_ARCHITECTURE:
            return cls(load_mlp(folder, description).to(device).eval(), description, None, device)
        model, tokenizer = load_hf_classifier(folder)
        return cls(model.to(device).eval(), description, tokenizer, device)

    # -- inference -------------------------------------------------------------------
    def _inputs(self, data: pd.DataFrame) -> list[Any]:
        import torch

        missing = [f for f in self.features if f not in data.columns]
        if missing:
            raise ModelError(
                f"the model needs column(s) {', '.join(map(repr, missing))}, which the data does not have",
                hint="audit the model on data with the columns it was trained on",
            )
        if self.description.get("architecture") == MODULE_ARCHITECTURE:
            from guardrail.adapters.torch_module import numeric_matrix

            return [torch.tensor(numeric_matrix(data, self.features))]
        if self.tokenizer is None:
            return [torch.tensor(encode_table(self.description["encoder"], data))]
        texts = [str(t) for t in data[self.description["text_column"]].fillna("")]
        enc = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=int(self.description["max_length"]),
            return_tensors="pt",
        )
        return [enc["input_ids"], enc["attention_mask"]]

    def _logits(self, inputs: Sequence[Any], batch_size: int) -> Any:
        import torch

        outputs = []
        with torch.no_grad():
            for start in range(0, len(inputs[0]), batch_size):
                chunk = [t[start : start + batch_size].to(self.device) for t in inputs]
                if self.tokenizer is None:
                    outputs.append(self.model(chunk[0]))
                else:
                    extra: dict[str, Any] = {}
                    if "position_ids" in inspect.signature(self.model.forward).parameters:
                        length = chunk[0].shape[1]
                        extra["position_ids"] = torch.arange(length, device=self.device).repeat(len(chunk[0]), 1)
                    outputs.append(self.model(input_ids=chunk[0], attention_mask=chunk[1], **extra).logits)
        return torch.cat(outputs) if outputs else torch.zeros((0, len(self.classes)))

    def logits(self, data: pd.DataFrame, *, batch_size: int = 256) -> np.ndarray:
        """The model's raw outputs, one float64 column per entry of :attr:`classes`, cast before
        any softmax (membership attacks need the digits a float32 probability loses)."""
        import numpy as np

        raw = self._logits(self._inputs(data), batch_size)
        return np.asarray(raw.detach().cpu().double().numpy(), dtype=np.float64)

    def predict_proba(self, data: pd.DataFrame, *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities, one column per entry of :attr:`classes`."""
        import numpy as np

        logits = self._logits(self._inputs(data), batch_size)
        return np.asarray(logits.softmax(-1).cpu().numpy(), dtype=np.float64)

    def loss(
        self, data: pd.DataFrame, labels: Sequence[Any], *, batch_size: int = 256
    ) -> np.ndarray:
        """Per-example cross-entropy of the true ``labels`` (for membership-inference audits)."""
        import numpy as np
        import torch

        index = {c: i for i, c in enumerate(self.classes)}
        plain = [v.item() if hasattr(v, "item") else v for v in labels]
        unknown = sorted({str(v) for v in plain if v not in index})
        if unknown:
            raise ModelError(
                f"labels not among the model's classes {list(self.classes)}: {', '.join(unknown)}"
            )
        logits = self._logits(self._inputs(data), batch_size)
        target = torch.tensor([index[v] for v in plain], dtype=torch.long)
        losses = torch.nn.functional.cross_entropy(
            logits.cpu(), target, reduction="none"
        )
        return np.asarray(losses.numpy(), dtype=np.float64)

    def predict(self, data: pd.DataFrame, positive_label: object) -> Predictions:
        import numpy as np

        proba = self.predict_proba(data)
        labels = (
            np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]
            if len(proba)
            else np.asarray([])
        )
        labels = np.asarray(labels.tolist())
        scores = (
            proba[:, self.classes.index(positive_label)]
            if positive_label in self.classes and len(self.classes) == 2
            else None
        )
        return Predictions(labels=labels, scores=scores, classes=self.classes)


def _check_folder_entries(folder: Path) -> None:
    """Refuse a model folder holding a FIFO, a device, a socket or a symlink loop: a library
    that reads every file of the folder would block on the first or never finish the second."""
    for item in sorted(folder.iterdir()):
        kind = file_kind(item)
        if kind not in (None, "a folder"):
            raise ModelError(
                f"{item.name!r} in the model folder is {kind.removeprefix('unreadable ')}, not a regular file",
                where=str(folder),
                hint="a model folder holds regular files only; remove it",
            )


__all__ = [
    "HF_ARCHITECTURE",
    "MODULE_ARCHITECTURE",
    "TorchAdapter",
    "encode_table",
    "load_hf_classifier",
    "pick_device",
    "read_model_description",
]
