"""Token attributions for Hugging Face text classifiers: Layer Integrated Gradients and LIME.

:func:`explain_text` explains a :class:`~guardrail.adapters.torch.TorchAdapter` (or any
object with ``model``, ``tokenizer`` and ``device``) on a list of texts and returns one
frozen :class:`TextExplanations`:

* **Layer Integrated Gradients** (Captum) on the model's input word-embedding layer
  (``model.get_input_embeddings()``), attributing the *probability* of the target class.
  The baseline replaces every ordinary token by the pad token and keeps the special tokens
  (``[CLS]``, ``[SEP]``) and the attention mask in place, so only the words change.
  ``position_ids`` are passed explicitly and contiguous (``arange(L).repeat(B, 1)``, the
  form BERT needs under Opacus and Captum's batch expansion). Completeness is checked per
  document: the sum of the attributions must equal ``f(x) − f(baseline)`` up to
  ``ig_tolerance × |f(x) − f(baseline)|`` (with a floor of :data:`DELTA_FLOOR`); when it
  does not, ``n_steps`` doubles up to ``max_n_steps`` and the result records whether it was
  reached.
* **LIME** (``lime.lime_text.LimeTextExplainer``) over the same words, each occurrence its
  own feature (``bow=False``), a removed word replaced by the pad token (the same "absent"
  as the IG baseline); perturbed texts are scored in batches of ``batch_size``.

Both methods report per *word*: the pieces (WordPiece/BPE tokens) the tokenizer made of
one pre-tokenised word are summed, so the units agree between methods and the token text
is a raw substring of the input (never lowercased, never escaped: the report escapes).

Helpers that return plain data for reports: :func:`token_agreement` (top-k overlap and
rank correlation between the methods per document), :func:`global_token_importance`
(mean |attribution| per token over documents) and :func:`token_heatmap_rows`. For the
quality checks (:mod:`guardrail.explain.text_quality`): :func:`document_words` (the words
of any text, in the same units) and :func:`lime_attributions` (LIME on an explained
document again, under another seed).

torch, captum, transformers and lime are imported inside the functions that need them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from guardrail.core.errors import MissingExtraError, ModelError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from guardrail.explain.budget import Progress

__all__ = [
    "DELTA_FLOOR",
    "TEXT_METHODS",
    "DocumentExplanation",
    "TextExplanations",
    "TextMethod",
    "document_words",
    "explain_text",
    "global_token_importance",
    "ig_baseline",
    "lime_attributions",
    "token_agreement",
    "token_heatmap_rows",
]

TextMethod = Literal["layer_ig", "lime"]
TEXT_METHODS: tuple[TextMethod, ...] = ("layer_ig", "lime")
DELTA_FLOOR = 0.01
"""Smallest ``|f(x) − f(baseline)|`` the IG tolerance is taken relative to (probability units)."""

UNKNOWN_METHOD_MESSAGE = "unknown text explanation method(s) {names}; choose from {known}"
NOT_TEXT_MODEL_MESSAGE = "text explanations need a Hugging Face text classifier with a tokenizer"


class TextClassifier(Protocol):
    """What :func:`explain_text` needs: :class:`~guardrail.adapters.torch.TorchAdapter` has it."""

    model: Any
    tokenizer: Any
    device: str


@dataclass(frozen=True)
class DocumentExplanation:
    """One explained document.

    ``text`` is the part of the input the model sees (cut after the last token kept by
    truncation; ``truncated`` says whether that dropped anything). ``tokens[i]`` is
    ``text[spans[i][0]:spans[i][1]]``. ``attributions[method][i]`` belongs to ``tokens[i]``
    and is in units of the target-class probability.
    """

    index: int
    text: str
    truncated: bool
    tokens: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    target: int
    target_label: Any
    predicted: int
    predicted_label: Any
    probability: float
    target_probability: float
    attributions: Mapping[str, tuple[float, ...]]
    ig_delta: float | None = None
    ig_output_difference: float | None = None
    ig_n_steps: int | None = None
    ig_converged: bool | None = None
    lime_score: float | None = None
    lime_intercept: float | None = None

    def to_jsonable(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "text": self.text,
            "truncated": self.truncated,
            "tokens": list(self.tokens),
            "spans": [list(s) for s in self.spans],
            "target": self.target,
            "target_label": self.target_label,
            "predicted": self.predicted,
            "predicted_label": self.predicted_label,
            "probability": _finite(self.probability),
            "target_probability": _finite(self.target_probability),
            "attributions": {m: [_finite(v) for v in a] for m, a in self.attributions.items()},
            "ig_delta": _finite(self.ig_delta),
            "ig_output_difference": _finite(self.ig_output_difference),
            "ig_n_steps": self.ig_n_steps,
            "ig_converged": self.ig_converged,
            "lime_score": _finite(self.lime_score),
            "lime_intercept": _finite(self.lime_intercept),
        }


@dataclass(frozen=True)
class TextExplanations:
    """The result of :func:`explain_text`.

    ``n_explained`` of ``n_requested`` documents were explained, in input order;
    ``stopped_early`` is true when ``max_seconds`` ran out first. ``n_steps`` is the IG step
    count asked for; each document's ``ig_n_steps`` is the count it needed.
    ``ig_all_converged`` is false when any document missed the completeness tolerance.
    """

    methods: tuple[str, ...]
    documents: tuple[DocumentExplanation, ...]
    classes: tuple[Any, ...]
    n_requested: int
    n_explained: int
    stopped_early: bool
    seed: int
    n_steps: int
    max_n_steps: int
    ig_tolerance: float
    lime_samples: int
    max_length: int
    device: str
    seconds: Mapping[str, float] = field(default_factory=dict)
    output: str = "probability"

    @property
    def ig_all_converged(self) -> bool:
        return all(d.ig_converged is not False for d in self.documents)

    def to_jsonable(self) -> dict[str, Any]:
        """Plain JSON data (lists, dicts, finite floats or ``None``) for an artifact file."""
        return {
            "methods": list(self.methods),
            "classes": list(self.classes),
            "n_requested": self.n_requested,
            "n_explained": self.n_explained,
            "stopped_early": self.stopped_early,
            "seed": self.seed,
            "n_steps": self.n_steps,
            "max_n_steps": self.max_n_steps,
            "ig_tolerance": self.ig_tolerance,
            "ig_all_converged": self.ig_all_converged,
            "lime_samples": self.lime_samples,
            "max_length": self.max_length,
            "device": self.device,
            "output": self.output,
            "seconds": {k: _finite(v) for k, v in self.seconds.items()},
            "documents": [d.to_jsonable() for d in self.documents],
        }


def explain_text(
    model: TextClassifier,
    texts: Sequence[str],
    *,
    target: int | None = None,
    methods: Sequence[str] = ("layer_ig", "lime"),
    n_steps: int = 50,
    ig_tolerance: float = 0.05,
    lime_samples: int = 500,
    batch_size: int = 32,
    seed: int = 0,
    max_seconds: float | None = None,
    max_n_steps: int | None = None,
    progress: Progress | None = None,
) -> TextExplanations:
    """Explain a text classifier's predictions on ``texts`` with Layer IG and/or LIME.

    Parameters
    ----------
    model:
        A loaded Hugging Face text classifier: ``model.model`` (a sequence classifier),
        ``model.tokenizer`` (a fast tokenizer) and ``model.device``, as
        :meth:`guardrail.adapters.torch.TorchAdapter.load` returns for a text model folder.
    texts:
        The documents, explained in this order.
    target:
        Class index to explain for every document; ``None`` explains each document's
        predicted class.
    methods:
        Any of ``"layer_ig"`` and ``"lime"``.
    n_steps, ig_tolerance, max_n_steps:
        IG starts with ``n_steps`` and doubles them (up to ``max_n_steps``, default
        ``8 × n_steps``) for documents whose completeness gap exceeds
        ``ig_tolerance × max(|f(x) − f(baseline)|, DELTA_FLOOR)``.
    lime_samples:
        Perturbed texts per document for LIME.
    batch_size:
        Documents per IG batch and perturbed texts per LIME forward pass.
    seed:
        LIME's random state (the same for every document, so a document's result does
        not depend on its position or on the budget). IG is deterministic.
    max_seconds:
        Time budget. Checked before each batch and each document's LIME; the first
        document is always explained. ``None``: no budget.
    progress:
        Told the number of documents explained after each one (a terminal progress line).

    Raises
    ------
    ModelError
        If the object has no tokenizer or the tokenizer is not a fast tokenizer with a
        pad token (offsets are needed to map tokens back to the text).
    MissingExtraError
        If torch, captum, transformers or lime is missing.
    """
    unknown = sorted(set(methods) - set(TEXT_METHODS))
    if unknown or not methods:
        raise ValueError(
            UNKNOWN_METHOD_MESSAGE.format(names=", ".join(map(repr, unknown)) or "(none)", known=", ".join(TEXT_METHODS))
        )
    chosen = tuple(m for m in TEXT_METHODS if m in methods)
    if n_steps < 1 or batch_size < 1 or lime_samples < 1 or not ig_tolerance > 0:
        raise ValueError("n_steps, batch_size, lime_samples and ig_tolerance must be positive")
    max_n_steps = max(n_steps, max_n_steps if max_n_steps is not None else 8 * n_steps)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingExtraError("torch", "explain") from None
    hf_model, tokenizer, device = unpack_text_model(model)
    max_length = _max_length(model, tokenizer)
    classes = tuple(getattr(model, "classes", None) or range(int(hf_model.config.num_labels)))
    if target is not None and not 0 <= target < len(classes):
        raise ValueError(f"target {target} is not a class index (0..{len(classes) - 1})")

    started = time.perf_counter()
    seconds: dict[str, float] = {m: 0.0 for m in chosen}
    documents: list[DocumentExplanation] = []
    stopped = False
    texts = [str(t) for t in texts]

    def out_of_time() -> bool:
        return (
            max_seconds is not None
            and bool(documents)
            and time.perf_counter() - started >= max_seconds
        )

    for start in range(0, len(texts), batch_size):
        if out_of_time():
            stopped = True
            break
        chunk = texts[start : start + batch_size]
        encoded = encode_texts(tokenizer, chunk, max_length, device)
        probs = class_probabilities(hf_model, encoded["input_ids"], encoded["attention_mask"])
        predicted = probs.argmax(-1)
        targets = predicted if target is None else torch.full_like(predicted, target)
        ig: dict[str, Any] = {}
        if "layer_ig" in chosen:
            tick = time.perf_counter()
            ig = _layer_ig(
                hf_model, tokenizer, encoded, targets, n_steps, max_n_steps, ig_tolerance, batch_size
            )
            seconds["layer_ig"] += time.perf_counter() - tick
        for row, text in enumerate(chunk):
            if out_of_time():
                stopped = True
                break
            words, spans, cut = word_spans(encoded, row, text)
            visible = text[:cut]
            t = int(targets[row])
            p = int(predicted[row])
            attributions: dict[str, tuple[float, ...]] = {}
            extra: dict[str, Any] = {}
            if "layer_ig" in chosen:
                attributions["layer_ig"] = _per_word(
                    ig["attributions"][row], encoded.word_ids(row), encoded["offset_mapping"][row].tolist()
                )
                extra.update(
                    ig_delta=float(ig["delta"][row]),
                    ig_output_difference=float(ig["difference"][row]),
                    ig_n_steps=int(ig["n_steps"][row]),
                    ig_converged=bool(ig["converged"][row]),
                )
            if "lime" in chosen:
                tick = time.perf_counter()
                weights, score, intercept = _lime(
                    hf_model, tokenizer, visible, words, t, max_length, device, lime_samples, batch_size, seed
                )
                seconds["lime"] += time.perf_counter() - tick
                attributions["lime"] = weights
                extra.update(lime_score=score, lime_intercept=intercept)
            documents.append(
                DocumentExplanation(
                    index=start + row,
                    text=visible,
                    truncated=bool(text[cut:].strip()),
                    tokens=words,
                    spans=spans,
                    target=t,
                    target_label=classes[t],
                    predicted=p,
                    predicted_label=classes[p],
                    probability=float(probs[row, p]),
                    target_probability=float(probs[row, t]),
                    attributions=attributions,
                    **extra,
                )
            )
            if progress is not None:
                progress.update(len(documents))
        if stopped:
            break
    if progress is not None:
        progress.close()
    return TextExplanations(
        methods=chosen,
        documents=tuple(documents),
        classes=classes,
        n_requested=len(texts),
        n_explained=len(documents),
        stopped_early=stopped,
        seed=seed,
        n_steps=n_steps,
        max_n_steps=max_n_steps,
        ig_tolerance=ig_tolerance,
        lime_samples=lime_samples,
        max_length=max_length,
        device=str(device),
        seconds=seconds,
    )


# -- plain-data helpers for reports ---------------------------------------------------------
def token_agreement(
    explanations: TextExplanations,
    *,
    k: int = 5,
    methods: tuple[str, str] = ("layer_ig", "lime"),
) -> dict[str, Any]:
    """Per-document agreement between two methods: top-``k`` overlap and rank correlation.

    Tokens are ranked by |attribution|. ``overlap`` is ``|top_k(a) ∩ top_k(b)| / k'`` with
    ``k' = min(k, number of tokens)``; ``rank_correlation`` is Spearman's ρ of the absolute
    attributions (``None`` with fewer than 2 tokens or a constant ranking). Returns
    ``{"k", "methods", "per_document": [{"document", "k", "overlap", "rank_correlation"}],
    "mean_overlap", "mean_rank_correlation"}`` (means over documents that have a value).
    """
    import numpy as np

    first, second = methods
    rows: list[dict[str, Any]] = []
    for doc in explanations.documents:
        if first not in doc.attributions or second not in doc.attributions or not doc.tokens:
            continue
        a = np.abs(np.asarray(doc.attributions[first], dtype=np.float64))
        b = np.abs(np.asarray(doc.attributions[second], dtype=np.float64))
        kk = min(k, len(a))
        top_a = set(_top_indices(a, kk))
        top_b = set(_top_indices(b, kk))
        rows.append(
            {
                "document": doc.index,
                "k": kk,
                "overlap": len(top_a & top_b) / kk,
                "rank_correlation": _spearman(a, b),
            }
        )
    overlaps = [float(r["overlap"]) for r in rows]
    rhos = [float(r["rank_correlation"]) for r in rows if r["rank_correlation"] is not None]
    return {
        "k": k,
        "methods": list(methods),
        "per_document": rows,
        "mean_overlap": float(np.mean(overlaps)) if overlaps else None,
        "mean_rank_correlation": float(np.mean(rhos)) if rhos else None,
    }


def global_token_importance(
    explanations: TextExplanations,
    *,
    method: str = "layer_ig",
    top: int | None = 20,
    lowercase: bool = True,
    min_documents: int = 1,
) -> list[dict[str, Any]]:
    """Mean |attribution| per token over every occurrence in every explained document.

    Returns rows ``{"token", "mean_abs_attribution", "mean_attribution", "occurrences",
    "documents"}`` sorted by ``mean_abs_attribution`` (then token), the first ``top``
    (all with ``None``), keeping tokens seen in at least ``min_documents`` documents.
    """
    totals: dict[str, list[float]] = {}
    docs: dict[str, set[int]] = {}
    for doc in explanations.documents:
        values = doc.attributions.get(method)
        if values is None:
            continue
        for token, value in zip(doc.tokens, values, strict=True):
            key = token.lower() if lowercase else token
            entry = totals.setdefault(key, [0.0, 0.0, 0.0])
            entry[0] += abs(value)
            entry[1] += value
            entry[2] += 1
            docs.setdefault(key, set()).add(doc.index)
    rows: list[dict[str, Any]] = [
        {
            "token": token,
            "mean_abs_attribution": total[0] / total[2],
            "mean_attribution": total[1] / total[2],
            "occurrences": int(total[2]),
            "documents": len(docs[token]),
        }
        for token, total in totals.items()
        if len(docs[token]) >= min_documents
    ]
    rows.sort(key=lambda r: (-r["mean_abs_attribution"], r["token"]))
    return rows if top is None else rows[:top]


def token_heatmap_rows(
    explanations: TextExplanations, *, method: str | None = None
) -> list[dict[str, Any]]:
    """One row per (document, method, token) for a heatmap: raw token text and a weight in [-1, 1].

    ``weight`` is the attribution divided by the largest |attribution| of that document and
    method (all 0 when every attribution is 0). ``gap_before`` is the raw text between the
    previous token and this one, so concatenating ``gap_before + token`` over a document's
    rows gives back its ``text``. Token text is returned exactly as in the input: escaping
    is the renderer's job.
    """
    rows: list[dict[str, Any]] = []
    for doc in explanations.documents:
        for name in explanations.methods if method is None else (method,):
            values = doc.attributions.get(name)
            if values is None:
                continue
            scale = max((abs(v) for v in values), default=0.0)
            previous_end = 0
            for position, (token, (begin, end), value) in enumerate(
                zip(doc.tokens, doc.spans, values, strict=True)
            ):
                rows.append(
                    {
                        "document": doc.index,
                        "method": name,
                        "position": position,
                        "token": token,
                        "gap_before": doc.text[previous_end:begin],
                        "start": begin,
                        "end": end,
                        "attribution": _finite(value),
                        "weight": max(-1.0, min(1.0, value / scale)) if scale > 0 and math.isfinite(scale) else 0.0,
                    }
                )
                previous_end = end
    return rows


def document_words(model: TextClassifier, texts: Sequence[str], *, batch_size: int = 64) -> list[tuple[str, ...]]:
    """The words the model sees of each text (raw substrings, truncated as :func:`explain_text`
    truncates): the units the explanations attribute to, for texts that were not explained."""
    _, tokenizer, _ = unpack_text_model(model)
    max_length = _max_length(model, tokenizer)
    out: list[tuple[str, ...]] = []
    texts = [str(t) for t in texts]
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        encoded = encode_texts(tokenizer, chunk, max_length, "cpu")
        out += [word_spans(encoded, row, text)[0] for row, text in enumerate(chunk)]
    return out


def lime_attributions(
    model: TextClassifier,
    document: DocumentExplanation,
    *,
    seed: int,
    lime_samples: int,
    max_length: int,
    batch_size: int = 32,
) -> tuple[float, ...]:
    """LIME's word attributions of an explained ``document`` (its words, its explained class)
    with ``seed`` as LIME's random state: with the seed of the run, the attributions the
    run found."""
    hf_model, tokenizer, device = unpack_text_model(model)
    weights, _, _ = _lime(
        hf_model, tokenizer, document.text, document.tokens, document.target, max_length, device, lime_samples, batch_size, seed
    )
    return weights


def ig_baseline(input_ids: torch.Tensor, special_tokens_mask: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """The IG baseline: every ordinary token replaced by ``pad_token_id``, special tokens kept."""
    import torch

    return torch.where(special_tokens_mask.bool(), input_ids, torch.full_like(input_ids, pad_token_id))


# -- model plumbing (shared with text_quality) and internals -------------------------------------
def unpack_text_model(model: Any) -> tuple[Any, Any, Any]:
    """``(hf_model, tokenizer, device)`` of a text classifier adapter, or a ModelError saying what it lacks."""
    hf_model = getattr(model, "model", None)
    tokenizer = getattr(model, "tokenizer", None)
    if hf_model is None or tokenizer is None or not hasattr(hf_model, "get_input_embeddings"):
        raise ModelError(
            NOT_TEXT_MODEL_MESSAGE,
            hint="load a text model folder written by `guardrail train` (bert-tiny or pretrained)",
        )
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(NOT_TEXT_MODEL_MESSAGE, hint="the tokenizer must be a fast (Rust) tokenizer: offsets are needed")
    if tokenizer.pad_token_id is None:
        raise ModelError(NOT_TEXT_MODEL_MESSAGE, hint="the tokenizer has no pad token, which the IG baseline and LIME use")
    device = getattr(model, "device", None) or next(hf_model.parameters()).device
    return hf_model, tokenizer, device


def _max_length(model: Any, tokenizer: Any) -> int:
    description = getattr(model, "description", None) or {}
    if "max_length" in description:
        return int(description["max_length"])
    limit = int(getattr(tokenizer, "model_max_length", 512) or 512)
    return min(limit, 512)


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int, device: Any) -> Any:
    """``texts`` tokenised for the model (padded, truncated to ``max_length``, with offsets), on ``device``."""
    encoded = tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    for key in ("input_ids", "attention_mask", "special_tokens_mask"):
        encoded[key] = encoded[key].to(device)
    return encoded


def _forward_kwargs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
    import inspect

    import torch

    kwargs: dict[str, Any] = {"attention_mask": attention_mask}
    if "position_ids" in inspect.signature(model.forward).parameters:
        batch, length = input_ids.shape
        kwargs["position_ids"] = torch.arange(length, device=input_ids.device).repeat(batch, 1)
    return kwargs


def class_probabilities(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Softmax class probabilities of a batch, without gradients."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=input_ids, **_forward_kwargs(model, input_ids, attention_mask)).logits
    probs: torch.Tensor = logits.float().softmax(-1)
    return probs


def _layer_ig(
    model: Any,
    tokenizer: Any,
    encoded: Any,
    targets: torch.Tensor,
    n_steps: int,
    max_n_steps: int,
    tolerance: float,
    batch_size: int,
) -> dict[str, Any]:
    import torch

    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError:
        raise MissingExtraError("captum", "explain") from None

    input_ids = encoded["input_ids"]
    mask = encoded["attention_mask"]
    baseline = ig_baseline(input_ids, encoded["special_tokens_mask"], int(tokenizer.pad_token_id))
    uses_positions = "position_ids" in _forward_kwargs(model, input_ids[:1], mask[:1])

    def forward(ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        kwargs: dict[str, Any] = {"attention_mask": attention}
        if positions is not None:
            kwargs["position_ids"] = positions
        out: torch.Tensor = model(input_ids=ids, **kwargs).logits.float().softmax(-1)
        return out

    probs_x = class_probabilities(model, input_ids, mask)
    probs_b = class_probabilities(model, baseline, mask)
    index = torch.arange(len(targets), device=targets.device)
    difference = (probs_x[index, targets] - probs_b[index, targets]).cpu()
    n = len(input_ids)
    result: dict[str, list[Any]] = {
        "attributions": [None] * n,
        "delta": [math.nan] * n,
        "difference": difference.tolist(),
        "n_steps": [0] * n,
        "converged": [False] * n,
    }
    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    todo = list(range(n))
    steps = n_steps
    while todo:
        rows = torch.tensor(todo, device=input_ids.device)
        ids = input_ids[rows]
        extra: tuple[torch.Tensor, ...] = (mask[rows],)
        if uses_positions:
            extra += (torch.arange(ids.shape[1], device=ids.device).repeat(len(todo), 1),)
        attributions, delta = lig.attribute(
            inputs=ids,
            baselines=baseline[rows],
            target=targets[rows].tolist(),
            additional_forward_args=extra,
            n_steps=steps,
            internal_batch_size=max(len(todo), batch_size * 4),
            return_convergence_delta=True,
        )
        per_token = attributions.sum(dim=-1).detach().float().cpu()
        delta = delta.detach().float().cpu()
        remaining = []
        for j, row in enumerate(todo):
            allowed = tolerance * max(abs(result["difference"][row]), DELTA_FLOOR)
            ok = abs(float(delta[j])) <= allowed
            result["attributions"][row] = per_token[j]
            result["delta"][row] = float(delta[j])
            result["n_steps"][row] = steps
            result["converged"][row] = ok
            if not ok and steps * 2 <= max_n_steps:
                remaining.append(row)
        todo = remaining
        steps *= 2
    return result


def word_spans(encoded: Any, row: int, text: str) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...], int]:
    """The words the model saw (raw substrings), their spans, and where the visible text ends."""
    offsets = encoded["offset_mapping"][row].tolist()
    spans: dict[int, list[int]] = {}
    for word, (begin, end) in zip(encoded.word_ids(row), offsets, strict=True):
        if word is None or end <= begin:
            continue
        span = spans.setdefault(word, [begin, end])
        span[0], span[1] = min(span[0], begin), max(span[1], end)
    ordered = [(spans[w][0], spans[w][1]) for w in sorted(spans)]
    cut = ordered[-1][1] if ordered else 0
    return tuple(text[b:e] for b, e in ordered), tuple(ordered), cut


def word_of_token(word_ids: Sequence[int | None], offsets: Sequence[Sequence[int]]) -> np.ndarray:
    """The word position (as in :func:`word_spans`) of each token; -1 for a token that belongs to
    no word (special tokens)."""
    import numpy as np

    kept = sorted({w for w, (b, e) in zip(word_ids, offsets, strict=True) if w is not None and e > b})
    position = {w: i for i, w in enumerate(kept)}
    return np.asarray([position.get(w, -1) if w is not None else -1 for w in word_ids], dtype=np.int64)


def _per_word(per_token: torch.Tensor, word_ids: Sequence[int | None], offsets: Sequence[Sequence[int]]) -> tuple[float, ...]:
    """Sum the piece attributions of each word, words numbered as in :func:`word_spans`."""
    word_of = word_of_token(word_ids, offsets)
    values = [0.0] * (int(word_of.max()) + 1 if len(word_of) else 0)
    for value, word in zip(per_token.tolist(), word_of.tolist(), strict=True):
        if word >= 0:
            values[word] += float(value)
    return tuple(values)


def _lime(
    model: Any,
    tokenizer: Any,
    text: str,
    words: tuple[str, ...],
    target: int,
    max_length: int,
    device: Any,
    samples: int,
    batch_size: int,
    seed: int,
) -> tuple[tuple[float, ...], float | None, float | None]:
    if not words:
        return (), None, None
    try:
        from lime.lime_text import LimeTextExplainer
    except ImportError:
        raise MissingExtraError("lime", "explain") from None

    def split(raw: str) -> list[str]:
        if raw != text:  # LIME only ever splits the instance it explains
            raise ModelError("LIME asked to split a different text than the one explained")
        return list(words)

    explainer = LimeTextExplainer(
        split_expression=split,
        bow=False,
        mask_string=str(tokenizer.pad_token),
        feature_selection="none",
        random_state=seed,
    )
    classifier = _batched_classifier(model, tokenizer, max_length, device, batch_size)
    explanation = explainer.explain_instance(
        text, classifier, labels=(target,), num_features=len(words), num_samples=samples
    )
    indexed = explanation.domain_mapper.indexed_string
    if indexed.num_words() != len(words):
        raise ModelError(f"LIME split the text into {indexed.num_words()} words, expected {len(words)}")
    weights = [0.0] * len(words)
    for feature, weight in explanation.local_exp[target]:
        weights[int(feature)] = float(weight)
    score = float(explanation.score[target]) if isinstance(explanation.score, dict) else float(explanation.score)
    intercept = float(explanation.intercept[target])
    return tuple(weights), score, intercept


def _batched_classifier(
    model: Any, tokenizer: Any, max_length: int, device: Any, batch_size: int
) -> Callable[[Sequence[str]], np.ndarray]:
    import numpy as np

    def classify(texts: Sequence[str]) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(
                [str(t) for t in texts[start : start + batch_size]],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            probs = class_probabilities(model, enc["input_ids"].to(device), enc["attention_mask"].to(device))
            parts.append(probs.cpu().numpy().astype(np.float64))
        return np.concatenate(parts) if parts else np.zeros((0, 0))

    return classify


def _top_indices(values: np.ndarray, k: int) -> list[int]:
    import numpy as np

    order = np.lexsort((np.arange(len(values)), -values))  # largest first, ties by position
    return [int(i) for i in order[:k]]


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    import numpy as np

    if len(a) < 2:
        return None

    def ranks(values: np.ndarray) -> np.ndarray:
        order = values.argsort(kind="stable")
        out = np.empty(len(values), dtype=np.float64)
        sorted_values = values[order]
        i = 0
        while i < len(values):  # average ranks for ties
            j = i
            while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
                j += 1
            out[order[i : j + 1]] = (i + j) / 2.0
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
