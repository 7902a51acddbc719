"""How well a membership attack succeeds, overall and by group, with an interval per figure.

:func:`attack_metrics` judges any score: ROC AUC, TPR at 0.1% and 1% FPR, and attack
advantage ``max(TPR − FPR)``, each with its interval (one construction per figure, chosen
for coverage: see :mod:`guardrail.privacy._stats`), overall and by group within each
grouping (e.g. sex or hospital site), as :class:`~guardrail.core.types.MetricResult`
objects, plus the ROC curve (≤ 200 points) for a chart. It is the one place these figures
and their intervals are computed, whichever audit reports them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from guardrail.core.serialize import finite_or_none
from guardrail.core.types import GroupValue, Interval, MetricResult
from guardrail.privacy import _stats
from guardrail.privacy._checks import scores_and_flags
from guardrail.privacy.attack_report import AttackReport, RocCurve, mia_key

__all__ = ["FPR_LEVELS", "METRIC_NAMES", "attack_metrics"]

Bounds = Callable[[float], tuple[float, float]]
"""``tail → (low, high)``: an interval leaving ``tail`` outside on each side."""

FPR_LEVELS = (0.001, 0.01)
"""False-positive rates at which the TPR is reported (0.1% and 1%)."""

METRIC_NAMES = {
    "auc": "auc",
    "advantage": "advantage",
    "tpr@0.001": "tpr_at_0_1pct_fpr",
    "tpr@0.01": "tpr_at_1pct_fpr",
}
"""Internal summary name → metric key suffix: ``privacy.mia.<attack>.<suffix>``."""

METHODS = {
    "auc": "percentile bootstrap (members and non-members resampled apart)",
    "advantage": "simultaneous bootstrap of TPR − FPR over all thresholds",
    "tpr@0.001": "binomial order statistics of the non-members with Clopper–Pearson on the members",
    "tpr@0.01": "binomial order statistics of the non-members with Clopper–Pearson on the members",
}
"""How each figure's interval is built (``Interval.method``); see :mod:`guardrail.privacy._stats`."""

BOOTSTRAPPED = frozenset({"auc", "advantage"})
"""Figures whose intervals come from the bootstrap resamples (the TPRs' need none)."""

GROUP_MAX_METHOD = "max over groups of each group's bounds at Bonferroni level over {groups} groups"


@dataclass(frozen=True)
class _Evaluated:
    """Every figure of one set of scores (overall, or one group's), with its interval's bounds."""

    values: dict[str, float]  # in [0, 1] (ROC figures of finite scores, both classes present); NaN where undefined
    reasons: dict[str, str | None]
    bounds: dict[str, Bounds | None]  # tail → (low, high) containing the value; None: no interval
    curve: RocCurve
    n: int
    resamples: int

    def interval(self, name: str, confidence: float, *, table: bool) -> Interval | None:
        """The interval of ``name`` at ``confidence`` (with its quantile table when ``table``)."""
        from guardrail.fairness.intervals import bounded_interval

        bounds = self.bounds[name]
        if bounds is None:
            return None
        resamples = self.resamples if name in BOOTSTRAPPED else 0
        return bounded_interval(
            bounds, self.values[name], confidence, METHODS[name], table=table, resamples=resamples
        )


