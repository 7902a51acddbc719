"""How good are token explanations: checks that run the text classifier again.

* :func:`faithfulness_curves`: deletion and insertion curves per explained document. The
  document's words are removed in order of decreasing attribution toward the explained
  class (every piece of a removed word becomes the pad token, special tokens and the
  attention mask stay: the baseline Integrated Gradients uses), and the explained class's
  probability is recorded after each step; insertion starts from the all-removed baseline
  and puts the words back in the same order. A document of ``W`` words is scored at
  ``min(steps, W) + 1`` evenly spaced word counts (every count when ``W ≤ steps``), so a
  document costs at most ``2 × (steps + 1)`` model inputs per order, scored in batches; the
  areas under the curves (word fraction on ``[0, 1]``) are the deletion AUC (lower is
  better) and the insertion AUC (higher is better). The same curves under a random word
  order (seeded) are the reference a faithful explanation should beat.
* :func:`lime_reruns`: LIME on the first explained documents again under other seeds, for
  the top-k stability of :func:`guardrail.explain.quality.stability`.

torch is imported by the functions of :mod:`~guardrail.explain.text_model` these call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from guardrail.explain.text_attribution import lime_attributions
from guardrail.explain.text_engine import TextExplanations
from guardrail.explain.text_model import (
    TextClassifier,
    class_probabilities,
    encode_texts,
    unpack_text_model,
    word_of_token,
    word_spans,
)

FAITHFULNESS_STEPS = 10
"""Steps of the deletion and insertion curves: word fractions 0, 0.1, …, 1 (fewer for shorter documents)."""

RANDOM_ORDER = "random"
"""The name of the reference order in :attr:`FaithfulnessCurves.deletion`."""


@dataclass(frozen=True)
class FaithfulnessCurves:
    """Deletion and insertion curves of the explained documents that have words.

    ``documents[i]`` is a position in ``TextExplanations.documents``; ``fractions[i]`` the
    share of that document's words removed (deletion) or inserted (insertion) at each point
    of its curves; ``deletion[order][i]`` and ``insertion[order][i]`` the explained class's
    probability at those points, where ``order`` is a method or :data:`RANDOM_ORDER`.
    ``skipped`` counts explained documents without curves: no words, or a re-tokenisation
    that did not give back the explained words.
    """

    documents: tuple[int, ...]
    fractions: tuple[np.ndarray, ...]
    deletion: Mapping[str, tuple[np.ndarray, ...]]
    insertion: Mapping[str, tuple[np.ndarray, ...]]
    steps: int
    seed: int
    skipped: int

    def deletion_auc(self, order: str) -> np.ndarray:
        """Area under each document's deletion curve, ``(len(documents),)``."""
        return self._auc(self.deletion[order])

    def insertion_auc(self, order: str) -> np.ndarray:
        """Area under each document's insertion curve, ``(len(documents),)``."""
        return self._auc(self.insertion[order])

    def _auc(self, curves: tuple[np.ndarray, ...]) -> np.ndarray:
        return np.asarray(
            [np.trapezoid(y, x) for y, x in zip(curves, self.fractions, strict=True)],
            dtype=np.float64,
        )


def word_counts(words: int, steps: int) -> np.ndarray:
    """The word counts a curve is scored at: ``min(steps, words) + 1`` evenly spaced counts from 0 to ``words``.

    >>> word_counts(25, 10).tolist()
    [0, 2, 5, 8, 10, 12, 15, 18, 20, 22, 25]
    >>> word_counts(3, 10).tolist()
    [0, 1, 2, 3]
    """
    return np.round(np.linspace(0, words, min(steps, words) + 1)).astype(np.int64)


def attribution_order(attributions: Sequence[float]) -> np.ndarray:
    """Word positions by decreasing attribution (ties: earlier word first)."""
    values = np.asarray(attributions, dtype=np.float64)
    return np.lexsort((np.arange(len(values)), -values))


