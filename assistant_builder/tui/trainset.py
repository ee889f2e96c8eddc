"""The data a TUI training run gets from the labelling store, with validation kept out of training.

Labelled items are exported in the recipe's training format. When the recipe names its own
validation file, a labelled item whose text is one of the validation texts (typically a validation
error sent back with ``b`` and then fixed) is *not* exported for training: training on it would
make the next run's validation score count an example the model has seen. Its corrected label is
applied to a copy of the validation data instead (``<recipe>.labels.valid.jsonl``), which the run
then validates on; the recipe's own validation file is never modified.

Text classification only (the only kind whose errors can be sent back); other kinds export as before.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.atomic import atomic_write_text
from assistant_builder.errors import BuilderError
from assistant_builder.labelling.formats import export_file
from assistant_builder.labelling.records import LABELLED
from assistant_builder.labelling.store import LabelStore

TEXT_CLASS = "text_class"


@dataclass(frozen=True)
class TrainingData:
    """What ``export_training_data`` wrote, and the recipe overrides that make a run use it."""

    train_path: Path
    train_count: int
    validation_path: Path | None = None
    held_out: int = 0
    corrected: int = 0

    @property
    def overrides(self) -> list[str]:
        """``key=value`` recipe overrides (as ``builder run`` takes them) pointing the run at these files."""
        found = [f"data.train={json.dumps(str(self.train_path))}"]
        if self.validation_path is not None:
            found.append(f"data.validation={json.dumps(str(self.validation_path))}")
        return found

    def describe(self) -> str:
        """One line for the training log."""
        line = f"exported {self.train_count} labelled items for training"
        if self.held_out:
            line += (f"; {self.held_out} labelled validation text{'s' if self.held_out != 1 else ''} kept out of training"
                     + (f", {self.corrected} corrected label{'s' if self.corrected != 1 else ''} applied to the validation copy"
                        if self.corrected else ""))
        return line


def validation_examples(project: Any, registry: Any) -> list[Any]:
    """The recipe's own validation examples (text classification with a validation file), else ``[]``."""
    recipe = project.loaded.recipe
    if project.kind != TEXT_CLASS or recipe.data.validation is None:
        return []
    path = project.loaded.resolve(recipe.data.validation)
    data_section = recipe.data.model_copy(update={"train": path, "validation": path,
                                                  "dataset_train_split": recipe.data.dataset_validation_split})
    task = registry.create("task", recipe.task.type)
    try:
        return list(task.load_data(data_section, task.Options.model_validate(recipe.task.options)).validation)
    except (BuilderError, OSError):
        return []  # an unreadable validation file is reported by the run itself, with its location


def export_training_data(store: LabelStore, project: Any, registry: Any) -> TrainingData:
    """Export the store for a run (see the module docstring); return what was written."""
    target = project.training_file()
    validation = validation_examples(project, registry)
    held: dict[str, Any] = {}
    if validation:
        texts = {example.text for example in validation}
        held = {item.payload["text"]: item.gold for item in store.items(LABELLED) if item.payload.get("text") in texts}
    count = export_file(store, target, project.kind, **project.export_options(), exclude_texts=held.keys())
    if not held:
        return TrainingData(target, count)
    corrected = [example for example in validation if example.text in held and held[example.text] != example.label]
    if not corrected:
        return TrainingData(target, count, held_out=len(held))
    copy = project.recipe_path.with_name(f"{project.recipe_path.stem}.labels.valid.jsonl")
    _write_validation_copy(copy, validation, held, project.text_field, project.label_field)
    return TrainingData(target, count, copy, held_out=len(held), corrected=len(corrected))


def _write_validation_copy(path: Path, validation: Collection[Any], corrections: dict[str, Any], text_field: str,
                           label_field: str) -> None:
    lines = [json.dumps({text_field: example.text, label_field: corrections.get(example.text, example.label)}, ensure_ascii=False)
             for example in validation]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
