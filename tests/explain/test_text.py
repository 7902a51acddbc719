"""Token attributions for text classifiers: Layer IG completeness, LIME, seeds, budget, plain data.

The model is a tiny BERT built the way ``guardrail train`` builds bert-tiny (locally trained
WordPiece tokenizer, ``BertConfig``), trained for a few seconds on synthetic reviews where
the word "excellent" alone decides the label, so the driver token is known.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
pytest.importorskip("lime")
pytest.importorskip("transformers")

from guardrail.adapters.torch import TorchAdapter  # noqa: E402
from guardrail.core.errors import ModelError  # noqa: E402
from guardrail.explain.text import (  # noqa: E402
    DELTA_FLOOR,
    DocumentExplanation,
    TextExplanations,
    explain_text,
    global_token_importance,
    ig_baseline,
    token_agreement,
    token_heatmap_rows,
)

DRIVER = "excellent"
FILLER = "the a patient took this drug for weeks and felt tired some days but slept well mostly".split()
MAX_LENGTH = 64
TRAIN_LENGTH = 24  # the synthetic texts fit; audits tokenize up to MAX_LENGTH
DOCS = [
    "the patient took excellent drug for weeks",
    "felt tired some days but slept well",
    "mostly excellent and slept",
    "this drug for weeks but felt tired",
]


def _synthetic(n: int = 256, seed: int = 0) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(5, 10))]
        if i % 2:
            words.insert(rng.randrange(len(words) + 1), DRIVER)
        texts.append(" ".join(words))
        labels.append(i % 2)
    return texts, labels


def _train_tiny(steps: int, lr: float) -> TorchAdapter:
    from guardrail.training.models import TinyBertConfig, build_tiny_bert, text_forward

    texts, labels = _synthetic()
    torch.manual_seed(0)
    config = TinyBertConfig(
        vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=MAX_LENGTH
    )
    model, tokenizer = build_tiny_bert(texts, 2, config)
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=TRAIN_LENGTH, return_tensors="pt")
    y = torch.tensor(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (32,), generator=generator)
        logits = text_forward(model, enc["input_ids"][idx], enc["attention_mask"][idx])
        loss = torch.nn.functional.cross_entropy(logits, y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    description = {"classes": ["ordinary", "praised"], "features": ["text"], "text_column": "text", "max_length": MAX_LENGTH}
    return TorchAdapter(model, description, tokenizer, "cpu")


@pytest.fixture(scope="module")
def adapter() -> TorchAdapter:
    """Learns the driver with moderate confidence (p ≈ 0.66): a smooth IG path."""
    torch.set_num_threads(1)
    model = _train_tiny(steps=30, lr=3e-3)
    proba = model.predict_proba(__import__("pandas").DataFrame({"text": DOCS}))
    assert (proba.argmax(1) == [1, 0, 1, 0]).all(), "the fixture model did not learn the driver token"
    return model


@pytest.fixture(scope="module")
def explained(adapter: TorchAdapter) -> TextExplanations:
    return explain_text(adapter, DOCS, n_steps=20, lime_samples=200, batch_size=3, seed=7)


def _independent_difference(adapter: TorchAdapter, text: str, target: int) -> float:
    """f(x) − f(baseline) computed here, without the module: pad every non-special token."""
    tok = adapter.tokenizer
    enc = tok([text], return_tensors="pt")
    ids = enc["input_ids"]
    special = {tok.cls_token_id, tok.sep_token_id}
    base = torch.tensor([[i if i in special else tok.pad_token_id for i in ids[0].tolist()]])
    positions = torch.arange(ids.shape[1]).repeat(1, 1)
    with torch.no_grad():
        fx = adapter.model(input_ids=ids, attention_mask=enc["attention_mask"], position_ids=positions).logits.softmax(-1)
        fb = adapter.model(input_ids=base, attention_mask=enc["attention_mask"], position_ids=positions).logits.softmax(-1)
    return float(fx[0, target] - fb[0, target])


# -- Layer Integrated Gradients ---------------------------------------------------------------
def test_ig_completeness_against_an_independent_forward_pass(adapter: TorchAdapter, explained: TextExplanations) -> None:
    assert explained.n_explained == len(DOCS)
    for doc in explained.documents:
        total = sum(doc.attributions["layer_ig"])
        difference = _independent_difference(adapter, doc.text, doc.target)
        assert doc.ig_output_difference == pytest.approx(difference, abs=1e-5)
        # Captum's delta is exactly the completeness gap …
        assert doc.ig_delta is not None
        assert total - difference == pytest.approx(doc.ig_delta, abs=1e-5)
        # … and the run converged within the reported tolerance
        assert doc.ig_converged is True
        assert abs(total - difference) <= explained.ig_tolerance * max(abs(difference), DELTA_FLOOR) + 1e-6


def test_ig_raises_n_steps_until_the_tolerance_is_met(adapter: TorchAdapter, explained: TextExplanations) -> None:
    result = explain_text(adapter, DOCS[:2], methods=["layer_ig"], n_steps=2, max_n_steps=128, ig_tolerance=0.01)
    driven, plain = result.documents
    assert driven.ig_n_steps is not None and 2 < driven.ig_n_steps <= result.max_n_steps == 128
    assert driven.ig_converged is True
    assert abs(driven.ig_delta or 0.0) <= 0.01 * abs(driven.ig_output_difference or 0.0)
    assert plain.ig_converged is True and plain.ig_n_steps is not None and plain.ig_n_steps <= driven.ig_n_steps
    assert explained.ig_all_converged


def test_ig_records_a_tolerance_it_could_not_reach(adapter: TorchAdapter) -> None:
    result = explain_text(adapter, DOCS[:1], methods=["layer_ig"], n_steps=2, max_n_steps=4, ig_tolerance=1e-9)
    (doc,) = result.documents
    assert doc.ig_converged is False
    assert doc.ig_n_steps == 4
    assert not result.ig_all_converged
    assert result.to_jsonable()["ig_all_converged"] is False


def test_baseline_pads_words_and_keeps_special_tokens(adapter: TorchAdapter) -> None:
    tok = adapter.tokenizer
    enc = tok(DOCS[:2], padding=True, return_tensors="pt", return_special_tokens_mask=True)
    base = ig_baseline(enc["input_ids"], enc["special_tokens_mask"], tok.pad_token_id)
    for row in range(2):
        ids, b = enc["input_ids"][row].tolist(), base[row].tolist()
        assert b[0] == ids[0] == tok.cls_token_id
        sep = ids.index(tok.sep_token_id)
        assert b[sep] == tok.sep_token_id
        assert all(v == tok.pad_token_id for i, v in enumerate(b) if i not in (0, sep))
    assert (enc["input_ids"] != base).any()


def test_probabilities_match_the_adapter(adapter: TorchAdapter, explained: TextExplanations) -> None:
    """Padding to the longest text and explicit position_ids give the adapter's predictions."""
    import pandas as pd

    proba = adapter.predict_proba(pd.DataFrame({"text": DOCS}))
    for doc in explained.documents:
        assert doc.predicted == int(proba[doc.index].argmax())
        assert doc.probability == pytest.approx(float(proba[doc.index].max()), abs=1e-5)
        assert doc.predicted_label == adapter.classes[doc.predicted]


