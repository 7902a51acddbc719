"""The membership-inference audit of one model on one table: which rows are members, which
held-out rows train LiRA's reference models, and each attack's scores on the rest.

The data names which rows trained the model (a membership column: true for a training row,
false for a held-out row). LiRA's reference models are retrained on a population split of
the held-out rows (:func:`split_rows`); those rows are then not audited (a reference model
must never have seen an audited row), so both attacks are judged on the same rows: every
member and the remaining held-out rows (:class:`AuditedRows`).

LiRA needs its reference models read the same way as the target: when the retrained models
give only probabilities, the target's confidences come from its probabilities too, and the
source phrase (for the metrics' details) says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from guardrail.core.errors import DataError
from guardrail.privacy.attacks import ReferenceModels, lira_offline_attack, loss_threshold_attack
from guardrail.privacy.model_logits import ReadLogits
from guardrail.privacy.outputs import Logits, ModelOutput, cross_entropy_loss, logit_confidence

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FROM_PROBABILITY",
    "LIRA_FROM_PROBABILITY",
    "AuditedRows",
    "fit_on_rows",
    "membership_flags",
    "split_rows",
]

FROM_PROBABILITY = (
    "positive-class probability (1 − p underflows on confident predictions: LiRA's confidence "
    "saturates at ±27.6 and the loss at 0)"
)
LIRA_FROM_PROBABILITY = (
    "positive-class probability, because the retrained reference models give only probabilities "
    "(LiRA must read target and references the same way); confidences saturate at ±27.6"
)

Scores = npt.NDArray[np.float64]
Rows = npt.NDArray[np.int64]


def membership_flags(data: pd.DataFrame, column: str, where: str) -> npt.NDArray[np.bool_]:
    """The membership column as booleans (true/false or 1/0, as text or not); a missing or
    unreadable column is a :class:`DataError`."""
    if column not in data.columns:
        raise DataError(f"params.membership_column names column {column!r}, which the data does not have", where=where)
    values = data[column]
    if values.isna().any():
        raise DataError(f"membership column {column!r} has {int(values.isna().sum())} missing value(s)", where=where)
    allowed = {True, False, 0, 1, "0", "1", "true", "false", "True", "False"}
    unknown = sorted({str(v) for v in values.unique() if v not in allowed})
    if unknown:
        raise DataError(
            f"membership column {column!r} must hold true/false or 1/0; found {', '.join(unknown[:5])}",
            where=where,
        )
    flags: npt.NDArray[np.bool_] = values.map(lambda v: str(v).lower() in ("1", "true")).to_numpy(dtype=bool)
    return flags


def split_rows(
    member: npt.NDArray[np.bool_], population_fraction: float | None, rng: np.random.Generator
) -> tuple[Rows, Rows]:
    """``(audited, population)`` row indices: ``population`` is a ``population_fraction`` of the
    held-out rows (at least 2), drawn by ``rng``, to train LiRA's reference models (none when
    ``population_fraction`` is None: no attack needs them); every other row is audited."""
    population = np.empty(0, dtype=np.int64)
    if population_fraction is not None:
        held_out = np.flatnonzero(~member)
        size = max(2, round(population_fraction * held_out.size))
        population = np.sort(rng.choice(held_out, size=size, replace=False))
    audited: Rows = np.setdiff1d(np.arange(len(member)), population)
    return audited, population


def fit_on_rows(
    retrain: Callable[[pd.DataFrame], Callable[[pd.DataFrame], Any]], data: pd.DataFrame
) -> Callable[[Rows], Callable[[Rows], ModelOutput]]:
    """``fit(train_idx) -> predict(idx)`` over rows of ``data``, as
    :func:`~guardrail.privacy.attacks.train_reference_models` takes it, from a ``retrain``
    over data frames (``AuditContext.retrain``)."""

    def fit(train_idx: Rows) -> Callable[[Rows], ModelOutput]:
        predict = retrain(data.iloc[train_idx])
        return lambda idx: predict(data.iloc[idx])

    return fit


@dataclass(frozen=True, eq=False)
class AuditedRows:
    """The audited rows' membership and labels, and the audited model's outputs on them.

    ``proba`` is the positive-class probability; ``logits`` the float64 log-scale outputs
    when the model has them (:func:`~guardrail.privacy.model_logits.model_logits`), and
    ``source`` says which of the two the attacks read.
    """

    member: npt.NDArray[np.bool_]
    labels: npt.NDArray[np.int64]
    proba: Scores
    logits: Logits | None
    source: str

    @classmethod
    def of(
        cls,
        audited: Rows,
        member: npt.NDArray[np.bool_],
        labels: npt.NDArray[np.int64],
        proba: Scores,
        read: ReadLogits | None,
    ) -> AuditedRows:
        """The ``audited`` rows of every row's ``member``, ``labels``, ``proba`` and ``read``."""
        return cls(
            member=member[audited],
            labels=labels[audited],
            proba=proba[audited],
            logits=None if read is None else Logits(read.logits.array[audited]),
            source=FROM_PROBABILITY if read is None else read.source,
        )

    @property
    def target(self) -> ModelOutput:
        """The model's outputs as the attacks read them: logits where there are some."""
        return self.proba if self.logits is None else self.logits

    def loss_scores(self) -> tuple[Scores, str]:
        """The loss-threshold attack's scores, and what they were computed from."""
        return loss_threshold_attack(cross_entropy_loss(self.target, self.labels)), self.source

    def lira_scores(self, references: ReferenceModels) -> tuple[Scores, str]:
        """Offline LiRA's scores against ``references`` (trained on the population rows, read
        on the audited rows), and what they were computed from: the target is read as the
        references were (probabilities on both sides unless every reference gave logits)."""
        target, source = (self.target, self.source) if references.from_logits else (self.proba, LIRA_FROM_PROBABILITY)
        return lira_offline_attack(logit_confidence(target, self.labels), references.confidence), source

    def counts(self) -> dict[str, int]:
        """Members and non-members attacked."""
        return {"members": int(self.member.sum()), "non_members": int((~self.member).sum())}
