"""Run any model (PyTorch, ONNX, TorchScript: anything behind a ``Runner``) over features.

Torch-free: used by training-time evaluation, export verification and the edge runtime alike, so
all three batch, pad and split outputs the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assistant_builder.batching import pad_batch, sorted_batches
from assistant_builder.contracts import Feature, FeatureOutputs, Runner


def run_features(runner: Runner, features: Sequence[Feature], pad_token_id: int, output_names: Sequence[str],
                 sequence_outputs: Sequence[str] = (), batch_size: int = 64, input_keys: Sequence[str] = ()) -> FeatureOutputs:
    """Run ``runner`` on length-sorted padded batches and return outputs per feature, in order.

    ``input_keys`` are the task's extra per-token model inputs (``Task.model_input_names`` beyond
    the standard ones), padded with 0. Sequence outputs (second axis = tokens) are trimmed to each
    feature's own length.
    """
    lengths = [len(f["input_ids"]) for f in features]
    results: dict[str, list[Any]] = {name: [None] * len(features) for name in output_names}
    for indices in sorted_batches(lengths, batch_size):
        batch = pad_batch([features[i] for i in indices], pad_token_id, input_keys=input_keys)
        outputs = runner(batch)
        for name in output_names:
            values = np.asarray(outputs[name])
            for row, index in enumerate(indices):
                value = values[row]
                results[name][index] = value[: lengths[index]] if name in sequence_outputs else value
    return results


def max_abs_difference(a: FeatureOutputs, b: FeatureOutputs) -> float:
    """Largest absolute difference between two sets of outputs of the same features."""
    worst = 0.0
    for name, values in a.items():
        for left, right in zip(values, b[name]):
            if left.size:
                worst = max(worst, float(np.max(np.abs(left.astype(np.float64) - right.astype(np.float64)))))
    return worst