# -- LIME and agreement ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["layer_ig", "lime"])
def test_the_driver_token_ranks_first(explained: TextExplanations, method: str) -> None:
    for doc in explained.documents:
        if DRIVER not in doc.tokens:
            continue
        values = doc.attributions[method]
        top = max(range(len(values)), key=lambda i: abs(values[i]))
        assert doc.tokens[top] == DRIVER
        assert values[top] > 0  # it raises the probability of "praised"


def test_agreement_and_global_importance_are_plain_data(explained: TextExplanations) -> None:
    agreement = token_agreement(explained, k=1)
    json.dumps(agreement)
    driven = {d.index for d in explained.documents if DRIVER in d.tokens}
    assert all(r["overlap"] == 1.0 for r in agreement["per_document"] if r["document"] in driven)
    importance = global_token_importance(explained, method="lime", top=3)
    json.dumps(importance)
    assert importance[0]["token"] == DRIVER
    assert importance[0]["documents"] == len(driven)


def test_seeds_fix_the_output(adapter: TorchAdapter) -> None:
    # both runs here, under the same thread count (module fixtures are set up before the
    # autouse one-thread fixture, and float sums depend on the number of threads)
    first = explain_text(adapter, DOCS, n_steps=20, lime_samples=200, batch_size=3, seed=7)
    again = explain_text(adapter, DOCS, n_steps=20, lime_samples=200, batch_size=3, seed=7)

    def strip(result: TextExplanations) -> dict[str, Any]:
        data = result.to_jsonable()
        data.pop("seconds")
        return data

    assert strip(again) == strip(first)
    other = explain_text(adapter, DOCS[:1], methods=["lime"], lime_samples=200, seed=8)
    assert other.documents[0].attributions["lime"] != first.documents[0].attributions["lime"]
    assert other.seed == 8 and first.seed == 7


