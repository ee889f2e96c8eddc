"""Reading data files line by line with located errors (shared by the task plugins; the readers
themselves live in the core ``assistant_builder.datasources``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant_builder import datasources
from assistant_builder.datasources import read_lines
from assistant_builder.errors import DataError

__all__ = ["detect_format", "read_csv", "read_jsonl", "read_lines"]


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file."""
    for record in datasources.read_jsonl(path):
        yield record.number, record.row


def read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, row)`` for each data row of a CSV file with a header row."""
    for record in datasources.read_csv(path):
        yield record.number, record.row


def detect_format(path: Path, declared: str) -> str:
    """Return 'jsonl' or 'csv' from ``declared`` or the file extension."""
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise DataError(f"{path}: cannot tell the format from the extension '{suffix}'", hint="set data.format = \"jsonl\" or \"csv\" in the recipe")
