"""Torch models, loaded without running code from the model files:

* a folder written by ``guardrail train``: an MLP (safetensors + its JSON description) or a
  Hugging Face sequence classifier with its tokenizer (:meth:`TorchAdapter.load`);
* any local Hugging Face sequence-classification folder with a fast tokenizer, given the
  column that holds the text (:meth:`TorchAdapter.load` with ``text_column``);
* a plain ``torch.nn.Module`` from the user's own code, named by its import path, with its
  state dict in a safetensors file (:meth:`TorchAdapter.from_module`). It reads numeric
  columns as one float tensor and returns a logit per class, or one logit for two classes.

* Weights are read only from ``.safetensors`` files; a pickle-based ``.pt``/``.pth``/``.bin``
  in the folder is refused (:mod:`guardrail.adapters.safety`) before anything is loaded.
* Hugging Face folders load with ``local_files_only=True``, ``use_safetensors=True`` and
  ``trust_remote_code=False``.
* Nothing in the folder may be a FIFO, a device or a symlink loop (a read would block or
  never end); ``guardrail-model.json`` is checked key by key, and an MLP's sizes against the
  shapes in its safetensors header, before a single layer is built (a lying description
  cannot allocate more than its weights file holds).
* Prediction runs in batches under ``torch.no_grad()`` in eval mode, on CPU unless a
  device is given.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.base import Predictions
from guardrail.adapters.safety import PICKLE_SUFFIXES, refuse_pickle
from guardrail.core.errors import MissingExtraError, ModelError
from guardrail.core.files import describe, file_kind, read_limited

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch

MODEL_FILE = "guardrail-model.json"
MODEL_KIND = "guardrail-torch-model"
HF_ARCHITECTURE = "hf-sequence-classification"
MODULE_ARCHITECTURE = "torch-module"
"""A plain ``nn.Module`` from the user's code (:mod:`guardrail.adapters.torch_module`)."""
HEAD_PREFIXES = ("classifier.", "score.", "pre_classifier.")
"""Weights of a sequence-classification head, new when a pretrained encoder gets a head of its own."""
MAX_TOKENS = 512
"""Tokens per text for a Hugging Face folder whose spec gives no max_length (or the tokenizer's limit, if lower)."""
MAX_DESCRIPTION_BYTES = 1 << 20
"""The largest ``guardrail-model.json`` read (the ones ``guardrail train`` writes are a few KiB)."""
DESCRIPTION_HINT = (
    "point model.path to a folder written by `guardrail train` "
    f"({MODEL_FILE} is written with the weights it describes; do not edit it)"
)


def load_hf_classifier(
    folder: Path, *, num_labels: int | None = None, what: str = "Hugging Face model"
) -> tuple[Any, Any]:
    """A sequence classifier and its tokenizer from a local folder: safetensors weights only,
    never remote code, nothing downloaded. ``num_labels`` re-heads a pretrained encoder."""
    try:
        from safetensors import SafetensorError
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError:
        raise MissingExtraError("transformers", "privacy") from None
    kwargs: dict[str, Any] = {"num_labels": num_labels} if num_labels is not None else {}
    try:
        with quiet_transformers():  # its log lines (several per warning) would break the one-line error
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                folder, local_files_only=True, use_safetensors=True, trust_remote_code=False, output_loading_info=True,
                **kwargs,
            )
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError, SafetensorError) as exc:
        # a config, tokenizer or weights file that is not what it claims: transformers and its
        # tokenizers raise any of these (often over several lines); nothing from the folder ran
        raise ModelError(
            f"cannot load the {what} ({type(exc).__name__}: {first_line(exc)})",
            where=str(folder),
            hint="the folder must hold a Hugging Face sequence classifier saved with save_pretrained "
            "(safetensors weights, a fast tokenizer, no custom code)",
        ) from None
    except RuntimeError as exc:  # transformers: a checkpoint whose classifier head has another size
        raise ModelError(
            f"cannot load the {what}: {first_line(exc)}",
            where=str(folder),
            hint="start from an encoder without a classification head, or keep its number of classes",
        ) from None
    # transformers fills weights it did not find with random ones and only logs it: a new head is
    # expected when re-heading an encoder, anything else means the folder is not the model it claims
    fresh = tuple(HEAD_PREFIXES) if num_labels is not None else ()
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(fresh))
    if missing:
        raise ModelError(
            f"the {what} lacks {len(missing)} weight(s) its architecture needs (e.g. {', '.join(missing[:3])}); "
            "transformers would fill them with random values",
            where=str(folder),
            hint="save the complete model with model.save_pretrained(folder, safe_serialization=True)",
        )
    return model, tokenizer


