"""The extractive QA model: a pretrained encoder and a linear layer giving start and end logits per token.

The same head as Hugging Face's ``*ForQuestionAnswering``, and saved as one: the folder loads with
``AutoModelForQuestionAnswering.from_pretrained(folder)`` (see ``assistant_builder.toolkit.hf_folder`` for the layout;
transformers 4 also has ``pipeline("question-answering")``, removed in 5). The loss is the mean of the
cross-entropies of the start and end positions; padding is masked out of the loss only (the
decoder trims padding itself), so the exported graph stays a plain encoder + linear layer.
This module imports torch and is only imported when a model is built or loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from assistant_builder.toolkit.encoder import encoder_states, init_head_weights, load_encoder
from assistant_builder.toolkit.hf_folder import (
    bundle_files, load_head_weights, load_legacy_head, load_model_folder, read_legacy_head_config, save_model_folder, task_config,
    tokenizer_files,
)

MAPPING = "MODEL_FOR_QUESTION_ANSWERING_MAPPING"
#: transformers' QA classes size their start/end layer by num_labels
QA_CONFIG = {"num_labels": 2}
LEGACY_HEAD_FILE = "qa_head.safetensors"
LEGACY_HEAD_CONFIG = "qa_head.json"


class QuestionAnswerer(nn.Module):
    """Encoder + ``Linear(hidden, 2)``. ``forward`` returns ``{"start_logits", "end_logits", ["loss"]}``."""

    head_modules = ("qa_outputs",)
    #: tokenizer_config.json / special_tokens_map.json contents written with the model
    tokenizer_files: dict[str, dict[str, Any]] = {}

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.qa_outputs = nn.Linear(encoder.config.hidden_size, 2)
        init_head_weights(self.qa_outputs)

    @property
    def config(self) -> Any:
        return self.encoder.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                start_positions: torch.Tensor | None = None, end_positions: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden = encoder_states(self.encoder, input_ids, attention_mask, token_type_ids)
        logits = self.qa_outputs(hidden)
        start_logits, end_logits = logits[..., 0].contiguous(), logits[..., 1].contiguous()
        output = {"start_logits": start_logits, "end_logits": end_logits}
        if start_positions is not None and end_positions is not None:
            padding = attention_mask == 0
            start = start_logits.float().masked_fill(padding, -1e4)
            end = end_logits.float().masked_fill(padding, -1e4)
            output["loss"] = (F.cross_entropy(start, start_positions) + F.cross_entropy(end, end_positions)) / 2
        return output

    def save_pretrained(self, directory: Path) -> None:
        """Save as transformers' ``*ForQuestionAnswering`` of the encoder's model type."""
        save_model_folder(directory, self.encoder, {"qa_outputs": self.qa_outputs}, mapping=MAPPING, updates=QA_CONFIG,
                          tokenizer_files=self.tokenizer_files)

    def hf_config_files(self) -> dict[str, dict[str, Any]]:
        """config.json and tokenizer configs for an exported bundle (read by the onnx exporter)."""
        config = task_config(self.encoder, {"qa_outputs": self.qa_outputs}, mapping=MAPPING, updates=QA_CONFIG)
        return bundle_files(config, self.tokenizer_files)


def build_question_answerer(base_model: Path) -> QuestionAnswerer:
    """Load the encoder from ``base_model`` and put a fresh start/end head on it."""
    model = QuestionAnswerer(load_encoder(base_model))
    model.tokenizer_files = tokenizer_files(base_model)
    return model


def load_question_answerer(directory: Path) -> QuestionAnswerer:
    """Load a model saved by ``QuestionAnswerer.save_pretrained`` (or by an earlier version), eval mode, CPU."""
    if read_legacy_head_config(directory, LEGACY_HEAD_CONFIG) is not None:
        model = QuestionAnswerer(load_encoder(directory))
        load_legacy_head(model.qa_outputs, directory, LEGACY_HEAD_FILE)
    else:
        encoder, head, _ = load_model_folder(directory)
        model = QuestionAnswerer(encoder)
        load_head_weights(model.qa_outputs, "qa_outputs", head, directory)
    model.tokenizer_files = tokenizer_files(directory)
    return model.eval()
