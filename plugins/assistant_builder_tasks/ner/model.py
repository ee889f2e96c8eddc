"""The token classification model: a pretrained encoder, dropout and a linear layer per token.

This module imports torch and is only imported when a model is built or loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from assistant_builder_tasks._encoder import load_encoder, load_head, read_head_config, save_encoder_and_head

HEAD_FILE = "token_classification_head.safetensors"
HEAD_CONFIG = "token_classification_head.json"


class TokenClassifier(nn.Module):
    """Encoder + dropout + linear layer on every token. ``forward`` returns ``{"logits": [B, T, C], ["loss"]}``."""

    head_modules = ("classifier",)

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
        """Save the encoder in Hugging Face format plus the head (safetensors) and its config."""
        save_encoder_and_head(self.encoder, self.classifier, directory, HEAD_FILE, HEAD_CONFIG,
                              {"labels": list(labels), "num_labels": len(labels)}, list(labels))


def build_token_classifier(base_model: Path, num_labels: int, dropout: float) -> TokenClassifier:
    """Load the encoder from ``base_model`` and put a fresh token classification head on it."""
    return TokenClassifier(load_encoder(base_model), num_labels, dropout)


def load_token_classifier(directory: Path) -> TokenClassifier:
    """Load a model saved by ``TokenClassifier.save_pretrained`` (eval mode)."""
    head = read_head_config(directory, HEAD_CONFIG)
    model = TokenClassifier(load_encoder(Path(directory)), head["num_labels"], 0.0)
    load_head(model.classifier, directory, HEAD_FILE)
    return model.eval()
