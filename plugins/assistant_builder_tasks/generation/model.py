"""The trainable model of the ``generation`` task: a Hugging Face causal LM with a completion-only loss.

Imported only by ``GenerationTask.build_model``/``load_model`` (it imports torch and transformers).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: linear layers that get LoRA adapters, by the names the common decoder families use (all that exist are taken)
DECODER_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",  # Llama, Mistral, Qwen, SmolLM
                        "c_attn", "c_proj", "c_fc",  # GPT-2
                        "query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h",  # GPT-NeoX, Falcon
                        "fc1", "fc2", "out_proj")  # OPT, Phi
#: files of the base model folder that a saved model keeps (chat template, tokenizer and generation settings)
CARRIED_FILES = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json")
#: rows per forward pass when scoring: the logits of a 49k-token vocabulary are large
SCORING_CHUNK = 8


class CausalLMForSFT(nn.Module):
    """Wraps ``AutoModelForCausalLM``: ``forward`` returns the mean loss over the tokens ``loss_mask``
    marks (the completions) and, per row, their summed negative log-likelihood and count.

    ``loss_mask[b, t] = 1`` means token ``t`` of row ``b`` is a target: the loss counts predicting
    it from the tokens before it. Padding has mask 0 and attention 0.
    """

    head_modules: tuple[str, ...] = ()

    def __init__(self, lm: Any, base_dir: Path | None = None) -> None:
        super().__init__()
        self.lm = lm
        self.base_dir = base_dir
        names = {name.rsplit(".", 1)[-1] for name, module in lm.named_modules() if isinstance(module, nn.Linear)}
        names.discard("lm_head")
        self.lora_target_modules = [name for name in DECODER_LORA_TARGETS if name in names] or sorted(names)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, loss_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if loss_mask is None:
            loss_mask = attention_mask
        chunk = input_ids.shape[0] if self.training else SCORING_CHUNK
        sums, counts = [], []
        for start in range(0, input_ids.shape[0], chunk):
            rows = slice(start, start + chunk)
            logits = self.lm(input_ids=input_ids[rows], attention_mask=attention_mask[rows]).logits[:, :-1]
            targets, mask = input_ids[rows, 1:], loss_mask[rows, 1:].to(logits.dtype)
            nll = nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none") * mask.float()
            sums.append(nll.sum(dim=1))
            counts.append(mask.float().sum(dim=1))
        nll_sum, token_count = torch.cat(sums), torch.cat(counts)
        return {"loss": nll_sum.sum() / token_count.sum().clamp(min=1.0), "nll_sum": nll_sum, "token_count": token_count}

    def save_pretrained(self, directory: Path) -> None:
        """The causal LM as a Hugging Face folder, with the base model's chat template and tokenizer settings."""
        directory = Path(directory)
        self.lm.save_pretrained(directory)
        if self.base_dir is not None:
            for name in CARRIED_FILES:
                if (self.base_dir / name).is_file() and not (directory / name).exists():
                    shutil.copy2(self.base_dir / name, directory / name)


def load_causal_lm(directory: Path) -> Any:
    """``AutoModelForCausalLM`` from ``directory`` in float32 (the weights training and export expect)."""
    from transformers import AutoModelForCausalLM

    from assistant_builder.toolkit.encoder import quiet_transformers

    quiet_transformers()
    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)


def build_sft_model(base_model: Path) -> CausalLMForSFT:
    """A trainable ``CausalLMForSFT`` from a causal LM folder."""
    return CausalLMForSFT(load_causal_lm(base_model), Path(base_model))
