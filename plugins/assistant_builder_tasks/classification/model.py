"""The classification model: a pretrained encoder, pooling, dropout and a linear head.

Mean pooling is the default because sentence encoders such as all-MiniLM-L6-v2 were trained with
it and ship no trained pooler; a CLS head on them starts from a random pooler and learns slowly.
This module imports torch and is only imported when a model is built or loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from assistant_builder_tasks._encoder import load_encoder, load_head, read_head_config, save_encoder_and_head

HEAD_FILE = "classification_head.safetensors"
HEAD_CONFIG = "classification_head.json"


class SequenceClassifier(nn.Module):
    """Encoder + pooling + dropout + linear head. ``forward`` returns ``{"logits", ["loss"]}``."""

    head_modules = ("classifier",)

    def __init__(self, encoder: nn.Module, num_labels: int, pooling: str = "mean", dropout: float = 0.1,
                 class_weights: list[float] | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        hidden = encoder.config.hidden_size
        self.classifier = nn.Linear(hidden, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        self.label_smoothing = label_smoothing

    @property
    def config(self) -> Any:
        return self.encoder.config

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and getattr(self.encoder.config, "type_vocab_size", 0) > 0:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        logits = self.classifier(self.dropout(self.pool(hidden, attention_mask)))
        output = {"logits": logits}
        if labels is not None:
            output["loss"] = F.cross_entropy(logits.float(), labels, weight=self.class_weights, label_smoothing=self.label_smoothing)
        return output

    def save_pretrained(self, directory: Path, labels: list[str]) -> None:
        """Save the encoder in Hugging Face format plus the head (safetensors) and its config."""
        save_encoder_and_head(self.encoder, self.classifier, directory, HEAD_FILE, HEAD_CONFIG,
                              {"pooling": self.pooling, "labels": list(labels), "num_labels": len(labels)}, list(labels))


def build_classifier(base_model: Path, num_labels: int, pooling: str, dropout: float,
                     class_weights: list[float] | None, label_smoothing: float) -> SequenceClassifier:
    """Load the encoder from ``base_model`` and put a fresh head on it."""
    return SequenceClassifier(load_encoder(base_model), num_labels, pooling, dropout, class_weights, label_smoothing)


def load_classifier(directory: Path) -> SequenceClassifier:
    """Load a classifier saved by ``SequenceClassifier.save_pretrained``."""
    head = read_head_config(directory, HEAD_CONFIG)
    model = SequenceClassifier(load_encoder(directory), head["num_labels"], head["pooling"], 0.0)
    load_head(model.classifier, directory, HEAD_FILE)
    return model.eval()
