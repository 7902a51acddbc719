"""Hugging Face sequence classifiers from a local folder, loaded without running code from it.

* :func:`load_hf_classifier` — a classifier and its tokenizer with ``local_files_only=True``,
  ``use_safetensors=True`` and ``trust_remote_code=False``; a weight the architecture needs
  but the folder lacks is an error, never random values.
* :func:`load_hf_folder` — any such folder (not written by ``guardrail train``) with a fast
  tokenizer, given the column that holds the text: the classifier, its tokenizer and the
  model description the torch adapter works from.
* :func:`quiet_transformers` — transformers' progress bars and warnings hidden meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from guardrail.adapters.model_folder import HF_ARCHITECTURE, MODEL_FILE, MODEL_KIND
from guardrail.core.errors import MissingExtraError, ModelError, first_line

HEAD_PREFIXES = ("classifier.", "score.", "pre_classifier.")
"""Weights of a sequence-classification head, new when a pretrained encoder gets a head of its own."""
MAX_TOKENS = 512
"""Tokens per text for a Hugging Face folder whose spec gives no max_length (or the tokenizer's limit, if lower)."""


def load_hf_classifier(
    folder: Path, *, num_labels: int | None = None, what: str = "Hugging Face model"
) -> tuple[Any, Any]:
    """A sequence classifier and its tokenizer from a local folder: safetensors weights only,
    never remote code, nothing downloaded. ``num_labels`` re-heads a pretrained encoder."""
    try:
        from safetensors import SafetensorError
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError:
        raise MissingExtraError("transformers", "privacy") from None
    kwargs: dict[str, Any] = {"num_labels": num_labels} if num_labels is not None else {}
    try:
        with quiet_transformers():  # its log lines (several per warning) would break the one-line error
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                folder, local_files_only=True, use_safetensors=True, trust_remote_code=False, output_loading_info=True,
                **kwargs,
            )
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError, SafetensorError) as exc:
        # a config, tokenizer or weights file that is not what it claims: transformers and its
        # tokenizers raise any of these (often over several lines); nothing from the folder ran
        raise ModelError(
            f"cannot load the {what} ({type(exc).__name__}: {first_line(exc)})",
            where=str(folder),
            hint="the folder must hold a Hugging Face sequence classifier saved with save_pretrained "
            "(safetensors weights, a fast tokenizer, no custom code)",
        ) from None
    except RuntimeError as exc:  # transformers: a checkpoint whose classifier head has another size
        raise ModelError(
            f"cannot load the {what}: {first_line(exc)}",
            where=str(folder),
            hint="start from an encoder without a classification head, or keep its number of classes",
        ) from None
    # transformers fills weights it did not find with random ones and only logs it: a new head is
    # expected when re-heading an encoder, anything else means the folder is not the model it claims
    fresh = tuple(HEAD_PREFIXES) if num_labels is not None else ()
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(fresh))
    if missing:
        raise ModelError(
            f"the {what} lacks {len(missing)} weight(s) its architecture needs (e.g. {', '.join(missing[:3])}); "
            "transformers would fill them with random values",
            where=str(folder),
            hint="save the complete model with model.save_pretrained(folder, safe_serialization=True)",
        )
    return model, tokenizer


def load_hf_folder(
    folder: Path, *, text_column: str | None, max_length: int | None, classes: Sequence[Any] | None
) -> tuple[Any, Any, dict[str, Any]]:
    """A Hugging Face sequence classifier folder from anywhere (not ``guardrail train``): the
    model, its fast tokenizer and its description. ``max_length`` and ``classes`` default to
    the tokenizer's limit (at most :data:`MAX_TOKENS`) and the config's ``id2label``."""
    if text_column is None:
        raise ModelError(
            f"a Hugging Face folder without {MODEL_FILE} needs the column that holds the text",
            where=str(folder),
            hint="add model.text_column to the spec",
        )
    model, tokenizer = load_hf_classifier(folder)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            "the folder's tokenizer is not a fast (Rust) tokenizer, which token explanations need",
            where=str(folder),
            hint="save the tokenizer with tokenizer.save_pretrained() from a fast tokenizer (tokenizer.json)",
        )
    id2label = getattr(model.config, "id2label", None) or {}
    labels = list(classes) if classes is not None else [id2label[i] for i in sorted(id2label)]
    if len(labels) != int(model.config.num_labels):
        raise ModelError(
            f"model.classes names {len(labels)} classes; the classifier has {model.config.num_labels} outputs",
            where=str(folder),
            hint="give one class per output, in the order of the outputs",
        )
    limit = int(getattr(tokenizer, "model_max_length", MAX_TOKENS) or MAX_TOKENS)
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None:
        limit = min(limit, int(positions))
    if max_length is not None and max_length > limit:
        raise ModelError(
            f"model.max_length {max_length} is more than the {limit} tokens this model reads",
            where=str(folder),
            hint=f"set model.max_length to at most {limit}, or leave it out",
        )
    description = {
        "kind": MODEL_KIND,
        "architecture": HF_ARCHITECTURE,
        "classes": labels,
        "features": [text_column],
        "text_column": text_column,
        "max_length": int(max_length or min(limit, MAX_TOKENS)),
        "source": str(folder),
    }
    return model, tokenizer, description


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' progress bars and warnings (its weight-loading report: guardrail checks the
    loading itself, see :func:`load_hf_classifier`) while inside; restores both settings."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