# -- budget, validation, artifacts -------------------------------------------------------------
def test_budget_stops_early_but_explains_at_least_one(adapter: TorchAdapter) -> None:
    result = explain_text(adapter, DOCS, methods=["lime"], lime_samples=50, batch_size=2, max_seconds=0.0)
    assert result.n_requested == 4
    assert result.n_explained == len(result.documents) == 1
    assert result.stopped_early
    full = explain_text(adapter, DOCS[:2], methods=["lime"], lime_samples=50, max_seconds=None)
    assert full.n_explained == 2 and not full.stopped_early


def test_bad_arguments(adapter: TorchAdapter) -> None:
    with pytest.raises(ValueError, match="unknown text explanation method"):
        explain_text(adapter, DOCS, methods=["shap"])
    with pytest.raises(ValueError, match="target"):
        explain_text(adapter, DOCS, target=5)
    with pytest.raises(ModelError):
        explain_text(TorchAdapter(adapter.model, adapter.description, None, "cpu"), DOCS)


def test_to_jsonable_round_trips_through_json(explained: TextExplanations) -> None:
    data = json.loads(json.dumps(explained.to_jsonable(), allow_nan=False))
    assert data["n_explained"] == len(DOCS)
    assert data["methods"] == ["layer_ig", "lime"]
    assert data["documents"][0]["tokens"] == list(explained.documents[0].tokens)
    assert set(data["seconds"]) == {"layer_ig", "lime"}


# -- heatmap rows are raw data -----------------------------------------------------------------
SCRIPT = "<script>alert(1)</script>"


def _hand_made(token: str) -> TextExplanations:
    doc = DocumentExplanation(
        index=0,
        text=f"{token} & more",
        truncated=False,
        tokens=(token, "&", "more"),
        spans=((0, len(token)), (len(token) + 1, len(token) + 2), (len(token) + 3, len(token) + 7)),
        target=1,
        target_label="praised",
        predicted=1,
        predicted_label="praised",
        probability=0.9,
        target_probability=0.9,
        attributions={"layer_ig": (0.5, -0.25, 0.0)},
    )
    return TextExplanations(
        methods=("layer_ig",),
        documents=(doc,),
        classes=("ordinary", "praised"),
        n_requested=1,
        n_explained=1,
        stopped_early=False,
        seed=0,
        n_steps=50,
        max_n_steps=400,
        ig_tolerance=0.05,
        lime_samples=500,
        max_length=64,
        device="cpu",
    )


def test_heatmap_rows_keep_markup_as_data() -> None:
    rows = token_heatmap_rows(_hand_made(SCRIPT))
    assert [r["token"] for r in rows] == [SCRIPT, "&", "more"]
    assert [r["weight"] for r in rows] == [1.0, -0.5, 0.0]
    assert "".join(r["gap_before"] + r["token"] for r in rows) == f"{SCRIPT} & more"
    assert json.loads(json.dumps(rows))[0]["token"] == SCRIPT


def test_markup_in_a_real_text_survives_unchanged(adapter: TorchAdapter) -> None:
    text = f"{SCRIPT} excellent &amp; slept"
    result = explain_text(adapter, [text], methods=["layer_ig"], n_steps=10)
    (doc,) = result.documents
    assert doc.text == text and not doc.truncated
    rows = token_heatmap_rows(result)
    assert "".join(r["gap_before"] + r["token"] for r in rows) == text
    assert all(text[r["start"] : r["end"]] == r["token"] for r in rows)
    assert all(-1.0 <= r["weight"] <= 1.0 for r in rows)
    assert max(abs(r["weight"]) for r in rows) == 1.0


def test_truncated_texts_explain_only_what_the_model_sees(adapter: TorchAdapter) -> None:
    long_text = " ".join(["slept well"] * 40) + " excellent"
    result = explain_text(adapter, [long_text], lime_samples=50, n_steps=10)
    (doc,) = result.documents
    assert doc.truncated
    assert long_text.startswith(doc.text) and len(doc.text) < len(long_text)
    assert DRIVER not in doc.tokens
    assert len(doc.tokens) == len(doc.attributions["lime"]) == len(doc.attributions["layer_ig"])


