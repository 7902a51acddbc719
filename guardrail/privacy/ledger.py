"""The privacy ledger: the one source of every DP number guardrail reports.

A :class:`Ledger` is an immutable record of DP-SGD training: the accountant history as
``(noise_multiplier, sample_rate, steps)`` segments (Opacus' ``accountant.history``
shape), δ, the clipping norm, the SHA-256 of the training data, a model reference, how
batches were sampled, and why training stopped early (if it did). ε is never stored as
the truth: it is recomputed from the history by Opacus' own accountants
(:mod:`guardrail.privacy.accounting`), so the ledger's ε equals Opacus' for the same
history by construction.

:meth:`Ledger.record` returns a new ledger with the steps appended, so a trainer can
spend privacy one epoch, one round or one step at a time (federated rounds, resumed
checkpoints) and the history simply continues.

The JSON file (``ledger.json``) is versioned (``schema_version``) and written
atomically; :func:`load_ledger` validates it and raises :class:`DataError` with the
file name for a corrupt or foreign file. The ε values in the file (``epsilon``) are a
convenience for readers and are recomputed, never trusted, when loaded.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guardrail.core.atomic import write_atomic
from guardrail.core.errors import DataError
from guardrail.core.serialize import finite_or_none
from guardrail.privacy.accounting import (
    ACCOUNTANTS,
    DEFAULT_EPS_ERROR,
    Accountant,
    HistoryEntry,
    check_entry,
    epsilon,
    max_steps_within,
    merge_history,
)

LEDGER_FILE = "ledger.json"
"""The ledger's file name in a model folder, beside the model."""
LEDGER_KIND = "guardrail-privacy-ledger"
LEDGER_SCHEMA_VERSION = 1
Sampling = Literal["poisson", "non-poisson (epsilon assumes Poisson)"]
POISSON: Sampling = "poisson"
NON_POISSON: Sampling = "non-poisson (epsilon assumes Poisson)"
BAD_LEDGER_HINT = "the file must be a ledger.json written by `guardrail train`; retrain or restore it from a backup"


@dataclass(frozen=True)
class Segment:
    """``steps`` DP-SGD steps at noise multiplier σ and Poisson sample rate q."""

    noise_multiplier: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        check_entry(self.noise_multiplier, self.sample_rate, self.steps)


