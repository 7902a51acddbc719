"""LIME for tables with few model calls for many instances.

Plain ``lime`` explains one instance at a time: sample a neighbourhood, call the model on
it, fit a weighted ridge. Here a whole chunk of instances is explained at once, and the
per-instance ridge fits that lime's ``LimeBase.explain_instance_with_data`` would make
(``Ridge(alpha=1)`` on every feature, weighted by lime's exponential kernel) are solved
together in closed form (:func:`weighted_ridge`; a test checks them against lime).

**Pools.** With quartile discretisation, lime draws every sample of every instance from one
distribution that does not depend on the instance: each feature's bin from its background
frequency, then a value inside the bin. Only the binary "same bin as the instance"
features and sample 0 (the instance itself) depend on it. So one draw of ``S − 1`` samples
(a *pool*) can serve ``pool_rows`` instances: each gets exactly the explanation plain lime
gives it from the pool's random state (a test checks it), and the model scores
``S − 1`` rows per pool instead of ``S`` per instance. The pools are drawn one after the
other by lime's own sequence of draws (:func:`shared_samples`), so ``pool_rows=1`` gives
the draws, and the explanations, of a plain lime loop with the same seed.

The instances of a pool share its Monte Carlo noise. A mean over instances (global
importance, faithfulness) therefore varies with the pools more than a bootstrap over
instances can see; the audit resamples whole pools instead (:func:`pool_ids` gives each
instance its pool), and keeps at least :data:`MIN_POOLS` pools (:func:`pool_rows_for`) so
that resampling them means something.

The explainer's statistics (quartile bins, feature frequencies, scaler) come from
``lime.lime_tabular.LimeTabularExplainer`` fitted on background rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from guardrail.explain.tabular import ProbaFn, TabularView

RIDGE_ALPHA = 1.0
"""lime's default local model: ``Ridge(alpha=1, fit_intercept=True)``."""

POOL_ROWS = 8
"""Instances that share one pool by default: about 8× fewer model rows."""

MIN_POOLS = 16
"""Fewest pools among the explained instances (:func:`pool_rows_for`): a bootstrap over
fewer clusters than this gives intervals that are too narrow."""


def pool_rows_for(instances: int, pool_rows: int = POOL_ROWS) -> int:
    """``pool_rows``, lowered so that ``instances`` fill at least :data:`MIN_POOLS` pools (at least 1)."""
    return max(1, min(pool_rows, instances // MIN_POOLS))


def lime_explainer(view: TabularView, background: np.ndarray, seed: int) -> Any:
    """A ``LimeTabularExplainer`` (quartile discretisation) fitted on ``background`` codes."""
    from lime.lime_tabular import LimeTabularExplainer

    return LimeTabularExplainer(
        background,
        mode="classification",
        feature_names=list(view.features),
        categorical_features=list(view.categorical),
        discretize_continuous=True,
        discretizer="quartile",
        random_state=seed,
    )


def reseed(explainer: Any, seed: int) -> None:
    """Restart the explainer's (and its discretiser's) random stream at ``seed``."""
    state = np.random.RandomState(seed)
    explainer.random_state = state
    if explainer.discretizer is not None:
        explainer.discretizer.random_state = state


def weighted_ridge(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    alpha: float = RIDGE_ALPHA,
    *,
    shift: np.ndarray | None = None,
    scale: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regressions with intercept, one per leading index: ``x (m, s, d)``, ``y, weights (m, s)``.

    Minimises ``Σ_s w (y − z·β − b)² + α‖β‖²`` over the features ``z = (x − shift) / scale``
    (scikit-learn's ``Ridge`` with ``sample_weight``); returns ``(β (m, d), b (m,))``. The
    standardised features are never built: the weighted moments of ``x`` are centred and
    scaled instead (one ``(m, d, s)`` temporary rather than three ``(m, s, d)`` copies).
    """
    d = x.shape[2]
    shift = np.zeros(d) if shift is None else np.asarray(shift, dtype=np.float64)
    scale = np.ones(d) if scale is None else np.asarray(scale, dtype=np.float64)
    total = weights.sum(axis=1)
    weighted_t = x.transpose(0, 2, 1) * weights[:, None, :]
    x_mean = weighted_t.sum(axis=2) / total[:, None]
    y_mean = (weights * y).sum(axis=1) / total
    gram = np.matmul(weighted_t, x) - total[:, None, None] * x_mean[:, :, None] * x_mean[:, None, :]
    moment = np.matmul(weighted_t, y[..., None])[..., 0] - total[:, None] * x_mean * y_mean[:, None]
    gram = gram / np.outer(scale, scale) + alpha * np.eye(d)
    coef = np.linalg.solve(gram, (moment / scale)[..., None])[..., 0]
    return coef, y_mean - (((x_mean - shift) / scale) * coef).sum(axis=1)


def shared_samples(explainer: Any, rows: np.ndarray, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """One pool for all ``rows``: ``(data (m, num_samples, d), pool (num_samples − 1, d))``.

    ``data`` holds lime's binary features for each row (sample 0 is the row itself), ``pool``
    the shared samples 1… in the original space. The draws are lime's, in lime's order (one
    ``choice`` per feature, then the values inside the bins: ``LimeTabularExplainer.
    __data_inverse``), so for a single row they are the samples plain lime draws for it.
    """
    d = rows.shape[1]
    state = explainer.random_state
    bins = np.empty((num_samples, d))
    for column in range(d):
        bins[:, column] = state.choice(
            explainer.feature_values[column], size=num_samples, replace=True, p=explainer.feature_frequencies[column]
        )
    pool = explainer.discretizer.undiscretize(bins[1:])
    first = explainer.discretizer.discretize(rows)
    data = (bins[None, :, :] == first[:, None, :]).astype(np.float64)
    data[:, 0] = 1.0
    return data, pool


def pool_ids(m: int, pool_rows: int) -> np.ndarray:
    """The pool of each of ``m`` consecutive instances (``0, …, 0, 1, …``)."""
    if pool_rows < 1:
        raise ValueError(f"pool_rows must be at least 1, got {pool_rows}")
    return np.arange(m) // pool_rows


def lime_attributions(
    explainer: Any, proba: ProbaFn, rows: np.ndarray, num_samples: int, pool_rows: int = POOL_ROWS
) -> np.ndarray:
    """LIME weights (``(m, d)``, for ``P(positive)``) of ``rows``, ``pool_rows`` instances per
    pool (:func:`pool_ids`), all pools scored in one model call."""
    m, d = rows.shape
    pools = pool_ids(m, pool_rows)
    drawn = [shared_samples(explainer, rows[pools == k], num_samples) for k in range(int(pools[-1]) + 1 if m else 0)]
    if not drawn:
        return np.zeros((0, d))
    scored = proba(np.concatenate([rows, *(pool for _, pool in drawn)]))
    pool_scores = scored[m:].reshape(len(drawn), num_samples - 1)
    scores = np.concatenate([scored[:m, None], pool_scores[pools]], axis=1)
    data = np.concatenate([binary for binary, _ in drawn])
    # lime's Euclidean distance of each scaled sample to sample 0 (the row: all ones); the
    # features are binary, so |(x − 1) / scale|² is Σ over the features where x is 0 of 1 / scale²
    distances = np.sqrt(np.maximum((1.0 - data) @ (1.0 / explainer.scaler.scale_**2), 0.0))
    weights = explainer.base.kernel_fn(distances)
    coef, _ = weighted_ridge(data, scores, weights, shift=explainer.scaler.mean_, scale=explainer.scaler.scale_)
    return coef
