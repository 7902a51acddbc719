"""Membership inference attacks on any model, and how well they succeed, by group.

Everything here works on arrays: per-example losses or probabilities that the caller
computed with its own model (scikit-learn, torch, anything), so the attacks are
model-agnostic. Two attacks:

* :func:`loss_threshold_attack` — score = −loss (Yeom et al. 2018): training examples
  tend to have lower loss.
* :func:`lira_offline_attack` — offline LiRA (Carlini et al. 2022): a per-example
  calibration against reference models that never saw the example. For each example, the
  logit-scaled confidence ``φ = log(p_y / (1 − p_y))`` of the reference models is fitted
  with a Gaussian ``N(μ_out, σ²_out)``; the score is ``(φ_target − μ_out) / σ_out``, a
  monotone transform of the paper's one-sided likelihood test ``Φ((φ − μ_out)/σ_out)``
  kept unbounded so that the low-FPR end of the ROC curve is not lost to rounding.
  :func:`train_reference_models` trains the reference models on random halves of a
  population split through a caller-supplied ``fit`` callable.

:func:`attack_metrics` judges any score: ROC AUC, TPR at 0.1% and 1% FPR, and attack
advantage ``max(TPR − FPR)``, each with a seeded percentile bootstrap interval stratified
by membership (and by group within each grouping, e.g. sex or hospital site), as
:class:`~guardrail.core.types.MetricResult` objects, plus the ROC curve (≤ 200 points) for
a chart.

References
----------
S. Yeom, I. Giacomelli, M. Fredrikson, S. Jha. *Privacy Risk in Machine Learning: Analyzing
the Connection to Overfitting.* IEEE CSF 2018.

N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramèr. *Membership Inference Attacks
From First Principles.* IEEE S&P 2022 (LiRA; offline variant and fixed variance, Sec. IV-C/D).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from guardrail.core.types import GroupValue, Interval, MetricResult
from guardrail.privacy import _stats

__all__ = [
    "FPR_LEVELS",
    "AttackReport",
    "ReferenceModels",
    "RocCurve",
    "attack_metrics",
    "cross_entropy_loss",
    "lira_offline_attack",
    "logit_confidence",
    "loss_threshold_attack",
    "train_reference_models",
]

FPR_LEVELS = (0.001, 0.01)
"""False-positive rates at which the TPR is reported (0.1% and 1%)."""

METRIC_NAMES = {
    "auc": "auc",
    "advantage": "advantage",
    "tpr@0.001": "tpr_at_0_1pct_fpr",
    "tpr@0.01": "tpr_at_1pct_fpr",
}
"""Internal summary name → metric key suffix: ``privacy.mia.<attack>.<suffix>``."""

PROBABILITY_FLOOR = 1e-12
"""Probabilities are clipped to ``[floor, 1 − floor]`` before logs (a 0/1 output is finite)."""

Variance = Literal["global", "per_example"]


def cross_entropy_loss(
    proba: npt.ArrayLike, labels: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Per-example cross-entropy ``−log p_y``.

    Parameters
    ----------
    proba:
        ``(n, classes)`` class probabilities, or ``(n,)`` probabilities of class 1 for a
        binary model.
    labels:
        ``(n,)`` integer class labels (0/1 for the binary form).

    >>> cross_entropy_loss([0.9, 0.2], [1, 0]).round(4)
    array([0.1054, 0.2231])
    """
    p = _true_class_probability(proba, labels)
    result: npt.NDArray[np.float64] = -np.log(p)
    return result


