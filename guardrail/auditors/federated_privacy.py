"""The federated audit's privacy re-accounting: each hospital's ε recomputed from the
accountant history in ``federated.json`` (never taken from the file's own copy), the
``federated.epsilon`` and ``federated.epsilon_max`` metrics, and the comparison of that history
with ``ledgers/<hospital>.json``. The accountants are Opacus' (:mod:`guardrail.privacy.accounting`),
imported only when a history is accounted.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from guardrail.core.errors import DataError
from guardrail.core.scopes import hospital_scope
from guardrail.core.serialize import finite_or_none
from guardrail.core.types import MetricResult
from guardrail.federation.history import BAD_HISTORY, EPSILON_KEY, FEDERATED_FILE, LEDGERS_DIR, TRAIN_HINT

NO_DP = "trained without DP-SGD (settings.dp is null): there is no ε, and no privacy guarantee"
NO_NOISE = "a round trained with noise multiplier 0: ε is unbounded"
AGREE_REL = 1e-9
"""Relative tolerance within which the recorded ε agrees with the recomputed one."""


@dataclasses.dataclass(frozen=True)
class HospitalPrivacy:
    """One hospital's accountant history and the ε recomputed from it."""

    entries: tuple[tuple[int, float, float, int], ...]
    """``(round, σ, q, steps)`` as recorded, in order."""
    after_entry: tuple[float | None, ...]
    """Cumulative ε after each entry (None without DP; ``inf`` when σ = 0)."""
    by_round: Mapping[int, float | None]
    """Cumulative ε at the end of each round of the history file (0.0 before any spend)."""
    final: float | None
    recorded: float | None
    recorded_by_round: Mapping[int, float]

    @classmethod
    def of(
        cls, hospital: Mapping[str, Any], rounds: Sequence[int], delta: float | None, accountant: Literal["rdp", "prv"], where: str
    ) -> HospitalPrivacy:
        from guardrail.privacy.accounting import check_entry, epsilon

        record = hospital["history"]
        entries = []
        for position, values in enumerate(
            zip(record["round"], record["noise_multiplier"], record["sample_rate"], record["steps"], strict=True)
        ):
            server_round, sigma, rate, steps = values
            try:
                check_entry(sigma, rate, steps)
            except DataError as exc:
                raise DataError(
                    f"{BAD_HISTORY}: hospital {hospital['name']!r} history entry {position}: {exc.message}",
                    where=where,
                    hint=TRAIN_HINT,
                ) from None
            entries.append((int(server_round), float(sigma), float(rate), int(steps)))
        if delta is None:
            after: list[float | None] = [None] * len(entries)
            by_round: dict[int, float | None] = dict.fromkeys(rounds)
            final = None
        else:
            history = [(sigma, rate, steps) for _, sigma, rate, steps in entries]
            after = [epsilon(history[: i + 1], delta, accountant) for i in range(len(entries))]
            # rounds are in order, so ε at the end of a round is ε after its last entry (0 before any spend)
            spent = [er for er, *_ in entries]
            by_round = {}
            for r in rounds:
                count = bisect.bisect_right(spent, r)  # entries spent in rounds up to r
                by_round[r] = after[count - 1] if count else 0.0
            final = after[-1] if after else 0.0
        recorded_by_round = {
            int(r): float(e) for r, e in (hospital.get("epsilon_by_round") or {}).items() if isinstance(e, int | float)
        }
        recorded = hospital.get("epsilon")
        return cls(tuple(entries), tuple(after), by_round, final, None if recorded is None else float(recorded), recorded_by_round)

    @property
    def steps(self) -> int:
        return sum(steps for *_, steps in self.entries)

    def agrees(self) -> bool:
        """Whether the ε recorded in the file (final and per round) equals the recomputed one."""
        if self.final is None:
            return self.recorded is None and not self.recorded_by_round
        if self.recorded is None or not _close(self.recorded, self.final):
            return False
        spent_in = {server_round for server_round, *_ in self.entries}
        return all(
            r in spent_in and (mine := self._after_round(r)) is not None and _close(e, mine)
            for r, e in self.recorded_by_round.items()
        )

    def _after_round(self, server_round: int) -> float | None:
        last = max((i for i, (r, *_) in enumerate(self.entries) if r <= server_round), default=None)
        return None if last is None else self.after_entry[last]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=AGREE_REL, abs_tol=1e-12)


