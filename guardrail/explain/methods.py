"""The names of the explanation methods and their options (closed sets), importable without numpy."""

from __future__ import annotations

from typing import Literal

Method = Literal["integrated_gradients", "gradient_shap", "feature_ablation", "shapley_sampling", "lime"]
GRADIENT_METHODS: tuple[Method, ...] = ("integrated_gradients", "gradient_shap")
STOCHASTIC_METHODS: tuple[Method, ...] = ("gradient_shap", "shapley_sampling", "lime")

LimeSampling = Literal["shared", "per_instance"]
"""How tabular LIME draws the neighbourhoods of a chunk of rows (see :mod:`guardrail.explain.lime_batch`)."""
