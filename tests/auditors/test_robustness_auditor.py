"""``use: robustness`` end to end: a real scikit-learn model through the CLI with its flip
rates checked against the model itself, the Python API giving the same figures, the policy
pack judging them (a probe with nothing to change is never a pass), and bad input refused
with what to fix — the same from ``guardrail validate`` as from ``guardrail audit``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, run_cli

SPEC = """\
schema_version: 1
kind: audit
name: robust
seed: 0
model: {{adapter: sklearn, path: model.skops}}
data: {{path: data.csv, target: y, sensitive: [sex]{task}}}
audits:
  - id: robustness
    use: robustness
    params: {params}
policies: [{policy}]
report: {{out: out, history: false}}
"""
FAST = "{bootstrap: 200, min_group_size: 5, strengths: [0.1, 0.5]"
PACK = REPO / "guardrail" / "packs" / "robustness.yaml"


def _frame(rows: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=rows, p=[0.45, 0.55])
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows) * 3
    logit = 1.5 * x1 + 0.2 * x2 + 1.0 * (sex == "M")
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"sex": sex, "x1": x1, "x2": x2, "y": y})


def _fit(frame: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer([("sex", OneHotEncoder(), ["sex"]), ("x", "passthrough", ["x1", "x2"])])
    return make_pipeline(encode, LogisticRegression()).fit(frame[["sex", "x1", "x2"]], frame["y"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio

    root = tmp_path_factory.mktemp("robust")
    frame = _frame()
    sio.dump(_fit(frame), root / "model.skops")
    frame.to_csv(root / "data.csv", index=False)
    return root


def _spec(root: Path, params: str = FAST + "}", *, policy: str = str(PACK), task: str = "", name: str = "spec.yaml") -> Path:
    path = root / name
    path.write_text(SPEC.format(params=params, policy=policy, task=task))
    return path


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _metrics(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [result] = [r for r in record["results"] if r["auditor"] == "robustness"]
    return {f"{m['key']}[{m['scope']}]" if m.get("scope") else m["key"]: m for m in result["metrics"]}


def test_the_cli_reports_the_flips_the_model_itself_makes(folder: Path) -> None:
    import skops.io as sio

    spec = _spec(folder)
    assert run_cli("validate", spec).returncode == 0
    done = run_cli("audit", spec, "--quiet", cwd=folder)
    assert done.returncode in (0, 1), done.stderr  # judged by the robustness pack
    record = json.loads((folder / "out" / "run.json").read_text())
    metrics = _metrics(record)
    frame = pd.read_csv(folder / "data.csv")
    model = sio.load(folder / "model.skops", trusted=sio.get_untrusted_types(file=folder / "model.skops"))
    inputs = frame[["sex", "x1", "x2"]]
    before = model.predict(inputs)
    after = model.predict(inputs.assign(sex=inputs["sex"].map({"F": "M", "M": "F"})))
    flipped = pd.Series(before != after)
    flip = metrics["robustness.counterfactual_flip_rate[sex]"]
    assert flip["value"] == pytest.approx(flipped.mean(), abs=1e-12)
    assert {g["group"]: g["value"] for g in flip["by_group"]} == pytest.approx(flipped.groupby(frame["sex"]).mean().to_dict(), abs=1e-12)
    scores = model.predict_proba(inputs)[:, 1], model.predict_proba(inputs.assign(sex=inputs["sex"].map({"F": "M", "M": "F"})))[:, 1]
    change = metrics["robustness.counterfactual_score_change[sex]"]
    assert change["value"] == pytest.approx(np.abs(scores[1] - scores[0]).mean(), abs=1e-12)
    assert set(metrics) >= {"robustness.perturbation_flip_rate[sex/strength=0.1]", "robustness.accuracy_drop[sex/strength=0.5]"}
    outcomes = {(o["rule_id"], o["metric"]): o["status"] for o in record["verdict"]["outcomes"]}
    assert ("ROB-CF", "robustness.counterfactual_flip_rate[sex]") in outcomes
    assert outcomes[("ROB-SITE", "robustness.site_style_flip_rate")] == "skipped"  # no notes here
    page = (folder / "out" / "report.html").read_text()
    assert "robustness.counterfactual_flip_rate" in page or "flip" in page.lower()


def test_the_python_api_gives_the_figures_of_the_cli(folder: Path) -> None:
    import guardrail

    spec = _spec(folder, name="api.yaml")
    done = run_cli("audit", spec, "--quiet", "--no-gate", cwd=folder)
    assert done.returncode == 0, done.stderr
    cli = _metrics(json.loads((folder / "out" / "run.json").read_text()))
    frame = pd.read_csv(folder / "data.csv")
    result = guardrail.audit_robustness(
        _fit(_frame()), frame, target="y", sensitive="sex", bootstrap=200, min_group_size=5, strengths=[0.1, 0.5]
    )
    api = {m.ref: m for m in result.metrics}
    assert set(api) == set(cli)
    for ref, metric in api.items():
        theirs = cli[ref]
        if metric.value is None:
            assert theirs["value"] is None
            continue
        assert metric.value == pytest.approx(theirs["value"], abs=1e-12), ref
        assert metric.ci is not None and metric.ci.low == pytest.approx(theirs["ci"]["low"], abs=1e-12), ref
    assert "Robustness" in result._repr_html_() or "robustness" in result._repr_html_()


@pytest.mark.parametrize(
    ("params", "task", "expected", "commands"),
    [
        ("{probes: [counterfactual, typo]}", "", "probes", ("validate",)),
        ("{strengths: [0]}", "", "strength", ("validate",)),
        ("{identity_terms: [[he, he]]}", "", "identity_terms", ("validate",)),
        ("{training_column: member}", "", "training_column", ("validate", "audit")),
        ("{probes: [site_style, perturbation]}", "", "site_style", ("validate", "audit")),
        ("{}", ", task: regression", "regression", ("validate", "audit")),
        ("{sensitive: [race]}", "", "race", ("validate",)),
    ],
)
def test_bad_params_are_refused_before_anything_runs(folder: Path, params: str, task: str, expected: str, commands: tuple[str, ...]) -> None:
    spec = _spec(folder, params, task=task, name="bad.yaml")
    for command in commands:
        done = run_cli(command, spec, cwd=folder)
        assert done.returncode == 3, (command, done.stdout, done.stderr)
        errors = _errors(done.stderr)
        assert errors and any(expected in line for line in errors), (command, errors)
    assert not (folder / "out" / "bad").exists()


def test_a_predictions_table_cannot_be_probed(tmp_path: Path) -> None:
    frame = _frame(60).assign(pred=lambda f: f["y"])
    frame.to_csv(tmp_path / "data.csv", index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        SPEC.format(params="{}", policy=PACK, task="").replace("{adapter: sklearn, path: model.skops}", "{adapter: predictions, column: pred}")
    )
    done = run_cli("validate", spec)
    assert done.returncode == 3 and any("cannot be re-run" in line for line in _errors(done.stderr)), done.stderr


def test_a_probe_with_nothing_to_change_is_never_a_pass() -> None:
    from guardrail.core.types import AuditResult, AuditStatus, OutcomeStatus
    from guardrail.policy.engine import evaluate
    from guardrail.policy.inline import policies_of
    from guardrail.robustness.engine import ProbeData, RobustnessOptions, audit
    from tests.robustness.models import TextRuleModel, says_she

    data = pd.DataFrame({"text": ["The drug worked.", "No change."] * 30, "group": ["a", "b"] * 30, "y": [1, 0] * 30})
    probe = ProbeData(data=data, rows=np.arange(60), correct=None, sensitive=("group",), feature_sets=(("group",),), inputs=("text",))
    found = audit(TextRuleModel(says_she), 1, probe, RobustnessOptions(probes=("counterfactual",), text_column="text"), seed=0)
    result = AuditResult("robustness", "robustness", AuditStatus.OK, found.metrics)
    verdict = evaluate(policies_of([str(PACK)]), [result])
    judged = [o for o in verdict.outcomes if o.rule_id == "ROB-CF"]
    assert judged and all(o.status != OutcomeStatus.PASS for o in judged)
    assert any("no document contains an identity term" in o.message for o in judged)


def test_the_originals_are_not_scored_again_and_the_figures_are_those_of_a_fresh_scoring() -> None:
    import guardrail
    from guardrail.robustness.engine import ProbeData, RobustnessOptions, audit
    from tests.robustness.models import RuleModel

    frame = _frame(300)
    model = RuleModel(lambda f: 1 / (1 + np.exp(-(f["x1"] + (f["sex"] == "M")).to_numpy(dtype=float))), ("sex", "x1", "x2"))
    result = guardrail.audit_robustness(model, frame, target="y", sensitive="sex", bootstrap=100, strengths=[0.1, 0.5])
    assert model.calls == 2  # the run's predictions, then every change in one call
    assert result.artifacts["scoring"]["inputs"] == len(frame) * (1 + 2)  # sex swapped, two strengths; no originals
    fresh = RuleModel(model.score, model.feature_names)
    probe = ProbeData(data=frame, rows=np.arange(len(frame)), correct=None, sensitive=("sex",), feature_sets=(("sex",),), inputs=model.features)
    rescored = audit(fresh, 1, probe, RobustnessOptions(bootstrap=100, strengths=(0.1, 0.5)), seed=0)
    again = {m.ref: m.value for m in rescored.metrics if not m.key.endswith("accuracy_drop")}
    assert again == {m.ref: m.value for m in result.metrics if m.ref in again}


def test_a_text_column_the_model_does_not_read_is_refused_not_passed() -> None:
    import guardrail
    from guardrail.core.errors import DataError
    from tests.robustness.models import TextRuleModel, says_she

    frame = _frame(120).assign(note=["She came in.", "He came in."] * 60)
    with pytest.raises(DataError) as caught:  # a tabular model: the note is not one of its inputs
        guardrail.audit_robustness(_fit(_frame(120)), frame, target="y", sensitive="sex", text_column="note")
    assert "which the model does not read" in caught.value.message
    text_model = TextRuleModel(says_she, column="note")
    with pytest.raises(DataError) as caught:  # a Transformer reads its own column, not another
        guardrail.audit_robustness(text_model, frame.assign(other=frame["note"]), target="y", sensitive="sex", text_column="other")
    assert "the model reads column 'note'" in caught.value.message


def test_numeric_features_that_are_not_numeric_inputs_are_refused(folder: Path) -> None:
    frame = pd.read_csv(folder / "data.csv")
    frame.assign(z=np.arange(len(frame))).to_csv(folder / "extra.csv", index=False)
    spec = _spec(folder, "{numeric_features: [z, sex]}", name="numeric.yaml")
    spec.write_text(spec.read_text().replace("path: data.csv", "path: extra.csv"))
    done = run_cli("audit", spec, cwd=folder)
    assert done.returncode == 3, done.stderr
    errors = _errors(done.stderr)
    assert any("'z', which is not an input of the model" in line for line in errors), errors
    assert any("'sex', which does not hold numbers" in line for line in errors), errors


def test_an_attribute_with_one_value_among_the_rows_probed_leaves_the_others_measured() -> None:
    import guardrail

    frame = _frame(200).assign(site="A")  # one site among the rows probed: nothing to set it to
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["sex", "site"]), ("x", "passthrough", ["x1", "x2"])])
    model = make_pipeline(encode, LogisticRegression()).fit(frame[["sex", "site", "x1", "x2"]], frame["y"])
    result = guardrail.audit_robustness(model, frame, target="y", sensitive=["sex", "site"], bootstrap=0, strengths=[0.1])
    metrics = {m.ref: m for m in result.metrics}
    site = metrics["robustness.counterfactual_flip_rate[site]"]
    assert site.value is None and "takes 1 value(s) among the rows probed" in (site.reason or "")
    assert metrics["robustness.counterfactual_flip_rate[sex]"].value is not None
    assert metrics["robustness.perturbation_flip_rate[sex/strength=0.1]"].value is not None
