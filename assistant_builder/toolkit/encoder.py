"""The pretrained encoder of a task model and the pieces every head puts on it. Imports torch.

Import this module only where a model is built or loaded (inside ``build_model`` /
``load_model``, or in a task's ``model.py``): task modules are imported on torch-free paths.

* ``encoder_config``: a model folder's config, checked to be an encoder (a located ``ModelError`` if not).
* ``check_encoder_folder``: that, and ``model.max_length`` within the encoder's ``input_token_limit``,
  before a run reads its data.
* ``load_encoder``: the Hugging Face encoder of a model folder, without its optional pooler (the
  task heads never use it; sentence encoders such as all-MiniLM-L6-v2 ship it untrained).
* ``encoder_states``: run it, passing ``token_type_ids`` only to encoders that have them.
* ``embedding_size``: the width of its word-piece embeddings (what ``encoder_states`` can add to).
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

from assistant_builder.errors import ModelError

__all__ = ["POOLING_MODES", "extend_head", "quiet_transformers", "pooler_kwargs", "encoder_config", "input_token_limit",
           "check_encoder_folder", "load_encoder", "encoder_prefix", "embedding_size", "encoder_states", "pool",
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


def encoder_config(directory: Path) -> Any:
    """The config of the model folder ``directory``, checked to describe an encoder the task heads can sit on.

    Any architecture transformers' ``AutoModel`` builds from a config and that gives one hidden
    state per input token works (BERT, RoBERTa, XLM-R, DeBERTa-v2/v3, DistilBERT, ELECTRA, ALBERT,
    ModernBERT, MPNet...). Raises ``ModelError`` naming ``directory/config.json``, its
    ``model_type`` and what is unsupported: a model type this transformers cannot load (unknown, or
    one that needs the folder's own code), an encoder-decoder model (T5, BART: its forward needs
    decoder inputs), or a config without a base-model class. Reads local files only.
    """
    import transformers
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    path = Path(directory) / "config.json"
    declared = _declared_model_type(path)
    try:
        config = AutoConfig.from_pretrained(str(directory))
    except (ValueError, KeyError, OSError) as exc:
        raise ModelError(f"{path}: model_type {declared!r} is not an architecture transformers {transformers.__version__} can load "
                         f"({_first_sentence(exc)})",
                         hint="use a folder of an encoder transformers knows (BERT, RoBERTa, XLM-R, DeBERTa, DistilBERT, ELECTRA, "
                              "ALBERT, ModernBERT, MPNet...), or upgrade transformers if the model type is newer") from exc
    model_type = getattr(config, "model_type", declared)
    if getattr(config, "is_encoder_decoder", False):
        raise ModelError(f"{path}: model_type '{model_type}' is an encoder-decoder model; the tasks fine-tune an encoder "
                         "(one hidden state per input token), and this architecture is not supported",
                         hint="choose an encoder model (BERT, RoBERTa, XLM-R, DeBERTa, DistilBERT, ELECTRA, ALBERT, ModernBERT, MPNet...)")
    if type(config) not in MODEL_MAPPING:
        raise ModelError(f"{path}: model_type '{model_type}' has no base model class in transformers {transformers.__version__} "
                         "(AutoModel), so no encoder can be built from it; this architecture is not supported",
                         hint="choose an encoder model (BERT, RoBERTa, XLM-R, DeBERTa, DistilBERT, ELECTRA, ALBERT, ModernBERT, MPNet...)")
    return config


def input_token_limit(encoder: nn.Module) -> int | None:
    """The most tokens one input of ``encoder`` may have (special tokens included); ``None`` when there is no fixed limit.

    Encoders with absolute position embeddings (``*.position_embeddings``) take as many tokens as
    they have positions, less those reserved before the first token: RoBERTa-style embeddings
    (RoBERTa, XLM-R, MPNet: ``padding_idx`` set) start at ``padding_idx + 1``, so a RoBERTa with
    514 positions takes 512. Relative (DeBERTa-v2/v3) and rotary (ModernBERT) positions set no limit.
    """
    limits = []
    for name, module in encoder.named_modules():
        if name.rsplit(".", 1)[-1] == "position_embeddings" and isinstance(module, nn.Embedding):
            reserved = module.padding_idx + 1 if module.padding_idx is not None else 0
            limits.append(module.num_embeddings - reserved)
    return min(limits) if limits else None


def check_encoder_folder(directory: Path, max_length: int) -> Any:
    """Check, before any data is read or anything trained, that the model folder ``directory`` can be
    fine-tuned on inputs of ``max_length`` tokens; return its config.

    Raises ``ModelError`` for an architecture that cannot work (``encoder_config``) and for a
    ``max_length`` above the encoder's ``input_token_limit`` (those inputs would index past its
    position embeddings). The encoder is built on the meta device: no weights are read or allocated.
    """
    from transformers import AutoModel

    quiet_transformers()
    config = encoder_config(directory)
    with torch.device("meta"):
        encoder = AutoModel.from_config(config, **pooler_kwargs(config))
    limit = input_token_limit(encoder)
    if limit is not None and max_length > limit:
        positions = getattr(config, "max_position_embeddings", None)
        reserved = ""
        if isinstance(positions, int) and positions > limit:
            reserved = f", {positions - limit} of them reserved before the first token"
        raise ModelError(f"model.max_length = {max_length}: expected at most {limit} tokens for model_type "
                         f"'{config.model_type}' ({Path(directory) / 'config.json'}: max_position_embeddings {positions}{reserved})",
                         hint=f"set model.max_length to {limit} or less (long inputs are split into windows)")
    return config


def _declared_model_type(path: Path) -> str | None:
    """``model_type`` as written in ``config.json`` (``None`` when unreadable or absent)."""
    import json

    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _first_sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.split(". ")[0].rstrip(".")[:300] or type(exc).__name__


def load_encoder(directory: Path) -> nn.Module:
    """The pretrained encoder in the Hugging Face model folder ``directory`` (without its optional pooler), quietly.

    The folder's config is checked first (``encoder_config``): an architecture that cannot work
    is a ``ModelError`` before any training. Reads local files only (``HF_HUB_OFFLINE`` is
    honoured by transformers).
    """
    from transformers import AutoModel

    quiet_transformers()
    config = encoder_config(directory)
    return AutoModel.from_pretrained(str(directory), config=config, **pooler_kwargs(config))


def encoder_prefix(encoder: nn.Module) -> str:
    """Name of the encoder's weights in a task model: its ``base_model_prefix`` (``bert``, ``roberta``...)."""
    return getattr(encoder, "base_model_prefix", "") or "encoder"