def attack_metrics(
    scores: npt.ArrayLike,
    is_member: npt.ArrayLike,
    groups: Mapping[str, npt.ArrayLike] | None = None,
    *,
    attack: str = "loss",
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_group_size: int = 30,
    details: Mapping[str, Any] | None = None,
) -> AttackReport:
    """ROC AUC, TPR at 0.1% / 1% FPR and advantage of an attack, with intervals, by group.

    Parameters
    ----------
    scores:
        ``(n,)`` attack scores, higher meaning "more likely a member".
    is_member:
        ``(n,)`` booleans: whether each example was in the model's training data.
    groups:
        Groupings to break the metrics down by, name → ``(n,)`` labels (e.g.
        ``{"sex": ..., "site": ...}``); labels are compared as strings (fill missing
        values first).
    attack:
        Name used in the metric keys, ``privacy.mia.<attack>.<metric>``.
    bootstrap:
        Bootstrap resamples (0: no intervals at all). Members and non-members are
        resampled separately (stratified), and within each group for the group values.
    confidence, seed:
        Interval level and the seed of the resampling.
    min_group_size:
        Groups with fewer members or fewer non-members than this are flagged ``small``.
    details:
        Added to every metric's ``details`` (e.g. which model output the scores came from).

    Notes
    -----
    * AUC: the trapezoidal area under the ROC curve, equal to the probability that a
      random member scores above a random non-member, ties counted ½ (equals
      ``sklearn.metrics.roc_auc_score``).
    * TPR at FPR α: the piecewise-linear ROC curve through all thresholds' operating
      points evaluated at α; at a vertical segment, the highest TPR. It is reported as
      undefined (``value=None`` with the reason) unless there are at least ``⌈1/α⌉``
      non-members (1000 for 0.1%): with fewer, not even one false positive fits under α.
    * Advantage: ``max over thresholds (TPR − FPR)`` (Yeom et al.), 0 for a useless attack.
      Being a maximum, its estimate is biased upwards near 0 (on Heart Disease a model that
      never saw the members gave 0.07); its interval is the simultaneous bootstrap of the
      whole ``TPR − FPR`` curve, which covers the truth, 0 included.
    * Intervals, one construction per figure (:mod:`guardrail.privacy._stats`): AUC by the
      percentile bootstrap stratified by membership; TPR at FPR α by binomial order
      statistics of the non-members and Clopper–Pearson on the members (distribution-free);
      advantage by the simultaneous bootstrap. Every interval contains its own estimate and
      carries a quantile table of its bounds at other levels (for policy corrections);
      ``benchmarks/coverage_privacy.py`` prints their coverage in simulation.
    * Groupings: each group is resampled on its own (stratified by group × membership) and
      keeps its own interval in ``by_group``; the scoped metric's value is the most
      vulnerable group's (the largest value), and its interval covers that maximum
      (Bonferroni over the groups, see :func:`_grouped_metric`).
    """
    score, member = scores_and_flags(scores, is_member, flags_name="is_member", what="attack scores")
    if not attack or not all(c.isalnum() or c == "_" for c in attack):
        raise ValueError(f"attack name must be letters, digits and '_', got {attack!r}")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be ≥ 0, got {bootstrap!r}")
    if not member.any() or member.all():
        raise ValueError("need both members and non-members")
    rng = np.random.default_rng(seed)
    overall = _evaluate(score, member, bootstrap, rng)
    extra = dict(details or {})
    metrics = [
        MetricResult(
            key=mia_key(attack, suffix),
            value=finite_or_none(overall.values[name]),
            reason=overall.reasons[name],
            ci=overall.interval(name, confidence, table=True),
            n=overall.n,
            higher_is_better=False,
            details={**_details(name, overall.curve, bootstrap, confidence), **extra},
        )
        for name, suffix in METRIC_NAMES.items()
    ]
    roc_by_group: dict[str, dict[str, RocCurve]] = {}
    for scope, raw in (groups or {}).items():
        labels = np.asarray(
            [str(label) for label in np.asarray(raw, dtype=object)], dtype=object
        )
        if labels.shape != score.shape:
            raise ValueError(
                f"groups[{scope!r}] has {labels.size} labels for {score.size} scores"
            )
        evaluated: dict[str, _Evaluated | None] = {}
        sizes: dict[str, tuple[int, int]] = {}
        for label in sorted(set(labels.tolist())):
            rows = labels == label
            n1, n0 = int(member[rows].sum()), int((~member[rows]).sum())
            sizes[label] = (n1, n0)
            evaluated[label] = (
                _evaluate(score[rows], member[rows], bootstrap, rng) if n1 and n0 else None
            )
        roc_by_group[scope] = {
            label: e.curve for label, e in evaluated.items() if e is not None
        }
        for name, suffix in METRIC_NAMES.items():
            metrics.append(
                _grouped_metric(
                    mia_key(attack, suffix),
                    scope,
                    name,
                    evaluated,
                    sizes,
                    min_group_size,
                    bootstrap,
                    confidence,
                    extra,
                )
            )
    return AttackReport(
        attack=attack,
        metrics=tuple(metrics),
        roc=overall.curve,
        roc_by_group=roc_by_group,
    )


def _evaluate(
    score: npt.NDArray[np.float64],
    member: npt.NDArray[np.bool_],
    bootstrap: int,
    rng: np.random.Generator,
) -> _Evaluated:
    """Every figure of one set of scores, and the bounds of its interval (none without resamples)."""
    counts = _stats.level_table(score, member)
    fpr, tpr = _stats.roc_points(counts.members, counts.nonmembers)
    point = _stats.summaries(fpr, tpr, FPR_LEVELS)
    values = {name: float(value) for name, value in point.items()}
    reasons: dict[str, str | None] = {name: None for name in values}
    for alpha in FPR_LEVELS:
        needed = _stats.min_nonmembers(alpha)
        if counts.n_nonmembers < needed:
            values[f"tpr@{alpha}"] = math.nan
            reasons[f"tpr@{alpha}"] = (
                f"TPR at {alpha:.1%} FPR needs at least {needed} non-members to be meaningful; "
                f"there are {counts.n_nonmembers}"
            )
    bounds: dict[str, Bounds | None] = {name: None for name in values}
    if bootstrap:
        samples = _stats.bootstrap_summaries(counts, bootstrap, rng, FPR_LEVELS)
        bounds["auc"] = functools.partial(_stats.percentile_bounds, samples["auc"])
        bounds["advantage"] = functools.partial(
            _stats.advantage_bounds, values["advantage"], samples[_stats.DEVIATION]
        )
        for alpha in FPR_LEVELS:
            if not math.isnan(values[f"tpr@{alpha}"]):
                bounds[f"tpr@{alpha}"] = functools.partial(_stats.tpr_at_fpr_bounds, counts, alpha)
    chart_fpr, chart_tpr = _stats.downsample_curve(fpr, tpr)
    curve = RocCurve(
        fpr=tuple(float(x) for x in chart_fpr),
        tpr=tuple(float(x) for x in chart_tpr),
        n_members=counts.n_members,
        n_nonmembers=counts.n_nonmembers,
    )
    return _Evaluated(
        values=values, reasons=reasons, bounds=bounds, curve=curve, n=member.size, resamples=bootstrap
    )


