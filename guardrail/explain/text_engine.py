"""Explain a text classifier's predictions on a list of documents, within a time budget.

The text counterpart of :mod:`~guardrail.explain.engine`. :func:`explain_text` explains a
:class:`~guardrail.adapters.torch.TorchAdapter` (or any object with ``model``,
``tokenizer`` and ``device``) on a list of texts with Layer Integrated Gradients and/or
LIME (:mod:`~guardrail.explain.text_attribution`) and returns one frozen
:class:`TextExplanations`. Documents are tokenised and scored in batches of
``batch_size``; both methods report per word (:mod:`~guardrail.explain.text_model`).

torch, captum, transformers and lime are imported inside the functions that need them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from guardrail.core.errors import MissingExtraError
from guardrail.core.serialize import finite_or_none
from guardrail.explain.text_attribution import LayerIGResult, layer_integrated_gradients, word_lime
from guardrail.explain.text_model import (
    TextClassifier,
    class_probabilities,
    encode_texts,
    max_input_length,
    per_word,
    unpack_text_model,
    word_spans,
)

if TYPE_CHECKING:
    from guardrail.explain.budget import Progress

TextMethod = Literal["layer_ig", "lime"]
TEXT_METHODS: tuple[TextMethod, ...] = ("layer_ig", "lime")

UNKNOWN_METHOD_MESSAGE = "unknown text explanation method(s) {names}; choose from {known}"


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
            "probability": finite_or_none(self.probability),
            "target_probability": finite_or_none(self.target_probability),
            "attributions": {m: [finite_or_none(v) for v in a] for m, a in self.attributions.items()},
            "ig_delta": finite_or_none(self.ig_delta),
            "ig_output_difference": finite_or_none(self.ig_output_difference),
            "ig_n_steps": self.ig_n_steps,
            "ig_converged": self.ig_converged,
            "lime_score": finite_or_none(self.lime_score),
            "lime_intercept": finite_or_none(self.lime_intercept),
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
            "seconds": {k: finite_or_none(v) for k, v in self.seconds.items()},
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
    max_length = max_input_length(model, tokenizer)
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
        ig: LayerIGResult | None = None
        if "layer_ig" in chosen:
            tick = time.perf_counter()
            ig = layer_integrated_gradients(
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
            if ig is not None:
                attributions["layer_ig"] = per_word(
                    ig.attributions[row], encoded.word_ids(row), encoded["offset_mapping"][row].tolist()
                )
                extra.update(
                    ig_delta=float(ig.delta[row]),
                    ig_output_difference=float(ig.difference[row]),
                    ig_n_steps=int(ig.n_steps[row]),
                    ig_converged=bool(ig.converged[row]),
                )
            if "lime" in chosen:
                tick = time.perf_counter()
                weights, score, intercept = word_lime(
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
