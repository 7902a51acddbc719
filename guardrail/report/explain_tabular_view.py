"""The parts of the report's explainability section that only a tabular model has: sampled
local explanations (each row's strongest drivers, signed) and how LIME drew its samples.

Built from the audit's artifacts only; every string is plain text here: the template
escapes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guardrail.report import _format

TABULAR_IMPORTANCE = (
    "Mean |attribution| of the probability of the positive class over the explained rows, "
    "with a bootstrap interval over rows."
)


@dataclass(frozen=True)
class LocalRow:
    """One explained row: who, what happened, and its strongest drivers (signed)."""

    row: str
    outcome: str
    groups: str
    score: str
    drivers: tuple[tuple[str, str, str], ...]
    """(feature = value, signed attribution text, 'up'|'down')."""


def local_rows(local: object, methods: Sequence[str]) -> tuple[str, tuple[LocalRow, ...]]:
    """The first method and its drivers of each row of the ``local`` artifact (``("", ())`` without one)."""
    if not isinstance(local, Sequence) or not local or not methods:
        return "", ()
    method = methods[0]
    rows = []
    for item in local:
        if not isinstance(item, Mapping):
            continue
        top = item.get("top", {})
        drivers = top.get(method, []) if isinstance(top, Mapping) else []
        groups = item.get("groups", {})
        rows.append(
            LocalRow(
                row=str(item.get("row", "")),
                outcome=str(item.get("outcome", "")),
                groups=", ".join(f"{k}={v}" for k, v in groups.items()) if isinstance(groups, Mapping) else "",
                score=_format.number(item.get("score")) if isinstance(item.get("score"), int | float) else _format.DASH,
                drivers=tuple(
                    (
                        f"{d.get('feature')} = {d.get('value')}",
                        f"{float(d.get('attribution', 0.0)):+.4f}",
                        "up" if float(d.get("attribution", 0.0)) >= 0 else "down",
                    )
                    for d in drivers
                    if isinstance(d, Mapping)
                ),
            )
        )
    return method, tuple(rows)


def lime_note(seeds: Any) -> str:
    """How tabular LIME drew its samples (pools of rows) and what its intervals resample, from
    the ``seeds`` artifact; empty without LIME's pools."""
    lime = seeds.get("lime") if isinstance(seeds, Mapping) else None
    if not isinstance(lime, Mapping) or "pool_rows" not in lime:
        return ""
    rows, pools, samples = lime.get("pool_rows"), lime.get("pools"), lime.get("num_samples")
    if rows == 1:
        return f"LIME drew {samples} samples for each row, as a plain lime loop does."
    return (
        f"LIME drew {samples} samples per pool of {rows} rows ({pools} pools); each row's explanation is lime's for its "
        "pool's samples, and LIME's intervals resample whole pools, since the rows of a pool share their sampling noise."
    )