def logit_confidence(
    proba: npt.ArrayLike, labels: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """LiRA's logit-scaled confidence ``φ = log(p_y) − log(1 − p_y)`` per example.

    ``1 − p_y`` is computed as the sum of the other classes' probabilities (not by
    subtraction) so that confident predictions keep their resolution.

    >>> logit_confidence([0.5, 0.9], [1, 1]).round(4)
    array([0.    , 2.1972])
    """
    probs, y = _as_probabilities(proba, labels)
    p_true = probs[np.arange(y.size), y]
    others = probs.sum(axis=1) - p_true
    others = np.where(others > 0, others, 1 - p_true)
    result: npt.NDArray[np.float64] = np.log(
        np.clip(p_true, PROBABILITY_FLOOR, None)
    ) - np.log(np.clip(others, PROBABILITY_FLOOR, None))
    return result


def loss_threshold_attack(losses: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Scores of the loss-threshold attack (Yeom et al. 2018): ``−loss``.

    Any threshold on the score is one attack; :func:`attack_metrics` sweeps them all.

    >>> loss_threshold_attack([0.1, 2.0])
    array([-0.1, -2. ])
    """
    loss = np.asarray(losses, dtype=float)
    if loss.ndim != 1 or not np.all(np.isfinite(loss)):
        raise ValueError("losses must be a 1-D array of finite numbers")
    result: npt.NDArray[np.float64] = -loss
    return result


def lira_offline_attack(
    target_confidence: npt.ArrayLike,
    reference_confidence: npt.ArrayLike,
    *,
    variance: Variance = "global",
) -> npt.NDArray[np.float64]:
    """Scores of offline LiRA (Carlini et al. 2022): ``(φ − μ_out) / σ_out`` per example.

    Parameters
    ----------
    target_confidence:
        ``(n,)`` logit-scaled confidences φ of the audited model on the audited examples
        (:func:`logit_confidence`).
    reference_confidence:
        ``(K, n)`` the same for ``K ≥ 2`` reference models, none of which trained on any
        audited example (members or non-members): the "out" distribution of each example.
    variance:
        ``"global"`` (default): one σ_out for all examples, the mean of the per-example
        variances — the paper's advice with few reference models (it is what lets a CI-sized
        K of 4–8 work); ``"per_example"``: each example's own variance.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` scores, higher meaning "more likely a member".
    """
    target = np.asarray(target_confidence, dtype=float)
    reference = np.asarray(reference_confidence, dtype=float)
    if target.ndim != 1 or reference.ndim != 2 or reference.shape[1] != target.size:
        raise ValueError(
            f"expected target (n,) and reference (K, n) confidences, got {target.shape} and {reference.shape}"
        )
    if reference.shape[0] < 2:
        raise ValueError("LiRA needs at least 2 reference models to fit a variance")
    if not (np.all(np.isfinite(target)) and np.all(np.isfinite(reference))):
        raise ValueError(
            "confidences must be finite (use logit_confidence, which clips probabilities)"
        )
    mean = reference.mean(axis=0)
    per_example = reference.var(axis=0, ddof=1)
    if variance == "global":
        spread = np.full_like(mean, math.sqrt(float(per_example.mean())))
    elif variance == "per_example":
        spread = np.sqrt(per_example)
    else:
        raise ValueError(
            f"variance must be 'global' or 'per_example', got {variance!r}"
        )
    spread = np.maximum(
        spread, 1e-6
    )  # reference models that agree exactly: a (near) point mass
    result: npt.NDArray[np.float64] = (target - mean) / spread
    return result


@dataclass(frozen=True)
class ReferenceModels:
    """Outputs of ``K`` reference models on the audited examples.

    ``confidence`` and ``loss`` are ``(K, n)``: logit-scaled confidence
    (:func:`logit_confidence`) and cross-entropy of model ``k`` on audited example ``i``;
    ``train_indices[k]`` are the population rows model ``k`` was trained on.
    """

    confidence: npt.NDArray[np.float64]
    loss: npt.NDArray[np.float64]
    train_indices: tuple[npt.NDArray[np.int64], ...]


def train_reference_models(
    fit: Callable[
        [npt.NDArray[np.int64]], Callable[[npt.NDArray[np.int64]], npt.ArrayLike]
    ],
    population: npt.ArrayLike,
    audited: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_models: int = 4,
    fraction: float = 0.5,
    seed: int = 0,
) -> ReferenceModels:
    """Train ``n_models`` reference models on random subsets of a population split.

    Parameters
    ----------
    fit:
        ``fit(train_idx) -> predict``: trains a fresh model (same recipe as the audited
        one) on the rows ``train_idx`` of the caller's data and returns
        ``predict(idx) -> probabilities`` (``(len(idx), classes)``, or ``(len(idx),)``
        probabilities of class 1). Works for any framework: the rows stay with the caller.
    population:
        Row indices the reference models may train on. They must not include any audited
        row (offline LiRA models the "out" distribution only).
    audited:
        Row indices of the audited examples (members and non-members of the target model).
    labels:
        Labels of all rows (indexed by row index), used for confidences and losses.
    n_models, fraction, seed:
        ``K ≥ 2`` models, each on ``round(fraction · len(population))`` rows drawn without
        replacement with a generator seeded by ``seed``.
    """
    pool = np.asarray(population, dtype=np.int64)
    rows = np.asarray(audited, dtype=np.int64)
    y = np.asarray(labels)
    if n_models < 2:
        raise ValueError(f"n_models must be ≥ 2, got {n_models!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if np.intersect1d(pool, rows).size:
        raise ValueError(
            "population and audited rows overlap: reference models must never train on audited rows"
        )
    size = max(1, round(fraction * pool.size))
    rng = np.random.default_rng(seed)
    confidences, losses, subsets = [], [], []
    for _ in range(n_models):
        subset = np.sort(rng.choice(pool, size=size, replace=False))
        predict = fit(subset)
        proba = predict(rows)
        confidences.append(logit_confidence(proba, y[rows]))
        losses.append(cross_entropy_loss(proba, y[rows]))
        subsets.append(subset)
    return ReferenceModels(
        confidence=np.stack(confidences),
        loss=np.stack(losses),
        train_indices=tuple(subsets),
    )


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
        key = f"privacy.mia.{self.attack}.{name}"
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


@dataclass(frozen=True)
class _Evaluated:
    values: dict[str, float]  # NaN where undefined
    reasons: dict[str, str | None]
    intervals: dict[str, Interval | None]
    curve: RocCurve
    n: int


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
        Percentile-bootstrap resamples (0: no intervals). Members and non-members are
        resampled separately (stratified), and within each group for the group values.
    confidence, seed:
        Interval level and the seed of the resampling.
    min_group_size:
        Groups with fewer members or fewer non-members than this are flagged ``small``.

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
      Being a maximum, its estimate and its percentile interval are biased upwards near 0
      (on Heart Disease a model that never saw the members gave 0.07, interval
      [0.01, 0.16]): judge "no leak" on the AUC's interval, not on the advantage's.
    * Groupings: each group is resampled on its own (stratified by group × membership);
      the scoped metric's value and interval are those of the most vulnerable group (the
      largest value), with every group in ``by_group``.
    * Intervals are read from the shared percentile machinery of
      :mod:`guardrail.fairness.bootstrap` (quantile table included).
    """
    score = np.asarray(scores, dtype=float)
    member = np.asarray(is_member, dtype=bool)
    if score.ndim != 1 or member.shape != score.shape:
        raise ValueError(
            f"scores and is_member must be 1-D of one length, got {score.shape} and {member.shape}"
        )
    if not np.all(np.isfinite(score)):
        raise ValueError("attack scores must be finite")
    if not attack or not all(c.isalnum() or c == "_" for c in attack):
        raise ValueError(f"attack name must be letters, digits and '_', got {attack!r}")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be ≥ 0, got {bootstrap!r}")
    if not member.any() or member.all():
        raise ValueError("need both members and non-members")
    rng = np.random.default_rng(seed)
    overall = _evaluate(score, member, bootstrap, confidence, rng, table=True)
    metrics = [
        MetricResult(
            key=f"privacy.mia.{attack}.{suffix}",
            value=_finite(overall.values[name]),
            reason=overall.reasons[name],
            ci=overall.intervals[name],
            n=overall.n,
            higher_is_better=False,
            details=_details(name, overall.curve, bootstrap, confidence),
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
                _evaluate(
                    score[rows], member[rows], bootstrap, confidence, rng, table=False
                )
                if n1 and n0
                else None
            )
        roc_by_group[scope] = {
            label: e.curve for label, e in evaluated.items() if e is not None
        }
        for name, suffix in METRIC_NAMES.items():
            metrics.append(
                _grouped_metric(
                    f"privacy.mia.{attack}.{suffix}",
                    scope,
                    name,
                    evaluated,
                    sizes,
                    min_group_size,
                    bootstrap,
                    confidence,
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
    confidence: float,
    rng: np.random.Generator,
    *,
    table: bool,
) -> _Evaluated:
    from guardrail.fairness.bootstrap import BootstrapSpec, interval

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
    intervals: dict[str, Interval | None] = {name: None for name in values}
    if bootstrap:
        spec = BootstrapSpec(resamples=bootstrap, level=confidence)
        samples = _stats.bootstrap_summaries(counts, bootstrap, rng, FPR_LEVELS)
        for name, value in values.items():
            if not math.isnan(value):
                intervals[name] = interval(samples[name], spec, table=table)
    chart_fpr, chart_tpr = _stats.downsample_curve(fpr, tpr)
    curve = RocCurve(
        fpr=tuple(float(x) for x in chart_fpr),
        tpr=tuple(float(x) for x in chart_tpr),
        n_members=counts.n_members,
        n_nonmembers=counts.n_nonmembers,
    )
    return _Evaluated(
        values=values, reasons=reasons, intervals=intervals, curve=curve, n=member.size
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
) -> MetricResult:
    by_group = []
    for label, result in evaluated.items():
        n1, n0 = sizes[label]
        value = None if result is None else _finite(result.values[name])
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
                ci=None if result is None else result.intervals[name],
            )
        )
    defined = [g for g in by_group if g.value is not None]
    worst = (
        max(defined, key=lambda g: g.value if g.value is not None else -math.inf)
        if defined
        else None
    )
    details: dict[str, Any] = {
        "aggregation": "max over groups (the most vulnerable group)",
        "group": worst.group if worst else None,
        "min_group_size": min_group_size,
        "members_nonmembers": {label: list(n) for label, n in sizes.items()},
        "bootstrap": bootstrap,
        "confidence": confidence,
    }
    return MetricResult(
        key=key,
        scope=scope,
        value=worst.value if worst else None,
        reason=None
        if worst
        else f"undefined in every {scope} group ({by_group[0].reason if by_group else 'no rows'})",
        ci=worst.ci if worst else None,
        by_group=tuple(by_group),
        n=sum(g.n for g in by_group),
        higher_is_better=False,
        details=details,
    )


def _details(
    name: str, curve: RocCurve, bootstrap: int, confidence: float
) -> dict[str, Any]:
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
        "interval": "percentile bootstrap, members and non-members resampled separately"
        if bootstrap
        else None,
    }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def _as_probabilities(
    proba: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    probs = np.asarray(proba, dtype=float)
    y = np.asarray(labels)
    if probs.ndim == 1:
        probs = np.column_stack([1 - probs, probs])
    if probs.ndim != 2 or y.shape != (probs.shape[0],):
        raise ValueError(
            f"expected probabilities (n,) or (n, classes) and labels (n,), got {probs.shape} and {y.shape}"
        )
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1:
        raise ValueError("probabilities must lie in [0, 1]")
    y_int = y.astype(np.int64)
    if (
        np.any(y_int != y)
        or y_int.min(initial=0) < 0
        or y_int.max(initial=0) >= probs.shape[1]
    ):
        raise ValueError(f"labels must be integers in [0, {probs.shape[1]})")
    return probs, y_int


def _true_class_probability(
    proba: npt.ArrayLike, labels: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    probs, y = _as_probabilities(proba, labels)
    result: npt.NDArray[np.float64] = np.clip(
        probs[np.arange(y.size), y], PROBABILITY_FLOOR, 1.0
    )
    return result
