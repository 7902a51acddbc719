"""LIME for tables with one model call for many instances.

Plain ``lime`` explains one instance at a time: sample a neighbourhood, call the model on
it, fit a weighted ridge. Here a whole chunk of instances is explained at once, and the
per-instance ridge fits that lime's ``LimeBase.explain_instance_with_data`` would make
(``Ridge(alpha=1)`` on every feature, weighted by lime's exponential kernel) are solved
together in closed form (:func:`weighted_ridge`; a test checks them against lime). Two ways
to draw the neighbourhoods (:data:`LimeSampling`):

* ``per_instance``: instance after instance by lime's own sampler (its private
  ``__data_inverse``, from the same random stream a plain loop would use), so the samples,
  and the explanations, equal a plain loop's; the model scores ``m × S`` rows.
* ``shared`` (the audit's default): with quartile discretisation, lime draws every sample
  of every instance from one distribution that does not depend on the instance (each
  feature's bin from its background frequency, then a value inside the bin); only the
  binary "same bin as the instance" features and sample 0 (the instance itself) depend on
  it. So one neighbourhood of ``S − 1`` draws serves the chunk: the model scores
  ``S − 1 + m`` rows instead of ``m × S``. Each explanation has exactly the distribution of
  a plain lime explanation (for a single instance the draws are lime's own), but the
  explanations of one chunk share their Monte Carlo noise; the audit's stability metric
  (fresh draws per seed) measures that noise.

The explainer's statistics (quartile bins, feature frequencies, scaler) come from
``lime.lime_tabular.LimeTabularExplainer`` fitted on background rows.
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np

from guardrail.explain.methods import LimeSampling
from guardrail.explain.tabular import ProbaFn, TabularView

LIME_SAMPLINGS: tuple[str, ...] = get_args(LimeSampling)

RIDGE_ALPHA = 1.0
"""lime's default local model: ``Ridge(alpha=1, fit_intercept=True)``."""


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


LIME_SAMPLER = "_LimeTabularExplainer__data_inverse"


def lime_samples(explainer: Any, rows: np.ndarray, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbourhoods of ``rows`` as lime draws them: ``(data, inverse)``, each ``(m, num_samples, d)``.

    ``data`` holds lime's binary features (1 where a sample falls in the row's bin or
    category; sample 0 is the row itself), ``inverse`` the samples in the original space.
    Drawn row after row by lime's own sampler, exactly as a loop of ``explain_instance``
    calls would draw them; :func:`vectorised_samples` when lime lacks that private method.
    """
    sampler = getattr(explainer, LIME_SAMPLER, None)
    if sampler is None:
        return vectorised_samples(explainer, rows, num_samples)
    drawn = [sampler(row, num_samples) for row in rows]
    return np.stack([d for d, _ in drawn]), np.stack([i for _, i in drawn])


def vectorised_samples(explainer: Any, rows: np.ndarray, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """lime's sampling (quartile discretiser) for ``m`` rows at once: the same distribution,
    the same draws for one row, another order of draws for several."""
    m, d = rows.shape
    state = explainer.random_state
    first = explainer.discretizer.discretize(rows)
    data = np.zeros((m, num_samples, d))
    inverse = np.zeros((m, num_samples, d))
    for column in range(d):
        values = explainer.feature_values[column]
        draws = state.choice(values, size=(m, num_samples), replace=True, p=explainer.feature_frequencies[column])
        binary = (draws == first[:, column, None]).astype(np.float64)
        binary[:, 0] = 1.0
        data[:, :, column] = binary
        inverse[:, :, column] = draws
    inverse[:, 1:] = explainer.discretizer.undiscretize(inverse[:, 1:].reshape(-1, d)).reshape(m, num_samples - 1, d)
    inverse[:, 0] = rows
    return data, inverse


def weighted_ridge(x: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float = RIDGE_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regressions with intercept, one per leading index: ``x (m, s, d)``, ``y, weights (m, s)``.

    Minimises ``Σ_s w (y − x·β − b)² + α‖β‖²`` (scikit-learn's ``Ridge`` with ``sample_weight``);
    returns ``(β (m, d), b (m,))``.
    """
    total = weights.sum(axis=1)
    x_mean = np.matmul(weights[:, None, :], x)[:, 0] / total[:, None]
    y_mean = (weights * y).sum(axis=1) / total
    xc = x - x_mean[:, None, :]
    yc = y - y_mean[:, None]
    weighted_t = (xc * weights[..., None]).transpose(0, 2, 1)
    gram = np.matmul(weighted_t, xc) + alpha * np.eye(x.shape[2])
    moment = np.matmul(weighted_t, yc[..., None])[..., 0]
    coef = np.linalg.solve(gram, moment[..., None])[..., 0]
    return coef, y_mean - (x_mean * coef).sum(axis=1)


def shared_samples(explainer: Any, rows: np.ndarray, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """One neighbourhood for all ``rows``: ``(data (m, num_samples, d), pool (num_samples − 1, d))``.

    ``data`` holds lime's binary features for each row (sample 0 is the row itself), ``pool``
    the shared samples 1… in the original space. The draws are lime's, in lime's order (one
    ``choice`` per feature, then the values inside the bins), so for a single row they equal
    :func:`lime_samples`.
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


def lime_attributions(
    explainer: Any, proba: ProbaFn, rows: np.ndarray, num_samples: int, sampling: LimeSampling = "shared"
) -> np.ndarray:
    """LIME weights (``(m, d)``, for ``P(positive)``) of ``rows``, scoring all neighbourhoods in one call."""
    m, d = rows.shape
    if sampling == "shared":
        data, pool = shared_samples(explainer, rows, num_samples)
        scored = proba(np.concatenate([rows, pool]))
        scores = np.concatenate([scored[:m, None], np.broadcast_to(scored[m:], (m, num_samples - 1))], axis=1)
    elif sampling == "per_instance":
        data, inverse = lime_samples(explainer, rows, num_samples)
        scores = proba(inverse.reshape(-1, d)).reshape(m, num_samples)
    else:
        raise ValueError(f"unknown LIME sampling {sampling!r}; choose from {', '.join(LIME_SAMPLINGS)}")
    scaled = (data - explainer.scaler.mean_) / explainer.scaler.scale_
    distances = np.linalg.norm(scaled - scaled[:, :1, :], axis=2)
    weights = explainer.base.kernel_fn(distances)
    coef, _ = weighted_ridge(scaled, scores, weights)
    return coef
