"""The names of the explanation methods (a closed set), importable without numpy."""

from __future__ import annotations

from typing import Literal

Method = Literal["integrated_gradients", "gradient_shap", "feature_ablation", "shapley_sampling", "lime"]
GRADIENT_METHODS: tuple[Method, ...] = ("integrated_gradients", "gradient_shap")
STOCHASTIC_METHODS: tuple[Method, ...] = ("gradient_shap", "shapley_sampling", "lime")
