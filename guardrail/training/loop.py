"""The DP-SGD (Opacus) and non-private training loop, usable one epoch, round or step at a time.

A :class:`Trainer` holds a model, its training tensors and a :class:`TrainConfig`. Each
:meth:`Trainer.run_epochs` / :meth:`Trainer.run_steps` call continues where the last one
stopped and, under DP, appends the steps it took to :attr:`Trainer.ledger` (which may be
given, e.g. a hospital's ledger carried across federated rounds or a resumed checkpoint's).

DP details:

* Poisson sampling through Opacus' ``DPDataLoader`` at q = batch_size / N, N the real
  number of training rows (not ``1/len(loader)``); the optimizer's expected batch size is
  batch_size. A loader passed in is checked by :func:`guardrail.training.data.check_loader`.
* Every sampler draw counts as one accounted step, even an empty batch (no update is
  made then; counting it only overstates ε, so the accounting stays valid).
* ``max_epsilon``: before a run, the number of further steps that keep ε ≤ max_epsilon
  is computed from the ledger; training stops before the step that would exceed it and
  the ledger records ``stopped_reason``.
* ``target_epsilon`` bounds the whole ledger, not one run. σ is planned for the steps this
  trainer will still take (``planned_steps``, by default the epochs left to reach
  ``config.epochs``) so that the ledger's history so far plus those steps spends at most
  the target (:func:`guardrail.privacy.accounting.noise_for_budget`, by the configured
  accountant; see :mod:`guardrail.training.budget`). A fresh run gets the usual σ; a resumed
  run (a ledger with steps) gets the σ that fits the remaining steps into what is left of
  the budget, and the ledger says so in a note; each segment of the ledger keeps the σ it
  was trained with. When nothing fits
  (less than ``SPENT_BELOW`` = 0.01 of the budget is left, as after any run planned for the
  same target, or the remaining steps would need σ > ``MAX_NOISE_MULTIPLIER``) the trainer
  refuses before taking a step (:class:`~guardrail.core.errors.UsageError`, exit 3), saying what
  was spent and how to go on.
* ``replay``: a ledger history to train by, step for step (each step uses the σ of the
  segment it falls in; training ends with the last segment). The DP-claim check
  (:mod:`guardrail.training.canary_audit`) uses it to audit the σ a model was actually
  trained with.
* Samplers and DP noise use ``torch.Generator`` objects reseeded from (seed, epoch), so a
  run resumed at an epoch boundary draws the same batches and noise as a run straight
  through, with ``TrainConfig.secret_noise=False``. By default the seed of both is a fresh 40-bit
  secret drawn when the trainer is built (kept only in memory), so nobody holding the spec
  or the seed can regenerate the noise or the batches and subtract them from a released
  model; a resumed run then draws other (equally distributed) batches and noise. Either way
  the generator is torch's, not a cryptographically secure one (Opacus' secure_mode is
  not used).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from guardrail.adapters.torch import pick_device
from guardrail.core.errors import DataError, UsageError
from guardrail.privacy.accounting import Accountant, HistoryEntry, merge_history
from guardrail.privacy.ledger import NON_POISSON, POISSON, Ledger
from guardrail.training.budget import BEYOND_TARGET, RESUMED_WITHIN_TARGET, plan_within_target
from guardrail.training.config import (
    DEFAULT_GRAD_SAMPLE_MODE,
    GRAD_SAMPLE_MODES,
    REPRODUCIBLE_NOISE_NOTE,
    DPConfig,
    EpochRecord,
    GradSampleMode,
    TrainConfig,
    TrainState,
)
from guardrail.training.data import NON_PRIVATE_PREPROCESSING_NOTE, check_loader

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader, Dataset

Forward = Callable[[Any, Sequence[Any]], "torch.Tensor"]
"""``forward(model, batch_inputs) -> logits``; the batch's last tensor is the label."""


