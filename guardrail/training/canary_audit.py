"""Does guardrail's own DP-SGD trainer keep its ε? A one-run canary audit of a training recipe.

:func:`run_canary_audit` (tabular MLP) and :func:`canary_audit_tensors` (any model on
tensors) train the recipe ONCE more, through the same :class:`~guardrail.training.loop.Trainer`
(Opacus, Poisson sampling, clipping, noise, ledger) as ``guardrail train``, on the real
training rows plus ``m`` white-box "Dirac" gradient canaries, each included independently
with probability 1/2, and hand the canaries' scores and the run's own ledger ε to
:func:`guardrail.privacy.canary.one_run_canary_audit` (Steinke, Nasr & Jagielski 2023).

How the canaries work. The model is wrapped so that ``logits = body(x)·[real row] + push``
where ``push = head(s·onehot(canary)) − head(s·onehot(canary)).detach()`` and ``head`` is
a bias-free ``Linear(m, n_classes)`` initialised to zero:

* a real row has an all-zero one-hot, so its gradient on ``head`` is exactly zero and its
  forward pass is the body's alone;
* canary ``i`` is masked out of the body (zero gradient there) and its logits are
  *valued* zero (the ``− detach()``), so the cross-entropy gradient stays
  ``s · (1/K − e_y)`` on column ``i`` of ``head`` at every step: a gradient of fixed norm
  ``canary_norm × max_grad_norm`` along one coordinate block that no real row and no other
  canary touches. Clipped, it is ``max_grad_norm`` along that direction.

Canary ``i``'s score is column ``i`` of ``head`` after training, projected on the
direction its label pushes, ``(e_y − 1/K)/‖e_y − 1/K‖``: the sum of its clipped gradients
(when included) plus the DP noise, so ε_lower > ε_claimed reveals noise that is smaller,
clipping that is looser, or sampling that is more frequent than the ledger says.

Which σ. The audit of a trained model must check the σ that model was trained with, which
is in its ledger, not the σ its recipe would plan today: after a resume under
``target_epsilon`` the ledger's segments carry different σ (the target bounds the whole
ledger, see :mod:`guardrail.training.loop`), and a fresh plan would audit a run that never
happened. So ``guardrail train`` passes the model's ledger history as ``replay``: the audit
run takes the same number of steps as every segment, each at that segment's σ, and
``dp_audit.json`` records the audit run's own history beside ``replayed: true``. Without
``replay`` (auditing a recipe, not a model), σ comes from the recipe as in a fresh run.

Sample rate. By default (``same_sample_rate=True``) the batch size is scaled by
``(rows + included canaries) / rows`` (rounded down) so that the audit run's Poisson rate q, steps per epoch,
σ and hence ε match the recipe's real run; ε_claimed is, in any case, the audit run's own
ledger ε (its q counts the canaries).

Power. With 1000 canaries a perfect guesser proves at most ε ≈ 4.5 at 95% confidence
(Bonferroni over the guess grid), so the check can only refute claims well below that; a
correct trainer gave ε_lower ≈ 0.1–0.45 × ε_claimed (median ≈ 0.25) in the tests. "claim holds" means no
contradiction was found, not that the claim is tight.

Scope. The extra run exercises the trainer's whole DP path (the Opacus wiring of σ and C,
per-sample clipping in every grad-sample mode, the Poisson loader and the ledger's (σ, q,
steps)); it does not cover what happens outside the trainer (the encoder is fitted on all
rows without privacy, see ``NON_PRIVATE_PREPROCESSING_NOTE``), a custom loader given to
``train_tabular`` (the audit always uses guardrail's Poisson loader), or text models.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from guardrail.core.errors import UsageError
from guardrail.privacy.accounting import HistoryEntry, merge_history
from guardrail.privacy.canary import CanaryAuditReport, CanaryRun, one_run_canary_audit
from guardrail.privacy.ledger import Ledger
from guardrail.training.config import DPConfig, TrainConfig

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from guardrail.spec.training import TrainSpec

DEFAULT_CANARIES = 1000
CANARY_NORM = 100.0
"""Each canary's gradient norm before clipping, in units of ``max_grad_norm``."""


