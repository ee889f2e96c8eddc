"""Joint NLU data: one intent and IOB2 slot tags per utterance.

Two layouts are read (``data.format`` = ``jsonl``, ``seq`` or ``auto``):

* JSONL, one utterance a line: ``{"text": "...", "intent": "...", "slots": [{"start", "end",
  "label"}]}`` with character offsets (end exclusive) on word boundaries, or ``{"tokens": [...],
  "tags": [...], "intent": "..."}`` with one IOB2 tag per word.
* The ATIS/SNIPS folder layout: ``seq.in`` (space-separated words), ``seq.out`` (their tags) and
  ``label`` (the intent), one utterance per line in each. ``data.train`` names the folder or its
  ``seq.in``.

Every problem is a ``DataError`` naming the file and line. Torch-free.
"""

from __future__ import annotations

import json
import random
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.errors import DataError
from builder_joint_nlu.tags import check_tag, invalid_positions, repair

WORD = re.compile(r"\w+|[^\w\s]")
"""How raw text is split into words (JSONL ``text`` and prediction inputs)."""

SEQ_FILES = ("seq.in", "seq.out", "label")


class TagRepairWarning(UserWarning):
    """Invalid tag sequences were repaired (an ``I-X`` that starts a slot read as ``B-X``)."""


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


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words of ``text`` (``\\w+`` runs and single punctuation marks) and their character offsets."""
    matches = list(WORD.finditer(text))
    return [m.group() for m in matches], [(m.start(), m.end()) for m in matches]


def join_words(tokens: list[str] | tuple[str, ...]) -> tuple[str, list[tuple[int, int]]]:
    """``tokens`` joined by spaces, and each token's offsets in that text."""
    offsets, position = [], 0
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return " ".join(tokens), offsets


# ---------------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------------


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of a UTF-8 file; a located ``DataError`` on other bytes."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{number}: bytes that are not UTF-8 at column {exc.start + 1}",
                                hint="re-save the file as UTF-8") from None
            yield number, text.rstrip("\r\n")


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


def _tag_problem(tags: list[str]) -> str | None:
    for number, tag in enumerate(tags, start=1):
        problem = check_tag(tag)
        if problem:
            return f"word {number}: {problem}"
    return None