class Trainer:
    """Train ``model`` on ``tensors`` (inputs…, labels), privately when ``config.dp`` is set.

    Parameters
    ----------
    model:
        A ``torch.nn.Module``; under DP it is wrapped by Opacus in place (weights are shared).
    tensors:
        Training tensors of equal length; the last holds class indices.
    forward:
        ``forward(model, inputs) -> logits``.
    config:
        :class:`TrainConfig`.
    ledger:
        A ledger to continue (resume, federated rounds). Default: a new one.
    data_sha256, model_ref:
        Recorded in a new ledger.
    loader:
        A custom loader instead of guardrail's own; refused under DP unless it is a Poisson
        loader over exactly these rows or ``dp.allow_non_poisson``.
    planned_steps:
        Steps this trainer will still take, planned within ``target_epsilon`` together with
        the ledger's history; default ``(epochs − epochs done) × steps_per_epoch``.
    state:
        Epochs and steps already done (a resumed checkpoint).
    replay:
        A ledger history ``(σ, q, steps)`` to train by instead of a σ from the config: each
        step takes the σ of the segment it falls in, and :meth:`run_epochs` ends with the
        last segment (q comes from this trainer's loader).
    """

    def __init__(
        self,
        model: Any,
        tensors: Sequence[torch.Tensor],
        forward: Forward,
        config: TrainConfig,
        *,
        ledger: Ledger | None = None,
        data_sha256: str = "",
        model_ref: str = "",
        loader: DataLoader[Any] | None = None,
        planned_steps: int | None = None,
        state: TrainState | None = None,
        replay: Sequence[HistoryEntry] | None = None,
    ) -> None:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        self.config = config
        self.forward = forward
        self.device = pick_device(config.device)
        self.state = state or TrainState()
        self.module = model.to(self.device)
        self.dataset: Dataset[Any] = TensorDataset(*tensors)
        self.n = len(tensors[0])
        if self.n == 0:
            raise DataError("the training data has no rows")
        if config.batch_size < 1:
            raise UsageError(f"batch_size must be ≥ 1, got {config.batch_size}")
        self._dp_seed = secrets.randbits(40) if config.secret_noise and config.dp is not None else config.seed
        self._sampler_gen = torch.Generator().manual_seed(self._dp_seed)
        self._noise_gen = torch.Generator(device=self.device).manual_seed(
            self._dp_seed + 1
        )
        params = [p for p in self.module.parameters() if p.requires_grad]
        if config.optimizer == "adam":
            base: torch.optim.Optimizer = torch.optim.Adam(params, lr=config.lr)
        else:
            base = torch.optim.SGD(params, lr=config.lr)
        self.base_optimizer = base
        self.criterion: Any = torch.nn.CrossEntropyLoss()
        dp = config.dp
        self.noise_multiplier = 0.0
        self.sample_rate = min(1.0, config.batch_size / self.n)
        self.ledger: Ledger | None = None
        self._replay: tuple[HistoryEntry, ...] | None = None
        self._taken = 0  # steps taken by this trainer (the replay's clock)
        if dp is None:
            self.loader: DataLoader[Any] = loader or DataLoader(
                self.dataset,
                batch_size=config.batch_size,
                shuffle=True,
                generator=self._sampler_gen,
            )
            self.model = self.module
            self.optimizer: Any = base
            return
        if loader is not None:
            check = check_loader(loader, self.n, allow_non_poisson=dp.allow_non_poisson)
            self.sample_rate, sampling = check.sample_rate, check.sampling
            self.loader = loader
        else:
            from opacus.data_loader import DPDataLoader

            self.loader = DPDataLoader(
                self.dataset, sample_rate=self.sample_rate, generator=self._sampler_gen
            )
            sampling = POISSON
        if ledger is None:
            ledger = Ledger(
                delta=float(dp.delta),
                max_grad_norm=float(dp.max_grad_norm),
                data_sha256=data_sha256,
                model=model_ref,
                sampling=sampling,
            )
        elif ledger.delta != dp.delta or ledger.max_grad_norm != dp.max_grad_norm:
            raise UsageError(
                f"the ledger to continue has delta={ledger.delta}, max_grad_norm={ledger.max_grad_norm}, "
                f"but this training uses delta={dp.delta}, max_grad_norm={dp.max_grad_norm}",
                hint="continue with the same DP settings, or start a new ledger",
            )
        if sampling == NON_POISSON and ledger.sampling != NON_POISSON:
            # sticky: once any step was not Poisson-sampled, the whole ε assumes Poisson
            ledger = dataclasses.replace(ledger, sampling=NON_POISSON)
        if replay is not None:
            self._replay = tuple(merge_history(replay))
            if not self._replay:
                raise UsageError("the history to replay has no steps")
            self.noise_multiplier = self._replay[0][0]
        elif dp.noise_multiplier is not None:
            self.noise_multiplier = float(dp.noise_multiplier)
        else:
            if planned_steps is None:
                planned_steps = max(0, config.epochs - self.state.epochs_done) * len(self.loader)
            self.noise_multiplier, ledger = plan_within_target(dp, ledger, self.sample_rate, planned_steps)
        self.ledger = ledger
        self._wrap_private(dp)

    def _wrap_private(self, dp: DPConfig) -> None:
        from opacus import PrivacyEngine

        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Secure RNG turned off", category=UserWarning
            )
            engine = PrivacyEngine(accountant=dp.accountant)
            made = engine.make_private(
                module=self.module,
                optimizer=self.base_optimizer,
                criterion=self.criterion,
                data_loader=self.loader,
                noise_multiplier=self.noise_multiplier,
                max_grad_norm=dp.max_grad_norm,
                poisson_sampling=False,  # our loader already samples (or was checked); keeps q = B / N
                grad_sample_mode=dp.grad_sample_mode,
                noise_generator=self._noise_gen,
            )
        if dp.grad_sample_mode == "ghost":
            self.model, self.optimizer, self.criterion, _ = made
        else:
            self.model, self.optimizer, _ = made
        self.optimizer.expected_batch_size = self.config.batch_size
        if self.ledger is not None and self.ledger.sampling == POISSON:
            self.model.forbid_grad_accumulation()

    # -- running ---------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def epsilon(self, accountant: Accountant | None = None) -> float | None:
        if self.ledger is None or self.config.dp is None:
            return None
        return self.ledger.epsilon(accountant=accountant or self.config.dp.accountant)

    def run_epochs(self, epochs: int) -> list[EpochRecord]:
        """Train ``epochs`` more epochs (fewer if ``max_epsilon`` stops it or a replay ends); one record per epoch."""
        records = []
        for _ in range(epochs):
            if self.replay_done:
                break
            record = self._epoch(max_steps=None)
            records.append(record)
            if self.ledger is not None and self.ledger.stopped_reason:
                break
        return records

    def run_steps(self, steps: int) -> EpochRecord:
        """Train exactly ``steps`` more steps (e.g. k local steps of a federated round)."""
        return self._epoch(max_steps=steps)

    @property
    def replay_done(self) -> bool:
        """Whether a replayed history has been trained to its end (always False without one)."""
        return self._replay is not None and self._replay_sigma(self._taken) is None

    def _replay_sigma(self, step: int) -> float | None:
        """σ of this trainer's step ``step`` (0-based) in the replayed history; None past its end."""
        for sigma, _rate, steps in self._replay or ():
            if step < steps:
                return sigma
            step -= steps
        return None

    def _set_noise_multiplier(self, sigma: float) -> None:
        self.noise_multiplier = sigma
        self.optimizer.noise_multiplier = sigma  # Opacus' DPOptimizer reads it at every step

    def _record(self, steps: int) -> None:
        """Append ``steps`` steps at the current σ and q to the ledger (under DP)."""
        if self.ledger is not None:
            self.ledger = self.ledger.record(self.noise_multiplier, self.sample_rate, steps)

    def _budget(self) -> int | None:
        dp = self.config.dp
        if dp is None or dp.max_epsilon is None or self.ledger is None:
            return None
        return self.ledger.steps_within(
            dp.max_epsilon, self.noise_multiplier, self.sample_rate, dp.accountant
        )

    def _epoch(self, max_steps: int | None) -> EpochRecord:
        epoch = self.state.epochs_done
        self._sampler_gen.manual_seed(self._dp_seed * 1_000_003 + epoch)
        self._noise_gen.manual_seed(self._dp_seed * 1_000_003 + epoch + 500_009)
        budget = self._budget()
        self.model.train()
        started = time.perf_counter()
        total_loss, seen, steps, unrecorded = 0.0, 0, 0, 0
        stop_reason: str | None = None
        replay_ended = False
        for batch in self.loader:
            if max_steps is not None and steps >= max_steps:
                break
            if self._replay is not None:
                sigma = self._replay_sigma(self._taken)
                if sigma is None:
                    replay_ended = True
                    break
                if sigma != self.noise_multiplier:
                    self._record(unrecorded)
                    unrecorded = 0
                    self._set_noise_multiplier(sigma)
            if budget is not None and steps >= budget:
                dp = self.config.dp
                assert dp is not None and self.ledger is not None
                stop_reason = (
                    f"stopped before step {self.ledger.steps + steps + 1}: it would exceed max_epsilon={dp.max_epsilon} "
                    f"({dp.accountant})"
                )
                break
            *inputs, labels = (t.to(self.device) for t in batch)
            steps += 1
            unrecorded += 1
            self._taken += 1
            if len(labels) == 0:
                continue  # an empty Poisson draw: counted as a step, no update
            self.optimizer.zero_grad(set_to_none=True)
            with warnings.catch_warnings():
                # Opacus' hooks fire on module outputs when inputs need no gradient (always, for data)
                warnings.filterwarnings(
                    "ignore",
                    message="Full backward hook is firing",
                    category=UserWarning,
                )
                logits = self.forward(self.model, inputs)
                loss = self.criterion(logits, labels)
                loss.backward()
            self.optimizer.step()
            total_loss += float(loss.detach()) * len(labels)
            seen += len(labels)
        self._record(unrecorded)
        if self.ledger is not None and stop_reason:
            self.ledger = self.ledger.stopped(stop_reason)
        self.state.steps_done += steps
        if max_steps is None and stop_reason is None and not replay_ended:
            self.state.epochs_done += 1
        record = EpochRecord(
            epoch=epoch,
            steps=steps,
            loss=total_loss / seen if seen else float("nan"),
            seconds=time.perf_counter() - started,
            epsilon=self.epsilon(),
            noise_multiplier=self.noise_multiplier if self.ledger is not None else None,
        )
        self.state.history.append(record)
        return record

    def notes(self) -> tuple[str, ...]:
        return (NON_PRIVATE_PREPROCESSING_NOTE,)



__all__ = [  # the configs and the budget's texts are imported from here too (callers, tests, benchmarks)
    "BEYOND_TARGET",
    "DEFAULT_GRAD_SAMPLE_MODE",
    "GRAD_SAMPLE_MODES",
    "REPRODUCIBLE_NOISE_NOTE",
    "RESUMED_WITHIN_TARGET",
    "DPConfig",
    "EpochRecord",
    "Forward",
    "GradSampleMode",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "pick_device",
]
