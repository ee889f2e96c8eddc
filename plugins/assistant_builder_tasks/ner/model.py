"""The token classification model: a pretrained encoder, dropout and a linear layer per token.

The same network as transformers' ``*ForTokenClassification``, and saved as one: the folder loads
with ``pipeline("token-classification", model=folder)`` or ``AutoModelForTokenClassification``
(see ``_encoder.py`` for the layout). This module imports torch and is only imported when a model is built or loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from assistant_builder_tasks._encoder import (
    bundle_files, load_encoder, load_head_weights, load_legacy_head, load_model_folder, read_legacy_head_config,
    save_model_folder, set_labels, task_config, tokenizer_files,
)

MAPPING = "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING"
LEGACY_HEAD_FILE = "token_classification_head.safetensors"
LEGACY_HEAD_CONFIG = "token_classification_head.json"


class TokenClassifier(nn.Module):
    """Encoder + dropout + linear layer on every token. ``forward`` returns ``{"logits": [B, T, C], ["loss"]}``."""

    head_modules = ("classifier",)
    #: tokenizer_config.json / special_tokens_map.json contents written with the model
    tokenizer_files: dict[str, dict[str, Any]] = {}

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    @property
    def config(self) -> Any:
        return self.encoder.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and getattr(self.encoder.config, "type_vocab_size", 0) > 0:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        logits = self.classifier(self.dropout(hidden))
        output = {"logits": logits}
        if labels is not None:
            # mean over labelled tokens (first sub-token of each word); 0 for a batch without any
            flat = labels.reshape(-1)
            total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), flat, ignore_index=-100, reduction="sum")
            output["loss"] = total / (flat != -100).sum().clamp(min=1)
        return output

    def save_pretrained(self, directory: Path, labels: list[str]) -> None:
        """Save as transformers' ``*ForTokenClassification`` of the encoder's model type."""
        set_labels(self.encoder, labels)
        save_model_folder(directory, self.encoder, {"classifier": self.classifier}, mapping=MAPPING,
                          tokenizer_files=self.tokenizer_files)

    def hf_config_files(self) -> dict[str, dict[str, Any]]:
        """config.json and tokenizer configs for an exported bundle (read by the onnx exporter)."""
        config = task_config(self.encoder, {"classifier": self.classifier}, mapping=MAPPING)
        return bundle_files(config, self.tokenizer_files)


def build_token_classifier(base_model: Path, num_labels: int, dropout: float) -> TokenClassifier:
    """Load the encoder from ``base_model`` and put a fresh token classification head on it."""
    model = TokenClassifier(load_encoder(base_model), num_labels, dropout)
    model.tokenizer_files = tokenizer_files(base_model)
    return model


def load_token_classifier(directory: Path) -> TokenClassifier:
    """Load a model saved by ``TokenClassifier.save_pretrained`` (or by an earlier version), eval mode."""
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