def faithfulness_curves(
    model: TextClassifier,
    explanations: TextExplanations,
    *,
    steps: int = FAITHFULNESS_STEPS,
    batch_size: int = 64,
    seed: int = 0,
) -> FaithfulnessCurves:
    """Deletion and insertion curves of every explained document, per method and for a random order.

    Each document is tokenised again as the model saw it (``document.text``, already cut to
    what the model reads); the random order of the ``i``-th document with words is the
    ``i``-th permutation drawn from ``numpy.random.default_rng(seed)``.
    """
    import torch

    hf_model, tokenizer, device = unpack_text_model(model)
    pad = int(tokenizer.pad_token_id)
    rng = np.random.default_rng(seed)
    orders_named = (*explanations.methods, RANDOM_ORDER)
    kept: list[int] = []
    fractions: list[np.ndarray] = []
    deletion: dict[str, list[np.ndarray]] = {o: [] for o in orders_named}
    insertion: dict[str, list[np.ndarray]] = {o: [] for o in orders_named}
    skipped = 0
    for position, doc in enumerate(explanations.documents):
        n_words = len(doc.tokens)
        if not n_words:
            skipped += 1
            continue
        encoded = encode_texts(tokenizer, [doc.text], explanations.max_length, device)
        _, spans, _ = word_spans(encoded, 0, doc.text)
        if spans != doc.spans:
            skipped += 1
            continue
        word_of = word_of_token(encoded.word_ids(0), encoded["offset_mapping"][0].tolist())
        orders = {
            m: attribution_order(doc.attributions[m]) for m in explanations.methods
        }
        orders[RANDOM_ORDER] = rng.permutation(n_words)
        counts = word_counts(n_words, steps)
        # one row per curve point: which words are absent (True = replaced by the pad token)
        absent = []
        for name in orders_named:
            rank = np.empty(n_words, dtype=np.int64)
            rank[orders[name]] = np.arange(n_words)
            # deletion: the c first words removed; insertion: only the c first words present
            absent += [rank < c for c in counts]
            absent += [rank >= c for c in counts]
        states, inverse = np.unique(np.asarray(absent), axis=0, return_inverse=True)
        ids = encoded["input_ids"][0]
        removable = torch.as_tensor(word_of >= 0, device=ids.device)
        which = torch.as_tensor(np.maximum(word_of, 0), device=ids.device)
        scores = []
        for start in range(0, len(states), batch_size):
            chunk = torch.as_tensor(
                states[start : start + batch_size], device=ids.device
            )
            remove = chunk[:, which] & removable[None, :]
            batch = torch.where(
                remove,
                torch.full_like(remove, pad, dtype=ids.dtype),
                ids[None, :].expand(len(chunk), -1),
            )
            mask = encoded["attention_mask"][0][None, :].expand(len(chunk), -1)
            scores.append(
                class_probabilities(hf_model, batch, mask)[:, doc.target]
                .cpu()
                .numpy()
                .astype(np.float64)
            )
        probability = np.concatenate(scores)[inverse.reshape(-1)]
        points = len(counts)
        for k, name in enumerate(orders_named):
            deletion[name].append(probability[(2 * k) * points : (2 * k + 1) * points])
            insertion[name].append(
                probability[(2 * k + 1) * points : (2 * k + 2) * points]
            )
        kept.append(position)
        fractions.append(counts / n_words)
    return FaithfulnessCurves(
        documents=tuple(kept),
        fractions=tuple(fractions),
        deletion={k: tuple(v) for k, v in deletion.items()},
        insertion={k: tuple(v) for k, v in insertion.items()},
        steps=steps,
        seed=seed,
        skipped=skipped,
    )


@dataclass(frozen=True)
class LimeReruns:
    """LIME's attributions of the first ``documents`` explained documents under each of ``seeds``.

    ``runs[s]`` is ``(documents, longest)``: one row per document, zero-padded after its
    last word (padding never enters a top-k set ahead of a word, see
    :func:`guardrail.explain.quality.top_k`). ``stopped`` is true when the time budget ended
    the reruns before ``requested`` documents.
    """

    seeds: tuple[int, ...]
    runs: tuple[np.ndarray, ...]
    documents: int
    requested: int
    stopped: bool


def lime_reruns(
    model: TextClassifier,
    explanations: TextExplanations,
    seeds: Sequence[int],
    *,
    instances: int,
    batch_size: int = 64,
    expired: Callable[[], bool] = lambda: False,
) -> LimeReruns:
    """LIME on the first ``instances`` explained documents again, once per seed; ``expired`` is
    checked before each document (a document is rerun under every seed or not at all)."""
    chosen = list(explanations.documents[:instances])
    rows: list[list[tuple[float, ...]]] = []
    stopped = False
    for doc in chosen:
        if expired():
            stopped = True
            break
        rows.append(
            [
                lime_attributions(
                    model,
                    doc,
                    seed=s,
                    lime_samples=explanations.lime_samples,
                    max_length=explanations.max_length,
                    batch_size=batch_size,
                )
                for s in seeds
            ]
        )
    longest = max((len(r[0]) for r in rows), default=0)
    runs = []
    for k in range(len(seeds)):
        matrix = np.zeros((len(rows), longest))
        for i, per_seed in enumerate(rows):
            matrix[i, : len(per_seed[k])] = per_seed[k]
        runs.append(matrix)
    return LimeReruns(tuple(seeds), tuple(runs), len(rows), len(chosen), stopped)
