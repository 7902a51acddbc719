"""The mitigation what-if's part of the report: the fairness–accuracy trade-off chart."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

import guardrail.report.charts as charts
from guardrail.core.types import MetricResult

TRADEOFF_SERIES = {
    "accuracy": "Accuracy",
    "demographic_parity_difference": "Demographic parity difference",
    "equalized_odds_difference": "Equalized odds difference",
}


def tradeoff_chart(metrics: Sequence[MetricResult]) -> Markup | None:
    """Accuracy and disparities of the original model and of each mitigation, with intervals."""
    methods: dict[str, dict[str, MetricResult]] = {}
    for metric in metrics:
        method, _, name = metric.key.removeprefix("mitigation.").rpartition(".")
        if name in TRADEOFF_SERIES:
            methods.setdefault(method, {})[name] = metric
    if not methods:
        return None
    rows = [
        charts.ChartRow(
            label=method.replace("_", " "),
            small=False,
            bars=tuple(
                charts.Bar(value=m.value, n=m.n, ci=m.ci, reason=m.reason) if (m := values.get(key)) else None
                for key in TRADEOFF_SERIES
            ),
        )
        for method, values in methods.items()
    ]
    return charts.bar_chart(rows, list(TRADEOFF_SERIES.values()), title="Fairness–accuracy trade-off by mitigation")
