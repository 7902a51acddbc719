"""A plain torch module (import path + safetensors) and a Hugging Face folder from elsewhere,
audited like guardrail's own models: predictions against an independent computation, the
explanations' completeness, provenance, and every way they can fail to fit their data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

import guardrail
from guardrail.adapters.torch import TorchAdapter
from guardrail.core.errors import ModelError
from tests.conftest import run_cli

WEIGHTS = np.array([3.0, -0.2, 0.05])
BIAS = -0.4

MODULE = """\
import torch


class Net(torch.nn.Module):
    def __init__(self, width: int, outputs: int = 1) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def build(width: int) -> torch.nn.Module:
    return Net(width)
"""

SPEC = """\
schema_version: 1
kind: audit
name: module
seed: 0
model: {{adapter: torch, module: "{module}", kwargs: {{width: {width}}}, weights: net.safetensors{extra}}}
data: {{path: data.csv, target: y, sensitive: [group]{features}}}
audits:
  - {{id: fairness, use: fairness, params: {{min_group_size: 5, bootstrap: 50}}}}
  - id: explain
    use: explainability
    params: {{methods: [integrated_gradients, lime], samples: 24, lime_samples: 300, bootstrap: 20, min_group_size: 5}}
report: {{out: out, formats: [json, html]}}
"""


def _folder(tmp_path: Path, *, module_name: str = "netmod", width: int = 3, features: str = "[a, b, c]",
            extra: str = "", module: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["group"] = np.where(rng.random(120) < 0.5, "p", "q")
    frame["y"] = (x @ WEIGHTS + BIAS + rng.normal(scale=0.5, size=120) > 0).astype(int)
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / f"{module_name}.py").write_text(MODULE)
    linear = torch.nn.Linear(3, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(WEIGHTS[None, :], dtype=torch.float32))
        linear.bias.fill_(BIAS)
    save_file({"linear.weight": linear.weight.detach().clone(), "linear.bias": linear.bias.detach().clone()},
              str(tmp_path / "net.safetensors"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(module=module or f"{module_name}:Net", width=width, extra=extra,
                                features=f", features: {features}" if features else ""))
    return spec


def _metric(result: Any, key: str, scope: str | None = None) -> Any:
    return next(m for m in result.metrics if m.key == key and (scope is None or m.scope == scope))


def test_a_module_is_audited_with_predictions_explanations_and_provenance(tmp_path: Path) -> None:
    spec = _folder(tmp_path, module_name="netmod_ok")
    record = guardrail.audit(spec)
    fairness, explain = record.results
    assert fairness.status.value == "ok" and explain.status.value == "ok", (fairness.error, explain.error)

    # predictions: the sigmoid of the linear score, computed here without torch
    frame = pd.read_csv(tmp_path / "data.csv")
    adapter = TorchAdapter.from_module("netmod_ok:Net", tmp_path / "net.safetensors", features=["a", "b", "c"],
                                       kwargs={"width": 3}, search=tmp_path)
    expected = 1 / (1 + np.exp(-(frame[["a", "b", "c"]].to_numpy() @ WEIGHTS + BIAS)))
    np.testing.assert_allclose(adapter.predict_proba(frame)[:, 1], expected, rtol=1e-5)
    selection = _metric(fairness, "fairness.selection_rate")
    by_group = {g.group: g.value for g in selection.by_group}
    for group in ("p", "q"):
        chosen = expected[frame["group"] == group] >= 0.5
        assert by_group[group] == pytest.approx(chosen.mean())

    # explanations: IG complete within its tolerance; both methods find the driver
    assert _metric(explain, "explain.integrated_gradients.converged").value == 1.0
    assert explain.artifacts["ranking"]["integrated_gradients"][0] == "a"
    assert explain.artifacts["ranking"]["lime"][0] == "a"

    # provenance: the weights and the module's source
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    roles = {Path(f["path"]).name: f["role"] for f in run["provenance"]["files"]}
    assert roles["net.safetensors"] == "model" and roles["netmod_ok.py"] == "model-code"


def test_a_function_that_builds_the_module_and_several_classes(tmp_path: Path) -> None:
    _folder(tmp_path, module_name="netmod_multi")
    three = torch.nn.Linear(3, 3)
    save_file({"linear.weight": three.weight.detach().clone(), "linear.bias": three.bias.detach().clone()},
              str(tmp_path / "three.safetensors"))
    adapter = TorchAdapter.from_module("netmod_multi:Net", tmp_path / "three.safetensors", features=["a", "b", "c"],
                                       classes=["x", "y", "z"], kwargs={"width": 3, "outputs": 3}, search=tmp_path)
    frame = pd.read_csv(tmp_path / "data.csv")
    logits = frame[["a", "b", "c"]].to_numpy() @ three.weight.detach().numpy().T + three.bias.detach().numpy()
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(adapter.predict_proba(frame), softmax / softmax.sum(1, keepdims=True), rtol=1e-5)
    assert adapter.classes == ("x", "y", "z")
    built = TorchAdapter.from_module("netmod_multi:build", tmp_path / "net.safetensors", features=["a", "b", "c"],
                                     kwargs={"width": 3}, search=tmp_path)
    assert built.predict_proba(frame).shape == (120, 2)


def test_two_specs_modules_of_the_same_name_never_mix(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for folder in (first, second):
        folder.mkdir()
        _folder(folder, module_name="model")
    (second / "model.py").write_text(MODULE.replace("return self.linear(x)", "return -self.linear(x)"))
    frame = pd.read_csv(first / "data.csv")
    p1 = TorchAdapter.from_module("model:Net", first / "net.safetensors", features=["a", "b", "c"], kwargs={"width": 3},
                                  search=first).predict_proba(frame)[:, 1]
    p2 = TorchAdapter.from_module("model:Net", second / "net.safetensors", features=["a", "b", "c"], kwargs={"width": 3},
                                  search=second).predict_proba(frame)[:, 1]
    np.testing.assert_allclose(p1 + p2, 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 2}, "the weights do not fit netmod_bad:Net"),
        ({"features": "[a, b]"}, "does not accept the data (2 feature column(s))"),
        ({"features": "[a, b, group]"}, "column 'group' is not numeric"),
        ({"features": ""}, "needs data.features"),
        ({"module": "no_such_module:Net"}, "cannot import 'no_such_module'"),
        ({"module": "netmod_bad:Missing"}, "has no 'Missing'"),
        ({"extra": ", text_column: t"}, "text_column applies to a Hugging Face folder"),
        ({"extra": ", classes: [a, b, c]"}, "returns 1 logit(s) per row for 3 classes"),
    ],
)
def test_a_module_that_does_not_fit_gets_a_clear_error_and_exit_3(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    spec = _folder(tmp_path, module_name="netmod_bad", **change)
    done = run_cli("audit", spec.name, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing written


def test_pickle_weights_are_refused_before_any_code_runs(tmp_path: Path) -> None:
    spec = _folder(tmp_path, module_name="netmod_pickle")
    torch.save({"linear.weight": torch.zeros(1, 3)}, tmp_path / "net.pt")
    spec.write_text(spec.read_text().replace("net.safetensors", "net.pt"))
    marker = tmp_path / "imported"
    (tmp_path / "netmod_pickle.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    done = run_cli("audit", spec.name, cwd=tmp_path)
    assert done.returncode == 3 and "must be a .safetensors file" in done.stderr, done.stderr  # refused by the spec
    # a pickle under a .safetensors name is recognised by its bytes, before the module is imported
    torch.save({"linear.weight": torch.zeros(1, 3)}, tmp_path / "disguised.safetensors")
    spec.write_text(spec.read_text().replace("net.pt", "disguised.safetensors"))
    done = run_cli("audit", spec.name, cwd=tmp_path)
    assert done.returncode == 3 and "pickle" in done.stderr, done.stderr
    assert not marker.exists()


# -- a Hugging Face folder that guardrail train did not write ------------------------------------------------------
@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from guardrail.training.models import TinyBertConfig, build_tiny_bert

    texts = [f"review {i} {'great' if i % 2 else 'poor'} <b>value</b>" for i in range(40)]
    torch.manual_seed(0)
    model, tokenizer = build_tiny_bert(
        texts, 2, TinyBertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, max_length=32)
    )
    model.config.id2label = {0: "negative", 1: "positive"}
    model.config.label2id = {"negative": 0, "positive": 1}
    folder = tmp_path_factory.mktemp("hf") / "classifier"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    frame = pd.DataFrame({"text": texts, "label": ["positive" if i % 2 else "negative" for i in range(40)],
                          "group": ["u" if i < 20 else "v" for i in range(40)]})
    frame.to_csv(folder.parent / "reviews.csv", index=False)
    return folder


def test_a_hugging_face_folder_from_elsewhere_predicts_what_its_model_computes(hf_folder: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    adapter = TorchAdapter.load(hf_folder, text_column="text", max_length=32)
    assert adapter.classes == ("negative", "positive")
    frame = pd.read_csv(hf_folder.parent / "reviews.csv")
    model = AutoModelForSequenceClassification.from_pretrained(hf_folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(hf_folder)
    enc = tokenizer(list(frame["text"]), padding="max_length", truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        expected = model(**enc).logits.softmax(-1).numpy()
    np.testing.assert_allclose(adapter.predict_proba(frame), expected, rtol=1e-5, atol=1e-6)


def test_a_hugging_face_folder_from_elsewhere_needs_its_text_column_and_matching_classes(hf_folder: Path) -> None:
    with pytest.raises(ModelError, match="needs the column that holds the text"):
        TorchAdapter.load(hf_folder)
    with pytest.raises(ModelError, match="names 3 classes; the classifier has 2 outputs"):
        TorchAdapter.load(hf_folder, text_column="text", classes=["a", "b", "c"])


def test_a_hugging_face_folder_from_elsewhere_is_audited_from_the_cli(hf_folder: Path) -> None:
    root = hf_folder.parent
    (root / "spec.yaml").write_text(
        "schema_version: 1\nkind: audit\nname: hf\n"
        "model: {adapter: torch, path: classifier, text_column: text, max_length: 32}\n"
        "data: {path: reviews.csv, target: label, sensitive: [group], positive_label: positive}\n"
        "audits:\n  - {id: explain, use: explainability, params: {samples: 4, lime_samples: 50, max_seconds: 60}}\n"
        "report: {out: out, formats: [json]}\n"
    )
    done = run_cli("audit", "spec.yaml", "--no-gate", cwd=root)  # measurements only: no policy
    assert done.returncode == 0, done.stderr
    run = json.loads((root / "out" / "run.json").read_text())
    (explain,) = run["results"]
    assert explain["status"] == "ok" and explain["artifacts"]["heatmap"]["documents"]


def test_classes_that_do_not_name_the_targets_labels_are_refused(tmp_path: Path) -> None:
    """Default classes [0, 1] against a yes/no target would otherwise audit a model that never says yes."""
    spec = _folder(tmp_path, module_name="netmod_labels")
    frame = pd.read_csv(tmp_path / "data.csv")
    frame["y"] = frame["y"].map({0: "no", 1: "yes"})
    frame.to_csv(tmp_path / "data.csv", index=False)
    spec.write_text(spec.read_text().replace("target: y,", "target: y, positive_label: 'yes',"))
    done = run_cli("audit", spec.name, cwd=tmp_path)
    assert done.returncode == 3 and "none of the model's classes ['0', '1'] occurs in the target" in done.stderr, done.stderr
    spec.write_text(spec.read_text().replace("weights: net.safetensors", "weights: net.safetensors, classes: ['no', 'yes']"))
    assert run_cli("audit", spec.name, "--no-gate", cwd=tmp_path).returncode == 0  # named right: it runs


def test_a_positive_label_the_model_does_not_name_is_refused(tmp_path: Path) -> None:
    spec = _folder(tmp_path, module_name="netmod_positive", extra=", classes: [0, 2]")
    done = run_cli("audit", spec.name, cwd=tmp_path)
    assert done.returncode == 3 and "the positive label 1 is not among the model's classes [0, 2]" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("os:system", "os:system is not a torch.nn.Module class (a function that builds the module must be defined"),
        ("json:loads", "json:loads is not a torch.nn.Module class"),
        ("torch.nn:Linear", None),  # an installed nn.Module class is fine: it builds, then its weights do not fit
    ],
)
def test_only_module_classes_or_the_specs_own_builders_are_ever_called(tmp_path: Path, module: str, message: str | None) -> None:
    spec = _folder(tmp_path, module_name="netmod_call", module=module)
    spec.write_text(spec.read_text().replace("kwargs: {width: 3}", "kwargs: {in_features: 3, out_features: 1}"))
    marker = tmp_path / "ran"
    if module == "os:system":
        spec.write_text(spec.read_text().replace("kwargs: {in_features: 3, out_features: 1}", f"kwargs: {{command: 'touch {marker}'}}"))
    done = run_cli("audit", spec.name, cwd=tmp_path)
    assert not marker.exists()
    if message is None:
        assert done.returncode == 3 and "the weights do not fit torch.nn:Linear" in done.stderr, done.stderr
    else:
        assert done.returncode == 3 and message in done.stderr, done.stderr


def test_an_error_inside_the_modules_forward_is_reported_not_a_crash(tmp_path: Path) -> None:
    spec = _folder(tmp_path, module_name="netmod_raises")
    (tmp_path / "netmod_raises.py").write_text(MODULE.replace("return self.linear(x)", "raise ValueError('bad input scale')"))
    done = run_cli("audit", spec.name, cwd=tmp_path)
    assert done.returncode == 3 and "bad input scale" in done.stderr and "internal error" not in done.stderr, done.stderr


def test_a_hugging_face_folder_refuses_more_tokens_than_its_model_reads(hf_folder: Path) -> None:
    with pytest.raises(ModelError, match="more than the 32 tokens this model reads"):
        TorchAdapter.load(hf_folder, text_column="text", max_length=64)


def test_a_guardrail_folder_refuses_settings_its_description_already_holds(tmp_path: Path, hf_folder: Path) -> None:
    import shutil

    folder = tmp_path / "ours"
    shutil.copytree(hf_folder, folder)
    (folder / "guardrail-model.json").write_text(json.dumps(
        {"kind": "guardrail-torch-model", "architecture": "hf-sequence-classification", "classes": ["negative", "positive"],
         "features": ["text"], "text_column": "text", "max_length": 32}
    ))
    assert TorchAdapter.load(folder).classes == ("negative", "positive")
    with pytest.raises(ModelError, match="model.text_column applies to a Hugging Face folder from elsewhere"):
        TorchAdapter.load(folder, text_column="text")


def test_a_hugging_face_folder_missing_encoder_weights_is_refused_not_filled_with_noise(tmp_path: Path, hf_folder: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    folder = tmp_path / "partial"
    shutil.copytree(hf_folder, folder)
    weights = load_file(str(folder / "model.safetensors"))
    dropped = next(k for k in weights if "encoder" in k)
    save_file({k: v for k, v in weights.items() if k != dropped}, str(folder / "model.safetensors"))
    with pytest.raises(ModelError, match=r"lacks 1 weight\(s\) its architecture needs"):
        TorchAdapter.load(folder, text_column="text")