def _slots_to_tags(text: str, slots: Any, where: str) -> tuple[list[str], list[str], list[tuple[int, int]]]:
    """Words of ``text``, their offsets and IOB2 tags from character-offset ``slots``."""
    tokens, offsets = split_words(text)
    if not isinstance(slots, list):
        raise DataError(f"{where}: field 'slots' must be a list of {{\"start\", \"end\", \"label\"}} objects, got {type(slots).__name__}")
    tags = ["O"] * len(tokens)
    starts = {start: i for i, (start, _) in enumerate(offsets)}
    ends = {end: i for i, (_, end) in enumerate(offsets)}
    for number, slot in enumerate(slots, start=1):
        if not isinstance(slot, dict) or not {"start", "end", "label"} <= set(slot):
            raise DataError(f"{where}: slot {number}: expected an object with 'start', 'end' and 'label', got {slot!r}")
        start, end, label = slot["start"], slot["end"], slot["label"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not 0 <= start < end <= len(text):
            raise DataError(f"{where}: slot {number}: expected character offsets 0 <= start < end <= {len(text)}, got start={start!r} end={end!r}")
        if not isinstance(label, str) or not label.strip() or label == "O" or label[:2] in ("B-", "I-"):
            raise DataError(f"{where}: slot {number}: 'label' must be a slot type such as 'city' (no B-/I- prefix), got {label!r}")
        if start not in starts or end not in ends:
            raise DataError(f"{where}: slot {number} ({text[start:end]!r}, {start}-{end}) does not start and end on word boundaries",
                            hint="words are \\w+ runs and single punctuation marks; cover whole words")
        first, last = starts[start], ends[end]
        if any(tag != "O" for tag in tags[first : last + 1]):
            raise DataError(f"{where}: slot {number} ({text[start:end]!r}) overlaps another slot", hint="slots must not overlap")
        for position in range(first, last + 1):
            tags[position] = ("B-" if position == first else "I-") + label.strip()
    return tokens, tags, offsets


def _intent(row: dict[str, Any], where: str) -> str:
    if "intent" not in row:
        raise DataError(f"{where}: missing field 'intent' (found: {', '.join(sorted(row)) or 'none'})",
                        hint='every line needs "intent": "..." besides its text and slots')
    intent = row["intent"]
    if not isinstance(intent, str) or not intent.strip():
        raise DataError(f"{where}: field 'intent' must be a non-empty string, got {intent!r}")
    return intent.strip()


def read_jsonl(path: Path) -> list[tuple[int, list[str], list[str], str, str | None, list[tuple[int, int]] | None]]:
    """Rows ``(line, words, tags as written, intent, text, offsets)``; ``text`` is ``None`` for the tokens form."""
    rows = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})", hint="each line must be one JSON object") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        if "tokens" in row:
            tokens, tags = row["tokens"], row.get("tags")
            if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
                raise DataError(f"{where}: field 'tokens' must be a non-empty list of non-empty strings, got {tokens!r}")
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise DataError(f"{where}: field 'tags' must be a list of IOB2 tags (one per token), got {tags!r}")
            if len(tags) != len(tokens):
                raise DataError(f"{where}: {len(tags)} tags for {len(tokens)} tokens", hint="give exactly one tag per token")
            rows.append((number, [t.strip() for t in tokens], [t.strip() for t in tags], _intent(row, where), None, None))
        elif "text" in row:
            text = row["text"]
            if not isinstance(text, str) or not split_words(text)[0]:
                raise DataError(f"{where}: field 'text' must be a string with at least one word, got {text!r}")
            if "slots" not in row:
                raise DataError(f"{where}: missing field 'slots' (found: {', '.join(sorted(row))})",
                                hint='give "slots": [{"start": 0, "end": 5, "label": "city"}, ...] ([] when there are none)')
            tokens, tags, offsets = _slots_to_tags(text, row["slots"], where)
            rows.append((number, tokens, tags, _intent(row, where), text, offsets))
        else:
            raise DataError(f"{where}: missing field 'text' or 'tokens' (found: {', '.join(sorted(row)) or 'none'})",
                            hint='each line is {"text": "...", "intent": "...", "slots": [...]} or {"tokens": [...], "tags": [...], "intent": "..."}')
    if not rows:
        raise DataError(f"{path}: no utterances found (empty file); expected JSONL lines with 'text', 'intent' and 'slots'")
    return rows


def seq_files(path: Path) -> tuple[Path, Path, Path]:
    """``seq.in``, ``seq.out`` and ``label`` for ``path`` (their folder, or ``seq.in`` itself)."""
    folder = path if path.is_dir() else path.parent
    prefix = "" if path.is_dir() or path.name in SEQ_FILES else path.name.rsplit("seq.", 1)[0]
    files = (folder / f"{prefix}seq.in", folder / f"{prefix}seq.out", folder / (f"{prefix}label" if prefix else "label"))
    for needed in files:
        if not needed.is_file():
            raise DataError(f"{path}: the seq layout needs {needed.name} in {folder}, and {needed} does not exist",
                            hint="seq.in holds one utterance per line, seq.out the tag of each word, label the intent")
    return files


def _content_lines(path: Path) -> list[tuple[int, str]]:
    lines = list(read_lines(path))
    while lines and not lines[-1][1].strip():
        lines.pop()
    return lines


