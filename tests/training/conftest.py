"""Small data and models for the training tests (seeded, CPU, two threads)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("opacus")

HEART_FEATURES = (
    "age",
    "sex",
    "chest_pain_type",
    "resting_bp",
    "cholesterol",
    "max_heart_rate",
    "exercise_angina",
    "st_depression",
)


@pytest.fixture(autouse=True)
def _two_threads() -> None:
    import torch

    torch.set_num_threads(
        1
    )  # tiny models: threads only add overhead (and contend under xdist)