@functools.cache
def _canary_model_class() -> type[Any]:
    from torch import nn

    class CanaryModel(nn.Module):
        """``body`` plus a zero-initialised canary head; ``forward(x, canary_index)``.

        ``canary_index`` is the canary's number in ``[0, m)``, or ``m`` for a real row.
        """

        def __init__(
            self, body: nn.Module, canaries: int, n_classes: int, scale: float
        ) -> None:
            super().__init__()
            self.body = body
            self.canaries = canaries
            self.scale = scale
            self.head = nn.Linear(canaries, n_classes, bias=False)
            nn.init.zeros_(self.head.weight)

        def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            real = (index == self.canaries).unsqueeze(-1).to(x.dtype)
            onehot = nn.functional.one_hot(index, self.canaries + 1)[
                :, : self.canaries
            ].to(x.dtype)
            push: torch.Tensor = self.head(onehot * self.scale)
            out: torch.Tensor = self.body(x) * real + (push - push.detach())
            return out

    return CanaryModel


def _canary_forward(model: Any, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    out: torch.Tensor = model(inputs[0], inputs[1])
    return out


def canary_scores(
    head_weight: npt.ArrayLike, labels: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Each canary's head column projected on the direction its label pushes.

    ``head_weight`` is ``(n_classes, m)``; ``labels`` the ``m`` canary labels.

    >>> canary_scores([[0.5, -1.0, 0.0], [-0.5, 1.0, 0.0]], [0, 0, 1]).round(3).tolist()
    [0.707, -1.414, 0.0]
    """
    weight = np.asarray(head_weight, dtype=float)
    label = np.asarray(labels, dtype=np.int64)
    k, m = weight.shape
    direction = np.full((k, m), -1.0 / k)
    direction[label, np.arange(m)] += 1.0
    direction /= math.sqrt((k - 1) / k)  # ‖e_y − 1/K‖
    scores: npt.NDArray[np.float64] = (weight * direction).sum(axis=0)
    return scores


def canary_audit_tensors(
    body: torch.nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    config: TrainConfig,
    *,
    canaries: int = DEFAULT_CANARIES,
    delta: float | None = None,
    seed: int | None = None,
    confidence: float = 0.95,
    same_sample_rate: bool = True,
    canary_norm: float = CANARY_NORM,
    replay: Sequence[HistoryEntry] | None = None,
) -> CanaryAuditReport:
    """Audit ``config``'s DP claim by one extra training run of ``body`` on ``features → labels``.

    Parameters
    ----------
    body:
        A freshly initialised model, ``body(features) -> logits`` of width ``n_classes``;
        trained here (and then useless), so never pass the model to keep.
    features, labels:
        The real training rows (float features, class indices).
    config:
        The recipe; must have ``config.dp``. Its σ (or target ε), ``max_grad_norm``,
        batch size, epochs, lr, optimizer, accountant and grad-sample mode are used as they
        are; ``seed`` replaces ``config.seed`` and ``batch_size`` is rescaled when
        ``same_sample_rate`` (see the module docstring).
    canaries:
        ``m``; each is included with probability 1/2.
    delta:
        δ of the audited claim; default ``config.dp.delta``.
    seed:
        Draws the inclusion, the canary labels and the run's sampling and noise; default
        ``config.seed``.
    confidence:
        Of the ε lower bound.
    canary_norm:
        Each canary's gradient norm before clipping, in units of ``max_grad_norm``.
    replay:
        The audited model's ledger history ``(σ, q, steps)``: the audit run then takes the
        same steps at the same σ, segment by segment, whatever ``config.dp`` plans
        (``noise_multiplier``, ``target_epsilon`` and ``max_epsilon`` are not used, nor
        ``epochs``); q is the recipe's (rescaled as above). Default: σ from ``config.dp``
        for ``config.epochs`` epochs.

    Returns
    -------
    CanaryAuditReport
        ``epsilon_claimed`` is the audit run's ledger ε (by ``config.dp.accountant``) at
        ``delta``, ``history`` that run's ledger; ``violated`` when ε_lower exceeds it.
    """
    import torch

    from guardrail.training.data import tensor_sha256
    from guardrail.training.loop import Trainer

    dp = config.dp
    if dp is None:
        raise UsageError(
            "the DP canary audit needs a DP training config (config.dp is None)",
            hint="set privacy.dp in the train section, or skip the audit",
        )
    if canaries < 2:
        raise UsageError(f"canaries must be ≥ 2, got {canaries}")
    if n_classes < 2:
        raise UsageError(f"a classifier needs ≥ 2 classes, got {n_classes}")
    if not (math.isfinite(canary_norm) and canary_norm > 0):
        raise UsageError(f"canary_norm must be a positive number, got {canary_norm!r}")
    seed = config.seed if seed is None else int(seed)
    delta = float(dp.delta if delta is None else delta)
    schedule = None if replay is None else tuple(merge_history(replay))
    if schedule is not None:
        if not schedule:
            raise UsageError("the ledger to replay has no steps: the model was not trained with DP-SGD yet")
        config = dataclasses.replace(config, dp=_replaying(dp, schedule))
    x_real = features.detach().to("cpu", torch.float32)
    y_real = labels.detach().to("cpu", torch.int64)
    n_real = len(x_real)
    if n_real == 0 or len(y_real) != n_real:
        raise UsageError(
            f"features and labels need the same, non-zero length, got {n_real} and {len(y_real)}"
        )
    canary_labels = np.random.default_rng([seed, 1]).integers(n_classes, size=canaries)
    # s · ‖1/K − e_y‖ = canary_norm · C
    scale = canary_norm * dp.max_grad_norm / math.sqrt((n_classes - 1) / n_classes)

    def train(included: npt.NDArray[np.bool_]) -> CanaryRun:
        inside = np.flatnonzero(included)
        n_total = n_real + inside.size
        batch_size = config.batch_size
        if same_sample_rate:
            # rounded down: q ≤ the real run's q, so steps per epoch int(1/q) is never fewer
            batch_size = max(1, math.floor(config.batch_size * n_total / n_real))
        # the audit's own run, never released: seeded noise keeps its result repeatable
        run_config = dataclasses.replace(config, batch_size=batch_size, seed=seed, secret_noise=False)
        x = torch.cat([x_real, x_real.new_zeros((inside.size, x_real.shape[1]))])
        index = torch.cat(
            [
                torch.full((n_real,), canaries, dtype=torch.int64),
                torch.as_tensor(inside, dtype=torch.int64),
            ]
        )
        y = torch.cat([y_real, torch.as_tensor(canary_labels[inside], dtype=torch.int64)])
        torch.manual_seed(seed)
        model = _canary_model_class()(body, canaries, n_classes, scale)
        tensors = [x, index, y]
        trainer = Trainer(
            model,
            tensors,
            _canary_forward,
            run_config,
            data_sha256=tensor_sha256(*tensors),
            model_ref="dp-canary-audit",
            replay=schedule,
        )
        if schedule is None:
            trainer.run_epochs(config.epochs)
        else:
            total = sum(steps for _, _, steps in schedule)
            trainer.run_epochs(math.ceil(total / max(1, trainer.steps_per_epoch)) + 1)
        assert trainer.ledger is not None
        claimed = trainer.ledger.epsilon(delta, accountant=dp.accountant)
        weight = model.head.weight.detach().to("cpu", torch.float64).numpy()
        return CanaryRun(
            scores=canary_scores(weight, canary_labels),
            epsilon_claimed=claimed,
            history=trainer.ledger.segments,
            replayed=schedule is not None,
        )

    return one_run_canary_audit(
        train, canaries=canaries, delta=delta, confidence=confidence, seed=seed
    )


def run_canary_audit(
    frame: pd.DataFrame,
    target: str,
    features: Sequence[str],
    config: TrainConfig,
    *,
    hidden: Sequence[int] = (32,),
    canaries: int = DEFAULT_CANARIES,
    delta: float | None = None,
    seed: int | None = None,
    confidence: float = 0.95,
    same_sample_rate: bool = True,
    replay: Sequence[HistoryEntry] | None = None,
) -> CanaryAuditReport:
    """Audit the DP claim of :func:`~guardrail.training.api.train_tabular`'s recipe on ``frame``.

    The same encoding (:class:`~guardrail.training.data.TabularEncoder` fitted on
    ``frame``), the same MLP (``hidden``) and the same :class:`TrainConfig` as
    ``train_tabular(frame, target, features, out, config, hidden=hidden)``, trained once
    more with canaries by :func:`canary_audit_tensors` (see it for the parameters; pass the
    trained model's ledger history as ``replay`` to audit that model rather than the
    recipe). Pass the rows the model is trained on (not the holdout). Nothing is written; save the
    report with :func:`guardrail.privacy.canary.save_canary_report`.
    """
    import torch

    from guardrail.training.api import _require_column
    from guardrail.training.data import TabularEncoder, encode_labels
    from guardrail.training.models import MLPConfig, build_mlp

    _require_column(frame, target)
    encoder = TabularEncoder.fit(frame, features)
    x = torch.tensor(encoder.transform(frame))
    labels, classes = encode_labels(frame[target].tolist())
    seed = config.seed if seed is None else int(seed)
    torch.manual_seed(seed)
    body = build_mlp(MLPConfig(encoder.width, len(classes), tuple(hidden)))
    return canary_audit_tensors(
        body,
        x,
        torch.tensor(labels),
        len(classes),
        config,
        canaries=canaries,
        delta=delta,
        seed=seed,
        confidence=confidence,
        same_sample_rate=same_sample_rate,
        replay=replay,
    )


def canary_audit_from_spec(
    spec: TrainSpec,
    frame: pd.DataFrame,
    *,
    ledger: Ledger | None = None,
    canaries: int = DEFAULT_CANARIES,
    seed: int | None = None,
    confidence: float = 0.95,
) -> CanaryAuditReport:
    """:func:`run_canary_audit` for a validated ``train:`` section (mlp models with DP only).

    With the trained model's ``ledger`` the audit replays its history (the σ and steps of
    every segment, see the module docstring); without it, it audits the recipe as a fresh run.
    """
    from guardrail.training.api import config_from_spec

    if spec.model.kind != "mlp":
        raise UsageError(
            f"the DP canary audit supports mlp models, not {spec.model.kind}",
        )
    if spec.privacy.dp is None:
        raise UsageError("the DP canary audit needs train.privacy.dp")
    assert spec.features is not None  # validated for mlp
    return run_canary_audit(
        frame,
        spec.target,
        spec.features,
        config_from_spec(spec),
        hidden=spec.model.hidden,
        canaries=canaries,
        seed=seed,
        confidence=confidence,
        replay=None if ledger is None else ledger.history,
    )


def _replaying(dp: DPConfig, schedule: Sequence[HistoryEntry]) -> DPConfig:
    """``dp`` with σ fixed to the replay's first (the trainer follows the replay from there)."""
    return dataclasses.replace(
        dp, noise_multiplier=schedule[0][0], target_epsilon=None, max_epsilon=None
    )


__all__ = [
    "CANARY_NORM",
    "DEFAULT_CANARIES",
    "canary_audit_from_spec",
    "canary_audit_tensors",
    "canary_scores",
    "run_canary_audit",
]