# -- quality checks that run the model again (guardrail.explain.text_quality) -----------------
def _by_hand_curve(adapter: TorchAdapter, doc: DocumentExplanation, order: list[int], counts: list[int], insertion: bool) -> list[float]:
    """The explained class's probability with the words ``order[:c]`` removed (deletion) or
    only they present (insertion), each removed word's pieces set to the pad token by hand."""
    tok = adapter.tokenizer
    enc = tok([doc.text])
    ids, word_ids = enc["input_ids"][0], enc.word_ids(0)
    assert sorted({w for w in word_ids if w is not None}) == list(range(len(doc.tokens)))
    out = []
    for c in counts:
        chosen = set(order[:c])
        absent = {w for w in range(len(doc.tokens)) if (w in chosen) != insertion}
        changed = [tok.pad_token_id if w in absent else i for i, w in zip(ids, word_ids, strict=True)]
        with torch.no_grad():
            logits = adapter.model(
                input_ids=torch.tensor([changed]),
                attention_mask=torch.ones(1, len(changed), dtype=torch.long),
                position_ids=torch.arange(len(changed))[None, :],
            ).logits
        out.append(float(logits.softmax(-1)[0, doc.target]))
    return out


@pytest.mark.parametrize("steps", [10, 3])
def test_deletion_and_insertion_curves_match_direct_forward_passes(
    adapter: TorchAdapter, explained: TextExplanations, steps: int
) -> None:
    import numpy as np

    from guardrail.explain.text_quality import faithfulness_curves

    curves = faithfulness_curves(adapter, explained, steps=steps, batch_size=5, seed=1)
    assert curves.documents == (0, 1, 2, 3) and curves.skipped == 0
    doc = explained.documents[0]  # "the patient took excellent drug for weeks": 7 words
    values = doc.attributions["layer_ig"]
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    counts = list(range(8)) if steps == 10 else [0, 2, 5, 7]  # round(linspace(0, 7, 4))
    deletion = _by_hand_curve(adapter, doc, order, counts, insertion=False)
    insertion = _by_hand_curve(adapter, doc, order, counts, insertion=True)
    assert curves.fractions[0] == pytest.approx([c / 7 for c in counts])
    assert curves.deletion["layer_ig"][0] == pytest.approx(deletion, abs=1e-5)
    assert curves.insertion["layer_ig"][0] == pytest.approx(insertion, abs=1e-5)
    fractions = np.asarray(counts) / 7
    assert curves.deletion_auc("layer_ig")[0] == pytest.approx(float(np.trapezoid(deletion, fractions)), abs=1e-5)
    assert curves.insertion_auc("layer_ig")[0] == pytest.approx(float(np.trapezoid(insertion, fractions)), abs=1e-5)
    # the ends are the input and the IG baseline: f(x) − f(baseline) is IG's output difference
    assert deletion[0] == pytest.approx(doc.target_probability, abs=1e-5)
    assert deletion[0] - deletion[-1] == pytest.approx(doc.ig_output_difference, abs=1e-5)
    assert insertion[0] == pytest.approx(deletion[-1], abs=1e-6) and insertion[-1] == pytest.approx(deletion[0], abs=1e-6)


def test_attribution_order_beats_a_random_order_on_the_planted_driver(adapter: TorchAdapter, explained: TextExplanations) -> None:
    from guardrail.explain.text_quality import RANDOM_ORDER, faithfulness_curves

    curves = faithfulness_curves(adapter, explained, seed=3)
    driven = [i for i, d in enumerate(explained.documents) if DRIVER in d.tokens]
    assert driven == [0, 2]
    random_score = curves.insertion_auc(RANDOM_ORDER) - curves.deletion_auc(RANDOM_ORDER)
    for method in ("layer_ig", "lime"):
        score = curves.insertion_auc(method) - curves.deletion_auc(method)
        for i in driven:  # removing "excellent" first drops the probability at once
            assert score[i] > random_score[i] + 0.05
            assert curves.deletion[method][i][1] < curves.deletion[method][i][0] - 0.05
    again = faithfulness_curves(adapter, explained, seed=3)
    assert (again.deletion_auc(RANDOM_ORDER) == curves.deletion_auc(RANDOM_ORDER)).all(), "the random order is seeded"


