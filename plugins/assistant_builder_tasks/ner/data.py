"""NER data: CoNLL columns, parallel ``seq.in``/``seq.out`` lines, or records (JSONL, Parquet, a folder
of them, a saved Hugging Face dataset); tags normalised to IOB2.

The readers and the normalisation are the toolkit's (``assistant_builder.toolkit.readers``): every
problem is a ``DataError`` naming the file and line. This module picks the reader for a data
source, turns the sentences into ``TokenExample`` objects and checks the entity types.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder import datasources
from assistant_builder.datasources import is_saved_dataset
from assistant_builder.errors import DataError
from assistant_builder.toolkit.readers import Sentence, TagRepairWarning, normalise, read_conll, read_parallel, read_record_sentences
from assistant_builder.toolkit.tags import types_in

__all__ = ["TokenExample", "TagRepairWarning", "detect_format", "read_examples", "check_types", "load_split"]

CONLL_SUFFIXES = (".conll", ".txt", ".bio", ".iob", ".tsv")


@dataclass(frozen=True)
class TokenExample:
    """One sentence: its words, their IOB2 tags (``None`` when unlabelled), and where they are in ``text``.

    ``offsets[i]`` is the ``(start, end)`` character span of word ``i`` in ``text``. For inputs
    given as words, ``text`` is the words joined by single spaces. ``source`` is ``file:line``.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None = None
    text: str = ""
    offsets: tuple[tuple[int, int], ...] = ()
    source: str = ""


def detect_format(path: Path, declared: str) -> str:
    """``conll``, ``seq``, ``jsonl``, ``parquet``, ``files`` or ``hf_disk``, from ``declared`` or the path."""
    if declared != "auto":
        return declared
    name = path.name.lower()
    if path.is_dir():
        if is_saved_dataset(path):
            return "hf_disk"
        return "seq" if (path / "seq.in").exists() else "files"
    if name.endswith("seq.in") or name.endswith("seq.out"):
        return "seq"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(CONLL_SUFFIXES):
        return "conll"
    raise DataError(f"{path}: cannot tell the format from the name '{path.name}'",
                    hint='name the file *.conll / *.txt / *.bio, *.jsonl, *.parquet, or seq.in (+ seq.out), or set data.format = "conll", "seq" or "jsonl"')


def _examples(sentences: list[Sentence], path: Path) -> list[TokenExample]:
    return [TokenExample(s.tokens, s.tags, s.text or "", s.offsets or (), s.where(path)) for s in sentences]


def read_examples(path: Path, file_format: str, scheme: str, invalid_tags: str,
                  split: str = "train") -> tuple[list[TokenExample], list[Path]]:
    """Read and normalise one data source (a file, a ``seq.in``/``seq.out`` pair, a folder of JSONL or
    Parquet files, or split ``split`` of a saved dataset); return the examples and the files read."""
    if not path.exists():
        raise DataError(f"{path}: no such file", hint="check data.train / data.validation (paths are relative to the recipe)")
    fmt = detect_format(path, file_format)
    settings = {"invalid_tags": invalid_tags, "scheme_setting": "task.options.scheme"}
    if fmt == "conll":
        return _examples(normalise(read_conll(path), path, scheme=scheme, **settings), path), [path]
    if fmt == "seq":
        sentences, files = read_parallel(path)
        normalised = normalise(sentences, files.words, scheme=scheme, tags_path=files.tags, **settings)
        return _examples(normalised, files.words), files.all()
    if fmt in ("jsonl", "parquet", "files", "hf_disk"):
        records = datasources.read_jsonl(path) if fmt == "jsonl" else datasources.read_records(path, fmt, split)
        sentences, from_spans = read_record_sentences(records, path)
        return _examples(normalise(sentences, path, scheme="iob2" if from_spans else scheme, **settings), path), [path]
    raise DataError(f"{path}: format '{fmt}' is not one the ner task reads",
                    hint='use data.format = "auto", "conll", "seq", "jsonl", "parquet", "files" or "hf_disk"')


def entity_types(examples: list[TokenExample]) -> list[str]:
    """Entity types used in ``examples``, sorted."""
    return sorted(set().union(*(types_in(e.tags or ()) for e in examples)))


def check_types(train: list[TokenExample], validation: list[TokenExample], declared: list[str] | None) -> list[str]:
    """The entity types (declared order, or sorted from training data), checking every example against them."""
    if declared is not None:
        allowed = set(declared)
        for example in [*train, *validation]:
            unknown = sorted(types_in(example.tags or ()) - allowed)
            if unknown:
                raise DataError(f"{example.source}: entity type '{unknown[0]}' is not in task.options.labels ({', '.join(declared)})",
                                hint="add it to task.options.labels or fix the tag")
        return list(declared)
    types = entity_types(train)
    if not types:
        raise DataError(f"{train[0].source.rsplit(':', 1)[0]}: the training data has no entities (every tag is O)",
                        hint="tag the entities with B-TYPE / I-TYPE")
    for example in validation:
        unseen = sorted(types_in(example.tags or ()) - set(types))
        if unseen:
            raise DataError(f"{example.source}: entity type '{unseen[0]}' appears in validation but never in training",
                            hint="add training examples of it, or list it in task.options.labels")
    return types


def _sources(split: str, files: list[Path]) -> dict[str, Path]:
    """Provenance entries: ``split`` -> the words file, ``split_tags`` -> seq.out for the parallel-lines format."""
    return {split: files[0], **({f"{split}_tags": files[1]} if len(files) > 1 else {})}


def load_split(data: Any, options: Any) -> tuple[list[TokenExample], list[TokenExample], dict[str, Path]]:
    """Train and validation examples as the recipe's data section says (validation held out of train if absent)."""
    train_path = Path(data.train)
    train, files = read_examples(train_path, data.format, options.scheme, options.invalid_tags, data.dataset_train_split)
    sources = _sources("train", files)
    if data.validation is not None:
        validation, files = read_examples(Path(data.validation), data.format, options.scheme, options.invalid_tags,
                                          data.dataset_validation_split)
        sources.update(_sources("validation", files))
        return train, validation, sources
    if len(train) < 2:
        raise DataError(f"{train_path}: one sentence cannot be split into training and validation", hint="add data.validation or more sentences")
    order = list(range(len(train)))
    random.Random(data.split_seed).shuffle(order)
    held = max(1, round(len(train) * data.validation_split))
    chosen = set(order[:held])
    return [e for i, e in enumerate(train) if i not in chosen], [e for i, e in enumerate(train) if i in chosen], sources
