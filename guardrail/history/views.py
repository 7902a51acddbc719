"""Plain-text and JSON views of the history and of a run diff, for the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from guardrail.core.serialize import to_jsonable
from guardrail.core.types import Interval
from guardrail.core.verdict import word_of

if TYPE_CHECKING:  # the views only read these: the diff's own display hook imports this module
    from guardrail.history.compare import MetricChange, RunDiff
    from guardrail.history.store import RunSummary


def history_table(runs: Sequence[RunSummary]) -> str:
    """One line per run, newest first; ``*`` marks approved runs."""
    if not runs:
        return "no runs recorded"
    rows = [("run", "started", "name", "verdict", "not passed", "model", "approved")]
    for run in runs:
        rows.append(
            (
                run.run_id,
                run.started_at,
                run.name,
                word_of(run.exit_code, gated=run.gated),
                str(run.failed_rules),
                (run.model_sha256 or "—")[:12],
                "*" if run.approved else "",
            )
        )
    return _table(rows)


def diff_table(diff: RunDiff, *, show_all: bool = False) -> str:
    """The rule outcomes that changed, then the metrics (changed ones unless ``show_all``)."""
    lines = [f"diff {diff.before} -> {diff.after}"]
    if diff.outcomes:
        lines.append("rule outcomes that changed:")
        rows: list[tuple[str, ...]] = [("rule", "metric", "before", "after")]
        rows += [
            (o.rule_id, o.metric, o.before.value if o.before else "absent", o.after.value if o.after else "absent")
            for o in diff.outcomes
        ]
        lines.append(_table(rows, indent=2))
    else:
        lines.append("rule outcomes: unchanged")
    shown = [c for c in diff.metrics if show_all or c.change != 0 or c.direction == "undefined"]
    lines.append(
        f"metrics: {len(diff.metrics)} compared, {sum(c.change not in (0, None) for c in diff.metrics)} changed, "
        f"{len(diff.worse())} worse beyond their interval"
        + (" (change = after - before; interval treats the runs as independent)" if shown else "")
    )
    if shown:
        rows = [("metric", "before", "after", "change", "interval", "")]
        rows += [
            (c.ref, _num(c.before), _num(c.after), _signed(c.change), _interval(c.change_ci), _verdict(c)) for c in shown
        ]
        lines.append(_table(rows, indent=2))
    for label, refs in (("only before", diff.only_before), ("only after", diff.only_after)):
        if refs:
            lines.append(f"{label}: {len(refs)} metric(s): {', '.join(refs[:8])}{', …' if len(refs) > 8 else ''}")
    return "\n".join(lines)


def diff_json(diff: RunDiff) -> dict[str, Any]:
    """The diff as JSON-able data (every metric, with ``significant`` stated)."""
    data: dict[str, Any] = to_jsonable(diff)
    for entry, change in zip(data["metrics"], diff.metrics, strict=True):
        entry["significant"] = change.significant
    return data


def _verdict(change: MetricChange) -> str:
    if change.direction in ("worse", "better"):
        return change.direction + (" (beyond interval)" if change.significant else "")
    return "" if change.direction in ("same", "undirected") else change.direction


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def _interval(ci: Interval | None) -> str:
    return "" if ci is None else f"[{ci.low:+.4f}, {ci.high:+.4f}] {ci.level * 100:g}%"


def _table(rows: Sequence[tuple[str, ...]], *, indent: int = 0) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    pad = " " * indent
    return "\n".join(
        pad + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
