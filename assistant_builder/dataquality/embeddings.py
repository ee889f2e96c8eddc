"""Frozen sentence embeddings of a base model: mean of the last hidden states over the real tokens
(how MiniLM sentence encoders were trained), L2-normalised.

Imports torch and transformers inside ``embed_texts`` only. Texts are encoded with the same
``tokenizer.json`` training uses, truncated at ``max_length``, and batched by length (little
padding), so embedding a few thousand short texts takes seconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def embed_texts(texts: Sequence[str], model_dir: Path, max_length: int, batch_size: int = 64,
                on_progress: Callable[[int, int], None] = lambda done, total: None) -> np.ndarray:
    """``[len(texts), hidden]`` float32 embeddings of ``texts`` (rows in input order, unit length)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from assistant_builder.tokenization import load_tokenizer, pad_token_id

    tokenizer = load_tokenizer(model_dir, max_length)
    pad = pad_token_id(tokenizer)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "some weights were not used" is expected for a bare encoder
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr
    try:
        model = AutoModel.from_pretrained(str(model_dir))
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    encodings = tokenizer.encode_batch(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    hidden = model.config.hidden_size
    out = np.zeros((len(texts), hidden), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start: start + batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            types = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = torch.tensor(encodings[i].ids)
                types[row, :n] = torch.tensor(encodings[i].type_ids)
                mask[row, :n] = 1
            states = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            weights = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[chunk] = pooled.float().numpy()
            on_progress(min(start + batch_size, len(order)), len(order))
    return out