def embedding_size(encoder: nn.Module) -> int:
    """The width of the encoder's word-piece embeddings: what ``encoder_states(..., added_embeddings=...)`` adds to.

    The hidden size in most encoders; smaller in ELECTRA and ALBERT (``config.embedding_size``),
    which project their embeddings up to the hidden size after the embedding LayerNorm.
    """
    embeddings = encoder.get_input_embeddings()
    size = getattr(embeddings, "embedding_dim", None)
    if isinstance(size, int):
        return size
    config = encoder.config
    return int(getattr(config, "embedding_size", None) or config.hidden_size)


def encoder_states(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   token_type_ids: torch.Tensor | None = None, added_embeddings: torch.Tensor | None = None) -> torch.Tensor:
    """The encoder's last hidden states ``[batch, tokens, hidden]``.

    ``token_type_ids`` are passed only when given and the encoder has more than one token type
    (``config.type_vocab_size > 1``): RoBERTa-style encoders (one type, or none: DistilBERT,
    DeBERTa-v3, ModernBERT, MPNet) get none, so a tokenizer that marks a second segment cannot index
    past their single type embedding.
    ``added_embeddings`` ``[batch, tokens, embedding_size(encoder)]`` (e.g. word-shape embeddings,
    see ``toolkit.shapes``) are added to the word-piece embeddings before the encoder's own
    position and type embeddings and its embedding LayerNorm (and before ELECTRA's or ALBERT's
    projection to the hidden size).
    """
    kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if added_embeddings is not None:
        kwargs = {"inputs_embeds": encoder.get_input_embeddings()(input_ids) + added_embeddings, "attention_mask": attention_mask}
    if token_type_ids is not None and (getattr(encoder.config, "type_vocab_size", 0) or 0) > 1:
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


def extend_head(old: nn.Linear, new: nn.Linear, sums: torch.Tensor, counts: torch.Tensor) -> None:
    """Fill ``new`` (a head over the ``old`` head's classes followed by new ones) in place, under
    ``torch.no_grad()``: the old rows as they were; each new class with examples points from the mean
    of all the examples' features towards the mean of its own (a class prototype), at the old rows'
    mean length, with the old rows' mean bias. ``sums[c]`` / ``counts[c]``: the summed feature vectors
    of class ``c``'s examples and how many (float tensors, ``[classes, features]`` / ``[classes]``). A new
    class without examples keeps ``new``'s own initialisation."""
    count = old.out_features
    with torch.no_grad():
        new.weight[:count] = old.weight
        new.bias[:count] = old.bias
        centre = sums.sum(0) / counts.sum().clamp(min=1.0)
        length = old.weight.norm(dim=1).mean()
        for index in range(count, new.out_features):
            if counts[index] == 0:
                continue
            direction = sums[index] / counts[index] - centre
            new.weight[index] = direction / direction.norm().clamp(min=1e-6) * length
            new.bias[index] = old.bias.mean()


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Cross-entropy of ``[..., classes]`` logits against integer ``targets``, averaged over targets that are not ``ignore_index``.

    Computed in float32 (also under bf16 autocast); 0 for a batch without any target.
    """
    flat = targets.reshape(-1)
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), flat, ignore_index=ignore_index, reduction="sum")
    return total / (flat != ignore_index).sum().clamp(min=1)
