"""Group fairness of a classifier's decisions: rates per group and disparities between groups.

Every number comes from one per-(group, y_true, y_pred) count table per grouping
(:mod:`guardrail.fairness`); fairlearn's ``MetricFrame`` is the oracle in the tests.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from guardrail.auditors.base import AuditContext, AuditorParams
from guardrail.core.types import AuditResult, AuditStatus, GroupValue, MetricResult
from guardrail.fairness.metrics import (
    DISPARITIES,
    HIGHER_IS_BETTER,
    RATES,
    DisparityName,
    RateName,
)

if TYPE_CHECKING:
    import numpy as np

    from guardrail.fairness.groups import Grouping


class FairnessParams(AuditorParams):
    metrics: tuple[RateName, ...] = Field(default=RATES, min_length=1, description="Rates computed per group.")
    disparities: tuple[DisparityName, ...] | None = Field(
        default=DISPARITIES, description="Between-group disparities; null for none."
    )
    groupings: Literal["each", "intersection", "both"] = Field(
        default="both",
        description="With several sensitive features: one grouping per feature ('each'), "
        "their intersection, or both.",
    )
    sensitive: tuple[str, ...] | None = Field(
        default=None, description="Subset of data.sensitive to audit; default all of them."
    )
    min_group_size: int = Field(
        default=30, ge=1, description="Groups smaller than this are flagged as too small (never dropped)."
    )

    @field_validator("metrics", "disparities", "sensitive")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("list each name once")
        if value is not None and len(value) == 0:
            raise ValueError("an empty list audits nothing; leave the key out for the default")
        return value


class FairnessAuditor:
    """Rates per sensitive group (count, selection rate, TPR, FPR, FNR, precision, accuracy)
    and disparities between groups (demographic parity, equalized odds, equal opportunity)."""

    name: ClassVar[str] = "fairness"
    extra: ClassVar[str] = "fairness"
    Params: ClassVar[type[AuditorParams]] = FairnessParams

    def __init__(self, params: AuditorParams | None = None) -> None:
        self.params = params if isinstance(params, FairnessParams) else FairnessParams.model_validate(
            params.model_dump() if params is not None else {}
        )

    def check_spec(self, data_sensitive: tuple[str, ...]) -> list[tuple[tuple[str | int, ...], str]]:
        """Problems with these params given the spec's sensitive columns, as (params location, message)."""
        declared = set(data_sensitive)
        return [
            (("sensitive", i), f"{name!r} is not one of data.sensitive ({', '.join(data_sensitive)})")
            for i, name in enumerate(self.params.sensitive or ())
            if name not in declared
        ]

    def run(self, ctx: AuditContext) -> AuditResult:
        from guardrail.errors import DataError
        from guardrail.fairness.groups import encode

        started = time.perf_counter()
        params = self.params
        sensitive = params.sensitive or ctx.sensitive
        unknown = [s for s in sensitive if s not in ctx.sensitive]
        if unknown:
            raise DataError(
                f"params.sensitive names {', '.join(map(repr, unknown))}, not declared in data.sensitive",
                where=ctx.audit_id,
                hint=f"declared sensitive columns: {', '.join(ctx.sensitive)}",
            )
        feature_sets: list[tuple[str, ...]] = []
        if len(sensitive) == 1 or params.groupings in ("each", "both"):
            feature_sets += [(feature,) for feature in sensitive]
        if len(sensitive) > 1 and params.groupings in ("intersection", "both"):
            feature_sets.append(tuple(sensitive))
        metrics: list[MetricResult] = []
        for features in feature_sets:
            grouping = encode(ctx.data, features, missing=ctx.missing_sensitive, where=ctx.where)
            metrics += self._metrics_for(grouping, ctx.y_true, ctx.y_pred)
        return AuditResult(
            audit_id=ctx.audit_id,
            auditor=self.name,
            status=AuditStatus.OK,
            metrics=tuple(metrics),
            params=params.model_dump(mode="json"),
            duration_s=time.perf_counter() - started,
        )

    def _metrics_for(self, grouping: Grouping, y_true: np.ndarray, y_pred: np.ndarray) -> list[MetricResult]:
        from guardrail.fairness.counts import confusion_counts
        from guardrail.fairness.metrics import disparity, rate

        params = self.params
        counts = confusion_counts(y_true, y_pred, grouping.codes, grouping.n_groups)
        sizes = counts.sum(axis=(1, 2))
        small = sizes < params.min_group_size
        needed: set[RateName] = set(params.metrics) | {"count", "selection_rate", "tpr", "fpr"}
        rates = {name: rate(counts, name) for name in RATES if name in needed}
        labels = grouping.labels
        scope = grouping.scope
        common = {"sensitive_features": list(grouping.features), "min_group_size": params.min_group_size}

        def groups_of(name: RateName) -> tuple[GroupValue, ...]:
            values = rates[name].by_group
            return tuple(
                GroupValue(
                    group=label,
                    value=None if math.isnan(values[i]) else float(values[i]),
                    n=int(sizes[i]),
                    small=bool(small[i]),
                    reason=rates[name].undefined_reason if math.isnan(values[i]) else None,
                )
                for i, label in enumerate(labels)
            )

        results: list[MetricResult] = []
        for name in params.metrics:
            overall = rates[name].overall
            results.append(
                MetricResult(
                    key=f"fairness.{name}",
                    scope=scope,
                    value=None if math.isnan(overall) else overall,
                    reason=f"undefined overall ({rates[name].undefined_reason})" if math.isnan(overall) else None,
                    by_group=groups_of(name),
                    n=int(sizes.sum()),
                    higher_is_better=HIGHER_IS_BETTER[name],
                    details={**common, "small_groups": [labels[i] for i in range(len(labels)) if small[i]]},
                )
            )
        for disparity_name in params.disparities or ():
            result = disparity(rates, disparity_name, labels)
            shown_rate = result.worst_rate or result.based_on[0]
            results.append(
                MetricResult(
                    key=f"fairness.{disparity_name}",
                    scope=scope,
                    value=None if math.isnan(result.value) else result.value,
                    reason=result.reason,
                    by_group=groups_of(shown_rate),
                    n=int(sizes.sum()),
                    higher_is_better=HIGHER_IS_BETTER[disparity_name],
                    details={
                        **common,
                        "based_on": list(result.based_on),
                        "worst_rate": shown_rate,
                        "aggregation": result.kind,
                        "min_group": labels[result.min_group] if result.min_group is not None else None,
                        "max_group": labels[result.max_group] if result.max_group is not None else None,
                    },
                )
            )
        results.append(
            MetricResult(
                key="fairness.min_group_size",
                scope=scope,
                value=float(sizes.min()),
                by_group=groups_of("count"),
                n=int(sizes.sum()),
                higher_is_better=True,
                details={**common, "smallest_group": labels[int(sizes.argmin())]},
            )
        )
        return results

