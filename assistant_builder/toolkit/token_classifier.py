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

from assistant_builder.toolkit.encoder import embedding_size, encoder_states, extend_head, init_head_weights, load_encoder, masked_cross_entropy
from assistant_builder.toolkit.hf_folder import (
    bundle_files, load_head_weights, load_legacy_head, load_model_folder, read_legacy_head_config, save_model_folder, set_labels,
    task_config, tokenizer_files,
)

__all__ = ["TokenClassifier", "build_token_classifier", "load_token_classifier", "warm_start_token_classifier"]

MAPPING = "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING"
LEGACY_HEAD_FILE = "token_classification_head.safetensors"
LEGACY_HEAD_CONFIG = "token_classification_head.json"


class TokenClassifier(nn.Module):
    """Encoder + dropout + linear layer on every token.

    ``forward(input_ids, attention_mask, token_type_ids=None, labels=None, shape_ids=None)``
    returns ``{"logits": [batch, tokens, classes]}``, plus ``"loss"``
    (``encoder.masked_cross_entropy``, the mean over targets that are not -100) when ``labels``
    ``[batch, tokens]`` are given. ``head_modules`` names the new layers (LoRA keeps them
    trainable).

    With ``word_shapes > 0`` a learned embedding of each token's word shape (``toolkit.shapes``,
    input ``shape_ids`` ``[batch, tokens]``) is added to its word-piece embedding (so it has the
    word embeddings' size, ``encoder.embedding_size``: smaller than the hidden size in ELECTRA and
    ALBERT): the casing an uncased tokenizer loses. It starts at zero, so training starts from the pretrained encoder
    exactly. Such a model saves with ``word_shapes`` in its config and loads with
    ``load_token_classifier`` (no stock transformers class has the extra input).
    """

    #: tokenizer_config.json / special_tokens_map.json contents written with the model
    tokenizer_files: dict[str, dict[str, Any]] = {}

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1, word_shapes: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)
        init_head_weights(self.classifier)
        # added to the word-piece embeddings, so sized like them: ELECTRA and ALBERT embed in fewer
        # dimensions than their hidden size and project up afterwards
        self.shape_embedding = nn.Embedding(word_shapes, embedding_size(encoder)) if word_shapes else None
        if self.shape_embedding is not None:
            nn.init.zeros_(self.shape_embedding.weight)
        self.head_modules = tuple(self.heads())

    def heads(self) -> dict[str, nn.Module]:
        """The layers on top of the pretrained encoder, by the name their weights are saved under."""
        heads: dict[str, nn.Module] = {"classifier": self.classifier}
        if self.shape_embedding is not None:
            heads["shape_embedding"] = self.shape_embedding
        return heads

    @property
    def config(self) -> Any:
        """The encoder's Hugging Face config (``id2label`` once saved or loaded)."""
        return self.encoder.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, shape_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        added = None
        if self.shape_embedding is not None:
            if shape_ids is None:
                raise ValueError("this model adds word-shape embeddings: forward() needs shape_ids (one per token)")
            added = self.shape_embedding(shape_ids)
        hidden = encoder_states(self.encoder, input_ids, attention_mask, token_type_ids, added)
        logits = self.classifier(self.dropout(hidden))
        output = {"logits": logits}
        if labels is not None:
            output["loss"] = masked_cross_entropy(logits, labels)
        return output

    def save_pretrained(self, directory: Path, labels: Sequence[str]) -> None:
        """Save as transformers' ``*ForTokenClassification`` of the encoder's model type, with ``labels`` as ``id2label``."""
        set_labels(self.encoder, list(labels))
        save_model_folder(directory, self.encoder, self.heads(), **self._folder_kind(), tokenizer_files=self.tokenizer_files)

    def _folder_kind(self) -> dict[str, Any]:
        """A standard ``*ForTokenClassification`` folder, or (word shapes) one that records ``word_shapes``."""
        if self.shape_embedding is None:
            return {"mapping": MAPPING}
        return {"updates": {"word_shapes": self.shape_embedding.num_embeddings}}

    def hf_config_files(self) -> dict[str, dict[str, Any]]:
        """config.json and tokenizer configs for an exported bundle (read by the onnx exporter)."""
        config = task_config(self.encoder, self.heads(), **self._folder_kind())
        return bundle_files(config, self.tokenizer_files)


def build_token_classifier(base_model: Path, num_labels: int, dropout: float = 0.1, word_shapes: int = 0) -> TokenClassifier:
    """Load the encoder from the model folder ``base_model`` and put a fresh ``num_labels``-class token head on it
    (and a ``word_shapes``-entry shape embedding when that is not 0, e.g. ``len(toolkit.shapes.SHAPES)``)."""
    model = TokenClassifier(load_encoder(base_model), num_labels, dropout, word_shapes)
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
        model = TokenClassifier(encoder, config.num_labels, 0.0, int(getattr(config, "word_shapes", 0) or 0))
        heads = model.heads()
        stray = {k: v for k, v in head.items() if not k.startswith(tuple(f"{name}." for name in heads))}  # reported as unexpected
        for name, module in heads.items():
            load_head_weights(module, name, {**{k: v for k, v in head.items() if k.startswith(name + ".")}, **stray}, directory)
    model.tokenizer_files = tokenizer_files(directory)
    return model.eval()


def warm_start_token_classifier(directory: Path, parent_labels: Sequence[str], labels: Sequence[str], dropout: float = 0.1,
                                token_batches: Any = ()) -> TokenClassifier:
    """The token classifier saved at ``directory`` (trained on ``parent_labels``), ready to train on
    ``labels`` (``parent_labels`` followed by new ones, e.g. the B-/I- tags of a new entity type): the
    encoder, word-shape embedding and old head rows as they were; each new row points from the mean
    hidden state of all the given target tokens towards the mean of its label's tokens (a class
    prototype), at the old rows' mean length, with the old rows' mean bias. A new label no token
    carries gets the fresh-head initialisation. ``token_batches`` yields model-input dicts
    (``input_ids``, ``attention_mask``, optional ``token_type_ids`` / ``shape_ids``) with ``labels``
    ``[batch, tokens]`` (-100 where there is no target), as tensors."""
    if list(labels[: len(parent_labels)]) != list(parent_labels):
        raise ValueError("the labels of an update must start with the parent's, in its order")
    parent = load_token_classifier(directory)
    shapes = parent.shape_embedding.num_embeddings if parent.shape_embedding is not None else 0
    model = TokenClassifier(parent.encoder, len(labels), dropout, shapes)
    if parent.shape_embedding is not None and model.shape_embedding is not None:
        model.shape_embedding.load_state_dict(parent.shape_embedding.state_dict())
    model.tokenizer_files = parent.tokenizer_files
    sums = torch.zeros(len(labels), model.classifier.in_features)
    counts = torch.zeros(len(labels))
    if len(labels) > len(parent_labels):
        model.eval()
        with torch.no_grad():
            for batch in token_batches:
                targets = batch["labels"]
                added = model.shape_embedding(batch["shape_ids"]) if model.shape_embedding is not None and "shape_ids" in batch else None
                hidden = encoder_states(model.encoder, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), added)
                keep = targets >= 0
                sums.index_add_(0, targets[keep], hidden[keep].float())
                counts.index_add_(0, targets[keep], torch.ones(int(keep.sum())))
    extend_head(parent.classifier, model.classifier, sums, counts)
    return model.train()
