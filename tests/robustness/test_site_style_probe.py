"""The site-style probe on the real heart records: a model that learned a hospital's writing
style instead of the findings is caught, pair by pair, at the rate a hand count gives; one that
reads only the findings is not; and every rewritten note holds the same record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.datasets import load_heart_disease
from guardrail.federation.notes import write_notes
from guardrail.robustness.engine import ProbeData, RobustnessOptions, audit
from tests.robustness.models import TextRuleModel


@pytest.fixture(scope="module")
def heart() -> pd.DataFrame:
    rows = load_heart_disease()
    sampled = rows[rows.groupby("site", observed=True).cumcount() < 60].reset_index(drop=True)
    return sampled.assign(note=write_notes(sampled), site=sampled["site"].astype(str))


def _probe(data: pd.DataFrame) -> ProbeData:
    return ProbeData(data=data, rows=np.arange(len(data)), correct=None, sensitive=("sex",), feature_sets=(("sex",),), inputs=("note",))


def _metrics(model: TextRuleModel, data: pd.DataFrame) -> dict[str, object]:
    options = RobustnessOptions(probes=("site_style",), text_column="note", bootstrap=0)
    found = audit(model, 1, _probe(data), options, seed=0)
    return {"metrics": {m.ref: m for m in found.metrics}, "artifacts": found.artifacts}


def test_a_model_that_reads_the_unit_instead_of_the_value_is_caught_pair_by_pair(heart: pd.DataFrame) -> None:
    # Cleveland writes cholesterol in mg/dL, VA Long Beach without a unit, Hungary in mmol/L
    # (when recorded), Switzerland's form in mmol/L and its glucose line always in mmol/L
    found = _metrics(TextRuleModel(lambda note: "mmol/L" in note, column="note"), heart)
    metrics = found["metrics"]
    assert isinstance(metrics, dict)
    recorded = heart["cholesterol"].notna()

    def pair(site: str, style_of: str) -> float:
        value = metrics[f"robustness.site_style_flip_rate[site={site}/style={style_of}]"].value
        assert isinstance(value, float)
        return value

    for site in ("Cleveland", "VA Long Beach"):
        mine = heart["site"] == site
        assert pair(site, "Hungary") == pytest.approx(recorded[mine].mean(), abs=1e-12)
        assert pair(site, "Switzerland") == 1.0
    assert pair("Cleveland", "VA Long Beach") == 0.0 == pair("VA Long Beach", "Cleveland")  # neither writes mmol/L
    hungary = heart["site"] == "Hungary"
    assert pair("Hungary", "Switzerland") == pytest.approx((~recorded[hungary]).mean(), abs=1e-12)
    assert pair("Hungary", "Cleveland") == pytest.approx(recorded[hungary].mean(), abs=1e-12)
    overall = metrics["robustness.site_style_flip_rate[site]"]
    assert overall.value == 1.0  # every patient's decision changes in some other hospital's style
    cells = found["artifacts"]["site_style"]["cells"]  # type: ignore[index]
    assert len(cells) == 16 and all(cell["own"] == (cell["site"] == cell["style_of"]) for cell in cells)


def test_a_model_that_reads_the_findings_is_not_caught(heart: pd.DataFrame) -> None:
    def reads_age(note: str) -> bool:  # every style writes the age as the first number
        import re

        return int(re.search(r"\d+", note).group()) >= 55  # type: ignore[union-attr]

    metrics = _metrics(TextRuleModel(reads_age, column="note"), heart)["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["robustness.site_style_flip_rate[site]"].value == 0.0
