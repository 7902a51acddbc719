"""Public pretraining of the note reader: the tiny BERT learns to read the four note templates
from template-corpus notes (random records, no patient data) before any hospital trains.

DP-SGD on a few hundred notes per hospital cannot teach a randomly initialised Transformer to
read numbers and findings out of four writing styles: the noise drowns the signal (measured:
every DP run at σ ≥ 0.1 stayed at the majority class). The standard remedy is to pretrain on
public data and fine-tune privately. Here the public data are notes written by the same
templates from random records (:func:`guardrail.federation.flower.data.template_corpus`), and the
pretraining task is to recover the record's findings (:data:`FINDINGS`, multi-label) — the
reader learns the templates, never a patient, and never the diagnosis. The classification head
is then replaced by a fresh two-class head for the federated task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

FINDINGS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "male": lambda r: r["sex"] == "Male",
    "asymptomatic_chest_pain": lambda r: r["chest_pain_type"] == "asymptomatic",
    "typical_angina": lambda r: r["chest_pain_type"] == "typical angina",
    "atypical_angina": lambda r: r["chest_pain_type"] == "atypical angina",
    "exercise_angina": lambda r: r["exercise_angina"] == 1,
    "high_fasting_sugar": lambda r: r["fasting_blood_sugar_over_120"] == 1,
    "flat_st_slope": lambda r: r["st_slope"] == "flat",
    "upsloping_st": lambda r: r["st_slope"] == "upsloping",
    "normal_thalassemia": lambda r: r["thalassemia"] == "normal",
    "reversible_defect": lambda r: r["thalassemia"] == "reversable defect",
    "vessels_seen": lambda r: r["major_vessels"] is not None and float(r["major_vessels"]) > 0,
    "age_55_plus": lambda r: float(r["age"]) >= 55,
    "max_hr_below_140": lambda r: r["max_heart_rate"] is not None and float(r["max_heart_rate"]) < 140,
    "st_depression_1mm": lambda r: r["st_depression"] is not None and float(r["st_depression"]) >= 1,
    "cholesterol_240": lambda r: r["cholesterol"] is not None and float(r["cholesterol"]) >= 240,
    "bp_140": lambda r: r["resting_bp"] is not None and float(r["resting_bp"]) >= 140,
    "lv_hypertrophy": lambda r: r["resting_ecg"] == "lv hypertrophy",
}
"""Findings the reader learns to recover from a note (None — not recorded — counts as absent)."""


def findings_matrix(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array([[float(bool(finding(r))) for finding in FINDINGS.values()] for r in records])


def pretrain_reader(
    model: Any,
    tokenizer: Any,
    records: Sequence[Mapping[str, Any]],
    notes: list[str],
    *,
    max_length: int,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> dict[str, float]:
    """Train ``model`` (a sequence classifier with ``len(FINDINGS)`` outputs) to recover the findings.

    Returns the final training loss and the per-finding accuracy on the last epoch (a sanity check
    that the reader learned the templates).
    """
    import torch

    from guardrail.federation.flower.data import tokenize
    from guardrail.training.models import text_forward

    generator = torch.Generator().manual_seed(seed)
    ids, mask = tokenize(notes, tokenizer, max_length)
    targets = torch.tensor(findings_matrix(records), dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    loss = torch.tensor(float("nan"))
    correct = torch.zeros(len(FINDINGS))
    for _ in range(epochs):
        order = torch.randperm(len(notes), generator=generator)
        correct = torch.zeros(len(FINDINGS))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            logits = text_forward(model, ids[rows], mask[rows])
            loss = loss_fn(logits, targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            correct += ((logits.detach() > 0).float() == targets[rows]).sum(0)
    accuracy = (correct / len(notes)).tolist()
    return {"loss": float(loss.detach()), **{f"accuracy/{name}": a for name, a in zip(FINDINGS, accuracy, strict=True)}}


def with_binary_head(model: Any, seed: int = 0) -> Any:
    """The pretrained reader with a fresh two-class head (the encoder and pooler kept)."""
    import torch

    torch.manual_seed(seed)
    hidden = model.config.hidden_size
    model.classifier = torch.nn.Linear(hidden, 2)
    model.config.num_labels = 2
    model.num_labels = 2
    model.config.problem_type = None
    return model
