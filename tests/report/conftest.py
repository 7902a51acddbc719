"""Hand-built run records for the report tests: no auditor, no ML library involved."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from guardrail.core.types import (
    AuditResult,
    AuditStatus,
    ErrorInfo,
    FileDigest,
    GroupValue,
    Interval,
    MetricResult,
    OutcomeStatus,
    PolicyInfo,
    PolicyVerdict,
    Provenance,
    RuleOutcome,
    RunRecord,
    Severity,
)

RATES = ("count", "selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy")
UNDEFINED = "no positive labels in this group"


def group_values(rate: str, groups: dict[str, tuple[float | None, int]], *, min_size: int = 30) -> tuple[GroupValue, ...]:
    """One GroupValue per group; ``count`` values equal the group size."""
    out = []
    for index, (label, (value, n)) in enumerate(groups.items()):
        if rate == "count":
            value = float(n)
        ci = Interval(low=max(value - 0.05, 0.0), high=min(value + 0.05, 1.0), method="bootstrap") if (
            value is not None and rate == "selection_rate" and index == 0
        ) else None
        out.append(
            GroupValue(
                group=label,
                value=value,
                n=n,
                small=n < min_size,
                reason=UNDEFINED if value is None else None,
                ci=ci,
            )
        )
    return tuple(out)


def fairness_metrics(scope: str, groups: dict[str, tuple[float | None, int]]) -> list[MetricResult]:
    """Rate metrics and disparities for one scope; ``tpr`` of a group is undefined when its value is None."""
    labels = list(groups)
    total = sum(n for _, n in groups.values())
    common = {"sensitive_features": scope.split("+"), "min_group_size": 30}
    metrics = []
    for offset, rate in enumerate(RATES):
        shifted = {g: (None if v is None and rate == "tpr" else round(0.1 + 0.07 * i + 0.03 * offset, 4), n)
                   for i, (g, (v, n)) in enumerate(groups.items())}
        metrics.append(
            MetricResult(
                key=f"fairness.{rate}",
                scope=scope,
                value=float(total) if rate == "count" else 0.3 + 0.01 * offset,
                by_group=group_values(rate, shifted),
                n=total,
                higher_is_better=None,
                details={**common, "small_groups": [g for g, (_, n) in groups.items() if n < 30]},
            )
        )
    metrics += [
        MetricResult(
            key="fairness.demographic_parity_difference",
            scope=scope,
            value=0.2123,
            n=total,
            ci=Interval(0.1, 0.3, 0.9, "bootstrap"),
            higher_is_better=False,
            details={**common, "based_on": ["selection_rate"], "min_group": labels[0], "max_group": labels[-1]},
        ),
        MetricResult(
            key="fairness.demographic_parity_ratio",
            scope=scope,
            value=0.6,
            n=total,
            higher_is_better=True,
            details={**common, "based_on": ["selection_rate"], "min_group": labels[0], "max_group": labels[-1]},
        ),
        MetricResult(
            key="fairness.equalized_odds_ratio",
            scope=scope,
            value=None,
            reason="tpr undefined for a group (no positive labels)",
            n=total,
            higher_is_better=True,
            details={**common, "based_on": ["tpr", "fpr"], "min_group": None, "max_group": None},
        ),
        MetricResult(
            key="fairness.min_group_size",
            scope=scope,
            value=float(min(n for _, n in groups.values())),
            n=total,
            higher_is_better=True,
            details={**common, "smallest_group": min(groups, key=lambda g: groups[g][1])},
        ),
    ]
    return metrics


def outcome(rule_id: str, status: OutcomeStatus, severity: Severity = Severity.DENY, **extra: object) -> RuleOutcome:
    fields: dict[str, object] = {
        "rule_id": rule_id,
        "policy": "eu-ai-act-baseline",
        "metric": "fairness.demographic_parity_ratio[sex]",
        "severity": severity,
        "status": status,
        "reason": f"rule {status.value}",
        "expected": ">= 0.8",
        "message": f"demographic parity ratio for sex: rule {rule_id} {status.value}.",
        "observed": 0.6,
        "rationale": "Four-fifths rule for adverse impact.",
        "reference": "29 CFR 1607.4(D)",
    }
    fields.update(extra)
    return RuleOutcome(**fields)  # type: ignore[arg-type]


def make_record(
    *,
    group_a: str = "Female",
    group_b: str = "Male",
    scope: str = "sex",
    rule_id: str = "dp-ratio",
    message: str | None = None,
    error_message: str = "model.predict failed: shapes (10, 3) and (4,) not aligned",
    name: str = "credit-scoring-v2",
    outcomes: tuple[RuleOutcome, ...] | None = None,
) -> RunRecord:
    """A run with a fairness audit (two scopes, a small group, a None value) and an errored audit."""
    sex = fairness_metrics(scope, {group_a: (0.4, 812), group_b: (0.6, 1204)})
    intersection = fairness_metrics(
        f"{scope}+race",
        {f"{group_a}+White": (0.4, 640), f"{group_a}+Other": (None, 12), f"{group_b}+White": (0.6, 1100)},
    )
    fairness = AuditResult(
        audit_id="fairness-main",
        auditor="fairness",
        status=AuditStatus.OK,
        metrics=(*sex, *intersection),
        params={"sensitive_features": [["sex"], ["sex", "race"]], "min_group_size": 30},
        duration_s=1.25,
    )
    crashed = AuditResult(
        audit_id="explain-shap",
        auditor="explain",
        status=AuditStatus.ERROR,
        error=ErrorInfo(type="ModelError", message=error_message, hint="check that the model matches the data"),
        duration_s=0.5,
    )
    if outcomes is None:
        outcomes = (
            outcome(rule_id, OutcomeStatus.FAIL, message=message or f"{group_a} | {scope}: ratio 0.6 < 0.8"),
            outcome("dp-diff", OutcomeStatus.PASS),
            outcome("eo-ratio", OutcomeStatus.INCONCLUSIVE, observed=None),
            outcome("shap-top", OutcomeStatus.ERROR, observed=None),
            outcome("privacy-eps", OutcomeStatus.SKIPPED, observed=None),
            outcome("accuracy-floor", OutcomeStatus.WAIVED),
            outcome("fpr-gap", OutcomeStatus.FAIL, severity=Severity.WARN),
            outcome("tpr-info", OutcomeStatus.INCONCLUSIVE, severity=Severity.INFO, observed=None),
        )
    return RunRecord(
        run_id="20240501T120000Z-3f2a",
        name=name,
        started_at="2024-05-01T12:00:00+00:00",
        finished_at="2024-05-01T12:00:02+00:00",
        spec_path="audits/credit.yaml",
        spec_sha256="a" * 64,
        spec={"name": name, "audits": [{"id": "fairness-main", "auditor": "fairness"}]},
        results=(fairness, crashed),
        verdict=PolicyVerdict(
            outcomes=outcomes,
            policies=(PolicyInfo(name="eu-ai-act-baseline", path="policies/baseline.yaml", sha256="b" * 64, rules=8),),
        ),
        provenance=Provenance(
            guardrail_version="0.1.0",
            python="3.11.7",
            platform="Linux-6.1-x86_64",
            packages={"scikit-learn": "1.5.1", "fairlearn": "0.12.0", "numpy": "1.26.4"},
            seeds={"global": 42, "bootstrap": 7},
            files=(
                FileDigest(role="model", path="models/credit.skops", sha256="c" * 64, bytes=120034),
                FileDigest(role="data", path="data/credit.csv", sha256="d" * 64, bytes=5200100),
            ),
            command="guardrail run audits/credit.yaml --out reports/credit",
            git_commit="0123456789abcdef0123456789abcdef01234567",
        ),
    )


@pytest.fixture
def record() -> RunRecord:
    return make_record()


@pytest.fixture
def record_factory() -> Callable[..., RunRecord]:
    return make_record


@pytest.fixture
def outcome_factory() -> Callable[..., RuleOutcome]:
    return outcome
