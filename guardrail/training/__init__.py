"""Training (layer 4): central training with optional DP-SGD (Opacus), writing a model folder
with safetensors weights, a privacy ledger and a training history.

torch, transformers and opacus are imported inside the functions that use them, so
importing this package costs no heavy import.
"""

from guardrail.core.files import file_sha256
from guardrail.training.api import (
    TrainResult,
    config_from_spec,
    train_from_spec,
    train_tabular,
    train_text,
)
from guardrail.training.config import (
    DEFAULT_GRAD_SAMPLE_MODE,
    GRAD_SAMPLE_MODES,
    DPConfig,
    TrainConfig,
)
from guardrail.training.loop import Trainer

__all__ = [
    "DEFAULT_GRAD_SAMPLE_MODE",
    "GRAD_SAMPLE_MODES",
    "DPConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "config_from_spec",
    "file_sha256",
    "train_from_spec",
    "train_tabular",
    "train_text",
]
