"""Membership inference attacks on any model, and how well they succeed, by group.

Everything here works on arrays: per-example outputs that the caller computed with its own
model (scikit-learn, torch, anything), so the attacks are model-agnostic. An output is either
:class:`Logits` (float64 logits or log-probabilities, or a binary model's log-odds) or an
array of probabilities. Logits keep every digit of a confident prediction; probabilities
lose them where ``1 − p`` underflows (``p`` rounds to 1 beyond a log-odds of ≈ 16.6 in
float32 and ≈ 36.7 in float64), and the floor of :data:`PROBABILITY_FLOOR` then caps LiRA's
confidence at ±27.6, so on an overfit model the attack would see ties where the model
ranks its examples. Pass logits whenever the model has them. Two attacks:

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
advantage ``max(TPR − FPR)``, each with its interval (one construction per figure, chosen
for coverage: see :mod:`guardrail.privacy._stats`), overall and by group within each
grouping (e.g. sex or hospital site), as :class:`~guardrail.core.types.MetricResult`
objects, plus the ROC curve (≤ 200 points) for a chart. It is the one place these figures
and their intervals are computed, whichever audit reports them.

References
----------
S. Yeom, I. Giacomelli, M. Fredrikson, S. Jha. *Privacy Risk in Machine Learning: Analyzing
the Connection to Overfitting.* IEEE CSF 2018.

N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramèr. *Membership Inference Attacks
From First Principles.* IEEE S&P 2022 (LiRA; offline variant and fixed variance, Sec. IV-C/D).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from guardrail.core.types import GroupValue, Interval, MetricResult
from guardrail.privacy import _stats

Bounds = Callable[[float], tuple[float, float]]
"""``tail → (low, high)``: an interval leaving ``tail`` outside on each side."""

__all__ = [
    "FPR_LEVELS",
    "AttackReport",
    "Logits",
    "ModelOutput",
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


@dataclass(frozen=True, eq=False)
class Logits:
    """A model's outputs on the log scale, in float64: the precise input of both attacks.

    ``values`` is ``(n, classes)`` logits or log-probabilities (a constant added to a row
    changes nothing), or ``(n,)`` log-odds of class 1 for a binary model. ``-inf`` (a
    probability of exactly 0, e.g. a forest's unanimous vote) is allowed in the 2-D form and
    is raised to ``log(PROBABILITY_FLOOR)`` after normalisation, as a probability of 0 always
    was; NaN and ``+inf`` are refused.

    >>> Logits([40.0]).log_probabilities().round(6).tolist()  # log-odds 40: [log P(0), log P(1)]
    [[-40.0, 0.0]]
    """

    values: npt.ArrayLike

    def __post_init__(self) -> None:
        values = np.array(self.values, dtype=np.float64)
        if values.ndim not in (1, 2) or (values.ndim == 2 and values.shape[1] < 2):
            raise ValueError(f"logits must be (n,) log-odds or (n, classes ≥ 2), got shape {values.shape}")
        if np.isnan(values).any() or np.isposinf(values).any():
            raise ValueError("logits must be finite (−inf allowed in the (n, classes) form)")
        if values.ndim == 1 and np.isinf(values).any():
            raise ValueError("log-odds must be finite")
        if values.ndim == 2 and np.isneginf(values).all(axis=1).any():
            raise ValueError("a row of logits is −inf in every class")
        values.setflags(write=False)
        object.__setattr__(self, "values", values)

    @property
    def array(self) -> npt.NDArray[np.float64]:
        """The values as a read-only float64 array."""
        result: npt.NDArray[np.float64] = np.asarray(self.values, dtype=np.float64)
        return result

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def log_probabilities(self) -> npt.NDArray[np.float64]:
        """``(n, classes)`` log-probabilities (log-softmax in float64), floored at ``log(PROBABILITY_FLOOR)`` only where −inf."""
        from scipy.special import log_softmax

        values = self.array
        if values.ndim == 1:
            values = np.column_stack([np.zeros_like(values), values])
        result: npt.NDArray[np.float64] = log_softmax(values, axis=1)
        return np.where(np.isneginf(result), math.log(PROBABILITY_FLOOR), result)


ModelOutput = Logits | npt.ArrayLike
"""What a model gives an attack: :class:`Logits` (precise) or probabilities ``(n, classes)``
or ``(n,)`` of class 1 (precise only while ``1 − p`` does not underflow)."""


def cross_entropy_loss(
    output: ModelOutput, labels: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Per-example cross-entropy ``−log p_y``.

    Parameters
    ----------
    output:
        :class:`Logits` (exact: ``log1p(exp(−φ))`` from LiRA's confidence φ in float64, so a
        tiny loss keeps its digits instead of rounding to 0), or ``(n, classes)``
        class probabilities, or ``(n,)`` probabilities of class 1 for a binary model
        (clipped to ``[PROBABILITY_FLOOR, 1]``).
    labels:
        ``(n,)`` integer class labels (0/1 for the binary form).

    >>> cross_entropy_loss([0.9, 0.2], [1, 0]).round(4)
    array([0.1054, 0.2231])
    >>> float(cross_entropy_loss(Logits([40.0]), [1])[0])  # p = 1 − 4e-18: not 0, not −log(1)
    4.248354255291589e-18
    """
    if isinstance(output, Logits):
        # −log p_y = log(1 + Σ_{j≠y} p_j / p_y) = log1p(exp(−φ)): exact where p_y ≈ 1
        loss: npt.NDArray[np.float64] = np.logaddexp(0.0, -logit_confidence(output, labels))
        return loss
    p = _true_class_probability(output, labels)
    result: npt.NDArray[np.float64] = -np.log(p)
    return result


def logit_confidence(
    output: ModelOutput, labels: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """LiRA's logit-scaled confidence ``φ = log(p_y) − log(1 − p_y)`` per example.

    From :class:`Logits`, ``φ = z_y − logsumexp_{j≠y} z_j`` in float64 (for a binary model,
    ± its log-odds): exact however confident the model. From probabilities, ``1 − p_y`` is
    the sum of the other classes' probabilities (never ``1 − p_y`` by subtraction, which
    underflows), both clipped to ``PROBABILITY_FLOOR``; given only the probability of class
    1, ``1 − p`` is all there is, and φ saturates (see the module docstring).

    >>> logit_confidence([0.5, 0.9], [1, 1]).round(4)
    array([0.    , 2.1972])
    >>> logit_confidence(Logits([[0.0, 40.0], [0.0, 40.0]]), [1, 0]).tolist()
    [40.0, -40.0]
    """
    if isinstance(output, Logits):
        log_p, y = _log_probabilities(output, labels)
        rows = np.arange(y.size)
        others = log_p.copy()
        others[rows, y] = -np.inf
        from scipy.special import logsumexp

        phi: npt.NDArray[np.float64] = log_p[rows, y] - logsumexp(others, axis=1)
        return phi
    probs, y = _as_probabilities(output, labels)
    rows = np.arange(y.size)
    p_true = probs[rows, y]
    mask = np.ones_like(probs, dtype=bool)
    mask[rows, y] = False
    others = np.where(mask, probs, 0.0).sum(axis=1)
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
    ``train_indices[k]`` are the population rows model ``k`` was trained on. ``from_logits``
    is true when every model gave :class:`Logits` (precise confidences), false when any
    gave probabilities: the target's confidences must then come from probabilities too, or
    LiRA compares numbers computed two ways.
    """

    confidence: npt.NDArray[np.float64]
    loss: npt.NDArray[np.float64]
    train_indices: tuple[npt.NDArray[np.int64], ...]
    from_logits: bool = False


def train_reference_models(
    fit: Callable[
        [npt.NDArray[np.int64]], Callable[[npt.NDArray[np.int64]], ModelOutput]
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
        ``predict(idx) -> output``: :class:`Logits` (preferred), or probabilities
        (``(len(idx), classes)``, or ``(len(idx),)`` probabilities of class 1). Works for
        any framework: the rows stay with the caller.
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
    confidences, losses, subsets, kinds = [], [], [], []
    for _ in range(n_models):
        subset = np.sort(rng.choice(pool, size=size, replace=False))
        predict = fit(subset)
        output = predict(rows)
        confidences.append(logit_confidence(output, y[rows]))
        losses.append(cross_entropy_loss(output, y[rows]))
        subsets.append(subset)
        kinds.append(isinstance(output, Logits))
    return ReferenceModels(
        confidence=np.stack(confidences),
        loss=np.stack(losses),
        train_indices=tuple(subsets),
        from_logits=all(kinds),
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
    values: dict[str, float]  # NaN where undefined
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
    overall = _evaluate(score, member, bootstrap, rng)
    extra = dict(details or {})
    metrics = [
        MetricResult(
            key=f"privacy.mia.{attack}.{suffix}",
            value=_finite(overall.values[name]),
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
                    f"privacy.mia.{attack}.{suffix}",
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


def _log_probabilities(
    logits: Logits, labels: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    log_p = logits.log_probabilities()
    y = np.asarray(labels)
    if y.shape != (log_p.shape[0],):
        raise ValueError(f"expected labels ({log_p.shape[0]},), got {y.shape}")
    y_int = y.astype(np.int64)
    if np.any(y_int != y) or y_int.min(initial=0) < 0 or y_int.max(initial=0) >= log_p.shape[1]:
        raise ValueError(f"labels must be integers in [0, {log_p.shape[1]})")
    return log_p, y_int


def _true_class_probability(
    proba: npt.ArrayLike, labels: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    probs, y = _as_probabilities(proba, labels)
    result: npt.NDArray[np.float64] = np.clip(
        probs[np.arange(y.size), y], PROBABILITY_FLOOR, 1.0
    )
    return result
