"""The joint model (JointBERT-style): one pretrained encoder, an intent head and a slot head.

The intent head reads a pooled vector of the utterance (mean of the token vectors by default:
sentence encoders such as all-MiniLM-L6-v2 were trained with mean pooling and ship no trained
pooler, so ``cls`` starts from an untrained vector); the slot head tags every token (the loss is
taken on each word's first sub-token). The two cross-entropy losses are summed, the slot loss
scaled by ``slot_loss_weight``.

A saved model folder holds the encoder in Hugging Face format (loadable with ``AutoModel``), both
heads in one safetensors file and a JSON describing them: no pickles. This module imports torch;
the task imports it only to build or load a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

HEADS_FILE = "joint_nlu_heads.safetensors"
HEADS_CONFIG = "joint_nlu_heads.json"
#: encoders whose optional pooler (untrained in sentence encoders) is left out
POOLER_MODEL_TYPES = {"bert", "roberta", "xlm-roberta", "camembert"}


def load_encoder(directory: Path) -> nn.Module:
    """The pretrained encoder in ``directory`` (without its pooler where it has one), quietly."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model_type = json.loads((Path(directory) / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError):
        model_type = ""
    if model_type in POOLER_MODEL_TYPES:
        return AutoModel.from_pretrained(str(directory), add_pooling_layer=False)
    return AutoModel.from_pretrained(str(directory))


def _mean_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the targets that are not -100 (0 when there are none)."""
    flat = targets.reshape(-1)
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), flat, ignore_index=-100, reduction="sum")
    return total / (flat != -100).sum().clamp(min=1)


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
        for head in (self.intent_classifier, self.slot_classifier):
            nn.init.normal_(head.weight, std=0.02)
            nn.init.zeros_(head.bias)

    @property
    def config(self) -> Any:
        return self.encoder.config

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                intent_labels: torch.Tensor | None = None, slot_labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and getattr(self.encoder.config, "type_vocab_size", 0) > 0:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.dropout(self.encoder(**kwargs).last_hidden_state)
        output = {"intent_logits": self.intent_classifier(self.pool(hidden, attention_mask)), "slot_logits": self.slot_classifier(hidden)}
        losses = []
        if intent_labels is not None:
            losses.append(_mean_loss(output["intent_logits"], intent_labels))
        if slot_labels is not None:
            losses.append(self.slot_loss_weight * _mean_loss(output["slot_logits"], slot_labels))
        if losses:
            output["loss"] = sum(losses[1:], losses[0])
        return output

    def save_pretrained(self, directory: Path, intents: list[str], tags: list[str]) -> None:
        """Write the encoder (Hugging Face format), both heads (safetensors) and their config."""
        from safetensors.torch import save_file

        from assistant_builder.atomic import atomic_path, atomic_write_json

        directory = Path(directory)
        self.encoder.save_pretrained(directory)
        tensors = {f"{name}.{key}": value.detach().cpu().contiguous()
                   for name in self.head_modules for key, value in getattr(self, name).state_dict().items()}
        with atomic_path(directory / HEADS_FILE) as tmp:
            save_file(tensors, str(tmp))
        atomic_write_json(directory / HEADS_CONFIG, {"format": 1, "pooling": self.pooling, "slot_loss_weight": self.slot_loss_weight,
                                                     "intents": list(intents), "tags": list(tags)})


def build_joint_model(base_model: Path, num_intents: int, num_tags: int, pooling: str, dropout: float,
                      slot_loss_weight: float) -> JointIntentSlotModel:
    """Load the encoder from ``base_model`` and put fresh intent and slot heads on it."""
    return JointIntentSlotModel(load_encoder(base_model), num_intents, num_tags, pooling, dropout, slot_loss_weight)


def load_joint_model(directory: Path) -> JointIntentSlotModel:
    """Load a model written by ``JointIntentSlotModel.save_pretrained`` (eval mode, CPU)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config = json.loads((directory / HEADS_CONFIG).read_text())
    model = JointIntentSlotModel(load_encoder(directory), len(config["intents"]), len(config["tags"]), config["pooling"], 0.0,
                                 config.get("slot_loss_weight", 1.0))
    tensors = load_file(str(directory / HEADS_FILE))
    for name in model.head_modules:
        prefix = f"{name}."
        getattr(model, name).load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    return model.eval()
