"""Turning tables and texts into tensors, and refusing loaders that break DP accounting.

DP-SGD's ε (Opacus' RDP and PRV accountants) is proved for Poisson sampling: every step
takes each example independently with probability q = batch_size / N, N being the real
number of training examples. :func:`check_loader` recognises loaders that do that
(Opacus' ``DPDataLoader`` / ``UniformWithReplacementSampler`` over the whole data set)
and refuses anything else — a ``WeightedRandomSampler``, fixed shuffled batches, a sampler
whose length or data set does not match — unless ``allow_non_poisson=True``, in which case
the ledger says that ε assumes Poisson sampling.

The tabular encoder standardises numeric columns and one-hot encodes categorical ones with
statistics fitted on the training table. Those statistics are computed without DP (the
ledger notes it); the model weights are what DP-SGD protects.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guardrail.core.errors import DataError
from guardrail.privacy.ledger import NON_POISSON, POISSON, Sampling

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from torch.utils.data import DataLoader

WEIGHTED_SAMPLER_MESSAGE = (
    "the data loader uses a WeightedRandomSampler: DP-SGD's epsilon is only valid for Poisson sampling "
    "at rate batch_size / dataset size, so the reported epsilon would be wrong"
)
FIXED_BATCHES_MESSAGE = (
    "the data loader draws fixed-size batches ({kind}), not Poisson-sampled ones: DP-SGD's epsilon is only "
    "valid for Poisson sampling at rate batch_size / dataset size, so the reported epsilon would be wrong"
)
LENGTH_MISMATCH_MESSAGE = (
    "the data loader's sampler covers {sampled} examples but the training data has {n}: the sample rate "
    "(and so epsilon) would be computed from the wrong dataset size"
)
NON_POISSON_HINT = (
    "pass the dataset and let guardrail build the Poisson loader (drop the custom loader or sampler), or pass "
    "allow_non_poisson=True to train anyway; the ledger then records that epsilon assumes Poisson sampling"
)
NON_PRIVATE_PREPROCESSING_NOTE = "feature scaling and category lists were fitted on the training data without DP; DP-SGD protects the model weights"


@dataclass(frozen=True)
class LoaderCheck:
    """The sampling a loader really does and the rate to account it at."""

    sampling: Sampling
    sample_rate: float
    problem: str | None = None


def check_loader(
    loader: DataLoader[Any], n: int, *, allow_non_poisson: bool = False
) -> LoaderCheck:
    """Accept a Poisson loader over exactly ``n`` examples; refuse others unless allowed.

    Raises
    ------
    DataError
        For a weighted sampler, fixed shuffled/sequential batches, or a size mismatch,
        unless ``allow_non_poisson`` (exit code 3).
    """
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler
    from torch.utils.data import WeightedRandomSampler

    batch_sampler = loader.batch_sampler
    sampler = loader.sampler
    dataset_n = len(loader.dataset)  # type: ignore[arg-type]
    if isinstance(batch_sampler, UniformWithReplacementSampler):
        if batch_sampler.num_samples != n or dataset_n != n:
            problem = LENGTH_MISMATCH_MESSAGE.format(
                sampled=batch_sampler.num_samples, n=n
            )
        else:
            return LoaderCheck(POISSON, float(batch_sampler.sample_rate))
    elif isinstance(sampler, WeightedRandomSampler):
        problem = WEIGHTED_SAMPLER_MESSAGE
    elif dataset_n != n or len(sampler) != n:  # type: ignore[arg-type]
        problem = LENGTH_MISMATCH_MESSAGE.format(sampled=len(sampler), n=n)  # type: ignore[arg-type]
    else:
        problem = FIXED_BATCHES_MESSAGE.format(kind=type(sampler).__name__)
    if not allow_non_poisson:
        raise DataError(problem, where="training data loader", hint=NON_POISSON_HINT)
    batch_size = loader.batch_size or getattr(batch_sampler, "batch_size", None) or 1
    return LoaderCheck(NON_POISSON, min(1.0, batch_size / n), problem)


def tensor_sha256(*arrays: Any) -> str:
    """SHA-256 over the dtype, shape and bytes of each array (the data the model saw)."""
    import numpy as np

    digest = hashlib.sha256()
    for array in arrays:
        value = np.ascontiguousarray(
            array.detach().cpu().numpy() if hasattr(array, "detach") else array
        )
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class TabularEncoder:
    """Numeric columns standardised (missing → mean), categorical columns one-hot (missing → all 0)."""

    numeric: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *(name for name, _ in self.categorical))

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(levels) for _, levels in self.categorical)

    @classmethod
    def fit(cls, frame: pd.DataFrame, features: Sequence[str]) -> TabularEncoder:
        import pandas as pd

        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise DataError(
                f"feature column(s) not in the data: {', '.join(missing)}",
                hint=f"available columns: {', '.join(map(str, frame.columns))}",
            )
        numeric, means, stds, categorical = [], [], [], []
        for name in features:
            column = frame[name]
            if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(
                column
            ):
                values = pd.to_numeric(column, errors="coerce").astype("float64")
                mean = float(values.mean()) if values.notna().any() else 0.0
                std = float(values.std(ddof=0)) if values.notna().sum() > 1 else 1.0
                numeric.append(name)
                means.append(mean)
                stds.append(std if std > 0 and math.isfinite(std) else 1.0)
            else:
                levels = tuple(sorted({str(v) for v in column.dropna()}))
                categorical.append((name, levels))
        return cls(tuple(numeric), tuple(means), tuple(stds), tuple(categorical))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """float32 features (the same encoding the torch adapter applies at audit time)."""
        from guardrail.adapters.mlp import encode_table

        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise DataError(
                f"the data lacks the model's feature column(s): {', '.join(missing)}"
            )
        return encode_table(self.to_dict(), frame)

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "means": list(self.means),
            "stds": list(self.stds),
            "categorical": [[name, list(levels)] for name, levels in self.categorical],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TabularEncoder:
        return cls(
            tuple(data["numeric"]),
            tuple(float(v) for v in data["means"]),
            tuple(float(v) for v in data["stds"]),
            tuple(
                (str(name), tuple(str(v) for v in levels))
                for name, levels in data["categorical"]
            ),
        )


def encode_labels(
    values: Sequence[Any], classes: Sequence[Any] | None = None
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Class indices (int64) and the sorted classes; an unseen label is a :class:`DataError`."""
    import numpy as np
    import pandas as pd

    series = pd.Series(list(values))
    if series.isna().any():
        raise DataError(
            "the target column has missing values",
            hint="drop those rows or fill the label",
        )
    found = tuple(sorted({_plain(v) for v in series}, key=lambda v: (str(type(v)), v)))
    classes = tuple(classes) if classes is not None else found
    if len(classes) < 2:
        raise DataError(
            f"the target has {len(classes)} class(es); a classifier needs at least 2"
        )
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in series.map(_plain) if v not in index})
    if unknown:
        raise DataError(f"labels not among the model's classes: {', '.join(unknown)}")
    return np.asarray([index[_plain(v)] for v in series], dtype=np.int64), classes


def _plain(value: Any) -> Any:
    """numpy scalars → Python scalars, so classes are JSON-able."""
    return value.item() if hasattr(value, "item") else value