def read_seq(path: Path) -> list[tuple[int, list[str], list[str], str, str | None, list[tuple[int, int]] | None]]:
    """Rows ``(line, words, tags, intent, None, None)`` from parallel ``seq.in``/``seq.out``/``label`` lines."""
    words_path, tags_path, label_path = seq_files(path)
    words, tags, labels = _content_lines(words_path), _content_lines(tags_path), _content_lines(label_path)
    if not words:
        raise DataError(f"{words_path}: empty file; expected one utterance of space-separated words per line")
    counts = {words_path: len(words), tags_path: len(tags), label_path: len(labels)}
    if len(set(counts.values())) > 1:
        shortest = min(counts, key=counts.__getitem__)
        longest = max(counts, key=counts.__getitem__)
        raise DataError(f"{longest}:{counts[shortest] + 1}: no matching line in {shortest.name} "
                        f"({', '.join(f'{p.name} has {n} lines' for p, n in counts.items())})",
                        hint="the three files need one line per utterance, in the same order")
    rows = []
    for (number, text), (_, tag_text), (_, label) in zip(words, tags, labels):
        tokens, word_tags = text.split(), tag_text.split()
        if not tokens and not word_tags and not label.strip():
            continue
        if not tokens:
            raise DataError(f"{words_path}:{number}: empty utterance (its tags or intent are not empty)")
        if len(tokens) != len(word_tags):
            raise DataError(f"{tags_path}:{number}: {len(word_tags)} tags for the {len(tokens)} words on {words_path.name}:{number}",
                            hint="each line of seq.out needs exactly one tag per word of the same line of seq.in")
        if not label.strip() or len(label.split()) != 1:
            raise DataError(f"{label_path}:{number}: expected one intent name (no spaces), got {label.strip()!r}")
        rows.append((number, tokens, word_tags, label.strip(), None, None))
    return rows


def read_examples(path: Path, file_format: str, invalid_tags: str) -> tuple[list[JointExample], dict[str, Path]]:
    """Read one data file (or seq folder) into examples with valid IOB2 tags; return them and the files read."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder", hint="check data.train / data.validation (paths are relative to the recipe)")
    fmt = detect_format(path, file_format)
    if fmt == "jsonl":
        rows, files, tags_file = read_jsonl(path), {"": path}, path
    elif fmt == "seq":
        rows = read_seq(path)
        words_path, tags_file, label_path = seq_files(path)
        files = {"": words_path, "_tags": tags_file, "_intents": label_path}
    else:
        raise DataError(f"{path}: format '{fmt}' is not one the joint_nlu task reads", hint='use data.format = "auto", "jsonl" or "seq"')
    examples, repaired = [], []
    for number, tokens, tags, intent, text, offsets in rows:
        problem = _tag_problem(tags)
        if problem:
            raise DataError(f"{tags_file}:{number}: {problem}", hint="tags are O, B-TYPE and I-TYPE (IOB2)")
        invalid = invalid_positions(tags)
        if invalid and invalid_tags == "error":
            position = invalid[0]
            previous = f"'{tags[position - 1]}'" if position else "the utterance start"
            raise DataError(f"{tags_file}:{number}: invalid IOB2 sequence: '{tags[position]}' (word {tokens[position]!r}) follows {previous}; "
                            "a slot must start with B-", hint='fix the tag, or set task.options.invalid_tags = "repair" to read it as B-')
        if invalid:
            repaired.append(number)
            tags = repair(tags)
        if text is None:
            text, joined = join_words(tokens)
            offsets = joined
        examples.append(JointExample(tuple(tokens), text, tuple(offsets or ()), intent, tuple(tags), f"{files['']}:{number}"))
    if repaired:
        warnings.warn(f"{tags_file}: repaired {len(repaired)} invalid tag sequence{'s' if len(repaired) > 1 else ''} (a slot starting "
                      f"with I-, read as B-; first at line {repaired[0]}); set task.options.invalid_tags = \"error\" to stop on them",
                      TagRepairWarning, stacklevel=2)
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
    return {tag[2:] for tag in example.tags or () if tag != "O"}


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
