"""A ``Runner`` over an in-memory PyTorch model (imports torch lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from assistant_builder.contracts import Outputs, Runner


def torch_runner(model: Any, output_names: Sequence[str]) -> Runner:
    """Return a runner that feeds numpy batches to ``model`` on its device (bf16 autocast on CUDA)."""
    import torch

    device = next(model.parameters()).device

    def run(batch: Mapping[str, np.ndarray]) -> Outputs:
        inputs = {k: torch.from_numpy(np.asarray(v)).to(device) for k, v in batch.items()}
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            outputs = model(**inputs)
        return {name: outputs[name].float().cpu().numpy() for name in output_names}

    return run
