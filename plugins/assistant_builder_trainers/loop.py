"""The training loop shared by the ``full`` and ``lora`` trainers, on HF Accelerate.

One code path for CPU, one CUDA GPU (bf16 autocast) and several processes (``accelerate launch``
or ``torchrun``: each rank trains on a disjoint shard of every epoch's batches). Batches are
length-grouped and padded per batch; the loss is read back to the host only every
``LOG_EVERY`` steps, so the loop does not stall the device.
"""

from __future__ import annotations

import copy
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from assistant_builder.atomic import atomic_path, atomic_write_json
from assistant_builder.batching import length_grouped_batches, random_batches
from assistant_builder.callbacks import CheckpointSaved, EvalEnded, StepEnded, TrainingStarted
from assistant_builder.contracts import TrainingJob, TrainingOutcome
from assistant_builder.errors import TrainingError
from assistant_builder_trainers.optim import make_optimizer, parameter_groups, warmup_linear_schedule

LOG_EVERY = 10


@dataclass
class LoopState:
    """Progress that a checkpoint must restore."""

    epoch: int = 0
    global_step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def make_accelerator(settings: Any) -> Any:
    """An ``Accelerator`` for the recipe's device/precision settings."""
    from accelerate import Accelerator

    use_cuda = torch.cuda.is_available() and settings.device != "cpu"
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device = \"cuda\" but no CUDA GPU is visible", hint="use device = \"auto\" or \"cpu\"")
    precision = settings.precision
    if precision == "auto":
        precision = "bf16" if use_cuda and torch.cuda.is_bf16_supported() else "fp32"
    if precision in ("bf16", "fp16") and not use_cuda:
        precision = "fp32"  # CPU autocast is slower than fp32 on most CPUs
    return Accelerator(cpu=not use_cuda, mixed_precision="no" if precision == "fp32" else precision,
                       gradient_accumulation_steps=settings.gradient_accumulation_steps)


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool,
                  rank: int, world: int) -> list[list[int]]:
    """This rank's batches for ``epoch``: deterministic from (seed, epoch), disjoint across ranks."""
    rng = random.Random(seed * 100_003 + epoch)
    batches = length_grouped_batches(lengths, batch_size, rng) if group_by_length else random_batches(len(lengths), batch_size, rng)
    per_rank = len(batches) // world if world > 1 else len(batches)
    return batches[rank::world][:per_rank]


