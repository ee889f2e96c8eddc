"""Seeding every random number generator a run touches (before the model is built)."""

from __future__ import annotations

import os
import random


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) so runs with the same seed are identical on CPU."""
    import numpy as np
    import torch

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
