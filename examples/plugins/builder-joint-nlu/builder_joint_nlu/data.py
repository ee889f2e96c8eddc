"""Joint NLU data: one intent and IOB2 slot tags per utterance.

Two layouts are read (``data.format`` = ``jsonl``, ``seq`` or ``auto``):

* JSONL, one utterance a line: ``{"text": "...", "intent": "...", "slots": [{"start", "end",
  "label"}]}`` with character offsets (end exclusive) on word boundaries, or ``{"tokens": [...],
  "tags": [...], "intent": "..."}`` with one IOB2 tag per word.
* The ATIS/SNIPS folder layout: ``seq.in`` (space-separated words), ``seq.out`` (their tags) and
  ``label`` (the intent), one utterance per line in each. ``data.train`` names the folder or its
  ``seq.in``.

The readers, the tag checks and the repair of invalid sequences are assistant-builder's public
toolkit (``assistant_builder.toolkit.readers``): every problem is a ``DataError`` naming the file
and line. This module adds the intent of each utterance and the label checks. Torch-free.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.datasources import read_jsonl
from assistant_builder.errors import DataError
from assistant_builder.toolkit.readers import Sentence, TagRepairWarning, normalise, read_parallel, read_record_sentences
from assistant_builder.toolkit.tags import types_in

__all__ = ["JointExample", "TagRepairWarning", "TruncationWarning", "detect_format", "read_examples", "load_split", "check_labels"]

SEQ_FILES = ("seq.in", "seq.out", "label")
#: how the readers describe a slot in their messages
SLOTS = {"noun": "slot", "example_type": "city"}


class TruncationWarning(UserWarning):
    """Some labelled utterances are longer than ``model.max_length``: their last words were cut."""


@dataclass(frozen=True)
class JointExample:
    """One utterance: its words, where they are in ``text``, its intent and IOB2 slot tags.

    ``intent`` and ``tags`` are ``None`` for unlabelled inputs. ``offsets[i]`` is the
    ``(start, end)`` character span of word ``i``; for inputs given as words, ``text`` is the
    words joined by single spaces. ``source`` is ``file:line``.
    """

    tokens: tuple[str, ...]
    text: str
    offsets: tuple[tuple[int, int], ...]
    intent: str | None = None
    tags: tuple[str, ...] | None = None
    source: str = ""


def detect_format(path: Path, declared: str) -> str:
    """``seq`` or ``jsonl``, from ``declared`` or the path (a folder or ``seq.in`` means ``seq``)."""
    if declared != "auto":
        return declared
    name = path.name.lower()
    if path.is_dir() or name in SEQ_FILES or name.endswith((".seq.in", ".seq.out")):
        return "seq"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise DataError(f"{path}: cannot tell the format from the name '{path.name}'",
                    hint='name the file *.jsonl, or give the folder holding seq.in/seq.out/label; or set data.format = "jsonl" or "seq"')


def _intent(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field 'intent' must be a non-empty string, got {value!r}")
    return value.strip()


def _jsonl_intents(sentences: list[Sentence], path: Path) -> list[str]:
    intents = []
    for sentence in sentences:
        where = sentence.where(path)
        if "intent" not in sentence.fields:
            raise DataError(f"{where}: missing field 'intent' (found: {', '.join(sorted(sentence.fields)) or 'none'})",
                            hint='every line needs "intent": "..." besides its text and slots')
        intents.append(_intent(sentence.fields["intent"], where))
    return intents


def _seq_intents(sentences: list[Sentence], label_path: Path) -> list[str]:
    intents = []
    for sentence in sentences:
        label = sentence.fields["label"]
        if not label or len(label.split()) != 1:
            raise DataError(f"{label_path}:{sentence.lines[0]}: expected one intent name (no spaces), got {label!r}")
        intents.append(label)
    return intents


def read_examples(path: Path, file_format: str, invalid_tags: str) -> tuple[list[JointExample], dict[str, Path]]:
    """Read one data file (or seq folder) into examples with valid IOB2 tags; return them and the files read."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder", hint="check data.train / data.validation (paths are relative to the recipe)")
    fmt = detect_format(path, file_format)
    if fmt == "jsonl":
        sentences, _ = read_record_sentences(read_jsonl(path), path, spans_field="slots", partial_words="error", **SLOTS)
        intents, words_path, tags_path, files = _jsonl_intents(sentences, path), path, path, {"": path}
    elif fmt == "seq":
        sentences, seq = read_parallel(path, extras=("label",))
        intents, words_path, tags_path = _seq_intents(sentences, seq.extras["label"]), seq.words, seq.tags
        files = {"": seq.words, "_tags": seq.tags, "_intents": seq.extras["label"]}
    else:
        raise DataError(f"{path}: format '{fmt}' is not one the joint_nlu task reads", hint='use data.format = "auto", "jsonl" or "seq"')
    normalised = normalise(sentences, words_path, scheme="iob2", invalid_tags=invalid_tags, tags_path=tags_path, noun="slot")
    examples = [JointExample(s.tokens, s.text or "", s.offsets or (), intent, s.tags, s.where(words_path))
                for s, intent in zip(normalised, intents)]
    return examples, files


