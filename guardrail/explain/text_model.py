"""A Hugging Face text classifier as the text explainers see it: words in, probabilities out.

The text counterpart of :mod:`~guardrail.explain.tabular`. :func:`unpack_text_model` checks
an adapter (``model``, ``tokenizer``, ``device``) and returns its parts;
:func:`encode_texts` tokenises documents with offsets; :func:`class_probabilities` scores
a batch. Explanations are reported per *word*: :func:`word_spans` maps the pieces
(WordPiece/BPE tokens) the tokenizer made of one pre-tokenised word back to a raw substring
of the input (never lowercased, never escaped: the report escapes), and :func:`per_word`
sums the pieces' attributions, so every method attributes to the same units.
:func:`document_words` gives those words for any text.

torch is imported inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from guardrail.core.errors import ModelError

if TYPE_CHECKING:
    import numpy as np
    import torch

NOT_TEXT_MODEL_MESSAGE = "text explanations need a Hugging Face text classifier with a tokenizer"


class TextClassifier(Protocol):
    """What the text explainers need: :class:`~guardrail.adapters.torch.TorchAdapter` has it."""

    model: Any
    tokenizer: Any
    device: str


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


def max_input_length(model: Any, tokenizer: Any) -> int:
    """The tokens the model reads of a document: the model folder's ``max_length``, else the
    tokenizer's limit, at most 512."""
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


def forward_kwargs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
    """The model's keyword inputs besides ``input_ids``: the attention mask and, where the model
    takes them, contiguous ``position_ids`` (``arange(L).repeat(B, 1)``, the form BERT needs
    under Opacus and Captum's batch expansion)."""
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
        logits = model(input_ids=input_ids, **forward_kwargs(model, input_ids, attention_mask)).logits
    probs: torch.Tensor = logits.float().softmax(-1)
    return probs


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


def per_word(per_token: torch.Tensor, word_ids: Sequence[int | None], offsets: Sequence[Sequence[int]]) -> tuple[float, ...]:
    """Sum the piece attributions of each word, words numbered as in :func:`word_spans`."""
    word_of = word_of_token(word_ids, offsets)
    values = [0.0] * (int(word_of.max()) + 1 if len(word_of) else 0)
    for value, word in zip(per_token.tolist(), word_of.tolist(), strict=True):
        if word >= 0:
            values[word] += float(value)
    return tuple(values)


def document_words(model: TextClassifier, texts: Sequence[str], *, batch_size: int = 64) -> list[tuple[str, ...]]:
    """The words the model sees of each text (raw substrings, truncated as
    :func:`~guardrail.explain.text_engine.explain_text` truncates): the units the explanations
    attribute to, for texts that were not explained."""
    _, tokenizer, _ = unpack_text_model(model)
    max_length = max_input_length(model, tokenizer)
    out: list[tuple[str, ...]] = []
    texts = [str(t) for t in texts]
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        encoded = encode_texts(tokenizer, chunk, max_length, "cpu")
        out += [word_spans(encoded, row, text)[0] for row, text in enumerate(chunk)]
    return out
