"""The names of the explanation methods (a closed set) and the completeness floor both
Integrated Gradients share, importable without numpy."""

from __future__ import annotations

from typing import Literal

Method = Literal["integrated_gradients", "gradient_shap", "feature_ablation", "shapley_sampling", "lime"]
GRADIENT_METHODS: tuple[Method, ...] = ("integrated_gradients", "gradient_shap")
STOCHASTIC_METHODS: tuple[Method, ...] = ("gradient_shap", "shapley_sampling", "lime")

DELTA_FLOOR = 0.01
"""Below this ``|f(x) − f(baseline)|`` (probability units) the IG delta is judged relative to
this floor instead: a relative error of a near-zero difference says nothing about the
attributions. Tabular IG (:mod:`~guardrail.explain.attribution`) and Layer IG on text
(:mod:`~guardrail.explain.text_attribution`) both use it."""