def test_lime_reruns_reproduce_the_run_and_measure_stability(adapter: TorchAdapter, explained: TextExplanations) -> None:
    from itertools import combinations

    import numpy as np

    from guardrail.explain.quality import stability
    from guardrail.explain.text_quality import lime_reruns

    same = lime_reruns(adapter, explained, [7, 7, 7], instances=3, batch_size=3)
    assert same.documents == 3 and not same.stopped
    for i, doc in enumerate(explained.documents[:3]):  # the run's own seed gives the run's attributions
        assert same.runs[0][i, : len(doc.tokens)] == pytest.approx(doc.attributions["lime"], abs=1e-6)
    assert stability(same.runs, 3) == 1.0

    other = lime_reruns(adapter, explained, [11, 12, 13], instances=4, batch_size=3)
    value = stability(other.runs, 2)
    by_hand = []  # top-2 Jaccard per document and pair of seeds, on the unpadded attributions
    for i, doc in enumerate(explained.documents):
        width = len(doc.tokens)
        tops = [set(np.argsort(-np.abs(run[i, :width]), kind="stable")[:2].tolist()) for run in other.runs]
        by_hand += [len(a & b) / len(a | b) for a, b in combinations(tops, 2)]
    assert value == pytest.approx(float(np.mean(by_hand)))
    assert value < 1.0, "LIME's noise on the documents without the driver moves their top words"

    stopped = lime_reruns(adapter, explained, [1, 2, 3], instances=4, expired=lambda: True)
    assert stopped.documents == 0 and stopped.stopped and stopped.requested == 4


def test_token_importance_interval_is_a_document_bootstrap(explained: TextExplanations) -> None:
    import numpy as np

    from guardrail.auditors.explainability import ExplainabilityParams
    from guardrail.explain.text_results import importance_metrics

    ranked = global_token_importance(explained, method="lime", top=None)
    p = ExplainabilityParams(bootstrap=400, confidence=0.9, min_group_size=2)
    groups = {"half": np.asarray(["x", "x", "y", "y"])}
    metrics = {m.scope: m for m in importance_metrics(explained, "lime", ranked, groups, p, seed=5)}
    driver = metrics[DRIVER]
    # by hand: per document, the sum of |attribution| over the word's occurrences and their count
    sums = np.asarray([sum(abs(v) for t, v in zip(d.tokens, d.attributions["lime"], strict=True) if t == DRIVER)
                       for d in explained.documents])
    counts = np.asarray([d.tokens.count(DRIVER) for d in explained.documents], dtype=float)
    assert driver.value == pytest.approx(sums.sum() / counts.sum())
    rng = np.random.default_rng(5)  # the same draws: documents resampled with replacement
    weights = rng.multinomial(4, np.full(4, 0.25), size=400)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (weights @ sums) / (weights @ counts)
    low, high = np.quantile(ratio[~np.isnan(ratio)], [0.05, 0.95])
    assert driver.ci is not None and driver.ci.level == 0.9 and driver.ci.resamples == 400
    assert driver.ci.undefined == int(np.isnan(ratio).sum()) > 0  # resamples without the driver's documents
    assert (driver.ci.low, driver.ci.high) == pytest.approx((low, high), abs=1e-12)
    assert driver.ci.low <= driver.value <= driver.ci.high
    # by group: documents 0, 2 hold the driver once each; x = {0, 1}, y = {2, 3}
    by_group = {g.group: g for g in driver.by_group}
    assert by_group["half=x"].value == pytest.approx(sums[0]) and by_group["half=x"].n == 1 and by_group["half=x"].small
    assert by_group["half=y"].value == pytest.approx(sums[2]) and by_group["half=y"].n == 1
    mostly = {g.group: g for g in metrics["mostly"].by_group}  # only in document 2
    assert mostly["half=x"].value is None and mostly["half=x"].n == 0 and mostly["half=x"].reason
    assert mostly["half=y"].value is not None and mostly["half=y"].n == 1


def test_document_words_are_the_explained_words(adapter: TorchAdapter, explained: TextExplanations) -> None:
    from guardrail.explain.text import document_words

    assert document_words(adapter, DOCS, batch_size=3) == [d.tokens for d in explained.documents]


