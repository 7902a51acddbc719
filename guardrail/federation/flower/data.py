"""What one hospital node holds: its notes, labels and groups, tokenized for the model.

Every node rebuilds its own split from the job (:func:`guardrail.federation.sites.build_hospitals`
is deterministic given the seed), writes its rows as notes in its site's style, and tokenizes
them with the federation's tokenizer. Nothing of one node's data leaves it except model
updates, aggregate metrics and confusion counts.

The tokenizer of the tiny BERT is fitted on a **template corpus**: notes written by the same
four site templates from *random* records — each field drawn from its codebook or a fixed
clinical range, never from a patient — so the vocabulary carries no patient data and needs
no pooling of hospital text (:func:`template_corpus`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.federation.fairness import groups_of
from guardrail.federation.job import Job
from guardrail.federation.notes import STYLE_NAMES, write_note, write_notes
from guardrail.federation.sites import LABEL, Hospital, build_hospitals

if TYPE_CHECKING:
    import pandas as pd
    import torch

TEXT_COLUMN = "note"
HOSPITAL_COLUMN = "hospital"
AGE_GROUP_COLUMN = "age_group"
CODEBOOK: dict[str, tuple[Any, ...]] = {
    "sex": ("Female", "Male"),
    "chest_pain_type": ("asymptomatic", "atypical angina", "non-anginal", "typical angina"),
    "fasting_blood_sugar_over_120": (0, 1),
    "resting_ecg": ("lv hypertrophy", "normal", "st-t abnormality"),
    "exercise_angina": (0, 1),
    "st_slope": ("downsloping", "flat", "upsloping"),
    "major_vessels": (0.0, 1.0, 2.0, 3.0),
    "thalassemia": ("fixed defect", "normal", "reversable defect"),
}
"""The UCI Heart Disease codebook: the values each categorical field can take."""
RANGES: dict[str, tuple[float, float, int]] = {
    "age": (25, 80, 0),
    "resting_bp": (80, 200, 0),
    "cholesterol": (100, 600, 0),
    "max_heart_rate": (60, 210, 0),
    "st_depression": (0.0, 6.5, 1),
}
"""Clinical ranges (low, high, decimals) the template corpus draws numbers from."""


def template_records(size: int = 2000, seed: int = 0, missing_rate: float = 0.1) -> list[dict[str, object]]:
    """Random records: each field drawn from its codebook or clinical range (no patient data)."""
    rng = np.random.default_rng([seed, 1729])
    records = []
    for _ in range(size):
        record: dict[str, object] = {}
        for column, values in CODEBOOK.items():
            record[column] = values[int(rng.integers(len(values)))]
        for column, (low, high, decimals) in RANGES.items():
            record[column] = round(float(rng.uniform(low, high)), decimals)
        for column in list(record):
            if column not in ("age", "sex") and rng.random() < missing_rate:
                record[column] = None
        records.append(record)
    return records


def template_corpus(size: int = 2000, seed: int = 0, missing_rate: float = 0.1) -> list[str]:
    """Notes in every site style (in turn) from :func:`template_records`: the tokenizer's corpus."""
    records = template_records(size, seed, missing_rate)
    return [write_note(record, STYLE_NAMES[number % len(STYLE_NAMES)]) for number, record in enumerate(records)]


@lru_cache(maxsize=8)
def hospitals_of(job_json: str) -> tuple[Hospital, ...]:
    """The job's hospital nodes (cached per process: the same job gives the same nodes)."""
    job = Job.from_json(job_json)
    nodes = build_hospitals(merge=job.merge, split=job.split, test_size=job.test_size, seed=job.seed)
    by_name = {node.name: node for node in nodes}
    return tuple(by_name[name] for name in job.hospital_names)


@dataclass(frozen=True)
class Split:
    """One side (training or held-out) of a node, as notes and tensors."""

    rows: pd.DataFrame
    notes: tuple[str, ...]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    @property
    def tensors(self) -> list[torch.Tensor]:
        return [self.input_ids, self.attention_mask, self.labels]


@dataclass(frozen=True)
class HospitalData:
    name: str
    index: int
    train: Split
    test: Split
    data_sha256: str


def tokenize(notes: list[str], tokenizer: Any, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = tokenizer(notes, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def hospital_data(job: Job, index: int, tokenizer: Any) -> HospitalData:
    """Node ``index``'s notes and tensors (raw rows written as notes, gaps in the site's words)."""
    import torch

    from guardrail.training.data import tensor_sha256

    hospital = hospitals_of(job.to_json())[index]

    def split(rows: pd.DataFrame) -> Split:
        notes = write_notes(rows)
        ids, mask = tokenize(notes, tokenizer, job.max_length)
        labels = torch.tensor(rows[LABEL].to_numpy(dtype=np.int64))
        return Split(rows, tuple(notes), ids, mask, labels)

    train, test = split(hospital.train), split(hospital.test)
    return HospitalData(hospital.name, index, train, test, tensor_sha256(*train.tensors))


def audit_table(job: Job) -> pd.DataFrame:
    """Every node's rows as notes, with the node, the age group and membership (training rows).

    The audit of the global model reads this table: fairness by hospital, sex and age group,
    and the privacy audit's members (training rows) against the held-out rows.
    """
    import pandas as pd

    frames = []
    for hospital in hospitals_of(job.to_json()):
        for member, rows in ((True, hospital.train), (False, hospital.test)):
            frame = rows.drop(columns=["id"]).copy()
            frame.insert(0, TEXT_COLUMN, write_notes(rows))
            frame.insert(1, HOSPITAL_COLUMN, hospital.name)
            frame[AGE_GROUP_COLUMN] = groups_of(frame)["age"]  # the groups the federated fairness counts use
            frame["member"] = member
            frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    for column in ("sex", "site"):
        table[column] = table[column].astype(str)
    return table
