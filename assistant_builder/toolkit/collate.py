"""The standard collation: pad a list of features into a batch of torch tensors.

Torch is imported inside ``collate`` only, so a task module can import this one on torch-free paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant_builder.batching import MODEL_INPUTS, pad_batch

__all__ = ["MODEL_INPUTS", "collate", "padded_arrays"]


def padded_arrays(features: Sequence[dict[str, Any]], pad_token_id: int, target_keys: Sequence[str] = (),
                  input_keys: Sequence[str] = ()) -> dict[str, Any]:
    """``collate`` without torch: int64 numpy arrays (what ``builder predict`` feeds ONNX Runtime).

    ``input_ids``, ``attention_mask`` and ``token_type_ids`` ``[batch, tokens]``, padded to the
    longest feature; then each key of ``input_keys`` (the task's extra per-token model inputs,
    ``Task.model_input_names``) that every feature has, ``[batch, tokens]`` padded with 0; then each
    key of ``target_keys`` that *every* feature has (none for an empty list): a scalar per feature
    gives ``[batch]``, a per-token list gives ``[batch, tokens]`` padded with -100 (ignored by the loss).
    """
    present = [key for key in target_keys if features and all(key in f for f in features)]
    inputs = [key for key in input_keys if features and all(key in f for f in features)]
    return pad_batch(features, pad_token_id, present, input_keys=inputs)


def collate(features: Sequence[dict[str, Any]], pad_token_id: int, target_keys: Sequence[str] = (),
            input_keys: Sequence[str] = ()) -> dict[str, Any]:
    """A task's ``collate``: ``padded_arrays`` as int64 torch tensors.

    Targets are included only when every feature carries them, so the same function collates
    training batches (with targets) and inference batches (without).
    """
    import torch

    return {key: torch.from_numpy(value) for key, value in padded_arrays(features, pad_token_id, target_keys, input_keys).items()}
