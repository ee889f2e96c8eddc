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
CARRIED_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json")
#: rows per forward pass when scoring: the logits of a 49k-token vocabulary are large
SCORING_CHUNK = 8


class CausalLMForSFT(nn.Module):
    """Wraps ``AutoModelForCausalLM``: ``forward`` returns the mean loss over the tokens ``loss_mask``
    marks (the completions) and, per row, their summed negative log-likelihood and count.

    ``loss_mask[b, t] = 1`` means token ``t`` of row ``b`` is a target: the loss counts predicting
    it from the tokens before it. Padding has mask 0 and attention 0.
    """

    head_modules: tuple[str, ...] = ()
    #: exporters recognise a causal LM by this (``plugins/assistant_builder_exporters/causal_lm.py``)
    is_causal_lm = True

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
            nll_sum, token_count = self._target_nll(input_ids[rows], attention_mask[rows], loss_mask[rows])
            sums.append(nll_sum)
            counts.append(token_count)
        nll_sum, token_count = torch.cat(sums), torch.cat(counts)
        return {"loss": nll_sum.sum() / token_count.sum().clamp(min=1.0), "nll_sum": nll_sum, "token_count": token_count}

    def _target_nll(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    loss_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row: summed NLL of the target tokens and their count.

        Logits are computed only at the positions that predict a target (the output layer applied
        to those hidden states): a 49k-token vocabulary over every position of a batch would take
        gigabytes, most of it for prompt tokens that carry no loss."""
        targets = loss_mask[:, 1:].bool()
        hidden = self._hidden_states(input_ids, attention_mask)
        if hidden is None:  # a model whose output layer is not a plain projection of the last hidden state
            logits = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][targets]
        else:
            logits = self.lm.get_output_embeddings()(hidden[:, :-1][targets])
        nll = nn.functional.cross_entropy(logits.float(), input_ids[:, 1:][targets], reduction="none")
        rows = torch.nonzero(targets, as_tuple=True)[0]
        nll_sum = torch.zeros(input_ids.shape[0], dtype=torch.float32, device=input_ids.device).index_add(0, rows, nll)
        return nll_sum, targets.float().sum(dim=1)

    def _hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
        """The decoder's last hidden states, or ``None`` when logits are more than ``lm_head(hidden)``
        (logit soft-capping or scaling, as Gemma 2 and Cohere have) or the model has no separate decoder."""
        config, decoder = self.lm.config, getattr(self.lm, "base_model", None)
        if decoder is None or decoder is self.lm or self.lm.get_output_embeddings() is None:
            return None
        if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None) or getattr(config, "logits_scaling", None):
            return None
        return decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

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


def greedy_generator(model: Any, eos_token_ids: list[int], pad_token_id: int) -> Any:
    """The ``Generator`` (see ``assistant_builder.contracts``) of a ``CausalLMForSFT``: greedy
    ``generate`` with the key/value cache, one prompt at a time (no padding, so each answer is what a
    single request to the exported model gets)."""
    lm = model.lm if hasattr(model, "lm") else model

    def generate(prompts: Any, max_new_tokens: int) -> list[list[int]]:
        answers = []
        was_training = lm.training
        lm.eval()
        try:
            with torch.inference_mode():
                for prompt in prompts:
                    ids = torch.tensor([list(prompt)], dtype=torch.long)
                    out = lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                      do_sample=False, eos_token_id=eos_token_ids or None, pad_token_id=pad_token_id,
                                      temperature=None, top_p=None, top_k=None)
                    new = out[0, ids.shape[1]:].tolist()
                    for position, token in enumerate(new):
                        if token in eos_token_ids:
                            new = new[:position]
                            break
                    answers.append(new)
        finally:
            lm.train(was_training)
        return answers

    return generate
