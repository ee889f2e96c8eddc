"""Record sources for task data: JSONL and CSV files, Parquet files, a folder of such files, or a
Hugging Face ``datasets`` dataset saved with ``save_to_disk``.

Every source yields ``Record``s: a row (a dict) and where it came from (``source`` and a 1-based
``number``: the line of a JSONL file, the CSV line, or the row of a Parquet file or dataset split),
so task readers can name ``source:number`` in their errors whatever the source.

Columns a ``datasets`` dataset stores as ``ClassLabel`` (or lists of them, such as ``ner_tags``)
are decoded to their label names, so labels read the same as in JSONL files.

Torch-free. ``pyarrow`` (Parquet) and ``datasets`` (saved datasets) are imported only when such a
source is read; install them with ``pip install 'assistant-builder[data]'``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.errors import DataError

#: formats of one file, by extension
FILE_FORMATS: dict[str, str] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
#: formats this module reads (``data.format`` values); "files" = a folder of JSONL/CSV/Parquet files
RECORD_FORMATS = ("jsonl", "csv", "parquet", "files", "hf_disk")
#: files ``save_to_disk`` writes: a single split, or a ``DatasetDict`` of splits
_DATASET_MARKERS = ("dataset_info.json", "state.json")
_DATASET_DICT_MARKER = "dataset_dict.json"
_EXTRA_HINT = "pip install 'assistant-builder[data]'"


@dataclass(frozen=True)
class Record:
    """One row and where it came from (``source:number`` in error messages)."""

    source: str
    number: int
    row: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.source}:{self.number}"


def is_saved_dataset(path: Path) -> bool:
    """True if ``path`` is a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return path.is_dir() and ((path / _DATASET_DICT_MARKER).is_file() or all((path / m).is_file() for m in _DATASET_MARKERS))


def detect_record_format(path: Path, declared: str = "auto") -> str:
    """The record format of ``path``: ``declared`` unless "auto", else from the folder or extension."""
    if declared != "auto":
        return declared
    if path.is_dir():
        return "hf_disk" if is_saved_dataset(path) else "files"
    found = FILE_FORMATS.get(path.suffix.lower())
    if found is None:
        raise DataError(f"{path}: cannot tell the format from the extension '{path.suffix}'",
                        hint=f"use one of {', '.join(sorted(FILE_FORMATS))}, a folder of them, or set data.format")
    return found


def read_records(path: Path, declared: str = "auto", split: str = "train") -> Iterator[Record]:
    """Yield the records of ``path`` (a file, a folder of files, or a saved dataset).

    ``split`` chooses the split of a saved ``DatasetDict``. Raises ``DataError`` naming the source
    and line/row on malformed input.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder", hint="check data.train / data.validation (paths are relative to the recipe)")
    fmt = detect_record_format(path, declared)
    if fmt in ("files", "hf_disk") and not path.is_dir():
        raise DataError(f"{path}: data.format '{fmt}' needs a folder, got a file")
    if fmt == "jsonl":
        yield from read_jsonl(path)
    elif fmt == "csv":
        yield from read_csv(path)
    elif fmt == "parquet":
        yield from read_parquet(path)
    elif fmt == "files":
        yield from read_folder(path)
    elif fmt == "hf_disk":
        yield from read_saved_dataset(path, split)
    else:
        raise DataError(f"{path}: unknown record format '{fmt}'; expected one of: auto, {', '.join(RECORD_FORMATS)}")


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


def read_jsonl(path: Path) -> Iterator[Record]:
    """One record per non-blank line of a JSONL file; each line must be a JSON object."""
    for number, text in read_lines(path):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: malformed JSON ({exc.msg} at column {exc.colno})", hint="each line must be one JSON object") from None
        if not isinstance(value, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
        yield Record(str(path), number, value)


def read_csv(path: Path) -> Iterator[Record]:
    """One record per data row of a CSV file with a header row (``number`` is the row's line)."""
    lines = [text for _, text in read_lines(path)]
    reader = csv.DictReader(lines)
    try:
        if not reader.fieldnames:
            raise DataError(f"{path}: empty CSV file; expected a header row and data rows")
        for row in reader:
            if None in row:
                raise DataError(f"{path}:{reader.line_num}: more columns than the header ({', '.join(reader.fieldnames)})")
            yield Record(str(path), reader.line_num, row)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num + 1}: malformed CSV ({exc})", hint="quote fields that contain commas, quotes or line breaks") from None


def read_parquet(path: Path) -> Iterator[Record]:
    """One record per row of a Parquet file (``number`` is the 1-based row)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow, which is not installed", hint=_EXTRA_HINT) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield Record(str(path), number, row)


def read_folder(path: Path) -> Iterator[Record]:
    """The records of every JSONL, CSV and Parquet file directly in ``path``, in file-name order."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FILE_FORMATS)
    if not files:
        raise DataError(f"{path}: folder holds no data files; expected files ending in {', '.join(sorted(FILE_FORMATS))} "
                        "or a dataset saved with `datasets` save_to_disk")
    for file in files:
        yield from read_records(file, FILE_FORMATS[file.suffix.lower()])


def read_saved_dataset(path: Path, split: str) -> Iterator[Record]:
    """The rows of a saved ``Dataset``, or of split ``split`` of a saved ``DatasetDict``."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"{path}: reading a saved Hugging Face dataset needs the `datasets` package, which is not installed",
                        hint=_EXTRA_HINT) from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - datasets raises several types for a damaged folder
        raise DataError(f"{path}: cannot be loaded with datasets.load_from_disk ({type(exc).__name__}: {exc})") from None
    source = str(path)
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{path}: the dataset has no split '{split}'; it has: {', '.join(loaded)}",
                            hint="set data.dataset_train_split / data.dataset_validation_split to one of those")
        loaded = loaded[split]
        source = f"{path}[{split}]"
    decoders = _label_decoders(loaded.features)
    for number, row in enumerate(loaded, start=1):
        for column, decode in decoders.items():
            row[column] = decode(row[column])
        yield Record(source, number, row)


def _label_decoders(features: Any) -> dict[str, Any]:
    """Column -> function turning stored class ids into label names, for ClassLabel columns and lists of them."""
    decoders: dict[str, Any] = {}
    for column, feature in features.items():
        names = getattr(feature, "names", None)
        inner = getattr(feature, "feature", None)
        if isinstance(names, list):
            decoders[column] = lambda value, names=names: names[value] if isinstance(value, int) and value >= 0 else value
        elif isinstance(getattr(inner, "names", None), list):
            decoders[column] = lambda values, names=inner.names: [names[v] if isinstance(v, int) and v >= 0 else v for v in values]
    return decoders