def _grouped_metric(
    key: str,
    scope: str,
    name: str,
    evaluated: Mapping[str, _Evaluated | None],
    sizes: Mapping[str, tuple[int, int]],
    min_group_size: int,
    bootstrap: int,
    confidence: float,
    extra: Mapping[str, Any],
) -> MetricResult:
    """The grouping's metric: the largest group value, with an interval for that maximum.

    Each group keeps its own interval in ``by_group``. The maximum's interval takes, at each
    tail, the largest lower and the largest upper bound of the groups' intervals at tail / G
    (Bonferroni over the G groups with a value): every group's true value then lies in its
    interval with probability ≥ 1 − 2·tail, and so does the largest of them. (Reporting the
    most exposed group's own interval instead would select it for being high and cover the
    maximum too seldom.)
    """
    from guardrail.fairness.intervals import bounded_interval

    by_group = []
    for label, result in evaluated.items():
        n1, n0 = sizes[label]
        value = None if result is None else finite_or_none(result.values[name])
        reason = (
            f"needs members and non-members (has {n1} and {n0})"
            if result is None
            else result.reasons[name]
        )
        by_group.append(
            GroupValue(
                group=label,
                value=value,
                n=n1 + n0,
                small=min(n1, n0) < min_group_size,
                reason=None if value is not None else reason,
                ci=None if result is None or value is None else result.interval(name, confidence, table=False),
            )
        )
    defined = [g for g in by_group if g.value is not None]
    worst = (
        max(defined, key=lambda g: g.value if g.value is not None else -math.inf)
        if defined
        else None
    )
    families = [
        result.bounds[name]
        for result in evaluated.values()
        if result is not None and not math.isnan(result.values[name])
    ]
    ci = None
    if worst is not None and worst.value is not None and families and all(f is not None for f in families):
        ci = bounded_interval(
            _max_bounds([f for f in families if f is not None]),
            worst.value,
            confidence,
            GROUP_MAX_METHOD.format(groups=len(families)),
            table=True,
            resamples=bootstrap if name in BOOTSTRAPPED else 0,
        )
    details: dict[str, Any] = {
        "aggregation": "max over groups (the most vulnerable group)",
        "group": worst.group if worst else None,
        "min_group_size": min_group_size,
        "members_nonmembers": {label: list(n) for label, n in sizes.items()},
        "bootstrap": bootstrap,
        "confidence": confidence,
        "interval": None if ci is None else ci.method,
        **extra,
    }
    return MetricResult(
        key=key,
        scope=scope,
        value=worst.value if worst else None,
        reason=None
        if worst
        else f"undefined in every {scope} group ({by_group[0].reason if by_group else 'no rows'})",
        ci=ci,
        by_group=tuple(by_group),
        n=sum(g.n for g in by_group),
        higher_is_better=False,
        details=details,
    )


def _max_bounds(families: list[Bounds]) -> Bounds:
    """Bounds on the largest of several quantities from each one's bounds, Bonferroni over them."""

    def bounds(tail: float) -> tuple[float, float]:
        pairs = [family(tail / len(families)) for family in families]
        return max(low for low, _ in pairs), max(high for _, high in pairs)

    return bounds


def _details(
    name: str, curve: RocCurve, bootstrap: int, confidence: float
) -> dict[str, Any]:
    """What a figure is and how its interval was built, for the metric's details."""
    rules = {
        "auc": "trapezoidal area under the ROC curve (ties ½)",
        "advantage": "max over thresholds of TPR − FPR",
        "tpr@0.001": "ROC curve at FPR 0.1%, linear between operating points, highest TPR on a vertical segment",
        "tpr@0.01": "ROC curve at FPR 1%, linear between operating points, highest TPR on a vertical segment",
    }
    return {
        "definition": rules[name],
        "members": curve.n_members,
        "nonmembers": curve.n_nonmembers,
        "bootstrap": bootstrap,
        "confidence": confidence,
        "interval": METHODS[name] if bootstrap else None,
    }
