"""Word attributions of a text classifier: Layer Integrated Gradients and LIME.

The text counterpart of :mod:`~guardrail.explain.attribution` and
:mod:`~guardrail.explain.lime_batch`. Both methods attribute the *probability* of the
target class, and both take a word replaced by the pad token as the word absent:

* :func:`layer_integrated_gradients` (Captum) on the model's input word-embedding layer
  (``model.get_input_embeddings()``). The baseline (:func:`ig_baseline`) replaces every
  ordinary token by the pad token and keeps the special tokens (``[CLS]``, ``[SEP]``) and
  the attention mask in place, so only the words change. ``position_ids`` are passed
  explicitly and contiguous (see :func:`~guardrail.explain.text_model.forward_kwargs`).
  Completeness is checked per document: the sum of the attributions must equal
  ``f(x) − f(baseline)`` up to ``tolerance × |f(x) − f(baseline)|`` (with a floor of
  :data:`~guardrail.explain.methods.DELTA_FLOOR`); when it does not, ``n_steps`` doubles up
  to ``max_n_steps`` and the result records whether it was reached.
* :func:`word_lime` (``lime.lime_text.LimeTextExplainer``) over the words of a document,
  each occurrence its own feature (``bow=False``); perturbed texts are scored in batches.
  :func:`lime_attributions` runs it again on an explained document under another seed.

torch, captum and lime are imported inside the functions that need them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guardrail.core.errors import MissingExtraError, ModelError
from guardrail.explain.methods import DELTA_FLOOR
from guardrail.explain.text_model import TextClassifier, class_probabilities, forward_kwargs, unpack_text_model

if TYPE_CHECKING:
    import numpy as np
    import torch

    from guardrail.explain.text_engine import DocumentExplanation


def ig_baseline(input_ids: torch.Tensor, special_tokens_mask: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """The IG baseline: every ordinary token replaced by ``pad_token_id``, special tokens kept."""
    import torch

    return torch.where(special_tokens_mask.bool(), input_ids, torch.full_like(input_ids, pad_token_id))


@dataclass(frozen=True)
class LayerIGResult:
    """Layer Integrated Gradients of a batch of documents, one entry per document.

    ``attributions[i]`` has one value per token (summed over the embedding dimension, on the
    CPU); ``difference[i]`` is ``f(x) − f(baseline)`` of the target class; ``delta[i]`` the
    convergence delta of the last run, made with ``n_steps[i]`` steps; ``converged[i]``
    whether that delta is within the tolerance.
    """

    attributions: tuple[torch.Tensor, ...]
    delta: tuple[float, ...]
    difference: tuple[float, ...]
    n_steps: tuple[int, ...]
    converged: tuple[bool, ...]


def layer_integrated_gradients(
    model: Any,
    tokenizer: Any,
    encoded: Any,
    targets: torch.Tensor,
    n_steps: int,
    max_n_steps: int,
    tolerance: float,
    batch_size: int,
) -> LayerIGResult:
    """Layer IG of the documents of ``encoded`` toward ``targets``, doubling the steps of the
    documents outside ``tolerance`` while the doubled count is at most ``max_n_steps``."""
    import torch

    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError:
        raise MissingExtraError("captum", "explain") from None

    input_ids = encoded["input_ids"]
    mask = encoded["attention_mask"]
    baseline = ig_baseline(input_ids, encoded["special_tokens_mask"], int(tokenizer.pad_token_id))
    uses_positions = "position_ids" in forward_kwargs(model, input_ids[:1], mask[:1])

    def forward(ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        kwargs: dict[str, Any] = {"attention_mask": attention}
        if positions is not None:
            kwargs["position_ids"] = positions
        out: torch.Tensor = model(input_ids=ids, **kwargs).logits.float().softmax(-1)
        return out

    probs_x = class_probabilities(model, input_ids, mask)
    probs_b = class_probabilities(model, baseline, mask)
    index = torch.arange(len(targets), device=targets.device)
    difference: list[float] = (probs_x[index, targets] - probs_b[index, targets]).cpu().tolist()
    n = len(input_ids)
    attributions: list[Any] = [None] * n
    deltas = [math.nan] * n
    used = [0] * n
    converged = [False] * n
    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    todo = list(range(n))
    steps = n_steps
    while todo:
        rows = torch.tensor(todo, device=input_ids.device)
        ids = input_ids[rows]
        extra: tuple[torch.Tensor, ...] = (mask[rows],)
        if uses_positions:
            extra += (torch.arange(ids.shape[1], device=ids.device).repeat(len(todo), 1),)
        found, delta = lig.attribute(
            inputs=ids,
            baselines=baseline[rows],
            target=targets[rows].tolist(),
            additional_forward_args=extra,
            n_steps=steps,
            internal_batch_size=max(len(todo), batch_size * 4),
            return_convergence_delta=True,
        )
        per_token = found.sum(dim=-1).detach().float().cpu()
        delta = delta.detach().float().cpu()
        remaining = []
        for j, row in enumerate(todo):
            allowed = tolerance * max(abs(difference[row]), DELTA_FLOOR)
            ok = abs(float(delta[j])) <= allowed
            attributions[row] = per_token[j]
            deltas[row] = float(delta[j])
            used[row] = steps
            converged[row] = ok
            if not ok and steps * 2 <= max_n_steps:
                remaining.append(row)
        todo = remaining
        steps *= 2
    return LayerIGResult(tuple(attributions), tuple(deltas), tuple(difference), tuple(used), tuple(converged))


def word_lime(
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
    """LIME's weights of ``words`` (the words of ``text``, in order) for class ``target``, its
    score and its intercept; ``((), None, None)`` for a text without words. A removed word is
    replaced by the pad token; ``seed`` is LIME's random state."""
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
    weights, _, _ = word_lime(
        hf_model, tokenizer, document.text, document.tokens, document.target, max_length, device, lime_samples, batch_size, seed
    )
    return weights


def _batched_classifier(
    model: Any, tokenizer: Any, max_length: int, device: Any, batch_size: int
) -> Callable[[Sequence[str]], np.ndarray]:
    """LIME's classifier function: probabilities of perturbed texts, ``batch_size`` per forward pass."""
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
