"""The robustness engine against hand counts: a model that ignores the attribute flips nothing,
one that uses it flips exactly the rows a hand count finds, a text model that reacts to "she"
is caught, a probe with nothing to change says so, and every change is scored in one pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardrail.core.types import MetricResult
from guardrail.robustness.engine import ProbeData, RobustnessAudit, RobustnessOptions, audit
from tests.robustness.models import RuleModel, TextRuleModel, says_she


def _tabular(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], size=rows, p=[0.4, 0.6]),
            "race": rng.choice(["a", "b", "c"], size=rows),
            "x": rng.normal(size=rows),
            "z": rng.normal(size=rows) * 10,
            "y": rng.integers(0, 2, size=rows),
        }
    )


def _probe_data(data: pd.DataFrame, inputs: tuple[str, ...], *, sensitive: tuple[str, ...] = ("sex",), labels: bool = True) -> ProbeData:
    truth = data["y"].to_numpy() == 1 if labels else None

    def correct(decisions: np.ndarray) -> np.ndarray:
        assert truth is not None
        return np.asarray((np.asarray(decisions, dtype=object) == 1) == truth, dtype=bool)

    return ProbeData(
        data=data,
        rows=np.arange(len(data)),
        correct=correct if labels else None,
        sensitive=sensitive,
        feature_sets=tuple((s,) for s in sensitive),
        inputs=inputs,
    )


def _metrics(found: RobustnessAudit) -> dict[str, MetricResult]:
    return {m.ref: m for m in found.metrics}


def _logistic(values: pd.Series | np.ndarray) -> np.ndarray:
    found: np.ndarray = 1 / (1 + np.exp(-np.asarray(values, dtype=float)))
    return found


def test_a_model_that_ignores_the_attribute_flips_no_decision() -> None:
    data = _tabular()
    model = RuleModel(lambda f: _logistic(f["x"] + 0.1 * f["z"]), ("sex", "race", "x", "z"))
    found = audit(model, 1, _probe_data(data, model.features, sensitive=("sex", "race")), RobustnessOptions(probes=("counterfactual",)), seed=0)
    metrics = _metrics(found)
    for attribute in ("sex", "race"):
        flip = metrics[f"robustness.counterfactual_flip_rate[{attribute}]"]
        assert flip.value == 0.0 and all(g.value == 0.0 for g in flip.by_group)
        assert flip.ci is not None and flip.ci.low == 0.0 and 0 < flip.ci.high < 0.02
        assert metrics[f"robustness.counterfactual_score_change[{attribute}]"].value == 0.0


def test_a_model_that_uses_the_attribute_flips_the_rows_a_hand_count_finds() -> None:
    data = _tabular()
    # +1 for F: decisions of rows with -1 <= x < 0 change with sex, and no other row's
    model = RuleModel(lambda f: _logistic(f["x"] + (f["sex"] == "F")), ("sex", "x"))
    found = audit(model, 1, _probe_data(data, model.features), RobustnessOptions(probes=("counterfactual",), bootstrap=200), seed=0)
    flip = _metrics(found)["robustness.counterfactual_flip_rate[sex]"]
    by_hand = ((data["x"] >= -1) & (data["x"] < 0)).groupby(data["sex"]).mean()
    assert flip.value == pytest.approx(((data["x"] >= -1) & (data["x"] < 0)).mean(), abs=1e-12)
    assert {g.group: g.value for g in flip.by_group} == pytest.approx(by_hand.to_dict(), abs=1e-12)
    assert flip.ci is not None and flip.value is not None and flip.ci.low <= flip.value <= flip.ci.high
    gap = _metrics(found)["robustness.counterfactual_flip_rate_difference[sex]"]
    assert gap.value == pytest.approx(abs(by_hand["F"] - by_hand["M"]), abs=1e-12)
    change = _metrics(found)["robustness.counterfactual_score_change[sex]"]
    expected = pd.Series(np.abs(_logistic(data["x"] + 1) - _logistic(data["x"])))
    assert change.value == pytest.approx(expected.mean(), abs=1e-12)
    assert {g.group: g.value for g in change.by_group} == pytest.approx(expected.groupby(data["sex"]).mean().to_dict(), abs=1e-12)
    assert change.ci is not None and change.value is not None and change.ci.low <= change.value <= change.ci.high
    pairs = {(p["from"], p["to"]): p for p in found.artifacts["counterfactual_pairs"]}
    assert pairs[("F", "M")]["flip_rate"] == pytest.approx(by_hand["F"], abs=1e-12)
    assert pairs[("F", "M")]["n"] == int((data["sex"] == "F").sum())
    examples = [e for e in found.artifacts["examples"] if e["probe"] == "counterfactual"]
    assert 0 < len(examples) <= 3 and all(e["decision_before"] != e["decision_after"] for e in examples)


def test_a_multivalued_attribute_flips_a_row_when_any_other_value_changes_its_decision() -> None:
    data = _tabular()
    lift = {"a": 0.0, "b": 0.5, "c": 2.0}
    model = RuleModel(lambda f: _logistic(f["x"] + f["race"].map(lift)), ("race", "x"))
    found = audit(model, 1, _probe_data(data, model.features, sensitive=("race",)), RobustnessOptions(probes=("counterfactual",), bootstrap=0), seed=0)
    decisions = {value: (data["x"] + shift >= 0) for value, shift in lift.items()}
    own = data["x"] + data["race"].map(lift) >= 0
    flipped = pd.concat([decisions[v] != own for v in lift], axis=1).any(axis=1)
    flip = _metrics(found)["robustness.counterfactual_flip_rate[race]"]
    assert flip.value == pytest.approx(flipped.mean(), abs=1e-12)
    assert {g.group: g.value for g in flip.by_group} == pytest.approx(flipped.groupby(data["race"]).mean().to_dict(), abs=1e-12)


def test_an_attribute_the_model_does_not_read_leaves_the_counterfactual_open() -> None:
    data = _tabular()
    model = RuleModel(lambda f: _logistic(f["x"]), ("x",))
    found = audit(model, 1, _probe_data(data, model.features), RobustnessOptions(probes=("counterfactual",)), seed=0)
    flip = _metrics(found)["robustness.counterfactual_flip_rate[sex]"]
    assert flip.value is None and "not an input of the model" in (flip.reason or "")
    assert model.calls == 0  # nothing was changed, so nothing is scored


def test_tabular_perturbation_flips_follow_the_strength_and_are_counted_by_hand() -> None:
    data = _tabular()
    model = RuleModel(lambda f: _logistic(f["x"]), ("sex", "x"))
    options = RobustnessOptions(probes=("perturbation",), strengths=(0.05, 0.5), bootstrap=100)
    found = audit(model, 1, _probe_data(data, model.features), options, seed=3)
    from guardrail.robustness.tabular import shifted

    metrics = _metrics(found)
    for strength in (0.05, 0.5):
        moved = shifted(data[["sex", "x"]], ("x",), strength, seed=3).frame["x"]
        by_hand = ((moved >= 0) != (data["x"] >= 0)).mean()
        flip = metrics[f"robustness.perturbation_flip_rate[sex/strength={strength:g}]"]
        assert flip.value == pytest.approx(by_hand, abs=1e-12)
        drop = metrics[f"robustness.accuracy_drop[sex/strength={strength:g}]"]
        truth = data["y"] == 1
        expected = ((data["x"] >= 0) == truth).mean() - ((moved >= 0) == truth).mean()
        assert drop.value == pytest.approx(expected, abs=1e-12)
        assert drop.ci is not None and drop.value is not None and drop.ci.low <= drop.value <= drop.ci.high
    small, large = (metrics[f"robustness.perturbation_flip_rate[sex/strength={s:g}]"].value for s in (0.05, 0.5))
    assert small is not None and large is not None and small < large
    curve = found.artifacts["curve"]
    assert [point["strength"] for point in curve] == [0.05, 0.5] and {p["grouping"] for p in curve} == {"sex"}
    assert model.calls == 1  # originals and both strengths in one call


def test_a_text_model_that_reacts_to_she_is_caught_and_one_that_ignores_it_is_not() -> None:
    texts = ["She was given the drug.", "He was given the drug.", "The drug worked.", "It helped her sleep.", "No change."] * 20
    data = pd.DataFrame({"text": texts, "group": ["a", "b"] * 50, "y": [1, 0] * 50})
    options = RobustnessOptions(probes=("counterfactual",), text_column="text", bootstrap=0)
    reacts = TextRuleModel(says_she)
    caught = _metrics(audit(reacts, 1, _probe_data(data, ("text",), sensitive=("group",)), options, seed=0))
    flip = caught["robustness.counterfactual_flip_rate[group/swap=terms]"]
    # "She …" → "He …" and "He …" → "She …" flip; "… her sleep" → "… his sleep" does not
    assert flip.value == pytest.approx(2 / 3, abs=1e-12) and flip.n == 60
    coverage = caught["robustness.coverage[group/swap=terms]"]
    assert coverage.value == pytest.approx(0.6, abs=1e-12)
    ignores = TextRuleModel(lambda text: "drug" in text)
    calm = _metrics(audit(ignores, 1, _probe_data(data, ("text",), sensitive=("group",)), options, seed=0))
    assert calm["robustness.counterfactual_flip_rate[group/swap=terms]"].value == 0.0


def test_no_identity_term_in_any_document_is_inconclusive_never_zero() -> None:
    data = pd.DataFrame({"text": ["The drug worked.", "No change at all."] * 20, "group": ["a", "b"] * 20, "y": [1, 0] * 20})
    options = RobustnessOptions(probes=("counterfactual",), text_column="text")
    found = audit(TextRuleModel(says_she), 1, _probe_data(data, ("text",), sensitive=("group",)), options, seed=0)
    metrics = _metrics(found)
    flip = metrics["robustness.counterfactual_flip_rate[group/swap=terms]"]
    assert flip.value is None and "no document contains an identity term" in (flip.reason or "")
    assert metrics["robustness.coverage[group/swap=terms]"].value == 0.0
    assert any("inconclusive" in note for note in found.artifacts["notes"])


def test_text_perturbations_are_measured_on_the_documents_they_change() -> None:
    texts = ["Glucose 126 mg/dL this morning.", "Feeling tired, slept badly", "nothing", "Weight 180 lb, cholesterol 233 mg/dL."] * 15
    data = pd.DataFrame({"text": texts, "group": ["a", "b", "a", "b"] * 15, "y": [1, 0, 0, 1] * 15})
    model = TextRuleModel(lambda text: "mg/dL" in text)  # a model that keys on the unit, not the value
    options = RobustnessOptions(probes=("perturbation",), perturbations=("units", "case"), text_column="text", bootstrap=100)
    found = audit(model, 1, _probe_data(data, ("text",), sensitive=("group",)), options, seed=0)
    metrics = _metrics(found)
    units = metrics["robustness.perturbation_flip_rate[group/perturbation=units]"]
    assert units.n == 30 and units.value == 1.0  # both documents with mg/dL are rewritten in mmol/L and flip
    assert metrics["robustness.coverage[group/perturbation=units]"].value == pytest.approx(0.5, abs=1e-12)
    drop = metrics["robustness.accuracy_drop[group/perturbation=units]"]
    assert drop.value == pytest.approx(1.0, abs=1e-12)  # both are labelled 1: right before, wrong after
    assert drop.details["accuracy_before"] == 1.0 and drop.details["accuracy_after"] == 0.0
    examples = [e for e in found.artifacts["examples"] if e["scope"] == "perturbation=units"]
    assert examples and "mmol/L" in examples[0]["after"] and "mg/dL" in examples[0]["before"]
    assert model.calls == 1


def test_every_probe_is_scored_in_one_pass_through_the_model() -> None:
    data = _tabular()
    model = RuleModel(lambda f: _logistic(f["x"] + (f["sex"] == "F") + 0.1 * f["z"]), ("sex", "race", "x", "z"))
    found = audit(model, 1, _probe_data(data, model.features, sensitive=("sex", "race")), RobustnessOptions(bootstrap=0), seed=0)
    scoring = found.artifacts["scoring"]
    assert model.calls == 1 == scoring["batches"]
    # originals + sex swapped once + race swapped to 2 other values + 4 strengths
    assert scoring["inputs"] == len(data) * (1 + 1 + 2 + 4)


def test_every_interval_holds_its_estimate_and_keeps_a_quantile_table_for_corrections() -> None:
    data = _tabular()
    model = RuleModel(lambda f: _logistic(f["x"] + (f["sex"] == "F") + 0.1 * f["z"]), ("sex", "race", "x", "z"))
    found = audit(model, 1, _probe_data(data, model.features, sensitive=("sex", "race")), RobustnessOptions(bootstrap=200), seed=0)
    checked = 0
    for metric in found.metrics:
        if metric.value is None:
            continue
        assert metric.ci is not None, metric.ref
        assert metric.ci.low <= metric.value <= metric.ci.high, metric.ref
        assert metric.ci.quantiles, f"{metric.ref}: a Holm or Bonferroni correction could not read it at another level"
        for group in metric.by_group:
            if group.value is not None and group.ci is not None:
                assert group.ci.low <= group.value <= group.ci.high, (metric.ref, group.group)
        checked += 1
    assert checked >= 20
