"""Torch-free batching helpers shared by training, evaluation and the runtime.

Padding happens per batch (dynamic padding) and batches group inputs of similar length, so little
compute is spent on pad tokens.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def extra_inputs(input_names: Sequence[str]) -> tuple[str, ...]:
    """The names of ``input_names`` beyond the standard ``MODEL_INPUTS`` (task-specific per-token inputs)."""
    return tuple(name for name in input_names if name not in MODEL_INPUTS)


def pad_batch(features: Sequence[dict[str, Any]], pad_token_id: int, label_keys: Sequence[str] = (),
              input_keys: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Pad ``features`` to their longest ``input_ids`` and return int64 arrays.

    Returns ``input_ids``, ``attention_mask`` and ``token_type_ids`` of shape [B, T]. For each key
    in ``input_keys`` (a task's extra model inputs, one int per token, see
    ``Task.model_input_names``): shape [B, T] padded with 0. For each key in ``label_keys``: a
    scalar label becomes shape [B]; a per-token list is padded with -100.
    """
    lengths = [len(f["input_ids"]) for f in features]
    width = max(lengths) if lengths else 0
    count = len(features)
    input_ids = np.full((count, width), pad_token_id, dtype=np.int64)
    attention_mask = np.zeros((count, width), dtype=np.int64)
    token_type_ids = np.zeros((count, width), dtype=np.int64)
    for row, (feature, length) in enumerate(zip(features, lengths)):
        input_ids[row, :length] = feature["input_ids"]
        attention_mask[row, :length] = 1
        types = feature.get("token_type_ids")
        if types is not None:
            token_type_ids[row, :length] = types
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
    for key in input_keys:
        values = np.zeros((count, width), dtype=np.int64)
        for row, feature in enumerate(features):
            values[row, : len(feature[key])] = feature[key]
        batch[key] = values
    for key in label_keys:
        values = [f[key] for f in features]
        if values and isinstance(values[0], (list, tuple)):
            padded = np.full((count, width), -100, dtype=np.int64)
            for row, value in enumerate(values):
                padded[row, : len(value)] = value
            batch[key] = padded
        else:
            batch[key] = np.asarray(values, dtype=np.int64)
    return batch


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: random.Random, *, mega_batch_factor: int = 50) -> list[list[int]]:
    """Shuffle indices, then sort within mega-batches by length and cut into batches.

    Batches are of similar length (little padding) yet random across an epoch; the batch order
    is shuffled too, except that the batch holding the longest example comes first so memory
    problems show up at step one. Deterministic for a given ``rng`` state.
    """
    indices = list(range(len(lengths)))
    rng.shuffle(indices)
    mega = max(batch_size * mega_batch_factor, batch_size)
    batches: list[list[int]] = []
    for start in range(0, len(indices), mega):
        chunk = sorted(indices[start : start + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    if not batches:
        return batches
    longest = max(range(len(batches)), key=lambda b: lengths[batches[b][0]])
    first = batches.pop(longest)
    rng.shuffle(batches)
    return [first, *batches]


def batch_count(count: int, batch_size: int, group_by_length: bool = True, *, mega_batch_factor: int = 50) -> int:
    """How many batches ``length_grouped_batches`` (or ``random_batches``) cuts ``count`` inputs into,
    without building them: what a run's optimiser step count is computed from."""
    if group_by_length:
        mega = max(batch_size * mega_batch_factor, batch_size)
        full, rest = divmod(count, mega)
        return full * -(-mega // batch_size) + -(-rest // batch_size)
    return -(-count // batch_size)


def random_batches(count: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    """Plain shuffled batches (used when ``group_by_length`` is off)."""
    indices = list(range(count))
    rng.shuffle(indices)
    return [indices[i : i + batch_size] for i in range(0, count, batch_size)]


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches of indices sorted by length (for inference: least padding, order restored by caller)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
