"""Hand-written models for the robustness tests: decisions computed by rules whose flips under
each probe can be counted by hand, behind the adapter protocol the auditors call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from guardrail.adapters.base import Predictions


@dataclass
class RuleModel:
    """A tabular model: ``score(frame) -> P(positive)``; decides 1 when the score is at least 0.5."""

    score: Callable[[pd.DataFrame], np.ndarray]
    feature_names: tuple[str, ...]
    calls: int = 0
    kind: str = "rule"

    @property
    def features(self) -> tuple[str, ...]:
        return self.feature_names

    def predict(self, data: pd.DataFrame, positive_label: object) -> Predictions:
        self.calls += 1
        scores = np.asarray(self.score(data.loc[:, list(self.feature_names)]), dtype=float)
        return Predictions(labels=(scores >= 0.5).astype(int), scores=scores, classes=(0, 1))


@dataclass
class TextRuleModel:
    """A text model: positive when ``trigger(text)``; it has a tokenizer, as text adapters do."""

    trigger: Callable[[str], bool]
    column: str = "text"
    calls: int = 0
    kind: str = "text-rule"
    tokenizer: Any = object()
    description: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.description = {"text_column": self.column}

    @property
    def features(self) -> tuple[str, ...]:
        return (self.column,)

    def predict(self, data: pd.DataFrame, positive_label: object) -> Predictions:
        self.calls += 1
        hits = np.asarray([self.trigger(str(t)) for t in data[self.column]], dtype=bool)
        scores = np.where(hits, 0.9, 0.1)
        return Predictions(labels=hits.astype(int), scores=scores, classes=(0, 1))


def says_she(text: str) -> bool:
    """Reacts to the word "she" (any case), nothing else."""
    return "she" in {word.strip(".,;:!?").lower() for word in text.split()}
