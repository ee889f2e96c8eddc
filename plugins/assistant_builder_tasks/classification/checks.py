"""Classification data for ``builder data check``: a lenient, streaming reader.

Unlike ``data.read_examples`` (which stops on the first empty text), empty or whitespace-only
texts are handed on (the generic ``empty_input`` check reports each with its line), and a file with
a ``data.validation`` is streamed record by record, so a million examples are never all held as
``TextExample`` objects. Missing fields and malformed labels still raise the usual located
``DataError``. With no ``data.validation``, the examples are split exactly as training splits them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant_builder.contracts import CheckData, ExampleView
from assistant_builder.datasources import detect_record_format, read_records
from assistant_builder.errors import DataError
from assistant_builder_tasks.classification.data import TextExample, split_validation


def _views(path: Path, file_format: str, text_field: str, label_field: str, split: str) -> Iterator[ExampleView]:
    fmt = detect_record_format(path, file_format)
    empty = True
    for record in read_records(path, fmt, split):
        row = record.row
        for name in (text_field, label_field):
            if name not in row:
                keys = ", ".join(sorted(map(str, row))) or "none"
                raise DataError(f"{record.where}: missing field '{name}' (found: {keys})",
                                hint=f"set task.options.{'text' if name == text_field else 'label'}_field to the right field name")
        text, label = row[text_field], row[label_field]
        if isinstance(label, bool) or not isinstance(label, (str, int)) or str(label).strip() == "":
            raise DataError(f"{record.where}: field '{label_field}' must be a non-empty string or integer, got {label!r}")
        empty = False
        label = str(label).strip()
        yield ExampleView(text.strip() if isinstance(text, str) else "", label, (label,), record.where)
    if empty:
        raise DataError(f"{path}: no examples found; expected {fmt} records with '{text_field}' and '{label_field}'")


def _view(example: TextExample) -> ExampleView:
    return ExampleView(example.text, example.label, (example.label,) if example.label else (), example.source)


def _example(view: ExampleView) -> TextExample:
    return TextExample(view.text, view.label, None, view.source)


def check_examples(data: Any, options: Any) -> CheckData:
    """Train and validation views of a classification recipe's data (see the module docstring)."""
    def read(path: Path, split: str) -> Iterator[ExampleView]:
        return _views(path, data.format, options.text_field, options.label_field, split)

    if data.validation is None:
        examples = [_example(v) for v in read(Path(data.train), data.dataset_train_split)]
        train, validation = split_validation(examples, data.validation_split, data.split_seed)
        return CheckData(map(_view, train), map(_view, validation), held_out=True)
    return CheckData(read(Path(data.train), data.dataset_train_split), read(Path(data.validation), data.dataset_validation_split))
