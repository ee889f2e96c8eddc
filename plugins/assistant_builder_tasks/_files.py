"""Reading data files line by line with located errors (shared by the task plugins)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant_builder.errors import DataError


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of a UTF-8 file (1-based line numbers).

    Raises ``DataError`` naming the file and line on bytes that are not UTF-8.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{number}: bytes that are not UTF-8 at column {exc.start + 1}",
                    hint="re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
                ) from None
            yield number, text.rstrip("\r\n")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file."""
    for number, text in read_lines(path):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: malformed JSON ({exc.msg} at column {exc.colno})", hint="each line must be one JSON object") from None
        if not isinstance(value, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
        yield number, value


def read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, row)`` for each data row of a CSV file with a header row."""
    lines = [text for _, text in read_lines(path)]
    reader = csv.DictReader(lines)
    try:
        if not reader.fieldnames:
            raise DataError(f"{path}: empty CSV file; expected a header row and data rows")
        for row in reader:
            if None in row:
                raise DataError(f"{path}:{reader.line_num}: more columns than the header ({', '.join(reader.fieldnames)})")
            yield reader.line_num, row
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num + 1}: malformed CSV ({exc})", hint="quote fields that contain commas, quotes or line breaks") from None


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