class TorchAdapter:
    """A model folder from ``guardrail train``; ``predict_proba`` and per-example ``loss`` for audits."""

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
            return cls._load_hf_folder(folder, device, text_column, max_length, classes)
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
        architecture = description["architecture"]
        if architecture == "mlp":
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            weights = folder / description["weights"]
            try:
                _check_mlp_shapes(description, weights)
                state = load_file(str(weights))
                model = build_mlp_from_description(description)
                model.load_state_dict(state)
            except (OSError, RuntimeError, SafetensorError) as exc:
                raise ModelError(
                    f"cannot load the MLP weights {description['weights']!r} ({type(exc).__name__}: {first_line(exc)})",
                    where=str(folder),
                    hint=DESCRIPTION_HINT,
                ) from None
            return cls(model.to(device).eval(), description, None, device)
        model, tokenizer = load_hf_classifier(folder)
        return cls(model.to(device).eval(), description, tokenizer, device)

    @classmethod
    def _load_hf_folder(
        cls, folder: Path, device: str, text_column: str | None, max_length: int | None, classes: Sequence[Any] | None
    ) -> TorchAdapter:
        """A Hugging Face sequence classifier folder from anywhere (not ``guardrail train``)."""
        if text_column is None:
            raise ModelError(
                f"a Hugging Face folder without {MODEL_FILE} needs the column that holds the text",
                where=str(folder),
                hint="add model.text_column to the spec",
            )
        model, tokenizer = load_hf_classifier(folder)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(
                "the folder's tokenizer is not a fast (Rust) tokenizer, which token explanations need",
                where=str(folder),
                hint="save the tokenizer with tokenizer.save_pretrained() from a fast tokenizer (tokenizer.json)",
            )
        id2label = getattr(model.config, "id2label", None) or {}
        labels = list(classes) if classes is not None else [id2label[i] for i in sorted(id2label)]
        if len(labels) != int(model.config.num_labels):
            raise ModelError(
                f"model.classes names {len(labels)} classes; the classifier has {model.config.num_labels} outputs",
                where=str(folder),
                hint="give one class per output, in the order of the outputs",
            )
        limit = int(getattr(tokenizer, "model_max_length", MAX_TOKENS) or MAX_TOKENS)
        positions = getattr(model.config, "max_position_embeddings", None)
        if positions is not None:
            limit = min(limit, int(positions))
        if max_length is not None and max_length > limit:
            raise ModelError(
                f"model.max_length {max_length} is more than the {limit} tokens this model reads",
                where=str(folder),
                hint=f"set model.max_length to at most {limit}, or leave it out",
            )
        description = {
            "kind": MODEL_KIND,
            "architecture": HF_ARCHITECTURE,
            "classes": labels,
            "features": [text_column],
            "text_column": text_column,
            "max_length": int(max_length or min(limit, MAX_TOKENS)),
            "source": str(folder),
        }
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


def build_mlp_from_description(description: dict[str, Any]) -> torch.nn.Module:
    """``Linear → ReLU → … → Linear`` with the sizes in ``description["mlp"]``."""
    from torch import nn

    spec = description["mlp"]
    layers: list[nn.Module] = []
    width = int(spec["in_features"])
    for hidden in spec["hidden"]:
        layers += [nn.Linear(width, int(hidden)), nn.ReLU()]
        width = int(hidden)
    layers.append(nn.Linear(width, int(spec["n_classes"])))
    return nn.Sequential(*layers)


