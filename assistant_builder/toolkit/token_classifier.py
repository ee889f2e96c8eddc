"""A ready token classification model: a pretrained encoder, dropout and a linear layer per token. Imports torch.

The same network as transformers' ``*ForTokenClassification``, and saved as one
(``hf_folder.save_model_folder``): the folder loads with ``pipeline("token-classification",
model=folder)`` or ``AutoModelForTokenClassification``. The built-in ``ner`` task uses it; any
task that gives one class per token (per word, at its first sub-token) can, with its own label
list. Import this module only where a model is built or loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from assistant_builder.toolkit.encoder import encoder_states, init_head_weights, load_encoder, masked_cross_entropy
from assistant_builder.toolkit.hf_folder import (
    bundle_files, load_head_weights, load_legacy_head, load_model_folder, read_legacy_head_config, save_model_folder, set_labels,
    task_config, tokenizer_files,
)

__all__ = ["TokenClassifier", "build_token_classifier", "load_token_classifier"]

MAPPING = "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING"
LEGACY_HEAD_FILE = "token_classification_head.safetensors"
LEGACY_HEAD_CONFIG = "token_classification_head.json"


class TokenClassifier(nn.Module):
    """Encoder + dropout + linear layer on every token.

    ``forward(input_ids, attention_mask, token_type_ids=None, labels=None)`` returns ``{"logits":
    [batch, tokens, classes]}``, plus ``"loss"`` (``encoder.masked_cross_entropy``, the mean over
    targets that are not -100) when ``labels`` ``[batch, tokens]`` are given. ``head_modules``
    names the new layer (LoRA keeps it trainable).
    """

    head_modules = ("classifier",)
    #: tokenizer_config.json / special_tokens_map.json contents written with the model
    tokenizer_files: dict[str, dict[str, Any]] = {}

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)
        init_head_weights(self.classifier)

    @property
    def config(self) -> Any:
        """The encoder's Hugging Face config (``id2label`` once saved or loaded)."""
        return self.encoder.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden = encoder_states(self.encoder, input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.dropout(hidden))
        output = {"logits": logits}
        if labels is not None:
            output["loss"] = masked_cross_entropy(logits, labels)
        return output

    def save_pretrained(self, directory: Path, labels: Sequence[str]) -> None:
        """Save as transformers' ``*ForTokenClassification`` of the encoder's model type, with ``labels`` as ``id2label``."""
        set_labels(self.encoder, list(labels))
        save_model_folder(directory, self.encoder, {"classifier": self.classifier}, mapping=MAPPING,
                          tokenizer_files=self.tokenizer_files)

    def hf_config_files(self) -> dict[str, dict[str, Any]]:
        """config.json and tokenizer configs for an exported bundle (read by the onnx exporter)."""
        config = task_config(self.encoder, {"classifier": self.classifier}, mapping=MAPPING)
        return bundle_files(config, self.tokenizer_files)


def build_token_classifier(base_model: Path, num_labels: int, dropout: float = 0.1) -> TokenClassifier:
    """Load the encoder from the model folder ``base_model`` and put a fresh ``num_labels``-class token head on it."""
    model = TokenClassifier(load_encoder(base_model), num_labels, dropout)
    model.tokenizer_files = tokenizer_files(base_model)
    return model


def load_token_classifier(directory: Path) -> TokenClassifier:
    """Load a model saved by ``TokenClassifier.save_pretrained`` (or by an earlier version's ``ner`` task), eval mode, CPU."""
    legacy = read_legacy_head_config(directory, LEGACY_HEAD_CONFIG)
    if legacy is not None:
        model = TokenClassifier(load_encoder(Path(directory)), legacy["num_labels"], 0.0)
        load_legacy_head(model.classifier, directory, LEGACY_HEAD_FILE)
    else:
        encoder, head, config = load_model_folder(directory)
        model = TokenClassifier(encoder, config.num_labels, 0.0)
        load_head_weights(model.classifier, "classifier", head, directory)
    model.tokenizer_files = tokenizer_files(directory)
    return model.eval()
