"""Model builders: a tabular MLP from a small config, and Hugging Face BERT classifiers.

* :func:`build_mlp` — ``Linear → ReLU → … → Linear`` from an :class:`MLPConfig`
  (layers Opacus computes per-sample gradients for exactly).
* :func:`build_tiny_bert` — a ~0.7M-parameter ``BertForSequenceClassification`` from a
  ``BertConfig``, with a WordPiece tokenizer trained locally on the training texts with
  ``tokenizers`` (< 1 s): no download, nothing from a hub.
* :func:`load_pretrained` — a local folder only (``local_files_only=True``), safetensors
  weights only (``use_safetensors=True``), and never ``trust_remote_code``.

BERT's default ``position_ids`` buffer is a broadcast ``(1, L)`` tensor that every Opacus
grad-sample mode fails on; :func:`text_forward` always passes contiguous per-example
``position_ids = arange(L).repeat(B, 1)`` (``.expand`` is not enough for ghost mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.safety import refuse_pickle
from guardrail.adapters.torch import build_mlp_from_description, load_hf_classifier
from guardrail.errors import MissingExtraError, ModelError

if TYPE_CHECKING:
    import torch

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class MLPConfig:
    """A feed-forward classifier: ``in_features → hidden… → n_classes`` with ReLU between."""

    in_features: int
    n_classes: int
    hidden: tuple[int, ...] = (32,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "n_classes": self.n_classes,
            "hidden": list(self.hidden),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLPConfig:
        return cls(
            int(data["in_features"]),
            int(data["n_classes"]),
            tuple(int(h) for h in data["hidden"]),
        )


def build_mlp(config: MLPConfig) -> torch.nn.Module:
    """An ``nn.Sequential`` MLP (the same builder the torch adapter uses to load it)."""
    return build_mlp_from_description({"mlp": config.to_dict()})


@dataclass(frozen=True)
class TinyBertConfig:
    """Sizes of the tiny BERT (defaults: 2 layers, hidden 128, 2 heads, ~0.7M parameters with a 2k vocabulary)."""

    vocab_size: int = 2000
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 512
    max_length: int = 64


def train_wordpiece_tokenizer(
    texts: Sequence[str], vocab_size: int = 2000, max_length: int = 64
) -> Any:
    """A lower-casing WordPiece tokenizer trained on ``texts`` (a transformers fast tokenizer)."""
    try:
        from tokenizers import (
            Tokenizer,
            models,
            normalizers,
            pre_tokenizers,
            processors,
            trainers,
        )
        from transformers import PreTrainedTokenizerFast
    except ImportError:
        raise MissingExtraError("transformers", "privacy") from None
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


def build_tiny_bert(
    texts: Sequence[str], n_classes: int, config: TinyBertConfig | None = None
) -> tuple[Any, Any]:
    """A fresh tiny ``BertForSequenceClassification`` and its locally trained tokenizer."""
    config = config or TinyBertConfig()
    tokenizer = train_wordpiece_tokenizer(texts, config.vocab_size, config.max_length)
    from transformers import BertConfig, BertForSequenceClassification

    bert_config = BertConfig(  # type: ignore[call-arg]
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=max(config.max_length, 8),
        num_labels=n_classes,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForSequenceClassification(bert_config), tokenizer


def load_pretrained(folder: Path, n_classes: int | None = None) -> tuple[Any, Any]:
    """A sequence classifier and tokenizer from a local folder (safetensors only, no remote code)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(
            "the pretrained model folder does not exist",
            where=str(folder),
            hint="give a local folder",
        )
    for path in folder.iterdir():
        if path.is_file() and path.suffix.lower() in (
            ".pt",
            ".pth",
            ".pkl",
            ".bin",
            ".pickle",
            ".joblib",
        ):
            refuse_pickle(path)
    if not any(folder.glob("*.safetensors")):
        raise ModelError(
            "the pretrained model folder has no .safetensors weights",
            where=str(folder),
            hint="save the model with `model.save_pretrained(folder)` (safetensors is the default)",
        )
    return load_hf_classifier(folder, num_labels=n_classes, what="pretrained model")


def text_forward(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Logits of a HF sequence classifier with contiguous per-example ``position_ids`` (Opacus-safe)."""
    import torch

    batch, length = input_ids.shape
    position_ids = torch.arange(length, device=input_ids.device).repeat(batch, 1)
    # input_ids positionally: Opacus' expanded-weights (ew) wrapper requires one positional input
    out = model(input_ids, attention_mask=attention_mask, position_ids=position_ids)
    logits: torch.Tensor = out.logits if hasattr(out, "logits") else out[0]
    return logits
