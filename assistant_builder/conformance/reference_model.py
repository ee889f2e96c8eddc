"""The reference task's model: encoder -> mean pooling -> linear layer. Imports torch.

A module-level class (not one defined in a function), so exporters that pickle the whole model
(``torch.save``) can. Saved as a Hugging Face model folder with ``toolkit.hf_folder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from assistant_builder.toolkit.encoder import encoder_states, init_head_weights, load_encoder, pool
from assistant_builder.toolkit.hf_folder import load_head_weights, load_model_folder, save_model_folder, set_labels


class SentenceClassifier(nn.Module):
    """``forward`` returns ``{"logits": [batch, labels]}``, plus ``"loss"`` (cross-entropy) when ``labels`` are given."""

    head_modules = ("classifier",)

    def __init__(self, encoder: nn.Module, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)
        init_head_weights(self.classifier)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden = encoder_states(self.encoder, input_ids, attention_mask, token_type_ids)
        output = {"logits": self.classifier(pool(hidden, attention_mask, "mean"))}
        if labels is not None:
            output["loss"] = F.cross_entropy(output["logits"].float(), labels)
        return output

    def save_pretrained(self, directory: Path, labels: Sequence[str]) -> None:
        set_labels(self.encoder, list(labels))
        save_model_folder(directory, self.encoder, {"classifier": self.classifier})


def build_sentence_classifier(base_model: Path, num_labels: int) -> SentenceClassifier:
    """The pretrained encoder of ``base_model`` with a fresh mean-pooled linear head."""
    return SentenceClassifier(load_encoder(base_model), num_labels)


def load_sentence_classifier(directory: Path) -> SentenceClassifier:
    """A model saved by ``SentenceClassifier.save_pretrained``, eval mode."""
    encoder, heads, config = load_model_folder(directory)
    model = SentenceClassifier(encoder, config.num_labels)
    load_head_weights(model.classifier, "classifier", heads, directory)
    return model.eval()
