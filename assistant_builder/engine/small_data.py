"""Training settings that depend on how much data a run has (issue 14, item 5), settled once by the engine.

* ``train.min_steps``: when ``train.epochs`` would give fewer optimiser steps, the epoch count is
  raised to reach them. On small data a handful of epochs is only a few dozen steps, too few for
  a new head and the encoder to settle.
* ``train.head_learning_rate`` unset: the task's ``Task.head_learning_rate``.
* ``train.learning_rate`` unset: the task's ``Task.learning_rates[train.trainer]`` when the task
  names one for the trainer (else the trainer's own default, applied by the trainer).
* ``train.early_stopping_min_per_label``: early stopping is switched off when the validation data
  has fewer examples per label on average: with a few examples per label, one epoch's metric is
  mostly noise and stopping on it ends training too soon.

``adjust_training`` returns the settings the trainer gets, and one line per change for the run's
stage lines; the same data and recipe always give the same settings (so ``--resume`` agrees).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from assistant_builder.batching import batch_count

__all__ = ["steps_per_epoch", "epochs_for_min_steps", "mean_per_label", "adjust_training"]


def steps_per_epoch(train_count: int, batch_size: int, accumulation: int = 1, group_by_length: bool = True, world: int = 1) -> int:
    """Optimiser steps of one epoch over ``train_count`` features, as the built-in trainers batch them."""
    batches = batch_count(train_count, batch_size, group_by_length)
    if world > 1:
        batches //= world
    return max(1, math.ceil(batches / accumulation))


def epochs_for_min_steps(epochs: int, per_epoch: int, min_steps: int) -> int:
    """``epochs``, or the fewest epochs of ``per_epoch`` steps that reach ``min_steps`` if that is more."""
    if epochs == 0 or min_steps <= 0 or epochs * per_epoch >= min_steps:
        return epochs
    return math.ceil(min_steps / max(1, per_epoch))


def mean_per_label(classes: Iterable[Sequence[str]]) -> float | None:
    """Mean count per label of the labels the examples count towards (``ExampleView.classes``);
    ``None`` when no example has a label (a task without classes, e.g. QA)."""
    counts = Counter(label for labels in classes for label in labels)
    return sum(counts.values()) / len(counts) if counts else None


def adjust_training(settings: Any, task: Any, train_count: int, validation_examples: Sequence[Any], world: int = 1) -> tuple[Any, list[str]]:
    """The ``TrainSection`` the trainer gets for this data, and a readable line per setting changed.

    ``train_count`` is the number of training features (after augmentation and windowing).
    """
    notes: list[str] = []
    update: dict[str, Any] = {}
    if settings.head_learning_rate is None:
        update["head_learning_rate"] = float(getattr(task, "head_learning_rate", 1e-3))
    task_rate = getattr(task, "learning_rates", {}).get(settings.trainer)
    if settings.learning_rate is None and task_rate is not None:
        update["learning_rate"] = float(task_rate)
    min_steps = settings.min_steps
    task_min_steps = getattr(task, "default_min_steps", None)
    if "min_steps" not in settings.model_fields_set and task_min_steps is not None:
        min_steps = task_min_steps
        update["min_steps"] = task_min_steps
    per_epoch = steps_per_epoch(train_count, settings.batch_size, settings.gradient_accumulation_steps, settings.group_by_length, world)
    epochs = epochs_for_min_steps(settings.epochs, per_epoch, min_steps)
    if epochs > settings.epochs:
        update["epochs"] = epochs
        notes.append(f"{settings.epochs} epochs x {per_epoch} steps = {settings.epochs * per_epoch} steps < train.min_steps "
                     f"{min_steps}: training {epochs} epochs ({epochs * per_epoch} steps); "
                     "set train.min_steps = 0 to keep train.epochs")
    if settings.early_stopping_patience and settings.early_stopping_min_per_label > 0:
        mean = mean_per_label(task.example_view(e).classes for e in validation_examples)
        if mean is not None and mean < settings.early_stopping_min_per_label:
            update["early_stopping_patience"] = 0
            notes.append(f"early stopping off: the validation data has {mean:.1f} examples per label on average "
                         f"(< train.early_stopping_min_per_label {settings.early_stopping_min_per_label:g}), too few to "
                         "tell a better epoch from noise; the best epoch is still kept")
    return (settings.model_copy(update=update) if update else settings), notes
