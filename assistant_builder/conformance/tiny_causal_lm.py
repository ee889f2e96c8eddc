"""A tiny random-init Llama-architecture instruct model with a ChatML chat template, built in code.

``make_tiny_causal_lm(directory)`` writes a folder laid out like a hub download of a small
instruct model (SmolLM2-style): ``config.json`` + ``model.safetensors`` (``LlamaForCausalLM``,
tied embeddings), a byte-level BPE ``tokenizer.json`` trained with the ``tokenizers`` library on
short sentences written for this project, whose first ids are the special tokens
``<|endoftext|>`` (0), ``<|im_start|>`` (1) and ``<|im_end|>`` (2), ``tokenizer_config.json``,
``special_tokens_map.json``, ``chat_template.jinja`` (ChatML with a default system message) and
``generation_config.json`` (``eos_token_id`` 2). No download; about a second on a CPU.

``train_chat_tokenizer()`` gives the tokenizer alone (torch-free). Used by the ``generation``
task's tests and the causal-LM export tests; imports tokenizers (and, in ``make_tiny_causal_lm``,
torch and transformers) inside the functions only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assistant_builder.conformance.tiny_architectures import corpus

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "chat_corpus", "make_tiny_causal_lm", "train_chat_tokenizer"]

#: special tokens in id order, as SmolLM2 has them: end of text, start and end of a chat turn
SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

#: ChatML, with a default system message when the conversation has none (SmolLM2's template)
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_CHAT_LINES = [
    "system", "user", "assistant", "You are a helpful assistant.",
    "What is the capital of France? The capital of France is Paris.",
    "Reply with one word: yes or no. Yes.",
    "How many days are in a week? There are seven days in a week.",
    "Translate \"thank you\" into French: merci.",
    "Summarise the message in one sentence, please.",
    "Sure! Here is a short answer.",
    "I am not sure, but I think the shop opens at 9 am.",
    "Café au lait, crème brûlée and a naïve résumé.",
]


def chat_corpus() -> list[str]:
    """The tokenizer's training text: ``corpus()`` plus a few chat-style lines (a handful with accented letters)."""
    return corpus() + _CHAT_LINES * 4


def train_chat_tokenizer(vocab_size: int = 1000) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``chat_corpus()`` (torch-free).

    ``SPECIAL_TOKENS`` take ids 0, 1, 2; every byte is in the vocabulary, so any text encodes
    (characters outside the corpus, such as ``中``, become one token per UTF-8 byte). No
    post-processor: like SmolLM2, nothing is added around the text.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(chat_corpus(), trainer=trainer)
    return tokenizer


def _tokenizer_configs(max_positions: int) -> dict[str, dict[str, Any]]:
    """tokenizer_config.json and special_tokens_map.json as SmolLM2-Instruct's download has them."""
    special = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>"}
    added = {str(i): {"content": token, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                      "special": True} for i, token in enumerate(SPECIAL_TOKENS)}
    config = {**special, "added_tokens_decoder": added, "additional_special_tokens": list(SPECIAL_TOKENS[1:]),
              "tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False, "clean_up_tokenization_spaces": False,
              "model_max_length": max_positions}
    return {"tokenizer_config.json": config,
            "special_tokens_map.json": {**special, "additional_special_tokens": list(SPECIAL_TOKENS[1:])}}


def make_tiny_causal_lm(directory: Path, *, hidden_size: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                        seed: int = 0, chat_template: bool = True, max_positions: int = 512) -> Path:
    """Write a tiny random-init ``LlamaForCausalLM`` instruct model and its tokenizer to ``directory``; return it.

    ``heads`` query heads share ``kv_heads`` key/value heads (grouped-query attention, as in
    SmolLM2); ``hidden_size`` must be a multiple of ``heads``. ``chat_template=False`` leaves out
    ``chat_template.jinja`` (a base model). The weights depend only on ``seed``. Raises
    ``ValueError`` for sizes that do not fit together.
    """
    if hidden_size % heads or heads % kv_heads:
        raise ValueError(f"expected hidden_size divisible by heads and heads by kv_heads, got hidden_size={hidden_size}, "
                         f"heads={heads}, kv_heads={kv_heads}")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = train_chat_tokenizer()
    tokenizer.save(str(directory / "tokenizer.json"))
    for name, content in _tokenizer_configs(max_positions).items():
        (directory / name).write_text(json.dumps(content, indent=2) + "\n")
    if chat_template:
        (directory / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    ids = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}
    config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=max_positions, tie_word_embeddings=True, rms_norm_eps=1e-5,
                         rope_theta=10000.0, initializer_range=0.1, **ids)
    config.architectures = ["LlamaForCausalLM"]
    torch.manual_seed(seed)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = LlamaForCausalLM(config)
        model.save_pretrained(directory)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    (directory / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2},
                                                                 indent=2) + "\n")
    return directory
