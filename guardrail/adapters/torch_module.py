"""A plain ``torch.nn.Module`` from the user's own code as an auditable model.

The spec names the module by its import path (``package.module:Name``: a class, or a
function that builds the module, called with ``model.kwargs``) and its state dict by a
safetensors file. Importing runs that module's code, which is the user's own and named in
the spec; nothing is ever run from the weights. The module reads the numeric columns
``data.features`` as one float tensor ``(n, d)`` and returns one logit per class, or a
single logit (that of ``classes[1]``) for two classes; :class:`ModuleLogits` checks that and
makes every output ``(n, n_classes)``, so prediction, losses and gradient explanations treat
it like guardrail's own MLP (whose encoding here is the identity, :func:`identity_encoder`).

A module that does not fit its data fails with a :class:`~guardrail.core.errors.ModelError` that
says what and how to fix it: weights of another module, a non-numeric or missing feature
value, a width the first layer does not take, an output of the wrong shape.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch

from guardrail.adapters.model_folder import MODULE_ARCHITECTURE
from guardrail.core.errors import ModelError, first_line

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class ModuleLogits(torch.nn.Module):
    """``inner`` with its outputs checked and made ``(n, n_classes)``: a single logit ``z``
    for two classes becomes ``[0, z]`` (so the softmax gives ``sigmoid(z)`` to ``classes[1]``)."""

    def __init__(self, inner: torch.nn.Module, n_classes: int, name: str) -> None:
        super().__init__()
        self.inner = inner
        self.n_classes = n_classes
        self.name = name

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        try:
            logits = self.inner(inputs)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 — the user's forward: report it, never a traceback
            raise ModelError(
                f"the module {self.name} does not accept the data ({inputs.shape[1]} feature column(s)): {first_line(exc)}",
                hint="data.features must list the module's input columns, in order",
            ) from None
        if not isinstance(logits, torch.Tensor) or logits.dim() not in (1, 2) or len(logits) != len(inputs):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ModelError(f"the module {self.name} returned {shape} for {len(inputs)} rows; expected a row of logits per row")
        if logits.dim() == 1:
            logits = logits[:, None]
        if logits.shape[1] == 1 and self.n_classes == 2:
            logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
        if logits.shape[1] != self.n_classes:
            raise ModelError(
                f"the module {self.name} returns {logits.shape[1]} logit(s) per row for {self.n_classes} classes",
                hint="set model.classes to one class per output, in order",
            )
        return logits


def load_module(
    import_path: str,
    weights: Path,
    *,
    features: Sequence[str],
    classes: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    search: Path | None = None,
) -> tuple[ModuleLogits, dict[str, Any]]:
    """The module built from ``import_path`` with ``weights`` loaded, and its model description."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if weights.suffix.lower() != ".safetensors":
        raise ModelError(
            "a module's weights must be a .safetensors file",
            where=str(weights),
            hint="save them with safetensors.torch.save_file(module.state_dict(), 'weights.safetensors')",
        )
    if not features:
        raise ModelError("a torch module needs its input columns", hint="list them, in the module's order, in data.features")
    factory = import_object(import_path, search)
    try:
        module = factory(**(kwargs or {}))
    except Exception as exc:  # noqa: BLE001 — the user's constructor: report it, never a traceback
        raise ModelError(
            f"building the module {import_path}(**model.kwargs) failed: {type(exc).__name__}: {exc}",
            hint="check model.kwargs against the module's constructor",
        ) from None
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{import_path} built a {type(module).__name__}, not a torch.nn.Module")
    try:
        state = load_file(str(weights))
    except (OSError, SafetensorError) as exc:
        raise ModelError(f"cannot read the weights ({exc})", where=str(weights)) from None
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(
            f"the weights do not fit {import_path}: {first_line(exc)}",
            where=str(weights),
            hint="the state dict must come from the same module, built with the same model.kwargs",
        ) from None
    labels = list(classes) if classes is not None else [0, 1]
    description = {
        "architecture": MODULE_ARCHITECTURE,
        "module": import_path,
        "kwargs": dict(kwargs or {}),
        "source": source_file(factory),
        "classes": labels,
        "features": list(features),
        "encoder": identity_encoder(features),
    }
    return ModuleLogits(module, len(labels), import_path), description


def import_object(import_path: str, search: Path | None = None) -> Any:
    """The module builder at ``package.module:Name`` (``Name`` may be dotted).

    The module is the file ``<search>/package/module.py`` when there is one (``search`` is the
    spec's folder; the file is loaded under a name of its own, so two specs' ``model.py``
    never mix), else the installed ``package.module``. Importing runs that module's code:
    the user's own, named in the spec, which is why a spec with ``model.module`` deserves the
    review code gets. What is called is only ever an ``nn.Module`` subclass, or a function
    defined in the spec's own model file: never an arbitrary callable (``os:system``).
    """
    module_name, _, attribute = import_path.partition(":")
    local = search / (module_name.replace(".", "/") + ".py") if search is not None else None
    try:
        module = _load_file(module_name, local, search) if local is not None and local.is_file() else importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"cannot import {module_name!r} for model.module ({exc})",
            hint="put the module's .py file in the spec's folder, or install its package",
        ) from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 — the user's module failed while importing
        raise ModelError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ModelError(f"{module_name!r} has no {attribute!r}", hint="model.module is 'package.module:Name'")
        found = getattr(found, part)
    spec_local = local is not None and local.is_file()
    if inspect.isclass(found) and issubclass(found, torch.nn.Module):
        return found
    if spec_local and inspect.isfunction(found) and getattr(found, "__module__", None) == module.__name__:
        return found
    raise ModelError(
        f"{import_path} is not a torch.nn.Module class"
        + ("" if spec_local else " (a function that builds the module must be defined in a .py file beside the spec)"),
        hint="name an nn.Module subclass, or a function in your own model file; nothing else is called",
    )


def _load_file(module_name: str, path: Path, search: Path | None) -> ModuleType:
    """``path`` as a module named after its location; ``search`` is importable meanwhile (for its siblings)."""
    import hashlib
    import importlib.util

    unique = f"guardrail_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}_{module_name.replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    added = search is not None and str(search) not in sys.path
    if added:
        sys.path.insert(0, str(search))
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(unique, None)
        raise
    finally:
        if added:
            sys.path.remove(str(search))
    return module


def identity_encoder(features: Sequence[str]) -> dict[str, Any]:
    """The encoder description of numeric columns used as they are (mean 0, scale 1, no categories)."""
    return {"numeric": list(features), "means": [0.0] * len(features), "stds": [1.0] * len(features), "categorical": []}


def numeric_matrix(data: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """The ``features`` columns as a float32 matrix; a non-numeric or missing value is an error."""
    import numpy as np
    import pandas as pd

    columns = []
    for name in features:
        column = data[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            raise ModelError(
                f"column {name!r} is not numeric ({column.dtype}); a torch module reads numeric features",
                hint="encode the column as numbers in the data, or leave it out of data.features",
            )
        values = column.astype("float64").to_numpy()
        missing = int(np.isnan(values).sum())
        if missing:
            raise ModelError(
                f"column {name!r} has {missing} missing value(s), which a torch module cannot read",
                hint="fill or drop them in the data before the audit",
            )
        columns.append(values)
    return np.stack(columns, axis=1).astype(np.float32) if columns else np.zeros((len(data), 0), dtype=np.float32)


def source_file(obj: Any) -> str | None:
    try:
        return inspect.getsourcefile(obj)
    except TypeError:
        return None