# ---------------------------------------------------------------------------------------------
# Splits and label sets
# ---------------------------------------------------------------------------------------------


def load_split(data: Any, options: Any) -> tuple[list[JointExample], list[JointExample], dict[str, Path]]:
    """Train and validation examples as the recipe's data section says (validation held out of train if absent)."""
    train_path = Path(data.train)
    train, files = read_examples(train_path, data.format, options.invalid_tags)
    sources = {f"train{suffix}": file for suffix, file in files.items()}
    if data.validation is not None:
        validation, files = read_examples(Path(data.validation), data.format, options.invalid_tags)
        sources.update({f"validation{suffix}": file for suffix, file in files.items()})
        return train, validation, sources
    if len(train) < 2:
        raise DataError(f"{train_path}: one utterance cannot be split into training and validation", hint="add data.validation or more utterances")
    order = list(range(len(train)))
    random.Random(data.split_seed).shuffle(order)
    held = set(order[: max(1, round(len(train) * data.validation_split))])
    return [e for i, e in enumerate(train) if i not in held], [e for i, e in enumerate(train) if i in held], sources


def _slot_types(example: JointExample) -> set[str]:
    return types_in(example.tags or ())


def check_labels(train: list[JointExample], validation: list[JointExample], options: Any) -> tuple[list[str], list[str]]:
    """The intents and slot types (declared order, or sorted from training data), checking every example.

    Validation intents or slot types the model has no class for (not in training data, or not
    declared) are an error unless ``options.unseen_labels == "count_as_wrong"``; then they are
    scored as errors (the model cannot predict them).
    """
    seen_intents = {e.intent for e in train}
    seen_types = set().union(*(_slot_types(e) for e in train))
    intents = list(options.intents) if options.intents is not None else sorted(i for i in seen_intents if i)
    slot_types = list(options.slot_types) if options.slot_types is not None else sorted(seen_types)
    for example in train:
        if example.intent not in intents:
            raise DataError(f"{example.source}: intent '{example.intent}' is not in task.options.intents ({', '.join(intents)})",
                            hint="add it to task.options.intents or fix the label")
        unknown = sorted(_slot_types(example) - set(slot_types))
        if unknown:
            raise DataError(f"{example.source}: slot type '{unknown[0]}' is not in task.options.slot_types ({', '.join(slot_types)})",
                            hint="add it to task.options.slot_types or fix the tag")
    if len(seen_intents) < 2:
        raise DataError(f"{train[0].source.rsplit(':', 1)[0]}: the training data has only one intent ('{next(iter(seen_intents))}'); "
                        "a joint model needs at least two", hint="add utterances of other intents, or use the ner task for slots alone")
    if not seen_types:
        raise DataError(f"{train[0].source.rsplit(':', 1)[0]}: the training data has no slots (every tag is O)",
                        hint="tag the slots (B-TYPE / I-TYPE), or use the classification task for intents alone")
    if options.unseen_labels == "error":
        known_intents, known_types = set(intents), set(slot_types)
        for example in validation:
            if example.intent not in known_intents:
                why = "is not in task.options.intents" if options.intents is not None else "never appears in training"
                raise DataError(f"{example.source}: validation intent '{example.intent}' {why}",
                                hint='add training utterances of it, or set task.options.unseen_labels = "count_as_wrong"')
            unseen = sorted(_slot_types(example) - known_types)
            if unseen:
                why = "is not in task.options.slot_types" if options.slot_types is not None else "never appears in training"
                raise DataError(f"{example.source}: validation slot type '{unseen[0]}' {why}",
                                hint='add training utterances with it, or set task.options.unseen_labels = "count_as_wrong"')
    return intents, slot_types
