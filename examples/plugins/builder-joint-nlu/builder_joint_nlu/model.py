"""The joint model (JointBERT-style): one pretrained encoder, an intent head and a slot head.

The intent head reads a pooled vector of the utterance (mean of the token vectors by default:
sentence encoders such as all-MiniLM-L6-v2 were trained with mean pooling and ship no trained
pooler, so ``cls`` starts from an untrained vector); the slot head tags every token (the loss is
taken on each word's first sub-token). The two cross-entropy losses are summed, the slot loss
scaled by ``slot_loss_weight``.

A saved model folder holds the encoder in Hugging Face format (loadable with ``AutoModel``), both
heads in one safetensors file and a JSON describing them: no pickles. The encoder loading, pooling,
head initialisation, per-token loss and the heads file are assistant-builder's toolkit
(``assistant_builder.toolkit.encoder`` and ``.hf_folder``). This module imports torch; the task
imports it only to build or load a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from assistant_builder.toolkit.encoder import encoder_states, init_head_weights, load_encoder, masked_cross_entropy, pool
from assistant_builder.toolkit.hf_folder import load_heads_file, save_heads_file

HEADS_FILE = "joint_nlu_heads.safetensors"
HEADS_CONFIG = "joint_nlu_heads.json"


class JointIntentSlotModel(nn.Module):
    """``forward`` returns ``{"intent_logits": [B, I], "slot_logits": [B, T, S], ["loss"]}``."""

    head_modules = ("intent_classifier", "slot_classifier")

    def __init__(self, encoder: nn.Module, num_intents: int, num_tags: int, pooling: str = "mean", dropout: float = 0.1,
                 slot_loss_weight: float = 1.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.slot_loss_weight = slot_loss_weight
        self.dropout = nn.Dropout(dropout)
        hidden = encoder.config.hidden_size
        self.intent_classifier = nn.Linear(hidden, num_intents)
        self.slot_classifier = nn.Linear(hidden, num_tags)
        init_head_weights(self.intent_classifier, self.slot_classifier)

    @property
    def config(self) -> Any:
        return self.encoder.config

    def heads(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in self.head_modules}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                intent_labels: torch.Tensor | None = None, slot_labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden = self.dropout(encoder_states(self.encoder, input_ids, attention_mask, token_type_ids))
        output = {"intent_logits": self.intent_classifier(pool(hidden, attention_mask, self.pooling)),
                  "slot_logits": self.slot_classifier(hidden)}
        losses = []
        if intent_labels is not None:
            losses.append(masked_cross_entropy(output["intent_logits"], intent_labels))
        if slot_labels is not None:
            losses.append(self.slot_loss_weight * masked_cross_entropy(output["slot_logits"], slot_labels))
        if losses:
            output["loss"] = sum(losses[1:], losses[0])
        return output

    def save_pretrained(self, directory: Path, intents: list[str], tags: list[str]) -> None:
        """Write the encoder (Hugging Face format), both heads (safetensors) and their config."""
        from assistant_builder.atomic import atomic_write_json

        directory = Path(directory)
        self.encoder.save_pretrained(directory)
        save_heads_file(directory / HEADS_FILE, self.heads())
        atomic_write_json(directory / HEADS_CONFIG, {"format": 1, "pooling": self.pooling, "slot_loss_weight": self.slot_loss_weight,
                                                     "intents": list(intents), "tags": list(tags)})


def build_joint_model(base_model: Path, num_intents: int, num_tags: int, pooling: str, dropout: float,
                      slot_loss_weight: float) -> JointIntentSlotModel:
    """Load the encoder from ``base_model`` and put fresh intent and slot heads on it."""
    return JointIntentSlotModel(load_encoder(base_model), num_intents, num_tags, pooling, dropout, slot_loss_weight)


def load_joint_model(directory: Path) -> JointIntentSlotModel:
    """Load a model written by ``JointIntentSlotModel.save_pretrained`` (eval mode, CPU)."""
    directory = Path(directory)
    config = json.loads((directory / HEADS_CONFIG).read_text())
    model = JointIntentSlotModel(load_encoder(directory), len(config["intents"]), len(config["tags"]), config["pooling"], 0.0,
                                 config.get("slot_loss_weight", 1.0))
    load_heads_file(directory / HEADS_FILE, model.heads())
    return model.eval()
