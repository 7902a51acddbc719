"""Run records that stress the HTML report: hundreds of groups, unbreakable names, long texts."""

from __future__ import annotations

import dataclasses

from guardrail.core.types import (
    AuditResult,
    OutcomeStatus,
    PolicyVerdict,
    RunRecord,
    Severity,
)
from tests.report.conftest import fairness_metrics, make_record, outcome

LONG = 120
"""Length of the unbreakable group and feature names."""


def long_name(prefix: str, length: int = LONG) -> str:
    """``prefix`` padded to ``length`` characters without a space or a break opportunity."""
    return (prefix + "X" * length)[:length]


def many_groups_record(groups: int = 400, *, long_names: bool = True) -> RunRecord:
    """A fairness audit over ``groups`` intersectional groups, with 120-character names.

    Every tenth group is below the minimum size (n < 30); names share a long prefix so that
    only their ends tell them apart.
    """
    feature = long_name("feature_") if long_names else "region+occupation"
    labels = {
        (long_name(f"G{i:03d}", LONG - 4) + f"{i:04d}" if long_names else f"region{i // 20}+occupation{i % 20}"): (
            0.5,
            12 + i % 7 if i % 10 == 3 else 40 + 13 * i,
        )
        for i in range(groups)
    }
    metrics = fairness_metrics(feature, labels)
    # Spread the values over [0, 1] so that the extremes are some groups, not the first ones.
    spread = []
    for metric in metrics:
        if metric.by_group and metric.key != "fairness.count":
            by_group = tuple(
                dataclasses.replace(v, value=None if v.value is None else round((i * 37 % groups) / groups, 4))
                for i, v in enumerate(metric.by_group)
            )
            metric = dataclasses.replace(metric, by_group=by_group)
        spread.append(metric)
    base = make_record()
    fairness = AuditResult(
        audit_id=long_name("fairness_audit_") if long_names else "fairness",
        auditor="fairness",
        status=base.results[0].status,
        metrics=tuple(spread),
        params={"sensitive_features": [[feature]], "min_group_size": 30, "note": long_name("param_")},
        duration_s=3.5,
    )
    rationale = " ".join(["The four-fifths rule compares selection rates across every group;"] * 12)
    outcomes = (
        outcome(
            long_name("FAIR_001_"),
            OutcomeStatus.FAIL,
            metric=f"fairness.demographic_parity_ratio[{feature}]",
            message=f"{long_name('group_')}: ratio 0.04 < 0.8. " + rationale,
            rationale=rationale,
            reference=long_name("https://example.org/regulation/"),
        ),
        outcome("FAIR-003", OutcomeStatus.INCONCLUSIVE, severity=Severity.WARN, observed=None, rationale=rationale),
        outcome("FAIR-004", OutcomeStatus.PASS),
    )
    return dataclasses.replace(
        base,
        name=long_name("credit_scoring_") if long_names else "credit-scoring-many-groups",
        results=(fairness, base.results[1]),
        verdict=PolicyVerdict(outcomes=outcomes, policies=base.verdict.policies),
    )