def encode_table(encoder: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Standardised numeric columns (missing → 0) then one-hot categorical columns (missing → all 0)."""
    import numpy as np
    import pandas as pd

    parts = []
    for name, mean, std in zip(
        encoder["numeric"], encoder["means"], encoder["stds"], strict=True
    ):
        values = (
            pd.to_numeric(frame[name], errors="coerce").astype("float64").to_numpy()
        )
        parts.append(np.nan_to_num((values - mean) / std, nan=0.0)[:, None])
    for name, levels in encoder["categorical"]:
        text = (
            frame[name].astype("object").map(lambda v: None if pd.isna(v) else str(v))
        )
        parts.append(
            np.stack([(text == level).to_numpy() for level in levels], axis=1).astype(
                "float64"
            )
        )
    if not parts:
        return np.zeros((len(frame), 0), dtype=np.float32)
    return np.concatenate(parts, axis=1).astype(np.float32)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (libraries' messages span lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


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


def read_model_description(folder: Path) -> dict[str, Any]:
    """``guardrail-model.json`` of ``folder``, with every key the adapter reads checked."""
    import json

    path = folder / MODEL_FILE
    try:
        description = json.loads(read_limited(path, MAX_DESCRIPTION_BYTES).decode("utf-8"))
    except OSError as exc:
        raise ModelError(
            f"not a guardrail torch model folder: {MODEL_FILE} {describe(exc)}",
            where=str(folder),
            hint="point model.path to a folder written by `guardrail train`",
        ) from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested past the parser's depth
        raise ModelError(
            f"not a guardrail torch model folder: cannot read {MODEL_FILE} ({type(exc).__name__}: {first_line(exc)})",
            where=str(folder),
            hint="point model.path to a folder written by `guardrail train`",
        ) from None
    if not isinstance(description, dict) or description.get("kind") != MODEL_KIND:
        raise ModelError(f"{MODEL_FILE} does not describe a guardrail torch model", where=str(folder))
    problem = _description_problem(description)
    if problem is not None:
        raise ModelError(f"{MODEL_FILE}: {problem}", where=str(folder), hint=DESCRIPTION_HINT)
    return description


def _description_problem(d: dict[str, Any]) -> str | None:
    """What is wrong with a model description (keys, types, sizes), or None."""
    architecture = d.get("architecture")
    if architecture not in ("mlp", HF_ARCHITECTURE):
        return f"unknown architecture {architecture!r} (expected 'mlp' or {HF_ARCHITECTURE!r})"
    classes = d.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(_is_label(c) for c in classes):
        return "classes must be a list of at least two labels (text, numbers or true/false)"
    if len({repr(c) for c in classes}) != len(classes):
        return "classes must not repeat a label"
    features = d.get("features")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        return "features must be a list of column names"
    if architecture == HF_ARCHITECTURE:
        if not isinstance(d.get("text_column"), str) or not d["text_column"]:
            return "text_column must name the text column"
        if not _is_count(d.get("max_length")):
            return f"max_length must be a positive integer, got {d.get('max_length')!r}"
        return None
    weights = d.get("weights")
    if not isinstance(weights, str) or Path(weights).name != weights or weights in ("", ".", "..") or not weights.endswith(".safetensors"):
        return f"weights must name a .safetensors file inside the model folder, got {weights!r}"
    mlp = d.get("mlp")
    if not isinstance(mlp, dict):
        return "mlp must hold in_features, hidden and n_classes"
    for key in ("in_features", "n_classes"):
        if not _is_count(mlp.get(key)):
            return f"mlp.{key} must be a positive integer, got {mlp.get(key)!r}"
    hidden = mlp.get("hidden")
    if not isinstance(hidden, list):
        return "mlp.hidden must be a list of layer sizes"
    for i, size in enumerate(hidden):
        if not _is_count(size):
            return f"mlp.hidden[{i}] must be a positive integer, got {size!r}"
    if mlp["n_classes"] != len(classes):
        return f"mlp.n_classes is {mlp['n_classes']}, but {len(classes)} classes are named"
    encoder = d.get("encoder")
    if not isinstance(encoder, dict):
        return "encoder must hold numeric, means, stds and categorical"
    numeric, means, stds, categorical = (encoder.get(k) for k in ("numeric", "means", "stds", "categorical"))
    if not isinstance(numeric, list) or not all(isinstance(n, str) for n in numeric):
        return "encoder.numeric must be a list of column names"
    for key, values in (("means", means), ("stds", stds)):
        if not isinstance(values, list) or len(values) != len(numeric) or not all(_is_finite(v) for v in values):
            return f"encoder.{key} must hold one finite number per numeric column"
    if any(v == 0 for v in stds):  # type: ignore[union-attr]
        return "encoder.stds must not hold a zero"
    if not isinstance(categorical, list) or not all(
        isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) and isinstance(c[1], list) for c in categorical
    ):
        return "encoder.categorical must be a list of [column, [levels]] pairs"
    width = len(numeric) + sum(len(levels) for _, levels in categorical)
    if width != mlp["in_features"]:
        return f"mlp.in_features is {mlp['in_features']}, but the encoder makes {width} input(s)"
    return None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_finite(value: object) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_label(value: object) -> bool:
    return isinstance(value, (str, int, float, bool))


def _check_mlp_shapes(description: dict[str, Any], weights: Path) -> None:
    """The MLP's layer sizes must be the shapes of the tensors in its safetensors header,
    compared before any layer is built (a description cannot allocate what the file lacks)."""
    from safetensors import safe_open

    kind = file_kind(weights)
    if kind is not None:
        raise OSError(f"the weights file is {kind}" if kind != "missing" else "the weights file is not there")
    spec = description["mlp"]
    sizes = [spec["in_features"], *spec["hidden"], spec["n_classes"]]
    expected: dict[str, list[int]] = {}
    for i, (width, out) in enumerate(zip(sizes, sizes[1:])):
        expected[f"{2 * i}.weight"] = [out, width]
        expected[f"{2 * i}.bias"] = [out]
    with safe_open(str(weights), framework="pt") as handle:
        found = {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}
    if found != expected:
        differ = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
        raise RuntimeError(
            f"the tensors do not match the sizes in {MODEL_FILE} (e.g. {differ[0]}: "
            f"described {expected.get(differ[0])}, stored {found.get(differ[0])})"
        )


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' progress bars and warnings (its weight-loading report: guardrail checks the
    loading itself, see :func:`load_hf_classifier`) while inside; restores both settings."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