def test_word_associations_match_sklearn_and_find_a_planted_proxy() -> None:
    import numpy as np
    from sklearn.metrics import mutual_info_score, normalized_mutual_info_score

    from guardrail.explain.proxy import proxies, word_associations, word_presence

    rng = np.random.default_rng(0)
    groups = rng.choice(["F", "M", "X"], size=120)
    two = np.where(groups == "F", "F", "other")
    documents = [[*rng.choice(FILLER, size=6).tolist(), *(["Marker"] if g == "F" else [])] for g in groups]
    documents[0].append("once")  # seen in one document: not counted
    vocabulary, presence = word_presence(documents, 2)
    assert "marker" in vocabulary and "once" not in vocabulary
    found = word_associations(vocabulary, presence, {"three": groups, "two": two, "single": np.full(120, "F")})
    for a in found:
        labels = {"three": groups, "two": two}.get(a.sensitive)
        column = presence[:, vocabulary.index(a.feature)]
        if labels is None:
            assert a.nmi == 0.0  # a single group: nothing to be a proxy of
            continue
        assert a.nmi == pytest.approx(normalized_mutual_info_score(labels, column), abs=1e-12)
        assert a.mi == pytest.approx(mutual_info_score(labels, column), abs=1e-12)
    planted = {a.sensitive: a.nmi for a in found if a.feature == "marker"}
    assert planted["two"] == pytest.approx(1.0)
    assert 0.5 < planted["three"] < 1.0  # it names one group of three
    assert proxies(found, 0.1) == {"marker": ["three", "two"]}


# -- the real path: guardrail's trainer, a saved folder, the adapter, real reviews ----------------
@pytest.mark.slow
def test_drug_reviews_model_folder_end_to_end(tmp_path: Any) -> None:
    from guardrail.datasets.drug_reviews import load_drug_reviews
    from guardrail.training.api import TrainConfig, train_text

    reviews = load_drug_reviews("train").head(96)
    train_text(
        reviews, "condition_group", "review", tmp_path / "model",
        TrainConfig(epochs=1, batch_size=32, lr=1e-3, optimizer="adam", device="cpu"), max_length=64,
    )
    adapter = TorchAdapter.load(tmp_path / "model")
    texts = load_drug_reviews("test")["review"].head(3).tolist()
    result = explain_text(adapter, texts, lime_samples=100, n_steps=20)
    assert result.n_explained == 3 and result.max_length == 64
    assert set(result.classes) == set(reviews["condition_group"].cat.categories)
    for doc in result.documents:
        assert doc.truncated  # reviews are longer than 64 tokens
        assert texts[doc.index].startswith(doc.text)
        assert len(doc.attributions["layer_ig"]) == len(doc.attributions["lime"]) == len(doc.tokens) > 10
        assert doc.ig_converged is True
    json.dumps(result.to_jsonable(), allow_nan=False)


@pytest.mark.gpu
def test_cuda_matches_cpu(adapter: TorchAdapter) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    import copy

    on_gpu = TorchAdapter(copy.deepcopy(adapter.model).to("cuda"), adapter.description, adapter.tokenizer, "cuda")
    cpu = explain_text(adapter, DOCS, methods=["layer_ig"], n_steps=20)
    gpu = explain_text(on_gpu, DOCS, methods=["layer_ig"], n_steps=20)
    assert gpu.device.startswith("cuda")
    for a, b in zip(cpu.documents, gpu.documents, strict=True):
        assert a.predicted == b.predicted
        assert b.attributions["layer_ig"] == pytest.approx(a.attributions["layer_ig"], abs=1e-3)


@pytest.mark.gpu
def test_faithfulness_curves_on_cuda_match_cpu(adapter: TorchAdapter, explained: TextExplanations) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    import copy

    from guardrail.explain.text_quality import faithfulness_curves

    on_gpu = TorchAdapter(copy.deepcopy(adapter.model).to("cuda"), adapter.description, adapter.tokenizer, "cuda")
    cpu = faithfulness_curves(adapter, explained, seed=2)
    gpu = faithfulness_curves(on_gpu, explained, seed=2)
    assert gpu.documents == cpu.documents
    for method in (*explained.methods, "random"):
        assert gpu.deletion_auc(method) == pytest.approx(cpu.deletion_auc(method), abs=1e-4)
        assert gpu.insertion_auc(method) == pytest.approx(cpu.insertion_auc(method), abs=1e-4)


def test_progress_is_told_after_each_explained_document(adapter: TorchAdapter) -> None:
    seen: list[int] = []
    closed: list[bool] = []

    class Recorder:
        def update(self, done: int) -> None:
            seen.append(done)

        def close(self) -> None:
            closed.append(True)

    texts, _ = _synthetic(3)
    explain_text(adapter, texts, methods=("layer_ig",), n_steps=8, progress=Recorder())  # type: ignore[arg-type]
    assert seen == [1, 2, 3] and closed == [True]
