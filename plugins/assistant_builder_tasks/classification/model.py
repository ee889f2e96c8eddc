"""The classification model: a pretrained encoder, pooling, dropout and a linear head.

Mean pooling is the default because sentence encoders such as all-MiniLM-L6-v2 were trained with
it and ship no trained pooler; a CLS head on them starts from a random pooler and learns slowly.

Saved model folders load with plain transformers: transformers has no class for this head (its
``*ForSequenceClassification`` goes through the pooler's dense+tanh layer, which ``cls`` pooling
here skips and mean pooling replaces), so the folder carries ``modeling_pooled_encoder.py`` (a
small self-contained file, torch and transformers only) and config.json maps
``AutoModelForSequenceClassification`` to it: ``pipeline("text-classification", model=folder,
trust_remote_code=True)``. Weights use the standard names (``bert.*`` + ``classifier.*``), so
``AutoModel.from_pretrained(folder)`` gives the fine-tuned encoder. The alternatives were worse: a
sentence-transformers layout does not load in ``pipeline``, and re-expressing the head as
``BertForSequenceClassification`` is impossible (mean pooling) or lossy. Works for any encoder
``AutoModel`` knows (the encoder is built from config.json's ``model_type``).
This module imports torch and is only imported when a model is built or loaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from assistant_builder.toolkit.encoder import encoder_prefix, encoder_states, extend_head, init_head_weights, load_encoder, pool
from assistant_builder.toolkit.hf_folder import (
    bundle_files, hf_config, load_head_weights, load_legacy_head, load_model_folder, read_legacy_head_config, save_model_folder,
    set_labels, tokenizer_files,
)

#: the self-contained modeling file written into saved folders (this package's copy is its template)
CODE_FILE = "modeling_pooled_encoder.py"
ARCHITECTURE = "PooledEncoderForSequenceClassification"
AUTO_MAP = {"AutoModelForSequenceClassification": f"{CODE_FILE[:-3]}.{ARCHITECTURE}"}
LEGACY_HEAD_FILE = "classification_head.safetensors"
LEGACY_HEAD_CONFIG = "classification_head.json"


class SequenceClassifier(nn.Module):
    """Encoder + pooling + dropout + linear head. ``forward`` returns ``{"logits", ["loss"]}``."""

    head_modules = ("classifier",)
    #: tokenizer_config.json / special_tokens_map.json contents written with the model
    tokenizer_files: dict[str, dict[str, Any]] = {}

    def __init__(self, encoder: nn.Module, num_labels: int, pooling: str = "mean", dropout: float = 0.1,
                 class_weights: list[float] | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        hidden = encoder.config.hidden_size
        self.classifier = nn.Linear(hidden, num_labels)
        init_head_weights(self.classifier)
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        self.label_smoothing = label_smoothing

    @property
    def config(self) -> Any:
        return self.encoder.config

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return pool(hidden, attention_mask, self.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden = encoder_states(self.encoder, input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.dropout(self.pool(hidden, attention_mask)))
        output = {"logits": logits}
        if labels is not None:
            output["loss"] = F.cross_entropy(logits.float(), labels, weight=self.class_weights, label_smoothing=self.label_smoothing)
        return output

    def _config_updates(self) -> dict[str, Any]:
        return {"pooling": self.pooling, "problem_type": "single_label_classification"}

    def save_pretrained(self, directory: Path, labels: list[str]) -> None:
        """Save as a Hugging Face model folder with the custom head's code (see the module docstring)."""
        set_labels(self.encoder, labels)
        save_model_folder(directory, self.encoder, {"classifier": self.classifier}, architecture=ARCHITECTURE,
                          updates=self._config_updates(), auto_map=AUTO_MAP,
                          code_files={CODE_FILE: modeling_code(encoder_prefix(self.encoder))},
                          tokenizer_files=self.tokenizer_files)

    def hf_config_files(self) -> dict[str, dict[str, Any]]:
        """config.json and tokenizer configs for an exported bundle (read by the onnx exporter)."""
        config = hf_config(self.encoder, architecture=ARCHITECTURE, updates=self._config_updates())
        return bundle_files(config, self.tokenizer_files)


def modeling_code(prefix: str) -> str:
    """The text of ``modeling_pooled_encoder.py`` for an encoder whose weights sit under ``prefix``."""
    template = (Path(__file__).parent / CODE_FILE).read_text(encoding="utf-8")
    code, count = re.subn(r'^ENCODER_ATTRIBUTE = "bert"$', f"ENCODER_ATTRIBUTE = {prefix!r}", template, flags=re.MULTILINE)
    if count != 1 or not prefix.isidentifier():
        raise RuntimeError(f"cannot write {CODE_FILE} for encoder prefix {prefix!r}")
    return code


def build_classifier(base_model: Path, num_labels: int, pooling: str, dropout: float,
                     class_weights: list[float] | None, label_smoothing: float) -> SequenceClassifier:
    """Load the encoder from ``base_model`` and put a fresh head on it."""
    model = SequenceClassifier(load_encoder(base_model), num_labels, pooling, dropout, class_weights, label_smoothing)
    model.tokenizer_files = tokenizer_files(base_model)
    return model


def load_classifier(directory: Path) -> SequenceClassifier:
    """Load a classifier saved by ``SequenceClassifier.save_pretrained`` (or by an earlier version)."""
    legacy = read_legacy_head_config(directory, LEGACY_HEAD_CONFIG)
    if legacy is not None:
        model = SequenceClassifier(load_encoder(directory), legacy["num_labels"], legacy["pooling"], 0.0)
        load_legacy_head(model.classifier, directory, LEGACY_HEAD_FILE)
    else:
        encoder, head, config = load_model_folder(directory)
        model = SequenceClassifier(encoder, config.num_labels, getattr(config, "pooling", "mean"), 0.0)
        load_head_weights(model.classifier, "classifier", head, directory)
    model.tokenizer_files = tokenizer_files(directory)
    return model.eval()


def warm_start_classifier(directory: Path, parent_labels: list[str], labels: list[str], dropout: float,
                          class_weights: list[float] | None, label_smoothing: float,
                          new_label_batches: Any = ()) -> SequenceClassifier:
    """The classifier saved at ``directory`` (trained on ``parent_labels``), ready to train on ``labels``
    (``parent_labels`` followed by new ones): the encoder and the old head rows as they were; each new
    row points from the mean embedding of all the given examples towards the mean of its label's
    (a class prototype), at the old rows' mean length, with the old rows' mean bias. A new label with
    no example gets the fresh-head initialisation. ``new_label_batches`` yields ``(batch, label_ids)``
    pairs of model inputs (``input_ids``, ``attention_mask``...) and their label ids, as tensors."""
    if list(labels[: len(parent_labels)]) != list(parent_labels):
        raise ValueError("the labels of an update must start with the parent's, in its order")
    parent = load_classifier(directory)
    model = SequenceClassifier(parent.encoder, len(labels), parent.pooling, dropout, class_weights, label_smoothing)
    model.tokenizer_files = parent.tokenizer_files
    sums = torch.zeros(len(labels), model.classifier.in_features)
    counts = torch.zeros(len(labels))
    if len(labels) > len(parent_labels):
        model.eval()
        with torch.no_grad():
            for batch, label_ids in new_label_batches:
                hidden = encoder_states(model.encoder, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
                pooled = model.pool(hidden, batch["attention_mask"]).float()
                sums.index_add_(0, label_ids, pooled)
                counts.index_add_(0, label_ids, torch.ones(len(label_ids)))
    extend_head(parent.classifier, model.classifier, sums, counts)
    return model.train()
