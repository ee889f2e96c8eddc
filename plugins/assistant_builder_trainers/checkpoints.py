"""Resumable training checkpoints: write atomically with a hash manifest, find the newest intact one.

Layout of ``checkpoints/``::

    step-0000034/  model.safetensors  optimizer.pt  rng.pt  state.json (loop state + sha256 of each file)
    best/          model.safetensors  best.json      (weights of the best evaluation so far)

A checkpoint whose files are missing or do not match their hashes (a crash mid-copy, a truncated
disk) is skipped in favour of the previous one.
"""

from __future__ import annotations

import errno
import json
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from assistant_builder.atomic import atomic_path, atomic_write_json
from assistant_builder.engine.rundir import file_sha256
from assistant_builder.errors import TrainingError

STATE_FILE = "state.json"
FILES = ("model.safetensors", "optimizer.pt", "rng.pt")




def _dedupe_shared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory (tied weights): keep the first of each."""
    seen: set[tuple[int, int]] = set()
    result = {}
    for name, tensor in tensors.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key not in seen:
            seen.add(key)
            result[name] = tensor
    return result


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """Write ``model``'s state dict as safetensors, atomically."""
    from safetensors.torch import save_file

    tensors = _dedupe_shared({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights written by ``save_weights`` into ``model``, in place, one tensor at a time.

    Weights the file lacks keep their values (tied weights are saved once). Only one tensor of the
    file is in memory at a time, so this adds no copy of the model to peak memory.
    """
    from safetensors import safe_open

    state = model.state_dict(keep_vars=True)
    with safe_open(str(path), framework="pt") as weights:
        unexpected = [name for name in weights.keys() if name not in state]
        if unexpected:
            raise TrainingError(f"{path}: checkpoint has weights the model lacks: {unexpected[:5]}")
        with torch.no_grad():
            for name in weights.keys():
                target = state[name]
                value = weights.get_tensor(name)
                if value.shape != target.shape:
                    raise TrainingError(f"{path}: weight {name} has shape {list(value.shape)}, the model's is {list(target.shape)}")
                target.copy_(value)


def _disk_errors(action: str, directory: Path) -> Any:
    class Guard:
        def __enter__(self) -> None:
            return None

        def __exit__(self, kind: Any, error: Any, tb: Any) -> bool:
            if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise TrainingError(f"disk full while {action} in {directory}; nothing half-written was left behind",
                                    hint="free disk space, then resume the run") from error
            return False

    return Guard()


def write_checkpoint(directory: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> None:
    """Write one checkpoint folder; ``state.json`` (with the file hashes) is written last."""
    directory.mkdir(parents=True, exist_ok=True)
    with _disk_errors("writing a checkpoint", directory):
        save_weights(model, directory / "model.safetensors")
        with atomic_path(directory / "optimizer.pt") as tmp:
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp)
        with atomic_path(directory / "rng.pt") as tmp:
            torch.save({"torch": torch.get_rng_state(), "python": random.getstate(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp)
        hashes = {name: file_sha256(directory / name) for name in FILES}
        atomic_write_json(directory / STATE_FILE, {**state, "files": hashes})


def write_best(checkpoint_dir: Path, model: torch.nn.Module, epoch: int, metrics: dict[str, float]) -> None:
    """Keep the best model's weights on disk so a resumed run still ends with the best model."""
    best = checkpoint_dir / "best"
    best.mkdir(parents=True, exist_ok=True)
    with _disk_errors("writing the best model", best):
        save_weights(model, best / "model.safetensors")
        atomic_write_json(best / "best.json", {"epoch": epoch, "metrics": metrics, "sha256": file_sha256(best / "model.safetensors")})


def prune(checkpoint_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints."""
    steps = sorted(p for p in checkpoint_dir.glob("step-*") if p.is_dir())
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def is_intact(directory: Path) -> bool:
    """True if ``directory`` has a state file and every listed file matches its hash."""
    try:
        state = json.loads((directory / STATE_FILE).read_text())
        return all(file_sha256(directory / name) == digest for name, digest in state["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def latest_intact(checkpoint_dir: Path) -> Path | None:
    """The newest intact step checkpoint, warning about each newer one that is corrupt."""
    for directory in sorted((p for p in checkpoint_dir.glob("step-*") if p.is_dir()), reverse=True):
        if is_intact(directory):
            return directory
        warnings.warn(f"checkpoint {directory} is incomplete or corrupted (hash mismatch); using the previous one", stacklevel=2)
    return None


def restore(directory: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load model, optimiser, scheduler and RNG state from ``directory``; return its loop state."""
    load_weights(model, directory / "model.safetensors")
    saved = torch.load(directory / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    rng = torch.load(directory / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return json.loads((directory / STATE_FILE).read_text())
