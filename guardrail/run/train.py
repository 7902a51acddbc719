"""``guardrail train SPEC``: train the model an audit spec's ``train:`` section describes.

Orchestration only (layer 2): read the rows (a table, or a data set guardrail ships), hold a
stratified, seeded share out, train on the rest through :mod:`guardrail.training` (DP-SGD
when ``train.privacy.dp`` is set, with the privacy ledger beside the model), then write the
**audit table**: every row with a membership column (true for training rows), so that the
spec's audits, the privacy audit first, can tell members from held-out rows.

For an MLP trained with DP-SGD it then checks the DP claim: the one-run canary audit
(:mod:`guardrail.training.canary_audit`) trains the recipe once more with gradient canaries,
replaying the model's ledger (every segment's σ and steps, as trained, also after a
``--resume``), and writes ``dp_audit.json`` (ε_lower next to the audit run's ε) beside the
model, where the privacy audit reads it. ``train.privacy.canary_audit`` turns it off or
requires it.

Under ``train.privacy.dp.target_epsilon`` the target bounds the model's whole ledger: a
``--resume`` plans σ for the remaining epochs within what is left of it, or refuses (exit 3)
when nothing is left (see :mod:`guardrail.training.loop`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from guardrail.core.atomic import write_atomic
from guardrail.core.errors import DataError, SpecError
from guardrail.privacy.canary import DP_AUDIT_FILE, CanaryAuditReport, save_canary_report
from guardrail.spec.loader import LoadedSpec, load_spec, sha256_file
from guardrail.spec.models import TrainDataSpec, TrainSection
from guardrail.spec.yamlsource import display_path

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from guardrail.training import TrainResult

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class TrainRun:
    """A finished ``guardrail train``: what the trainer produced and the audit table."""

    result: TrainResult
    audit_table: Path
    members: int
    held_out: int
    held_out_accuracy: float | None
    dp_audit: CanaryAuditReport | None = None
    """The canary audit of the DP claim, when it ran."""

    def summary(self) -> str:
        """What ``guardrail train`` prints: the model, the privacy spent, where the files are."""
        result = self.result
        accuracy = "—" if self.held_out_accuracy is None else f"{self.held_out_accuracy:.3f}"
        lines = [
            f"trained {result.architecture} for {result.epochs_done} epoch(s), {result.steps_done} step(s) "
            f"on {self.members:,} rows in {result.seconds:.1f} s; held-out accuracy {accuracy} on {self.held_out:,} rows"
        ]
        if result.private:
            lines.append(
                f"privacy: DP-SGD, noise multiplier {result.noise_multiplier:.3g}, sample rate {result.sample_rate:.3g}, "
                f"epsilon {result.epsilon_rdp:.3g} (RDP) / {result.epsilon_prv:.3g} (PRV) at delta {result.delta:g}"
                + (f"; sampling {result.sampling}" if result.sampling != "poisson" else "")
            )
            ledger = result.ledger
            if ledger is not None and len({sigma for sigma, _rate, _steps in ledger.history}) > 1:
                segments = ", ".join(f"σ {sigma:.4g} for {steps} step(s)" for sigma, _rate, steps in ledger.history)
                lines.append(f"ledger segments: {segments}")
                lines += [f"ledger note: {note}" for note in ledger.notes]
            if result.stopped_reason:
                lines.append(f"stopped early: {result.stopped_reason}")
            if self.dp_audit is not None:
                lines.append(self.dp_audit.message)
        else:
            lines.append("privacy: none (no train.privacy.dp); the privacy audit will report no epsilon")
        lines.append(f"model: {display_path(result.out)}; audit table: {display_path(self.audit_table)}")
        return "\n".join(lines)


def train(spec_path: str | Path, *, resume: bool = False, progress: ProgressFn | None = None) -> TrainRun:
    """Train what the spec's ``train:`` section describes; see the module docstring.

    Raises
    ------
    SpecError
        If the spec has no ``train:`` section, or is invalid.
    DataError
        If the rows lack a named column, or the target has missing values.
    """
    say = progress or (lambda _message: None)
    loaded = load_spec(spec_path, inputs_must_exist=False)
    section = loaded.spec.train
    if section is None:
        raise SpecError(
            "this spec has no `train:` section, so there is nothing to train",
            where=display_path(loaded.path),
            hint="add a train: section (see `guardrail schema audit`), or audit an existing model with `guardrail audit`",
        )
    if resume:
        section = section.model_copy(update={"resume": True})
    frame, data_sha256 = _read_rows(section.data, loaded)
    _check_columns(section, frame, section.data)
    member = _members(frame[section.target], section.data.holdout, section.seed)
    say(f"training on {int(member.sum()):,} rows, {int((~member).sum()):,} held out")
    from guardrail.training import train_from_spec

    result = train_from_spec(
        section, frame[member].reset_index(drop=True), loaded.path.parent, data_file_sha256=data_sha256
    )
    table = frame.assign(**{section.data.membership_column: member})
    audit_table = write_atomic(result.out / section.data.audit_table, _table_bytes(table, section.data.audit_table))
    accuracy = _held_out_accuracy(result.out, frame[~member], section.target)
    dp_audit = _check_dp_claim(section, frame[member].reset_index(drop=True), result, say)
    return TrainRun(result, audit_table, int(member.sum()), int((~member).sum()), accuracy, dp_audit)


def _check_dp_claim(
    section: TrainSection, members: pd.DataFrame, result: TrainResult, say: ProgressFn
) -> CanaryAuditReport | None:
    """Run the canary audit when the section asks for it (or by default when supported), and
    write its report beside the model; remove a stale report otherwise, so that the privacy
    audit never reads a check of an earlier model. The audit replays the model's ledger:
    the σ and steps it was trained with, never a σ planned afresh."""
    settings = section.privacy.canary_audit
    report_file = result.out / DP_AUDIT_FILE
    supported = section.model.kind == "mlp" and section.privacy.dp is not None
    if not supported or settings.enabled is False:
        report_file.unlink(missing_ok=True)
        return None
    say(f"checking the DP claim: training once more with {settings.canaries:,} canaries")
    from guardrail.training.canary_audit import canary_audit_from_spec

    report = canary_audit_from_spec(
        section,
        members,
        ledger=result.ledger,
        canaries=settings.canaries,
        seed=section.seed,
        confidence=settings.confidence,
    )
    save_canary_report(report, report_file)
    return report


def _read_rows(data: TrainDataSpec, loaded: LoadedSpec) -> tuple[pd.DataFrame, str]:
    if data.dataset == "drug_reviews":
        from guardrail.datasets.drug_reviews import DRUG_REVIEWS_SHA256, load_drug_reviews

        return load_drug_reviews(), DRUG_REVIEWS_SHA256
    if data.dataset is not None:
        from guardrail import datasets

        frame = datasets.load_heart_disease() if data.dataset == "heart_disease" else datasets.load_adult()
        return frame, datasets.source_sha256(data.dataset)
    assert data.path is not None
    path = (loaded.path.parent / data.path).resolve()
    if not path.is_file():
        where = loaded.document.where(("train", "data", "path"))
        raise SpecError(f"train.data.path: data file not found: {display_path(path)}", where=where)
    from guardrail.adapters.tables import read_table

    return read_table(path, where=display_path(path)), sha256_file(path)


def _check_columns(section: TrainSection, frame: pd.DataFrame, data: TrainDataSpec) -> None:
    wanted = [section.target, *(section.features or ()), *([section.text_column] if section.text_column else [])]
    absent = [column for column in wanted if column not in frame.columns]
    if absent:
        raise DataError(
            f"train names column(s) {', '.join(map(repr, absent))} that the training data does not have",
            hint=f"available columns: {', '.join(map(str, frame.columns))}",
        )
    if data.membership_column in frame.columns:
        raise DataError(
            f"the training data already has a column {data.membership_column!r}, which the audit table would overwrite",
            hint="rename it, or set train.data.membership_column to another name",
        )
    if frame[section.target].isna().any():
        raise DataError(
            f"the target column {section.target!r} has {int(frame[section.target].isna().sum())} missing value(s)",
            hint="drop those rows or fill the label before training",
        )


def _members(target: pd.Series, holdout: float, seed: int) -> np.ndarray:
    """A seeded split stratified by the target: ``True`` for training rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    member = np.ones(len(target), dtype=bool)
    for label in sorted(target.unique(), key=str):
        rows = np.flatnonzero((target == label).to_numpy())
        held = rng.choice(rows, size=round(holdout * rows.size), replace=False)
        member[held] = False
    if member.all() or not member.any():
        raise DataError(f"holding out {holdout:.0%} of {len(target)} rows leaves no rows on one side")
    return member


def _table_bytes(frame: pd.DataFrame, name: str) -> bytes:
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False, compression={"method": "gzip", "mtime": 0} if name.endswith(".gz") else None)
    return buffer.getvalue()


def _held_out_accuracy(folder: Path, held_out: pd.DataFrame, target: str) -> float | None:
    """Accuracy of the saved model on the held-out rows (as the audit will load it)."""
    from guardrail.adapters.torch import TorchAdapter

    model = TorchAdapter.load(folder)
    predicted = model.predict(held_out, model.classes[-1]).labels
    if len(held_out) == 0:
        return None
    return float((predicted == held_out[target].to_numpy()).mean())


__all__ = ["TrainRun", "train"]
