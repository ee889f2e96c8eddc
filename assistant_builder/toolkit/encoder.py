"""The pretrained encoder of a task model and the pieces every head puts on it. Imports torch.

Import this module only where a model is built or loaded (inside ``build_model`` /
``load_model``, or in a task's ``model.py``): task modules are imported on torch-free paths.

* ``load_encoder``: the Hugging Face encoder of a model folder, without its optional pooler (the
  task heads never use it; sentence encoders such as all-MiniLM-L6-v2 ship it untrained).
* ``encoder_states``: run it, passing ``token_type_ids`` only to encoders that have them.
* ``pool``: token states -> one vector per input; ``"mean"`` over the unmasked tokens (how
  sentence encoders were trained: the mean-pooled sentence-encoder head) or ``"cls"`` (the first
  token's state as it is).
* ``init_head_weights``: the standard initialisation of a new linear head (normal, std 0.02; bias 0).
* ``masked_cross_entropy``: the loss of a head (per token or per input), averaged over the targets that are not -100.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["POOLING_MODES", "quiet_transformers", "pooler_kwargs", "load_encoder", "encoder_prefix", "encoder_states", "pool",
           "init_head_weights", "masked_cross_entropy"]

POOLING_MODES = ("mean", "cls")
"""The ``mode`` values of ``pool``."""


def quiet_transformers() -> None:
    """Silence transformers' load reports and progress bars (they would interleave with the CLI's output)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def pooler_kwargs(config: Any) -> dict[str, Any]:
    """``{"add_pooling_layer": False}`` when the encoder class of ``config`` has an optional pooler, else ``{}``.

    The pooler is never used by the task heads (and untrained in sentence encoders), and the
    standard ``*ForTokenClassification`` / ``*ForQuestionAnswering`` classes leave it out too.
    """
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        encoder_class = MODEL_MAPPING[type(config)]
    except KeyError:
        return {}
    return {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(encoder_class.__init__).parameters else {}


def load_encoder(directory: Path) -> nn.Module:
    """The pretrained encoder in the Hugging Face model folder ``directory`` (without its optional pooler), quietly.

    Reads local files only (``HF_HUB_OFFLINE`` is honoured by transformers).
    """
    from transformers import AutoConfig, AutoModel

    quiet_transformers()
    config = AutoConfig.from_pretrained(str(directory))
    return AutoModel.from_pretrained(str(directory), config=config, **pooler_kwargs(config))


def encoder_prefix(encoder: nn.Module) -> str:
    """Name of the encoder's weights in a task model: its ``base_model_prefix`` (``bert``, ``roberta``...)."""
    return getattr(encoder, "base_model_prefix", "") or "encoder"


def encoder_states(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   token_type_ids: torch.Tensor | None = None, added_embeddings: torch.Tensor | None = None) -> torch.Tensor:
    """The encoder's last hidden states ``[batch, tokens, hidden]``.

    ``token_type_ids`` are passed only when given and the encoder has token types
    (``config.type_vocab_size > 0``); RoBERTa-style encoders without them get none.
    ``added_embeddings`` ``[batch, tokens, hidden]`` (e.g. word-shape embeddings, see
    ``toolkit.shapes``) are added to the word-piece embeddings before the encoder's own position
    and type embeddings and its embedding LayerNorm.
    """
    kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if added_embeddings is not None:
        kwargs = {"inputs_embeds": encoder.get_input_embeddings()(input_ids) + added_embeddings, "attention_mask": attention_mask}
    if token_type_ids is not None and getattr(encoder.config, "type_vocab_size", 0) > 0:
        kwargs["token_type_ids"] = token_type_ids
    return encoder(**kwargs).last_hidden_state


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """One vector per input ``[batch, hidden]`` from token states ``[batch, tokens, hidden]``.

    ``"mean"``: the mean of the states where ``attention_mask`` is 1 (an all-padding row gives
    zeros, not NaN); ``"cls"``: the first token's state.
    """
    if mode == "cls":
        return hidden[:, 0]
    if mode != "mean":
        raise ValueError(f"expected a pooling mode among {', '.join(POOLING_MODES)}, got {mode!r}")
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def init_head_weights(*layers: nn.Linear, std: float = 0.02) -> None:
    """Initialise new linear heads in place, in the order given: weights ~ N(0, ``std``), biases 0 (BERT's initialisation)."""
    for layer in layers:
        nn.init.normal_(layer.weight, std=std)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Cross-entropy of ``[..., classes]`` logits against integer ``targets``, averaged over targets that are not ``ignore_index``.

    Computed in float32 (also under bf16 autocast); 0 for a batch without any target.
    """
    flat = targets.reshape(-1)
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), flat, ignore_index=ignore_index, reduction="sum")
    return total / (flat != ignore_index).sum().clamp(min=1)