def run_training(job: TrainingJob, model: torch.nn.Module, learning_rate: float,
                 finalize: Callable[[torch.nn.Module], torch.nn.Module] = lambda m: m) -> TrainingOutcome:
    """Train ``model`` (already wrapped, e.g. by peft) and return the best one after ``finalize``."""
    from accelerate.utils import set_seed

    settings = job.settings
    set_seed(settings.seed)
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    accelerator = make_accelerator(settings)
    head_lr = settings.head_learning_rate or learning_rate
    groups = parameter_groups(model, getattr(model, "head_modules", ()) or _head_modules(model), learning_rate, head_lr, settings.weight_decay)
    optimizer = make_optimizer(groups, accelerator.device)
    lengths = [len(f["input_ids"]) for f in job.train_features]
    world, rank = accelerator.num_processes, accelerator.process_index
    steps_per_epoch = max(1, math.ceil(len(epoch_batches(lengths, settings.batch_size, settings.seed, 0, settings.group_by_length, rank, world)) / settings.gradient_accumulation_steps))
    total_steps = steps_per_epoch * settings.epochs
    scheduler = warmup_linear_schedule(optimizer, int(settings.warmup_ratio * total_steps), total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    job.callbacks.on_train_start(TrainingStarted(total_steps, steps_per_epoch, settings.epochs, str(accelerator.device)))

    state = LoopState()
    best_state: dict[str, torch.Tensor] | None = None
    examples_seen, train_seconds = 0, 0.0
    stopped_early = False
    for epoch in range(settings.epochs):
        state.epoch = epoch
        model.train()
        batches = epoch_batches(lengths, settings.batch_size, settings.seed, epoch, settings.group_by_length, rank, world)
        running = torch.zeros((), device=accelerator.device)
        running_count = 0
        window_examples, window_start = 0, time.perf_counter()
        epoch_start = time.perf_counter()
        for index, batch_indices in enumerate(batches):
            if job.stop_event.is_set():
                break
            batch = job.collate([job.train_features[i] for i in batch_indices])
            batch = {k: v.to(accelerator.device, non_blocking=True) for k, v in batch.items()}
            with accelerator.accumulate(model):
                loss = model(**batch)["loss"]
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    if settings.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
            running += loss.detach()
            running_count += 1
            window_examples += len(batch_indices)
            if accelerator.sync_gradients:
                state.global_step += 1
                if state.global_step % LOG_EVERY == 0 or index == len(batches) - 1:
                    mean_loss = running.item() / max(1, running_count)
                    running.zero_()
                    running_count = 0
                    if not math.isfinite(mean_loss):
                        raise TrainingError(
                            f"loss became {mean_loss} at step {state.global_step} (epoch {epoch + 1})",
                            hint="lower train.learning_rate (e.g. by 10x) or check the data for empty inputs",
                        )
                    elapsed = time.perf_counter() - window_start
                    job.callbacks.on_step_end(StepEnded(state.global_step, epoch + (index + 1) / len(batches), mean_loss,
                                                        scheduler.get_last_lr()[0], window_examples * world / max(elapsed, 1e-9)))
                    window_examples, window_start = 0, time.perf_counter()
                if settings.checkpoint_every_steps and state.global_step % settings.checkpoint_every_steps == 0:
                    _checkpoint(job, accelerator, unwrapped, optimizer, scheduler, state)
        train_seconds += time.perf_counter() - epoch_start
        examples_seen += sum(len(b) for b in batches) * world
        if job.stop_event.is_set():
            break
        model.eval()
        metrics = job.evaluate(unwrapped)
        value = metrics.get(job.metric, -math.inf)
        improved = value > state.best_metric
        state.history.append({"epoch": epoch + 1, "step": state.global_step, **metrics})
        if improved:
            state.best_metric, state.best_epoch, state.epochs_without_improvement = value, epoch + 1, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in unwrapped.state_dict().items()}
        else:
            state.epochs_without_improvement += 1
        job.callbacks.on_eval_end(EvalEnded(state.global_step, epoch + 1, metrics, improved))
        _checkpoint(job, accelerator, unwrapped, optimizer, scheduler, state)
        if settings.early_stopping_patience and state.epochs_without_improvement >= settings.early_stopping_patience:
            stopped_early = True
            break

    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    final = finalize(unwrapped).to("cpu").float().eval()
    best_metrics = next((h for h in state.history if h.get("epoch") == state.best_epoch), {})
    return TrainingOutcome(
        model=final,
        best_metrics={k: v for k, v in best_metrics.items() if k not in ("epoch", "step")},
        best_epoch=state.best_epoch,
        global_step=state.global_step,
        epochs_run=len(state.history),
        stopped_early=stopped_early,
        examples_per_second=examples_seen / max(train_seconds, 1e-9),
        history=state.history,
    )


def _head_modules(model: torch.nn.Module) -> tuple[str, ...]:
    base = getattr(model, "get_base_model", None)
    return tuple(getattr(base(), "head_modules", ())) if base else ()


def _checkpoint(job: TrainingJob, accelerator: Any, model: torch.nn.Module, optimizer: Any, scheduler: Any, state: LoopState) -> None:
    """Write a resumable checkpoint (rank 0 only) and keep the newest ``keep_checkpoints``."""
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    from safetensors.torch import save_file

    directory = job.checkpoint_dir / f"step-{state.global_step:07d}"
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / "model.safetensors") as tmp:
        save_file(_dedupe_shared(tensors), str(tmp))
    with atomic_path(directory / "optimizer.pt") as tmp:
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(), "python_rng": random.getstate()}, tmp)
    atomic_write_json(directory / "state.json", {**state.__dict__, "best_metric": state.best_metric if math.isfinite(state.best_metric) else None})
    job.callbacks.on_checkpoint(CheckpointSaved(state.global_step, directory))
    existing = sorted(p for p in job.checkpoint_dir.glob("step-*") if p.is_dir())
    for old in existing[: -job.settings.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)


def _dedupe_shared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory (tied weights): keep the first of each."""
    seen: dict[tuple[int, int], str] = {}
    result = {}
    for name, tensor in tensors.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen:
            continue
        seen[key] = name
        result[name] = tensor
    return result


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
