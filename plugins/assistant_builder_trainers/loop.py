"""The training loop shared by the ``full`` and ``lora`` trainers, on HF Accelerate.

One code path for CPU, one CUDA GPU (bf16 autocast) and several processes (``accelerate launch``
or ``torchrun``: each rank trains on a disjoint shard of every epoch's batches; only rank 0 writes).
Batches are length-grouped and padded per batch; the loss is read back to the host only every
``LOG_EVERY`` optimiser steps, so the loop does not stall the device.

Resumable: a checkpoint holds model, optimiser, scheduler, RNG and loop state (epoch, batch within
the epoch, best metric, early-stopping counter). Data order is a pure function of (seed, epoch), so
an interrupted and resumed CPU run ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from assistant_builder.batching import length_grouped_batches, random_batches
from assistant_builder.callbacks import CheckpointSaved, EvalEnded, StepEnded, TrainingStarted
from assistant_builder.contracts import TrainingJob, TrainingOutcome
from assistant_builder.errors import TrainingError
from assistant_builder_trainers import checkpoints
from assistant_builder_trainers.memory import release_free_memory
from assistant_builder_trainers.model_setup import prepare_model
from assistant_builder_trainers.optim import make_optimizer, parameter_groups, warmup_linear_schedule

LOG_EVERY = 10


@dataclass
class LoopState:
    """Progress that a checkpoint must restore. ``epoch``/``batch_in_epoch`` point at the next batch."""

    epoch: int = 0
    batch_in_epoch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    examples_seen: int = 0
    train_seconds: float = 0.0
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
    return Accelerator(cpu=not use_cuda, mixed_precision="no" if precision == "fp32" else precision)


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool,
                  rank: int, world: int) -> list[list[int]]:
    """This rank's batches for ``epoch``: deterministic from (seed, epoch), disjoint across ranks."""
    rng = random.Random(seed * 100_003 + epoch)
    batches = length_grouped_batches(lengths, batch_size, rng) if group_by_length else random_batches(len(lengths), batch_size, rng)
    per_rank = len(batches) // world if world > 1 else len(batches)
    return batches[rank::world][:per_rank]


class _Run:
    """One training run's mutable machinery (kept together so checkpointing sees all of it)."""

    def __init__(self, job: TrainingJob, model: torch.nn.Module, learning_rate: float) -> None:
        settings = job.settings
        self.job, self.settings = job, settings
        self.accelerator = make_accelerator(settings)
        prepare_model(model, settings)
        head_lr = settings.head_learning_rate or learning_rate
        heads = getattr(model, "head_modules", ()) or _head_modules(model)
        groups = parameter_groups(model, heads, learning_rate, head_lr, settings.weight_decay)
        self.optimizer = make_optimizer(groups, self.accelerator.device)
        self.lengths = [len(f["input_ids"]) for f in job.train_features]
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        self.accumulate = settings.gradient_accumulation_steps
        batches_per_epoch = len(self.batches(0))
        self.steps_per_epoch = max(1, math.ceil(batches_per_epoch / self.accumulate))
        self.total_steps = self.steps_per_epoch * settings.epochs
        self.warmup_steps = int(settings.warmup_ratio * self.total_steps)
        self.scheduler = warmup_linear_schedule(self.optimizer, self.warmup_steps, self.total_steps)
        self.model, self.optimizer = self.accelerator.prepare(model, self.optimizer)
        self.unwrapped = self.accelerator.unwrap_model(self.model)
        self.state = LoopState()

    def batches(self, epoch: int) -> list[list[int]]:
        s = self.settings
        return epoch_batches(self.lengths, s.batch_size, s.seed, epoch, s.group_by_length, self.rank, self.world)

    def checkpoint(self) -> None:
        """Write a resumable checkpoint (rank 0 only) and keep the newest ``keep_checkpoints``."""
        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            return
        directory = self.job.checkpoint_dir / f"step-{self.state.global_step:07d}"
        checkpoints.write_checkpoint(directory, self.unwrapped, self.optimizer, self.scheduler, asdict(self.state))
        checkpoints.prune(self.job.checkpoint_dir, self.settings.keep_checkpoints)
        self.job.callbacks.on_checkpoint(CheckpointSaved(self.state.global_step, directory))

    def resume(self) -> None:
        """Restore the newest intact checkpoint under ``job.resume_from``, if any."""
        source = self.job.resume_from
        if source is None:
            return
        directory = checkpoints.latest_intact(source)
        if directory is None:
            raise TrainingError(f"no intact checkpoint to resume from in {source}", hint="start the run again without --resume")
        saved = checkpoints.restore(directory, self.unwrapped, self.optimizer, self.scheduler)
        saved.pop("files", None)
        self.state = LoopState(**saved)

    def train_step(self, batch_indices: list[int], index: int, count: int) -> tuple[torch.Tensor, bool]:
        """Forward/backward one batch; step the optimiser at the end of each accumulation group."""
        group_start = index - index % self.accumulate
        group_size = min(self.accumulate, count - group_start)
        sync = index - group_start == group_size - 1
        batch = self.job.collate([self.job.train_features[i] for i in batch_indices])
        batch = {k: v.to(self.accelerator.device, non_blocking=True) for k, v in batch.items()}
        context = contextlib.nullcontext() if sync or self.world == 1 else self.accelerator.no_sync(self.model)
        with context, self.accelerator.autocast():
            loss = self.model(**batch)["loss"]
            self.accelerator.backward(loss / group_size)
        if sync:
            if self.settings.max_grad_norm:
                self.accelerator.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), sync


