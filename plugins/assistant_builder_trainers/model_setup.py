"""Training-time choices applied to the model before the optimiser sees it (imports torch; load lazily).

Both trainers call ``prepare_model``: it freezes the word-embedding matrix and sets the encoder's
attention dropout as ``[train]`` asks. Each returns how many things it changed, so callers and
tests can tell a model it does not apply to (no Hugging Face encoder inside) from one it did.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def word_embeddings(model: nn.Module) -> nn.Module | None:
    """The input word-embedding layer of the first Hugging Face model inside ``model`` (``None`` if there is none)."""
    for module in model.modules():
        getter = getattr(module, "get_input_embeddings", None)
        if callable(getter) and hasattr(module, "config"):
            try:
                embeddings = getter()
            except (NotImplementedError, AttributeError):
                continue
            if isinstance(embeddings, nn.Module):
                return embeddings
    return None


def freeze_word_embeddings(model: nn.Module) -> int:
    """Stop gradients to the word-embedding matrix; return the number of weights frozen (0 if none found)."""
    embeddings = word_embeddings(model)
    if embeddings is None:
        return 0
    frozen = 0
    for parameter in embeddings.parameters():
        if parameter.requires_grad:
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    return frozen


def set_attention_dropout(model: nn.Module, probability: float) -> int:
    """Set the dropout on attention weights in every attention module; return how many modules changed.

    An attention module is one whose class name ends in ``Attention`` (``BertSelfAttention``,
    ``BertSdpaSelfAttention``, DistilBERT's ``MultiHeadSelfAttention``...) with a direct
    ``dropout`` child; the hidden-state dropouts live in other modules and keep their rate.
    """
    changed = 0
    for module in model.modules():
        dropout = getattr(module, "dropout", None)
        if type(module).__name__.endswith("Attention") and isinstance(dropout, nn.Dropout):
            dropout.p = probability
            changed += 1
    return changed


def prepare_model(model: nn.Module, settings: Any) -> dict[str, int]:
    """Apply ``settings.freeze_word_embeddings`` and ``settings.attention_dropout``; return what changed."""
    changes = {"frozen_embedding_weights": 0, "attention_dropout_modules": 0}
    if getattr(settings, "freeze_word_embeddings", False):
        changes["frozen_embedding_weights"] = freeze_word_embeddings(model)
    probability = getattr(settings, "attention_dropout", None)
    if probability is not None:
        changes["attention_dropout_modules"] = set_attention_dropout(model, probability)
    return changes
