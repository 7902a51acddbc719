"""Synthetic tables and models whose true drivers are known (seeded, CPU, one thread)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("captum")
pytest.importorskip("lime")

FEATURES = ("a", "b", "c", "noise1", "noise2", "noise3", "group")


def synthetic_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """``a`` and ``b`` drive the outcome strongly, ``c`` ('x' vs the rest) less; noise and group do not."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(["x", "y", "z"], size=n),
            "noise1": rng.normal(size=n),
            "noise2": rng.uniform(size=n),
            "noise3": rng.integers(0, 10, size=n).astype(float),
            "group": rng.choice(["F", "M"], size=n),
        }
    )


def true_score(frame: pd.DataFrame) -> np.ndarray:
    z = 3.0 * frame["a"].to_numpy() - 2.0 * frame["b"].to_numpy() + 1.5 * (frame["c"] == "x").to_numpy()
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Tiny models: threads only add overhead; float sums depend on the thread count."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def frame() -> pd.DataFrame:
    return synthetic_frame()


def proba_of(view: object) -> Callable[[np.ndarray], np.ndarray]:
    from guardrail.explain.tabular import TabularView

    assert isinstance(view, TabularView)
    return lambda codes: true_score(view.to_frame(codes))
