"""guardrail's tabular MLP: its layers, its input encoding, and its weights checked and loaded.

The description's ``mlp`` (layer sizes) and ``encoder`` (standardised numeric columns, then
one-hot categorical ones) say everything; the trainer (:mod:`guardrail.training`) builds and
encodes with these same functions, so a model reads its data at audit time exactly as it did
in training. The sizes are compared with the tensor shapes in the safetensors header before
a single layer is built (a lying description cannot allocate more than its weights file holds).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.model_folder import DESCRIPTION_HINT, MODEL_FILE
from guardrail.core.errors import ModelError, first_line
from guardrail.core.files import file_kind

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch


def build_mlp_from_description(description: Mapping[str, Any]) -> torch.nn.Module:
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


def load_mlp(folder: Path, description: Mapping[str, Any]) -> torch.nn.Module:
    """The MLP a checked description (:func:`~guardrail.adapters.model_folder.read_model_description`)
    describes, with its weights from the folder's safetensors file.

    Raises
    ------
    ModelError
        If the weights file is missing, not a regular file, unreadable or of other sizes.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = folder / description["weights"]
    try:
        check_mlp_shapes(description, weights)
        state = load_file(str(weights))
        model = build_mlp_from_description(description)
        model.load_state_dict(state)
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise ModelError(
            f"cannot load the MLP weights {description['weights']!r} ({type(exc).__name__}: {first_line(exc)})",
            where=str(folder),
            hint=DESCRIPTION_HINT,
        ) from None
    return model


def check_mlp_shapes(description: Mapping[str, Any], weights: Path) -> None:
    """The MLP's layer sizes must be the shapes of the tensors in its safetensors header,
    compared before any layer is built (a description cannot allocate what the file lacks).

    Raises
    ------
    OSError
        If ``weights`` is not a regular file.
    RuntimeError
        If a tensor is missing, extra or of another shape.
    """
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


def encode_table(encoder: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Standardised numeric columns (missing → 0) then one-hot categorical columns (missing → all 0)."""
    import numpy as np
    import pandas as pd

    parts = []
    for name, mean, std in zip(encoder["numeric"], encoder["means"], encoder["stds"], strict=True):
        values = pd.to_numeric(frame[name], errors="coerce").astype("float64").to_numpy()
        parts.append(np.nan_to_num((values - mean) / std, nan=0.0)[:, None])
    for name, levels in encoder["categorical"]:
        text = frame[name].astype("object").map(lambda v: None if pd.isna(v) else str(v))
        parts.append(np.stack([(text == level).to_numpy() for level in levels], axis=1).astype("float64"))
    if not parts:
        return np.zeros((len(frame), 0), dtype=np.float32)
    return np.concatenate(parts, axis=1).astype(np.float32)