@dataclass(frozen=True)
class Ledger:
    """Immutable DP accounting record; see the module docstring.

    Examples
    --------
    >>> ledger = Ledger(delta=1e-5, max_grad_norm=1.0, data_sha256="0" * 64)
    >>> ledger = ledger.record(1.0, 1 / 128, 64).record(1.0, 1 / 128, 64)
    >>> ledger.steps, ledger.history
    (128, ((1.0, 0.0078125, 128),))
    >>> round(ledger.epsilon(accountant="rdp"), 2)
    1.11
    """

    delta: float
    max_grad_norm: float
    data_sha256: str
    model: str = ""
    segments: tuple[Segment, ...] = ()
    sampling: Sampling = POISSON
    stopped_reason: str | None = None
    notes: tuple[str, ...] = ()
    schema_version: int = LEDGER_SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.delta, float) and 0 < self.delta < 1):
            raise DataError(f"delta must be a number in (0, 1), got {self.delta!r}")
        if not (
            isinstance(self.max_grad_norm, (int, float))
            and math.isfinite(self.max_grad_norm)
            and self.max_grad_norm > 0
        ):
            raise DataError(
                f"max_grad_norm must be a positive number, got {self.max_grad_norm!r}"
            )
        if self.sampling not in (POISSON, NON_POISSON):
            raise DataError(
                f"sampling must be {POISSON!r} or {NON_POISSON!r}, got {self.sampling!r}"
            )

    # -- history ---------------------------------------------------------------------
    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        """Merged ``(σ, q, steps)`` entries, as fed to Opacus' accountants."""
        return tuple(
            merge_history(
                (s.noise_multiplier, s.sample_rate, s.steps) for s in self.segments
            )
        )

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.segments)

    def record(self, noise_multiplier: float, sample_rate: float, steps: int) -> Ledger:
        """A new ledger with ``steps`` more steps at (σ, q); merged into the last segment when equal."""
        check_entry(noise_multiplier, sample_rate, steps)
        if steps == 0:
            return self
        segments = list(self.segments)
        last = segments[-1] if segments else None
        if (
            last
            and last.noise_multiplier == noise_multiplier
            and last.sample_rate == sample_rate
        ):
            segments[-1] = Segment(
                last.noise_multiplier, last.sample_rate, last.steps + steps
            )
        else:
            segments.append(Segment(float(noise_multiplier), float(sample_rate), steps))
        return dataclasses.replace(self, segments=tuple(segments), stopped_reason=None)

    def stopped(self, reason: str) -> Ledger:
        """A new ledger that records why training stopped before its planned end."""
        return dataclasses.replace(self, stopped_reason=reason)

    def with_notes(self, *notes: str) -> Ledger:
        return dataclasses.replace(
            self, notes=(*self.notes, *(n for n in notes if n not in self.notes))
        )

    # -- privacy numbers -------------------------------------------------------------
    def epsilon(
        self,
        delta: float | None = None,
        accountant: Accountant = "rdp",
        *,
        eps_error: float = DEFAULT_EPS_ERROR,
    ) -> float:
        """ε spent so far at ``delta`` (default: the ledger's δ), by Opacus' RDP or PRV accountant."""
        return epsilon(
            self.history,
            self.delta if delta is None else delta,
            accountant,
            eps_error=eps_error,
        )

    def would_exceed(
        self,
        max_epsilon: float,
        noise_multiplier: float,
        sample_rate: float,
        next_steps: int = 1,
        accountant: Accountant = "rdp",
    ) -> bool:
        """Whether taking ``next_steps`` more steps at (σ, q) would push ε above ``max_epsilon``."""
        after = self.record(noise_multiplier, sample_rate, next_steps)
        return after.epsilon(accountant=accountant) > max_epsilon

    def steps_within(
        self,
        max_epsilon: float,
        noise_multiplier: float,
        sample_rate: float,
        accountant: Accountant = "rdp",
    ) -> int:
        """How many more steps at (σ, q) fit within ``max_epsilon`` (the next one would exceed it)."""
        return max_steps_within(
            self.history,
            max_epsilon,
            self.delta,
            noise_multiplier,
            sample_rate,
            accountant,
        )

    # -- JSON ------------------------------------------------------------------------
    def to_dict(self, *, with_epsilon: bool = True) -> dict[str, Any]:
        """A JSON-able dict; with ``with_epsilon`` it carries ε by RDP and PRV for readers."""
        data: dict[str, Any] = {
            "kind": LEDGER_KIND,
            "schema_version": self.schema_version,
            "delta": self.delta,
            "max_grad_norm": self.max_grad_norm,
            "data_sha256": self.data_sha256,
            "model": self.model,
            "sampling": self.sampling,
            "segments": [dataclasses.asdict(s) for s in self.segments],
            "steps": self.steps,
            "stopped_reason": self.stopped_reason,
            "notes": list(self.notes),
            "extra": self.extra,
        }
        if with_epsilon:
            data["epsilon"] = {
                acc: finite_or_none(self.epsilon(accountant=acc))
                for acc in ACCOUNTANTS
            }
            data["epsilon_note"] = (
                "recomputed from segments by Opacus' RDPAccountant and PRVAccountant (upper bound, "
                f"eps_error={DEFAULT_EPS_ERROR}) at delta"
                + ("; assumes Poisson sampling" if self.sampling != POISSON else "")
            )
        return data

    def to_json(self, *, with_epsilon: bool = True) -> str:
        return (
            json.dumps(
                self.to_dict(with_epsilon=with_epsilon), indent=2, sort_keys=True
            )
            + "\n"
        )

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "ledger") -> Ledger:
        """Validate and rebuild a ledger from :meth:`to_dict`'s output; :class:`DataError` if it is not one."""
        if not isinstance(data, dict) or data.get("kind") != LEDGER_KIND:
            raise DataError(
                f"not a guardrail privacy ledger (kind is not {LEDGER_KIND!r})",
                where=where,
                hint=BAD_LEDGER_HINT,
            )
        if data.get("schema_version") != LEDGER_SCHEMA_VERSION:
            raise DataError(
                f"unsupported ledger schema_version {data.get('schema_version')!r} (this guardrail reads {LEDGER_SCHEMA_VERSION})",
                where=where,
                hint="upgrade guardrail, or retrain with this version",
            )
        try:
            raw_segments = data["segments"]
            if not isinstance(raw_segments, list):
                raise TypeError("segments must be a list")
            segments = tuple(
                Segment(
                    float(s["noise_multiplier"]), float(s["sample_rate"]), s["steps"]
                )
                for s in raw_segments
            )
            notes = data.get("notes", [])
            extra = data.get("extra", {})
            if not isinstance(notes, list) or not isinstance(extra, dict):
                raise TypeError("notes must be a list and extra an object")
            ledger = cls(
                delta=float(data["delta"]),
                max_grad_norm=float(data["max_grad_norm"]),
                data_sha256=_str(data["data_sha256"]),
                model=_str(data.get("model", "")),
                segments=segments,
                sampling=data.get("sampling", POISSON),
                stopped_reason=data.get("stopped_reason"),
                notes=tuple(_str(n) for n in notes),
                extra=extra,
            )
        except DataError as exc:
            raise DataError(exc.message, where=where, hint=BAD_LEDGER_HINT) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"malformed ledger ({type(exc).__name__}: {exc})",
                where=where,
                hint=BAD_LEDGER_HINT,
            ) from None
        if "steps" in data and data["steps"] != ledger.steps:
            raise DataError(
                f"inconsistent ledger: 'steps' is {data['steps']!r} but the segments add up to {ledger.steps}",
                where=where,
                hint=BAD_LEDGER_HINT,
            )
        return ledger

    @classmethod
    def from_json(cls, text: str, *, where: str = "ledger") -> Ledger:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"not valid JSON (line {exc.lineno}: {exc.msg})",
                where=where,
                hint=BAD_LEDGER_HINT,
            ) from None
        return cls.from_dict(data, where=where)

    def save(self, path: str | Path) -> Path:
        """Write ``ledger.json`` atomically (a reader sees the old file or the new one)."""
        return write_atomic(Path(path), self.to_json())


def load_ledger(path: str | Path) -> Ledger:
    """Read and validate a ledger file; :class:`DataError` names the file when it is not a valid ledger."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read the privacy ledger ({exc})",
            where=str(path),
            hint=BAD_LEDGER_HINT,
        ) from None
    return Ledger.from_json(text, where=str(path))


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value
