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
    """Encoder + dropout + linear layer on every token. ``forward`` returns ``{"logits": [B, T, C], ["loss"]}``.

    With ``word_shapes > 0`` a learned embedding of each token's word shape (``shapes.py``, input
    ``shape_ids``) is added to its word-piece embedding before the encoder. It starts at zero, so
    training starts from the pretrained encoder exactly.
    """

    #: tokenizer_config.json / special_tokens_map.json contents written with the model
    tokenizer_files: dict[str, dict[str, Any]] = {}

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1, word_shapes: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)
        self.shape_embedding = nn.Embedding(word_shapes, encoder.config.hidden_size) if word_shapes else None
        if self.shape_embedding is not None:
            nn.init.zeros_(self.shape_embedding.weight)
        self.head_modules = ("classifier", "shape_embedding") if word_shapes else ("classifier",)

    def _heads(self) -> dict[str, nn.Module]:
        heads: dict[str, nn.Module] = {"classifier": self.classifier}
        if self.shape_embedding is not None:
            heads["shape_embedding"] = self.shape_embedding
        return heads

    @property
    def config(self) -> Any:
        return self.encoder.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, shape_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.shape_embedding is not None:
            if shape_ids is None:
                raise ValueError("this model adds word-shape embeddings: forward() needs shape_ids (one per token)")
            kwargs = {"inputs_embeds": self.encoder.get_input_embeddings()(input_ids) + self.shape_embedding(shape_ids),
                      "attention_mask": attention_mask}
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
        save_model_folder(directory, self.encoder, self._heads(), **self._folder_kind(), tokenizer_files=self.tokenizer_files)

    def _folder_kind(self) -> dict[str, Any]:
        """A standard ``*ForTokenClassification`` folder, or (with word shapes, which no stock class has) one
        that records ``word_shapes`` and loads with assistant-builder."""
        if self.shape_embedding is None:
            return {"mapping": MAPPING}
        return {"updates": {"word_shapes": self.shape_embedding.num_embeddings}}

    def hf_config_files(self) -> dict[str, dict[str, Any]]:
        """config.json and tokenizer configs for an exported bundle (read by the onnx exporter)."""
        config = task_config(self.encoder, self._heads(), **self._folder_kind())
        return bundle_files(config, self.tokenizer_files)


def build_token_classifier(base_model: Path, num_labels: int, dropout: float, word_shapes: int = 0) -> TokenClassifier:
    """Load the encoder from ``base_model`` and put a fresh token classification head (and shape embedding) on it."""
    model = TokenClassifier(load_encoder(base_model), num_labels, dropout, word_shapes)
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
        model = TokenClassifier(encoder, config.num_labels, 0.0, int(getattr(config, "word_shapes", 0) or 0))
        heads = model._heads()
        stray = {k: v for k, v in head.items() if not k.startswith(tuple(f"{name}." for name in heads))}  # reported as unexpected
        for name, module in heads.items():
            load_head_weights(module, name, {**{k: v for k, v in head.items() if k.startswith(name + ".")}, **stray}, directory)
    model.tokenizer_files = tokenizer_files(directory)
    return model.eval()
