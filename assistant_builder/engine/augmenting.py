"""``[train.augment]`` in a run: ask the task for augmented copies of the training examples only."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from assistant_builder.contracts import TaskData
from assistant_builder.errors import DataError

__all__ = ["augment_training", "describe"]


def augment_training(task: Any, task_data: TaskData, settings: Any, train_seed: int) -> tuple[TaskData, int]:
    """``task_data`` with ``Task.augment``'s new examples appended to ``train`` (``validation`` is
    untouched), and how many were added. Off (nothing called, 0 added) when ``settings.copies`` is 0."""
    if settings.copies <= 0:
        return task_data, 0
    seed = train_seed if settings.seed is None else settings.seed
    added = list(task.augment(list(task_data.train), settings, random.Random(seed)))
    limit = settings.copies * len(task_data.train)
    if len(added) > limit:
        raise DataError(f"task '{task.name}': augment() returned {len(added)} examples, expected at most "
                        f"train.augment.copies x training examples = {limit}", hint="fix the task plugin's augment()")
    if not added:
        return task_data, 0
    return dataclasses.replace(task_data, train=[*task_data.train, *added]), len(added)


def describe(task: Any, settings: Any, original: int, added: int) -> str:
    """The "augment" stage line."""
    if added == 0:
        return (f"task '{task.name}' made no augmented examples (it does not implement Task.augment, or every "
                f"operation is switched off); training on the {original} examples as they are")
    return f"+{added} augmented training examples ({original} -> {original + added}; copies {settings.copies}, " \
           f"probability {settings.probability:g}; validation untouched)"
