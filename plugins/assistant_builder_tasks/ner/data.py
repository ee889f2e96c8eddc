"""NER data: CoNLL columns, parallel ``seq.in``/``seq.out`` lines, or records (JSONL, Parquet, a folder
of them, a saved Hugging Face dataset); tags normalised to IOB2.

Readers return ``RawSentence`` (words, tags as written, the line of each word); ``normalise``
converts a file's sentences to IOB2 ``TokenExample`` objects, repairing or rejecting invalid tag
sequences. Every problem is a ``DataError`` naming the file and line.
"""

from __future__ import annotations

import random
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assistant_builder import datasources
from assistant_builder.datasources import Record, is_saved_dataset
from assistant_builder.errors import DataError
from assistant_builder_tasks._files import read_lines
from assistant_builder_tasks.ner.tags import TagError, detect_scheme, split_tag, to_iob2

WORD = re.compile(r"\w+|[^\w\s]")
"""How raw text is split into words (at prediction time and for JSONL ``text`` + ``entities``)."""

CONLL_SUFFIXES = (".conll", ".txt", ".bio", ".iob", ".tsv")


class TagRepairWarning(UserWarning):
    """Invalid tag sequences were repaired (``I-X`` that starts an entity read as ``B-X``)."""


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


@dataclass(frozen=True)
class RawSentence:
    """A sentence as read from a file: words, tags as written (any scheme) and each word's line."""

    tokens: list[str]
    tags: list[str]
    lines: list[int]
    text: str | None = None
    offsets: list[tuple[int, int]] | None = None
    #: where the sentence came from when that is not the file being normalised (folders, datasets)
    source: str | None = None


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
# Readers
# ---------------------------------------------------------------------------------------------


def detect_format(path: Path, declared: str) -> str:
    """``conll``, ``seq`` or ``jsonl``, from ``declared`` or the file name."""
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


