"""What judging one membership attack gives: its metrics and its ROC curves, for a chart.

Built by :func:`~guardrail.privacy.mia_metrics.attack_metrics`; JSON-able through
:meth:`AttackReport.artifacts` for ``AuditResult.artifacts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from guardrail.core.types import MetricResult

__all__ = ["AttackReport", "RocCurve", "mia_key"]


def mia_key(attack: str, figure: str) -> str:
    """The metric key of one attack's figure: ``privacy.mia.<attack>.<figure>``.

    >>> mia_key("lira", "auc")
    'privacy.mia.lira.auc'
    """
    return f"privacy.mia.{attack}.{figure}"


@dataclass(frozen=True)
class RocCurve:
    """ROC curve points (at most 200, FPR ascending) for a chart, with the counts behind them."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    n_members: int
    n_nonmembers: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for ``AuditResult.artifacts``)."""
        return {
            "fpr": list(self.fpr),
            "tpr": list(self.tpr),
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
        }


@dataclass(frozen=True)
class AttackReport:
    """How well one attack separates members from non-members.

    ``metrics``: for each of ``auc``, ``tpr_at_0_1pct_fpr``, ``tpr_at_1pct_fpr``,
    ``advantage`` (key ``privacy.mia.<attack>.<name>``), one overall result (no scope),
    then one per grouping (scope = the grouping's name, e.g. ``sex`` or ``site``) whose
    ``value`` is the most vulnerable group's (the largest) and whose ``by_group`` lists
    every group with its own interval. ``roc`` is the overall curve, ``roc_by_group`` maps
    grouping → group → curve.
    """

    attack: str
    metrics: tuple[MetricResult, ...]
    roc: RocCurve
    roc_by_group: Mapping[str, Mapping[str, RocCurve]] = field(default_factory=dict)

    def metric(self, name: str, scope: str | None = None) -> MetricResult:
        """The metric ``name`` (e.g. ``"auc"``) for ``scope`` (``None`` = overall)."""
        key = mia_key(self.attack, name)
        for result in self.metrics:
            if result.key == key and result.scope == scope:
                return result
        raise KeyError(f"{key}[{scope}]" if scope else key)

    def artifacts(self) -> dict[str, Any]:
        """JSON-able ROC curves for the report's chart: overall and per grouping and group."""
        return {
            "attack": self.attack,
            "roc": self.roc.to_dict(),
            "roc_by_group": {
                scope: {group: curve.to_dict() for group, curve in curves.items()}
                for scope, curves in self.roc_by_group.items()
            },
        }
