"""Token attributions for Hugging Face text classifiers: Layer Integrated Gradients and LIME.

The public names of text explanations, importable from one place. They live in modules
with one job each, shaped as the tabular side is:

* :mod:`~guardrail.explain.text_model` — the classifier unpacked, documents tokenised into
  words (:func:`document_words`), class probabilities (as :mod:`~guardrail.explain.tabular`);
* :mod:`~guardrail.explain.text_attribution` — Layer Integrated Gradients with its
  completeness check and the all-pad baseline (:func:`ig_baseline`), LIME over words
  (:func:`lime_attributions`) (as :mod:`~guardrail.explain.attribution` and
  :mod:`~guardrail.explain.lime_batch`);
* :mod:`~guardrail.explain.text_engine` — :func:`explain_text` and its
  :class:`TextExplanations` (as :mod:`~guardrail.explain.engine`);
* :mod:`~guardrail.explain.text_summary` — plain data for reports: :func:`token_agreement`,
  :func:`global_token_importance`, :func:`token_heatmap_rows`;
* :mod:`~guardrail.explain.text_quality` — faithfulness curves and LIME reruns, which run
  the model again (as :mod:`~guardrail.explain.quality`);
* :mod:`~guardrail.explain.text_results` — the audit's metrics and artifacts (as
  :mod:`~guardrail.explain.results`).

torch, captum, transformers and lime are imported inside the functions that need them.
"""

from __future__ import annotations

from guardrail.explain.methods import DELTA_FLOOR
from guardrail.explain.text_attribution import ig_baseline, lime_attributions
from guardrail.explain.text_engine import TEXT_METHODS, DocumentExplanation, TextExplanations, TextMethod, explain_text
from guardrail.explain.text_model import document_words
from guardrail.explain.text_summary import global_token_importance, token_agreement, token_heatmap_rows

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