def read_conll(path: Path) -> list[RawSentence]:
    """One word per line, its tag in the last column, blank lines between sentences; ``-DOCSTART-`` skipped."""
    sentences: list[RawSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    columns: tuple[int, int] | None = None  # (count, line where first seen)
    seen_content = False
    for number, text in read_lines(path):
        if not text.strip():
            if tokens:
                sentences.append(RawSentence(tokens, tags, lines))
                tokens, tags, lines = [], [], []
            continue
        seen_content = True
        parts = [p.strip() for p in text.split("\t")] if "\t" in text else text.split()
        if parts[0] == "-DOCSTART-":
            if tokens:
                sentences.append(RawSentence(tokens, tags, lines))
                tokens, tags, lines = [], [], []
            continue
        if len(parts) < 2 or not parts[0] or not parts[-1]:
            raise DataError(f"{path}:{number}: expected a word and its tag (tag in the last column), got {text.strip()!r}",
                            hint="separate columns with spaces or tabs; leave a blank line between sentences")
        if columns is None:
            columns = (len(parts), number)
        elif len(parts) != columns[0]:
            raise DataError(f"{path}:{number}: expected {columns[0]} columns (as on line {columns[1]}), got {len(parts)}: {text.strip()!r}",
                            hint="every word line needs the same columns, with the tag in the last one")
        tokens.append(parts[0])
        tags.append(parts[-1])
        lines.append(number)
    if tokens:
        sentences.append(RawSentence(tokens, tags, lines))
    if not sentences:
        what = "only -DOCSTART- lines" if seen_content else "an empty file"
        raise DataError(f"{path}: no sentences found ({what}); expected one word per line with its tag in the last column",
                        hint="CoNLL layout: `word tag` lines, a blank line between sentences")
    return sentences


def seq_pair(path: Path) -> tuple[Path, Path]:
    """The ``seq.in`` and ``seq.out`` files for ``path`` (either file, or the folder holding them)."""
    if path.is_dir():
        words, tags = path / "seq.in", path / "seq.out"
    elif path.name.endswith(".out"):
        words, tags = path.with_name(path.name[:-4] + ".in"), path
    else:
        words, tags = path, path.with_name(path.name[:-3] + ".out" if path.name.endswith(".in") else path.name + ".out")
    for needed in (words, tags):
        if not needed.is_file():
            raise DataError(f"{path}: the parallel-lines format needs {needed.name} beside {words.name}, and {needed} does not exist",
                            hint="seq.in holds one sentence per line, seq.out the tags of each word on the same line")
    return words, tags


def _content_lines(path: Path) -> list[tuple[int, str]]:
    lines = list(read_lines(path))
    while lines and not lines[-1][1].strip():
        lines.pop()
    return lines


def read_seq(path: Path) -> tuple[list[RawSentence], Path]:
    """``seq.in`` (space-separated words, one sentence a line) and ``seq.out`` (their tags); a ``label`` file is ignored."""
    words_path, tags_path = seq_pair(path)
    word_lines, tag_lines = _content_lines(words_path), _content_lines(tags_path)
    if not word_lines:
        raise DataError(f"{words_path}: empty file; expected one sentence of space-separated words per line")
    if len(word_lines) != len(tag_lines):
        shorter, longer = (words_path, tags_path) if len(word_lines) < len(tag_lines) else (tags_path, words_path)
        line = min(len(word_lines), len(tag_lines)) + 1
        raise DataError(f"{longer}:{line}: no matching line in {shorter.name} ({words_path.name} has {len(word_lines)} lines, "
                        f"{tags_path.name} has {len(tag_lines)})", hint="the two files must have one line per sentence, in the same order")
    sentences = []
    for (number, text), (_, tag_text) in zip(word_lines, tag_lines):
        tokens, tags = text.split(), tag_text.split()
        if len(tokens) != len(tags):
            raise DataError(f"{tags_path}:{number}: {len(tags)} tags for the {len(tokens)} words on {words_path.name}:{number}",
                            hint="each line of seq.out needs exactly one tag per word of the same line of seq.in")
        if tokens:
            sentences.append(RawSentence(tokens, tags, [number] * len(tokens)))
    return sentences, words_path


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _entities_to_tags(text: str, entities: Any, where: str, line: int) -> tuple[RawSentence, int]:
    """Tag the words of ``text`` from character-offset entities; return the sentence and how many spans were widened."""
    tokens, offsets = split_words(text)
    if not isinstance(entities, list):
        raise DataError(f"{where}: field 'entities' must be a list of {{\"start\", \"end\", \"label\"}} objects, got {type(entities).__name__}")
    tags = ["O"] * len(tokens)
    widened = 0
    for number, entity in enumerate(entities, start=1):
        if not isinstance(entity, dict) or not {"start", "end", "label"} <= set(entity):
            raise DataError(f"{where}: entity {number}: expected an object with 'start', 'end' and 'label', got {entity!r}")
        start, end, label = entity["start"], entity["end"], entity["label"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not 0 <= start < end <= len(text):
            raise DataError(f"{where}: entity {number}: expected character offsets 0 <= start < end <= {len(text)}, got start={start!r} end={end!r}")
        if not isinstance(label, str) or not label.strip() or label == "O" or label[:2] in ("B-", "I-", "E-", "S-"):
            raise DataError(f"{where}: entity {number}: 'label' must be an entity type such as 'person' (no B-/I- prefix), got {label!r}")
        covered = [i for i, (s, e) in enumerate(offsets) if s < end and e > start]
        if not covered:
            raise DataError(f"{where}: entity {number} ({text[start:end]!r}) covers no word")
        if any(tags[i] != "O" for i in covered):
            raise DataError(f"{where}: entity {number} ({text[start:end]!r}) overlaps another entity", hint="entities must not overlap")
        if offsets[covered[0]][0] != start or offsets[covered[-1]][1] != end:
            widened += 1
        for position, i in enumerate(covered):
            tags[i] = ("B-" if position == 0 else "I-") + label
    return RawSentence(tokens, tags, [line] * len(tokens), text, offsets), widened


def read_jsonl_sentences(path: Path) -> tuple[list[RawSentence], bool]:
    """``{"tokens": [...], "tags": [...]}`` or ``{"text": ..., "entities": [{"start", "end", "label"}]}`` per line.

    Returns the sentences and whether their tags are already IOB2 (true for the ``entities`` form).
    """
    return read_record_sentences(datasources.read_jsonl(path), path)


def read_record_sentences(records: Iterable[Record], path: Path) -> tuple[list[RawSentence], bool]:
    """Sentences from records of either JSONL form; a saved dataset's ``ner_tags`` column counts as ``tags``."""
    sentences: list[RawSentence] = []
    widened = 0
    forms = set()
    for record in records:
        row, number, where = record.row, record.number, record.where
        source = None if record.source == str(path) else record.source
        if "tokens" in row:
            forms.add("tokens")
            tag_field = "tags" if "tags" in row or "ner_tags" not in row else "ner_tags"
            if tag_field not in row:
                raise DataError(f"{where}: missing field 'tags' (found: {', '.join(sorted(row))})", hint="give one tag per token")
            tokens, tags = row["tokens"], row[tag_field]
            if not _string_list(tokens) or not tokens:
                raise DataError(f"{where}: field 'tokens' must be a non-empty list of non-empty strings, got {tokens!r}")
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise DataError(f"{where}: field 'tags' must be a list of strings, got {tags!r}")
            if len(tags) != len(tokens):
                raise DataError(f"{where}: {len(tags)} tags for {len(tokens)} tokens", hint="give exactly one tag per token")
            sentences.append(RawSentence([t.strip() for t in tokens], [t.strip() for t in tags], [number] * len(tokens), source=source))
        elif "text" in row:
            forms.add("text")
            if "entities" not in row:
                raise DataError(f"{where}: missing field 'entities' (found: {', '.join(sorted(row))})",
                                hint='give "entities": [{"start": 0, "end": 5, "label": "person"}, ...] ([] when there are none)')
            text = row["text"]
            if not isinstance(text, str) or not split_words(text)[0]:
                raise DataError(f"{where}: field 'text' must be a string with at least one word, got {text!r}")
            sentence, count = _entities_to_tags(text, row["entities"], where, number)
            widened += count
            sentences.append(replace(sentence, source=source))
        else:
            raise DataError(f"{where}: missing field 'tokens' or 'text' (found: {', '.join(sorted(row)) or 'none'})",
                            hint='each line is {"tokens": [...], "tags": [...]} or {"text": "...", "entities": [...]}')
    if not sentences:
        raise DataError(f"{path}: no sentences found (empty file); expected records with 'tokens' and 'tags', or 'text' and 'entities'")
    if widened:
        warnings.warn(f"{path}: {widened} entit{'y' if widened == 1 else 'ies'} did not start or end on a word boundary "
                      "and were widened to whole words (text is split into words with \\w+|[^\\w\\s])", TagRepairWarning, stacklevel=2)
    return sentences, forms == {"text"}


# ---------------------------------------------------------------------------------------------
# Normalisation and splits
# ---------------------------------------------------------------------------------------------


def normalise(sentences: list[RawSentence], path: Path, scheme: str, invalid_tags: str) -> list[TokenExample]:
    """Convert ``sentences`` (one file) to IOB2 examples; repair invalid sequences or raise, per ``invalid_tags``."""
    for sentence in sentences:
        for tag, line in zip(sentence.tags, sentence.lines):
            try:
                split_tag(tag)
            except ValueError as exc:
                raise DataError(f"{sentence.source or path}:{line}: {exc}", hint="tags are O, B-TYPE, I-TYPE (BIOES also E-TYPE, S-TYPE)") from None
    used = detect_scheme(s.tags for s in sentences) if scheme == "auto" else scheme
    examples: list[TokenExample] = []
    repaired: list[int] = []
    for sentence in sentences:
        origin = sentence.source or path
        try:
            tags, invalid = to_iob2(sentence.tags, used)
        except TagError as exc:
            raise DataError(f"{origin}:{sentence.lines[exc.position]}: {exc.reason}",
                            hint='set task.options.scheme to the scheme of the file, or "auto"') from None
        for position in invalid:
            if invalid_tags == "error":
                previous = sentence.tags[position - 1] if position else "the sentence start"
                raise DataError(f"{origin}:{sentence.lines[position]}: invalid {used.upper()} sequence: '{sentence.tags[position]}' "
                                f"(word {sentence.tokens[position]!r}) follows {previous!r}; an entity must start with B-",
                                hint='fix the tag, or set task.options.invalid_tags = "repair" to read it as B-')
            repaired.append(sentence.lines[position])
        if sentence.text is not None and sentence.offsets is not None:
            text, offsets = sentence.text, sentence.offsets
        else:
            text, offsets = join_words(sentence.tokens)
        examples.append(TokenExample(tuple(sentence.tokens), tuple(tags), text, tuple(offsets), f"{origin}:{sentence.lines[0]}"))
    if repaired:
        warnings.warn(f"{path}: repaired {len(repaired)} invalid tag sequence{'s' if len(repaired) > 1 else ''} "
                      f"(an entity starting with I-/E-, read as B-; first at line {repaired[0]}); "
                      'set task.options.invalid_tags = "error" to stop on them instead', TagRepairWarning, stacklevel=2)
    return examples


def read_examples(path: Path, file_format: str, scheme: str, invalid_tags: str,
                  split: str = "train") -> tuple[list[TokenExample], list[Path]]:
    """Read and normalise one data source (a file, a ``seq.in``/``seq.out`` pair, a folder of JSONL or
    Parquet files, or split ``split`` of a saved dataset); return the examples and the files read."""
    if not path.exists():
        raise DataError(f"{path}: no such file", hint="check data.train / data.validation (paths are relative to the recipe)")
    fmt = detect_format(path, file_format)
    if fmt == "conll":
        return normalise(read_conll(path), path, scheme, invalid_tags), [path]
    if fmt == "seq":
        sentences, words_path = read_seq(path)
        return normalise(sentences, words_path, scheme, invalid_tags), list(seq_pair(path))
    if fmt == "jsonl":
        sentences, is_iob2 = read_jsonl_sentences(path)
        return normalise(sentences, path, "iob2" if is_iob2 else scheme, invalid_tags), [path]
    if fmt in ("parquet", "files", "hf_disk"):
        sentences, is_iob2 = read_record_sentences(datasources.read_records(path, fmt, split), path)
        return normalise(sentences, path, "iob2" if is_iob2 else scheme, invalid_tags), [path]
    raise DataError(f"{path}: format '{fmt}' is not one the ner task reads",
                    hint='use data.format = "auto", "conll", "seq", "jsonl", "parquet", "files" or "hf_disk"')


def entity_types(examples: list[TokenExample]) -> list[str]:
    """Entity types used in ``examples``, sorted."""
    return sorted({tag[2:] for e in examples for tag in e.tags or () if tag != "O"})


def check_types(train: list[TokenExample], validation: list[TokenExample], declared: list[str] | None) -> list[str]:
    """The entity types (declared order, or sorted from training data), checking every example against them."""
    if declared is not None:
        allowed = set(declared)
        for example in [*train, *validation]:
            unknown = sorted({t[2:] for t in example.tags or () if t != "O"} - allowed)
            if unknown:
                raise DataError(f"{example.source}: entity type '{unknown[0]}' is not in task.options.labels ({', '.join(declared)})",
                                hint="add it to task.options.labels or fix the tag")
        return list(declared)
    types = entity_types(train)
    if not types:
        raise DataError(f"{train[0].source.rsplit(':', 1)[0]}: the training data has no entities (every tag is O)",
                        hint="tag the entities with B-TYPE / I-TYPE")
    for example in validation:
        unseen = sorted({t[2:] for t in example.tags or () if t != "O"} - set(types))
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
