"""Multi-process runs (``torchrun`` / ``accelerate launch``): which process this is.

Read from the launcher's environment (RANK, WORLD_SIZE), so the engine can decide, before torch
is even imported, that only rank 0 creates and writes the run directory. The data-parallel
training itself is Accelerate's (see the trainers).
"""

from __future__ import annotations

import os


def process_rank() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` when not launched distributed."""
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return rank, world


def is_main_process() -> bool:
    """True on rank 0 (the only process that writes run directories and prints results)."""
    return process_rank()[0] == 0