def epsilon_metrics(
    data: Mapping[str, Any],
    privacy: Mapping[str, HospitalPrivacy],
    delta: float | None,
    accountant: str,
    notes: list[str],
) -> list[MetricResult]:
    budget = data["settings"].get("max_epsilon")
    common = {"delta": delta, "accountant": accountant if delta is not None else None, "max_epsilon": budget}
    metrics = []
    for name, spent in privacy.items():
        agrees = spent.agrees()
        if not agrees:
            notes.append(
                f"{FEDERATED_FILE} records ε = {_text(spent.recorded)} for hospital {name!r}, but its accountant history "
                f"gives {_text(spent.final)}; the audit uses the history's"
            )
        details = {
            **common,
            "steps": spent.steps,
            "rounds_with_spend": sorted({r for r, *_ in spent.entries}),
            "recorded": finite_or_none(spent.recorded),
            "recorded_agrees": agrees,
        }
        value, reason = epsilon_value(spent.final)
        metrics.append(
            MetricResult(EPSILON_KEY, value, scope=hospital_scope(name), reason=reason, higher_is_better=False, details=details)
        )
    finals = {name: spent.final for name, spent in privacy.items()}
    recorded = data.get("epsilon_max")
    if delta is None or not finals:
        value, reason, worst = None, NO_DP if delta is None else "no hospital in the history", None
    elif any(final is not None and not math.isfinite(final) for final in finals.values()):
        value, reason, worst = None, NO_NOISE, next(n for n, f in finals.items() if f is not None and not math.isfinite(f))
    else:
        worst = max(finals, key=lambda n: finals[n] or 0.0)
        value, reason = finals[worst], None
    if value is None or recorded is None:
        agrees = value is None and (recorded is None or not math.isfinite(recorded))
    else:
        agrees = _close(float(recorded), value)
    if not agrees:
        notes.append(f"{FEDERATED_FILE} records ε_max = {_text(recorded)}, but the hospitals' histories give {_text(value)}")
    metrics.append(
        MetricResult(
            f"{EPSILON_KEY}_max",
            value,
            reason=reason,
            higher_is_better=False,
            details={**common, "hospital": worst, "recorded": finite_or_none(recorded), "recorded_agrees": agrees},
        )
    )
    return metrics


def epsilon_value(final: float | None) -> tuple[float | None, str | None]:
    if final is None:
        return None, NO_DP
    if not math.isfinite(final):
        return None, NO_NOISE
    return final, None


def ledger_summary(
    name: str, spent: HospitalPrivacy, folder: Path, dp: Mapping[str, Any] | None, notes: list[str]
) -> dict[str, Any]:
    """The hospital's accountant history, and whether ``ledgers/<name>.json`` holds the same."""
    from guardrail.privacy.accounting import merge_history
    from guardrail.privacy.ledger import load_ledger

    summary: dict[str, Any] = {
        "entries": [
            {
                "round": server_round,
                "noise_multiplier": sigma,
                "sample_rate": rate,
                "steps": steps,
                "epsilon": finite_or_none(after),
            }
            for (server_round, sigma, rate, steps), after in zip(spent.entries, spent.after_entry, strict=True)
        ],
        "file": None,
        "matches": None,
    }
    if dp is None:
        return summary
    safe = Path(name).name == name and not name.startswith(".")
    path = folder / LEDGERS_DIR / f"{name}.json"
    relative = f"{LEDGERS_DIR}/{name}.json"
    if not safe or not path.is_file():
        return summary  # nothing to compare with; the report says the history comes from federated.json
    ledger = load_ledger(path)
    history = tuple(merge_history((sigma, rate, steps) for _, sigma, rate, steps in spent.entries))
    rounds = ledger.extra.get("federated", {}).get("round") if isinstance(ledger.extra.get("federated"), dict) else None
    matches = ledger.history == history and _close(ledger.delta, float(dp["delta"])) and (
        rounds is None or list(rounds) == [r for r, *_ in spent.entries]
    )
    if not matches:
        notes.append(f"{relative} does not hold the accountant history {FEDERATED_FILE} records for hospital {name!r}")
    summary.update(
        file=relative,
        matches=matches,
        max_grad_norm=ledger.max_grad_norm,
        sampling=ledger.sampling,
        data_sha256=ledger.data_sha256,
        delta=ledger.delta,
    )
    return summary


def _text(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


__all__ = ["AGREE_REL", "NO_DP", "NO_NOISE", "HospitalPrivacy", "epsilon_metrics", "epsilon_value", "ledger_summary"]
