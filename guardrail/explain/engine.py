"""Explain a sample of rows with several methods, chunk by chunk, within a time budget.

:class:`Explainer` owns the model functions and each method's state (the LIME explainer,
the baselines); :meth:`Explainer.run` walks the instances in chunks, runs every method on a
chunk (so all methods explain the same rows) together with the deletion/insertion curves,
and stops between chunks once the budget is spent: the result says how many instances were
explained and whether the budget stopped it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.explain.attribution import (
    GRADIENT_METHODS,
    Method,
    feature_ablation,
    gradient_shap,
    integrated_gradients,
    shapley_sampling,
)
from guardrail.explain.lime_batch import POOL_ROWS, lime_attributions, lime_explainer, pool_ids, reseed
from guardrail.explain.quality import deletion_insertion
from guardrail.explain.tabular import GradientModel, ProbaFn, TabularView

if TYPE_CHECKING:
    from guardrail.explain.budget import Budget, Progress

MAX_CHUNK = 256

LIME_BYTES = 256 * 2**20
"""Most memory for one chunk's LIME fits: about four ``m × S × d`` float arrays (binary
features, their scaled and centred copies, the weighted transpose)."""


@dataclass(frozen=True)
class ExplainConfig:
    methods: tuple[Method, ...]
    seed: int = 0
    batch_size: int = 16384
    lime_samples: int = 1000
    lime_pool_rows: int = POOL_ROWS
    ig_steps: int = 50
    ig_max_steps: int = 800
    ig_tolerance: float = 0.05
    gradient_shap_samples: int = 20
    shapley_permutations: int = 20


@dataclass
class IGTrace:
    """Per-instance convergence of integrated gradients."""

    delta: list[np.ndarray] = field(default_factory=list)
    relative: list[np.ndarray] = field(default_factory=list)
    steps: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class Explanations:
    """Attributions ``(n, d)`` per method for the explained ``rows`` (indices into the data)."""

    rows: np.ndarray
    requested: int
    stopped_by_budget: bool
    attributions: dict[str, np.ndarray]
    encoded: dict[str, np.ndarray]
    deletion: dict[str, np.ndarray]
    insertion: dict[str, np.ndarray]
    ig_delta: np.ndarray | None
    ig_relative: np.ndarray | None
    ig_steps: np.ndarray | None
    lime_pools: np.ndarray | None = None
    """The LIME pool of each explained row (rows of a pool share its samples), when LIME ran."""

    def clusters(self, method: str) -> np.ndarray | None:
        """Rows whose attributions by ``method`` share randomness (LIME's pools), for a cluster bootstrap."""
        return self.lime_pools if method == "lime" else None


class Explainer:
    """Runs the configured methods on rows of ``view``; ``background`` are row indices for LIME and GradientShap."""

    def __init__(
        self,
        view: TabularView,
        proba: ProbaFn,
        gradient: GradientModel | None,
        background: np.ndarray,
        config: ExplainConfig,
    ) -> None:
        self.view = view
        self.proba = proba
        self.gradient = gradient
        self.config = config
        self.background = background
        self._lime: Any = None
        if "lime" in config.methods:
            self._lime = lime_explainer(view, view.codes[background], config.seed)
        self._baseline_encoded: Any = None
        self._background_encoded: Any = None
        if gradient is not None:
            self._baseline_encoded = gradient.encode(view.baseline[None, :])
            self._background_encoded = gradient.encode(view.codes[background])

    @property
    def baseline_encoded(self) -> Any:
        return self._baseline_encoded

    @property
    def background_encoded(self) -> Any:
        return self._background_encoded

    def chunk_size(self) -> int:
        """Rows per chunk: model rows per call within ``batch_size``, LIME's fits within :data:`LIME_BYTES`."""
        c, d = self.config, len(self.view.features)
        per_row = 2 * (d + 1)  # the deletion and insertion curves
        if "lime" in c.methods:
            per_row = max(per_row, 1 + (c.lime_samples - 1) // c.lime_pool_rows)
        size = min(MAX_CHUNK, c.batch_size // per_row)
        if "lime" in c.methods:
            size = min(size, LIME_BYTES // (4 * 8 * c.lime_samples * d))
            size = max(size - size % c.lime_pool_rows, c.lime_pool_rows)  # whole pools, so chunks never split one
        return max(1, size)

    def attribute(self, method: Method, codes: np.ndarray, seed: int, ig: IGTrace | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Attributions of ``codes`` rows by ``method``: source features ``(m, d)`` and encoded ones (gradient methods)."""
        c = self.config
        if method == "feature_ablation":
            return feature_ablation(self.proba, codes, self.view.baseline), None
        if method == "shapley_sampling":
            values = shapley_sampling(
                self.proba, codes, self.view.baseline, permutations=c.shapley_permutations, seed=seed, batch_size=c.batch_size
            )
            return values, None
        if method == "lime":
            reseed(self._lime, seed)
            return lime_attributions(self._lime, self.proba, codes, c.lime_samples, c.lime_pool_rows), None
        assert method in GRADIENT_METHODS and self.gradient is not None
        inputs = self.gradient.encode(codes)
        if method == "integrated_gradients":
            result = integrated_gradients(
                self.gradient.forward,
                inputs,
                self._baseline_encoded,
                n_steps=c.ig_steps,
                max_steps=c.ig_max_steps,
                tolerance=c.ig_tolerance,
                internal_batch_size=c.batch_size,
            )
            if ig is not None:
                ig.delta.append(result.delta)
                ig.relative.append(result.relative)
                ig.steps.append(result.steps)
            encoded = result.attributions
        else:
            encoded = gradient_shap(
                self.gradient.forward,
                inputs,
                self._background_encoded,
                n_samples=c.gradient_shap_samples,
                seed=seed,
                batch_size=c.batch_size,
            )
        return self.gradient.to_features(encoded), encoded

    def run(self, order: np.ndarray, predicted: np.ndarray, budget: Budget, progress: Progress | None = None) -> Explanations:
        """Explain the rows ``order`` (in that order) until done or ``budget`` is spent.

        ``predicted`` holds the model's decision (positive or not) for every row of the data.
        The first chunk always runs; the budget is checked before each later one.
        """
        methods = self.config.methods
        chunk = self.chunk_size()
        parts: dict[str, list[np.ndarray]] = {m: [] for m in methods}
        encoded: dict[str, list[np.ndarray]] = {m: [] for m in methods if m in GRADIENT_METHODS}
        deletion: dict[str, list[np.ndarray]] = {m: [] for m in methods}
        insertion: dict[str, list[np.ndarray]] = {m: [] for m in methods}
        ig = IGTrace()
        pools: list[np.ndarray] = []
        done = 0
        stopped = False
        for index, start in enumerate(range(0, len(order), chunk)):
            if start and budget.expired():
                stopped = True
                break
            rows = order[start : start + chunk]
            codes = self.view.codes[rows]
            for method in methods:
                values, enc = self.attribute(method, codes, self.config.seed + index, ig)
                parts[method].append(values)
                if enc is not None:
                    encoded[method].append(enc)
                low, high = deletion_insertion(self.proba, codes, self.view.baseline, values, predicted[rows])
                deletion[method].append(low)
                insertion[method].append(high)
            if "lime" in methods:
                pools.append(done // self.config.lime_pool_rows + pool_ids(len(rows), self.config.lime_pool_rows))
            done += len(rows)
            if progress is not None:
                progress.update(done)
        if progress is not None:
            progress.close()

        def joined(items: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
            return {m: np.concatenate(v) for m, v in items.items() if v}

        return Explanations(
            rows=order[:done],
            requested=len(order),
            stopped_by_budget=stopped,
            attributions=joined(parts),
            encoded=joined(encoded),
            deletion=joined(deletion),
            insertion=joined(insertion),
            ig_delta=np.concatenate(ig.delta) if ig.delta else None,
            ig_relative=np.concatenate(ig.relative) if ig.relative else None,
            ig_steps=np.concatenate(ig.steps) if ig.steps else None,
            lime_pools=np.concatenate(pools) if pools else None,
        )
