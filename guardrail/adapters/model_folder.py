"""``guardrail-model.json``: the description that makes a folder a guardrail torch model.

``guardrail train`` (and ``guardrail federate``) write it beside the weights it describes;
the torch adapter reads it before a single layer is built. This module is its only owner:
the constants, the writer (:func:`description_json`) and the reader
(:func:`read_model_description`), which checks it key by key (:func:`description_problem`).

What it holds (schema_version 1)::

    kind            "guardrail-torch-model"
    schema_version  1 (a description without it is read as version 1)
    architecture    "mlp" | "hf-sequence-classification" | "torch-module" (built in memory only)
    classes         the label of each output, in order (at least two)
    features        the columns the model reads
    weights         the .safetensors file inside the folder (an MLP's is checked)
    mlp, encoder    an MLP's layer sizes and its tabular encoding
    text_column, max_length   a Hugging Face classifier's text column and tokens per text

plus what the trainer records for people (target, source, private, train_accuracy…).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from guardrail.core.errors import ModelError, first_line
from guardrail.core.files import describe, read_limited

MODEL_FILE = "guardrail-model.json"
MODEL_KIND = "guardrail-torch-model"
MODEL_SCHEMA_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
"""The weights file ``guardrail train`` writes (the description's ``weights`` names it)."""
MLP_ARCHITECTURE = "mlp"
HF_ARCHITECTURE = "hf-sequence-classification"
MODULE_ARCHITECTURE = "torch-module"
"""A plain ``nn.Module`` from the user's code (:mod:`guardrail.adapters.torch_module`); never written to a folder."""
MAX_DESCRIPTION_BYTES = 1 << 20
"""The largest ``guardrail-model.json`` read (the ones ``guardrail train`` writes are a few KiB)."""
DESCRIPTION_HINT = (
    "point model.path to a folder written by `guardrail train` "
    f"({MODEL_FILE} is written with the weights it describes; do not edit it)"
)
_FOLDER_HINT = "point model.path to a folder written by `guardrail train`"


def description_json(description: Mapping[str, Any]) -> str:
    """The text of ``guardrail-model.json`` for ``description``, stamped with the file's kind
    and schema version: indented, keys sorted, no NaN, one trailing newline.

    >>> print(description_json({"architecture": "mlp", "classes": [0, 1]}), end="")
    {
      "architecture": "mlp",
      "classes": [
        0,
        1
      ],
      "kind": "guardrail-torch-model",
      "schema_version": 1
    }
    """
    data = {"kind": MODEL_KIND, "schema_version": MODEL_SCHEMA_VERSION, **description}
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"


def read_model_description(folder: Path) -> dict[str, Any]:
    """``guardrail-model.json`` of ``folder``, with its kind, its schema version and every key
    the adapter reads checked.

    Raises
    ------
    ModelError
        If the file is missing, not a regular file, larger than ``MAX_DESCRIPTION_BYTES``,
        not JSON, of another kind or schema version, or if a key is missing or wrong.
    """
    path = folder / MODEL_FILE
    try:
        description = json.loads(read_limited(path, MAX_DESCRIPTION_BYTES).decode("utf-8"))
    except OSError as exc:
        raise ModelError(
            f"not a guardrail torch model folder: {MODEL_FILE} {describe(exc)}", where=str(folder), hint=_FOLDER_HINT
        ) from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested past the parser's depth
        raise ModelError(
            f"not a guardrail torch model folder: cannot read {MODEL_FILE} ({type(exc).__name__}: {first_line(exc)})",
            where=str(folder),
            hint=_FOLDER_HINT,
        ) from None
    if not isinstance(description, dict) or description.get("kind") != MODEL_KIND:
        raise ModelError(f"{MODEL_FILE} does not describe a guardrail torch model", where=str(folder))
    version = description.get("schema_version", MODEL_SCHEMA_VERSION)
    if type(version) is not int or version != MODEL_SCHEMA_VERSION:
        raise ModelError(
            f"{MODEL_FILE} has schema_version {version!r}; this guardrail reads schema_version {MODEL_SCHEMA_VERSION}",
            where=str(folder),
            hint="load it with the guardrail that wrote it, or train the model again with this one",
        )
    problem = description_problem(description)
    if problem is not None:
        raise ModelError(f"{MODEL_FILE}: {problem}", where=str(folder), hint=DESCRIPTION_HINT)
    return description


def description_problem(d: Mapping[str, Any]) -> str | None:
    """What is wrong with a model description (keys, types, sizes), or None."""
    architecture = d.get("architecture")
    if architecture not in (MLP_ARCHITECTURE, HF_ARCHITECTURE):
        return f"unknown architecture {architecture!r} (expected {MLP_ARCHITECTURE!r} or {HF_ARCHITECTURE!r})"
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
    if (
        not isinstance(weights, str)
        or Path(weights).name != weights
        or weights in ("", ".", "..")
        or not weights.endswith(".safetensors")
    ):
        return f"weights must name a .safetensors file inside the model folder, got {weights!r}"
    return _mlp_problem(d.get("mlp"), d.get("encoder"), len(classes))


def _mlp_problem(mlp: object, encoder: object, n_classes: int) -> str | None:
    """What is wrong with an MLP's sizes and tabular encoder, or None."""
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
    if mlp["n_classes"] != n_classes:
        return f"mlp.n_classes is {mlp['n_classes']}, but {n_classes} classes are named"
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
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_label(value: object) -> bool:
    return isinstance(value, (str, int, float, bool))


__all__ = [
    "DESCRIPTION_HINT",
    "HF_ARCHITECTURE",
    "MAX_DESCRIPTION_BYTES",
    "MLP_ARCHITECTURE",
    "MODEL_FILE",
    "MODEL_KIND",
    "MODEL_SCHEMA_VERSION",
    "MODULE_ARCHITECTURE",
    "WEIGHTS_FILE",
    "description_json",
    "description_problem",
    "read_model_description",
]
