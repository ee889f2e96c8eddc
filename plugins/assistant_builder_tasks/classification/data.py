"""Classification data: records (JSONL, CSV, Parquet, a folder of them, or a saved Hugging Face
dataset) with a text field and a label field."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.errors import DataError
from assistant_builder.datasources import detect_record_format, read_records


@dataclass(frozen=True)
class TextExample:
    """One text and (when labelled) its label; ``source`` is ``file:line`` for error messages."""

    text: str
    label: str | None = None
    id: str | None = None
    source: str = ""


def read_examples(path: Path, file_format: str, text_field: str, label_field: str, id_field: str | None,
                  split: str = "train") -> list[TextExample]:
    """Read labelled examples from ``path`` (a JSONL/CSV/Parquet file, a folder of them, or a saved
    dataset, whose split ``split`` is read); raise ``DataError`` naming file and line on bad rows."""
    fmt = detect_record_format(path, file_format)
    examples: list[TextExample] = []
    seen_ids: dict[str, str] = {}
    for record in read_records(path, fmt, split):
        row, where = record.row, record.where
        for field in (text_field, label_field):
            if field not in row:
                keys = ", ".join(sorted(map(str, row))) or "none"
                raise DataError(f"{where}: missing field '{field}' (found: {keys})", hint=f"set task.options.{'text' if field == text_field else 'label'}_field to the right field name")
        text, label = row[text_field], row[label_field]
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: field '{text_field}' must be a non-empty string, got {text!r}")
        if isinstance(label, bool) or not isinstance(label, (str, int)) or str(label).strip() == "":
            raise DataError(f"{where}: field '{label_field}' must be a non-empty string or integer, got {label!r}")
        example_id = None
        if id_field is not None:
            example_id = str(row.get(id_field, ""))
            if example_id in seen_ids:
                first = seen_ids[example_id]
                first = f"line {first.rsplit(':', 1)[1]}" if first.rsplit(":", 1)[0] == record.source else first
                raise DataError(f"{where}: duplicate id '{example_id}' (first seen at {first})")
            seen_ids[example_id] = where
        examples.append(TextExample(text.strip(), str(label).strip(), example_id, where))
    if not examples:
        raise DataError(f"{path}: no examples found; expected {fmt} records with '{text_field}' and '{label_field}'")
    return examples


def split_validation(examples: list[TextExample], fraction: float, seed: int) -> tuple[list[TextExample], list[TextExample]]:
    """Hold out ``fraction`` of each label (at least one example of labels with 2+) for validation."""
    by_label: dict[str, list[TextExample]] = {}
    for example in examples:
        by_label.setdefault(example.label or "", []).append(example)
    rng = random.Random(seed)
    train: list[TextExample] = []
    validation: list[TextExample] = []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        held = max(1, round(len(group) * fraction)) if len(group) > 1 else 0
        validation.extend(group[:held])
        train.extend(group[held:])
    return train, validation


def check_labels(train: list[TextExample], validation: list[TextExample], declared: list[str] | None,
                 fallback_label: str | None = None) -> list[str]:
    """Return the label list (declared order, or sorted), checking the data against it.

    ``fallback_label`` (out-of-scope) may appear in validation without training examples: it is
    then no class of the model, and only the rejection rule predicts it. Declared in ``labels``
    without training examples it is an error (it would be a class nothing teaches).
    """
    counts = Counter(e.label for e in train)
    if declared is not None:
        allowed = set(declared) | ({fallback_label} if fallback_label else set())
        for example in [*train, *validation]:
            if example.label not in allowed:
                raise DataError(f"{example.source}: label '{example.label}' is not in task.options.labels ({', '.join(declared)})")
        if fallback_label in declared and not counts[fallback_label]:
            raise DataError(f"task.options.labels: the fallback label '{fallback_label}' is declared as a label but has no "
                            "training examples",
                            hint="remove it from task.options.labels (it is rejected by threshold), or add training examples of it")
        labels = list(declared)
    else:
        labels = sorted(counts)
    in_scope = [label for label in counts if label != fallback_label]
    if len(in_scope) < (2 if fallback_label not in counts else 1) or len(counts) < 2:
        only = next(iter(counts), "none")
        raise DataError(f"training data has only one class ('{only}'); a classifier needs at least two labels", hint="add examples of other labels")
    for example in validation:
        if example.label not in counts and example.label != fallback_label:
            raise DataError(
                f"{example.source}: label '{example.label}' appears in validation but never in training",
                hint="add training examples of that label or remove it from validation",
            )
    return labels


def load_split(data: Any, options: Any, seed: int) -> tuple[list[TextExample], list[TextExample], dict[str, Path]]:
    """Read train (and validation, or a held-out split of train) as the recipe's data section says."""
    train_path = Path(data.train)
    train = read_examples(train_path, data.format, options.text_field, options.label_field, options.id_field, data.dataset_train_split)
    sources = {"train": train_path}
    if data.validation is not None:
        validation_path = Path(data.validation)
        validation = read_examples(validation_path, data.format, options.text_field, options.label_field, options.id_field,
                                   data.dataset_validation_split)
        sources["validation"] = validation_path
    else:
        train, validation = split_validation(train, data.validation_split, seed)
    return train, validation, sources