def run_training(job: TrainingJob, model: torch.nn.Module, learning_rate: float,
                 finalize: Callable[[torch.nn.Module], torch.nn.Module] = lambda m: m) -> TrainingOutcome:
    """Train ``model`` (already wrapped, e.g. by peft) and return the best one after ``finalize``.

    If ``job.stop_event`` is set, a checkpoint is written at the next optimiser step and the
    outcome has ``interrupted=True``. A non-finite loss raises ``TrainingError``; the checkpoints
    on disk are then the last good ones.
    """
    from accelerate.utils import set_seed

    settings = job.settings
    set_seed(settings.seed)
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    run = _Run(job, model, learning_rate)
    run.resume()
    state = run.state
    job.callbacks.on_train_start(TrainingStarted(
        run.total_steps, run.steps_per_epoch, settings.epochs, str(run.accelerator.device), state.global_step,
        world_size=run.world, examples_per_epoch=sum(len(b) for b in run.batches(0)) * run.world))
    stopped_early = interrupted = False
    while state.epoch < settings.epochs and not stopped_early:
        epoch = state.epoch
        run.model.train()
        batches = run.batches(epoch)
        running, running_count = torch.zeros((), device=run.accelerator.device), 0
        window_examples, window_start = 0, time.perf_counter()
        segment_start = time.perf_counter()
        for index in range(state.batch_in_epoch, len(batches)):
            if index % run.accumulate == 0 and job.stop_event.is_set():
                interrupted = True
                break
            try:
                loss, synced = run.train_step(batches[index], index, len(batches))
            except torch.OutOfMemoryError as error:
                raise TrainingError(
                    f"out of {run.accelerator.device.type.upper()} memory at step {state.global_step + 1} "
                    f"(batch of {len(batches[index])}, longest input {max(run.lengths[i] for i in batches[index])} tokens)",
                    hint=f"lower train.batch_size (now {settings.batch_size}) and raise train.gradient_accumulation_steps "
                         "to keep the effective batch, or lower model.max_length",
                ) from error
            running += loss
            running_count += 1
            window_examples += len(batches[index])
            state.examples_seen += len(batches[index]) * run.world
            state.batch_in_epoch = index + 1
            if not synced:
                continue
            state.global_step += 1
            last = index == len(batches) - 1
            if state.global_step % LOG_EVERY == 0 or last:
                mean_loss = running.item() / max(1, running_count)
                running.zero_()
                running_count = 0
                if not math.isfinite(mean_loss):
                    raise TrainingError(
                        f"loss became {mean_loss} at step {state.global_step} (epoch {epoch + 1}); training stopped. "
                        f"The last good checkpoint is the newest one in {job.checkpoint_dir}",
                        hint="lower train.learning_rate (e.g. by 10x) or check the data for empty or odd inputs",
                    )
                elapsed = time.perf_counter() - window_start
                job.callbacks.on_step_end(StepEnded(state.global_step, epoch + (index + 1) / len(batches), mean_loss,
                                                    run.scheduler.get_last_lr()[0], window_examples * run.world / max(elapsed, 1e-9)))
                window_examples, window_start = 0, time.perf_counter()
            if settings.checkpoint_every_steps and state.global_step % settings.checkpoint_every_steps == 0 and not last:
                if running_count and not torch.isfinite(running).item():
                    raise TrainingError(f"loss became non-finite before step {state.global_step}; checkpoint not written",
                                        hint="lower train.learning_rate (e.g. by 10x)")
                state.train_seconds += time.perf_counter() - segment_start
                run.checkpoint()
                segment_start = time.perf_counter()
        state.train_seconds += time.perf_counter() - segment_start
        if interrupted:
            run.checkpoint()
            break
        run.model.eval()
        release_free_memory()  # the epoch's freed activation buffers, before evaluation allocates its own
        metrics = job.evaluate(run.unwrapped)
        value = metrics.get(job.metric, -math.inf)
        improved = state.best_metric is None or value > state.best_metric
        state.history.append({"epoch": epoch + 1, "step": state.global_step, **metrics})
        if improved:
            state.best_metric, state.best_epoch, state.epochs_without_improvement = value, epoch + 1, 0
            if run.accelerator.is_main_process:
                checkpoints.write_best(job.checkpoint_dir, run.unwrapped, epoch + 1, metrics)
        elif state.global_step > run.warmup_steps:
            # an epoch that ends inside the learning-rate warmup does not count against early stopping:
            # on small data warmup spans several epochs, and a model still warming up can sit on a plateau
            # (all-O tags, one class) that stopping would mistake for convergence
            state.epochs_without_improvement += 1
        job.callbacks.on_eval_end(EvalEnded(state.global_step, epoch + 1, metrics, improved))
        state.epoch, state.batch_in_epoch = epoch + 1, 0
        stopped_early = bool(settings.early_stopping_patience and state.epochs_without_improvement >= settings.early_stopping_patience
                             and state.epoch < settings.epochs)
        run.checkpoint()

    run.accelerator.wait_for_everyone()
    best = job.checkpoint_dir / "best" / "model.safetensors"
    # the weights in memory are the best ones when the last evaluation was the best (nothing trains after it)
    if not interrupted and best.exists() and state.best_epoch != state.epoch:
        checkpoints.load_weights(run.unwrapped, best)
    final = finalize(run.unwrapped).to("cpu").float().eval()
    best_metrics = next((h for h in state.history if h.get("epoch") == state.best_epoch), {})
    return TrainingOutcome(
        model=final,
        best_metrics={k: v for k, v in best_metrics.items() if k not in ("epoch", "step")},
        best_epoch=state.best_epoch,
        global_step=state.global_step,
        epochs_run=len(state.history),
        stopped_early=stopped_early,
        examples_per_second=state.examples_seen / max(state.train_seconds, 1e-9),
        history=state.history,
        interrupted=interrupted,
    )


def _head_modules(model: torch.nn.Module) -> tuple[str, ...]:
    base = getattr(model, "get_base_model", None)
    return tuple(getattr(base(), "head_modules", ())) if base else ()
