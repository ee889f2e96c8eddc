"""A text classifier: a Hugging Face encoder, mean (or first-token) pooling and a linear layer.

Written next to ``model.safetensors`` by assistant-builder, so the folder loads with plain
transformers (nothing from assistant-builder is imported; only torch and transformers)::

    from transformers import pipeline
    classify = pipeline("text-classification", model="runs/NAME/model", trust_remote_code=True)

or ``AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)``.

Why custom code: the classifier reads the *mean* of the token states (``pooling = "mean"`` in
config.json; sentence encoders such as all-MiniLM-L6-v2 were trained that way and ship no trained
pooler) or the first token's state as it is (``"cls"``). Neither is ``*ForSequenceClassification``,
whose head goes through the pooler's dense+tanh layer. Loading the folder *without*
``trust_remote_code`` picks that standard class instead: the encoder loads, but the pooler is
randomly initialised and the predictions are wrong (transformers says so in its load report).

The encoder is built from config.json's ``model_type`` with ``AutoModel``, so the file works for any
encoder transformers knows. Its weights sit under ``ENCODER_ATTRIBUTE`` (the encoder class's own
``base_model_prefix``, e.g. ``bert``), as in the standard task classes, so
``AutoModel.from_pretrained(folder)`` returns the fine-tuned encoder alone.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

#: attribute (and weight-name prefix) of the encoder: the base_model_prefix of its model type
ENCODER_ATTRIBUTE = "bert"
POOLING_MODES = ("mean", "cls")


def build_encoder(config: PretrainedConfig) -> nn.Module:
    """``AutoModel`` for ``config``, without the optional pooler where the encoder class has one."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    encoder_class = MODEL_MAPPING[type(config)]
    takes_flag = "add_pooling_layer" in inspect.signature(encoder_class.__init__).parameters
    return AutoModel.from_config(config, **({"add_pooling_layer": False} if takes_flag else {}))


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Mean of the unmasked token states, or the first token's state."""
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class PooledEncoderForSequenceClassification(PreTrainedModel):
    """Encoder -> pooling (``config.pooling``) -> dropout -> ``Linear(hidden_size, num_labels)``."""

    config_class = PretrainedConfig  # the encoder's own config class is used, see from_pretrained
    base_model_prefix = ENCODER_ATTRIBUTE

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, config=None, **kwargs):  # type: ignore[no-untyped-def]
        """As ``PreTrainedModel.from_pretrained``; without ``config``, it is read with ``AutoConfig`` (so it
        is the encoder's own config class, e.g. ``BertConfig``), as the Auto classes do."""
        if config is None:
            hub = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
            config = AutoConfig.from_pretrained(pretrained_model_name_or_path, **{k: kwargs[k] for k in hub if k in kwargs})
        return super().from_pretrained(pretrained_model_name_or_path, *args, config=config, **kwargs)

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__(config)
        self.pooling = getattr(config, "pooling", "mean")
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"config.json: pooling: expected one of {POOLING_MODES}, got {self.pooling!r}")
        setattr(self, ENCODER_ATTRIBUTE, build_encoder(config))
        self.dropout = nn.Dropout(getattr(config, "classifier_dropout", None) or 0.1)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs: object) -> SequenceClassifierOutput | tuple:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and (getattr(self.config, "type_vocab_size", 0) or 0) > 1:  # as assistant-builder's encoder_states
            inputs["token_type_ids"] = token_type_ids
        hidden = getattr(self, ENCODER_ATTRIBUTE)(**inputs, return_dict=True).last_hidden_state
        logits = self.classifier(self.dropout(pool(hidden, attention_mask, self.pooling)))
        loss = F.cross_entropy(logits.float(), labels.view(-1)) if labels is not None else None
        if return_dict is False:
            return (logits,) if loss is None else (loss, logits)
        return SequenceClassifierOutput(loss=loss, logits=logits)
