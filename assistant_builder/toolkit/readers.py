"""Readers for token-level data, with every problem a ``DataError`` naming the file and line. Torch-free.

Three layouts of words with one tag each, read into ``Sentence`` objects (tags as written, in any
scheme, and the line of each word):

* CoNLL columns (``read_conll``): one word per line, its tag in the last column, blank lines
  between sentences, ``-DOCSTART-`` lines skipped.
* Parallel lines (``read_parallel``): ``seq.in`` holds one sentence of space-separated words per
  line, ``seq.out`` their tags on the same line; further parallel files (ATIS/SNIPS ``label``, the
  intent) add one value per sentence to ``Sentence.fields``.
* Records (``read_record_sentences``: JSONL lines, Parquet rows, a saved dataset): ``{"tokens":
  [...], "tags": [...]}``, or ``{"text": "...", "entities": [{"start", "end", "label"}]}`` with
  character offsets, tagged word by word (``char_spans_to_tags``). The record's fields stay in
  ``Sentence.fields``.

``normalise`` then converts one file's sentences to IOB2 (``tags.to_iob2``), repairing or
rejecting invalid sequences, and fills in each sentence's text and word offsets.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from assistant_builder.datasources import Record, read_lines
from assistant_builder.errors import DataError
from assistant_builder.toolkit.alignment import char_span_words, join_words, locate_words, split_words, words_char_span
from assistant_builder.toolkit.tags import detect_scheme, tag_problem, to_iob2

__all__ = ["Sentence", "ParallelFiles", "TagRepairWarning", "read_lines", "content_lines", "read_conll", "parallel_files",
           "read_parallel", "PartialWord", "char_spans_to_tags", "record_sentence", "read_record_sentences", "normalise"]

_TAG_HINTS = {None: "tags are O, B-TYPE, I-TYPE (BIOES also E-TYPE, S-TYPE)", "iob1": "tags are O, B-TYPE and I-TYPE (IOB1)",
              "iob2": "tags are O, B-TYPE and I-TYPE (IOB2)", "bioes": "tags are O, B-TYPE, I-TYPE, E-TYPE and S-TYPE (BIOES)"}


class TagRepairWarning(UserWarning):
    """Invalid tags were repaired: an ``I-X`` that starts an entity read as ``B-X``, or a span widened to whole words."""


@dataclass(frozen=True)
class Sentence:
    """A sentence as read: its words, their tags, the line of each word, and what else the source gave.

    ``text`` and ``offsets`` (each word's ``(start, end)`` in ``text``) are set when the source
    had a text (records with character spans) and always after ``normalise``. ``source`` names the
    file when it is not the one being read (a folder of files, a saved dataset). ``fields`` holds
    the record's fields, or the values of the extra parallel files. ``word_per_line`` is true when
    every word has its own line (CoNLL), so messages name the line alone, not ``word N``.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    lines: tuple[int, ...]
    text: str | None = None
    offsets: tuple[tuple[int, int], ...] | None = None
    source: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    word_per_line: bool = False

    def where(self, path: Path | str) -> str:
        """``file:line`` of the sentence's first word (``path`` unless the sentence names its own source)."""
        return f"{self.source or path}:{self.lines[0]}"


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


def content_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of every line of a UTF-8 file, blank lines at the end dropped."""
    lines = list(read_lines(path))
    while lines and not lines[-1][1].strip():
        lines.pop()
    return lines


# ---------------------------------------------------------------------------------------------
# CoNLL
# ---------------------------------------------------------------------------------------------


def read_conll(path: Path) -> list[Sentence]:
    """One word per line, its tag in the last column (tabs or spaces), blank lines between sentences.

    ``-DOCSTART-`` lines are skipped; every word line must have as many columns as the first one.
    A line whose word is a space (``"  O"``: one character per line files of text with spaces,
    such as CAIS) is no word: the sentence's text (``Sentence.text``) keeps the space there.
    """
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    spaces: set[int] = set()  # words that follow a space line
    columns: tuple[int, int] | None = None  # (count, line where first seen)
    seen_content = False

    def flush() -> None:
        if tokens:
            text, offsets = join_words(tokens, spaces) if spaces else (None, None)
            sentences.append(Sentence(tuple(tokens), tuple(tags), tuple(lines), text, tuple(offsets) if offsets else None,
                                      word_per_line=True))
        tokens.clear()
        tags.clear()
        lines.clear()
        spaces.clear()

    for number, text in read_lines(path):
        if not text.strip():
            flush()
            continue
        seen_content = True
        parts = [p.strip() for p in text.split("\t")] if "\t" in text else text.split()
        if parts[0] == "-DOCSTART-":
            flush()
            continue
        if len(parts) == 1 and text[:1] in (" ", "\u3000") and (columns is None or columns[0] == 2):
            spaces.add(len(tokens))  # the word is a space: kept in the text, not a word
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
    flush()
    if not sentences:
        what = "only -DOCSTART- lines" if seen_content else "an empty file"
        raise DataError(f"{path}: no sentences found ({what}); expected one word per line with its tag in the last column",
                        hint="CoNLL layout: `word tag` lines, a blank line between sentences")
    return sentences


# ---------------------------------------------------------------------------------------------
# Parallel lines: seq.in / seq.out (/ label ...)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParallelFiles:
    """The files of the parallel-lines layout: words, tags, and the extra files by name."""

    words: Path
    tags: Path
    extras: dict[str, Path] = field(default_factory=dict)

    def all(self) -> list[Path]:
        """Every file, words first (what a run records in its provenance)."""
        return [self.words, self.tags, *self.extras.values()]


def parallel_files(path: Path, extras: Sequence[str] = ()) -> ParallelFiles:
    """The files for ``path``: a folder (``seq.in``, ``seq.out``), the words file or the tags file.

    ``x.in`` pairs with ``x.out`` (``train.seq.in`` with ``train.seq.out``). Each extra file is
    named after the words file's prefix: ``label`` for ``seq.in``, ``train.label`` for
    ``train.seq.in``, ``x.label`` for ``x.in``. Raises ``DataError`` naming the first one missing.
    """
    if path.is_dir():
        words, tags = path / "seq.in", path / "seq.out"
    elif path.name.endswith(".out"):
        words, tags = path.with_name(path.name[:-4] + ".in"), path
    else:
        words, tags = path, path.with_name(path.name[:-3] + ".out" if path.name.endswith(".in") else path.name + ".out")
    if words.name.endswith("seq.in"):
        stem = words.name[: -len("seq.in")]
    else:
        stem = (words.name[:-3] if words.name.endswith(".in") else words.name) + "."
    files = ParallelFiles(words, tags, {name: words.with_name(stem + name) for name in extras})
    for needed in files.all():
        if not needed.is_file():
            what = "".join(f", {name} one value per line" for name in extras)
            raise DataError(f"{path}: the parallel-lines format needs {needed.name} beside {words.name}, and {needed} does not exist",
                            hint=f"seq.in holds one sentence per line, seq.out the tags of each word on the same line{what}")
    return files


def read_parallel(path: Path, extras: Sequence[str] = ()) -> tuple[list[Sentence], ParallelFiles]:
    """Sentences from parallel words / tags (/ ``extras``) files, one sentence per line in each.

    Lines blank in every file are skipped. Each extra file's value for a sentence (its line,
    stripped) is in ``Sentence.fields[name]``. Every file must have the same number of lines.
    """
    files = parallel_files(path, extras)
    contents = {p: content_lines(p) for p in files.all()}
    if not contents[files.words]:
        raise DataError(f"{files.words}: empty file; expected one sentence of space-separated words per line")
    counts = {p: len(lines) for p, lines in contents.items()}
    if len(set(counts.values())) > 1:
        shortest, longest = min(counts, key=counts.__getitem__), max(counts, key=counts.__getitem__)
        sizes = ", ".join(f"{p.name} has {n}" + (" lines" if i == 0 else "") for i, (p, n) in enumerate(counts.items()))
        raise DataError(f"{longest}:{counts[shortest] + 1}: no matching line in {shortest.name} ({sizes})",
                        hint=f"the {len(counts)} files need one line per sentence, in the same order")
    sentences = []
    rows = zip(contents[files.words], contents[files.tags], *(contents[p] for p in files.extras.values()))
    for (number, text), (_, tag_text), *extra in rows:
        tokens, tags = text.split(), tag_text.split()
        values = {name: value.strip() for name, (_, value) in zip(files.extras, extra)}
        if not tokens and not tags and not any(values.values()):
            continue
        if len(tokens) != len(tags):
            raise DataError(f"{files.tags}:{number}: {len(tags)} tags for the {len(tokens)} words on {files.words.name}:{number}",
                            hint=f"each line of {files.tags.name} needs exactly one tag per word of the same line of {files.words.name}")
        if not tokens:
            filled = ", ".join(files.extras[name].name for name, value in values.items() if value)
            raise DataError(f"{files.words}:{number}: no words on this line, but the same line of {filled} is not empty")
        sentences.append(Sentence(tuple(tokens), tuple(tags), (number,) * len(tokens), fields=values))
    return sentences, files


# ---------------------------------------------------------------------------------------------
# Records: tokens + tags, or text + character spans
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartialWord:
    """A character span that starts or ends inside a word (``char_spans_to_tags``), widened to whole words.

    ``number`` is the span's 1-based position in its record, ``span`` its ``(start, end)`` as given,
    ``words`` the ``(start, end)`` of the whole words it was widened to, and ``cut`` the text of each
    word it cuts.
    """

    number: int
    label: str
    span: tuple[int, int]
    words: tuple[int, int]
    cut: tuple[str, ...]


def _cut_words(text: str, offsets: Sequence[tuple[int, int]], covered: Sequence[int], start: int, end: int) -> tuple[str, ...]:
    first, last = offsets[covered[0]], offsets[covered[-1]]
    cut = [text[first[0]:first[1]]] if first[0] != start else []
    if last[1] != end and (covered[-1] != covered[0] or not cut):
        cut.append(text[last[0]:last[1]])
    return tuple(cut)


def char_spans_to_tags(text: str, spans: Any, where: str, *, field_name: str = "entities", noun: str = "entity",
                       example_type: str = "person", partial_words: str = "widen",
                       widened_spans: list[PartialWord] | None = None) -> tuple[list[str], list[str], list[tuple[int, int]], int]:
    """The words of ``text``, their IOB2 tags from character ``spans`` (``[{"start", "end", "label"}]``) and offsets.

    Returns ``(words, tags, offsets, widened)``. Words are ``alignment.split_words`` (Chinese,
    Japanese and Thai text by character). A span that starts or ends inside a word covers that
    whole word (``partial_words="widen"``, counted in ``widened`` and, when ``widened_spans`` is
    given, appended to it as a ``PartialWord``) or is an error naming the word (``"error"``).
    Overlapping spans (including two spans that cut the same word), offsets outside the text, a
    span over white space only and labels with a tag prefix are errors located at ``where``
    (``file:line``) and the span's number.
    """
    tokens, offsets = split_words(text)
    if not isinstance(spans, list):
        raise DataError(f"{where}: field '{field_name}' must be a list of {{\"start\", \"end\", \"label\"}} objects, got {type(spans).__name__}")
    tags = ["O"] * len(tokens)
    owner: dict[int, tuple[int, bool]] = {}  # word -> (span number, whether that span cut a word)
    widened = 0
    for number, span in enumerate(spans, start=1):
        if not isinstance(span, dict) or not {"start", "end", "label"} <= set(span):
            raise DataError(f"{where}: {noun} {number}: expected an object with 'start', 'end' and 'label', got {span!r}")
        start, end, label = span["start"], span["end"], span["label"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not 0 <= start < end <= len(text):
            raise DataError(f"{where}: {noun} {number}: expected character offsets 0 <= start < end <= {len(text)}, got start={start!r} end={end!r}")
        if not isinstance(label, str) or not label.strip() or label.strip() == "O" or label.strip()[:2] in ("B-", "I-", "E-", "S-"):
            raise DataError(f"{where}: {noun} {number}: 'label' must be {_article(noun)} {noun} type such as '{example_type}' "
                            f"(no B-/I- prefix), got {label!r}")
        covered = char_span_words(offsets, start, end)
        if not covered:
            raise DataError(f"{where}: {noun} {number} ({text[start:end]!r}) covers no word")
        partial = offsets[covered[0]][0] != start or offsets[covered[-1]][1] != end
        cut = _cut_words(text, offsets, covered, start, end) if partial else ()
        if partial:
            if partial_words == "error":
                raise DataError(f"{where}: {noun} {number} ({text[start:end]!r}, {start}-{end}) starts or ends inside the word "
                                f"{' and '.join(repr(w) for w in cut)}; expected spans on word boundaries",
                                hint="words are runs of letters and digits, single punctuation marks, and single Chinese, "
                                     "Japanese or Thai characters; cover whole words")
            widened += 1
            if widened_spans is not None:
                widened_spans.append(PartialWord(number, label.strip(), (start, end), words_char_span(offsets, covered[0], covered[-1] + 1), cut))
        clash = next((i for i in covered if i in owner), None)
        if clash is not None:
            other, other_cut = owner[clash]
            if partial or other_cut:
                raise DataError(f"{where}: {noun} {number} ({text[start:end]!r}, {start}-{end}) and {noun} {other} both cover part of "
                                f"the word {tokens[clash]!r} ({offsets[clash][0]}-{offsets[clash][1]}); a word has one label",
                                hint="words are runs of letters and digits, single punctuation marks, and single Chinese, "
                                     "Japanese or Thai characters; end one span before the word or start the other after it")
            raise DataError(f"{where}: {noun} {number} ({text[start:end]!r}) overlaps {noun} {other}", hint=f"{_plural(noun)} must not overlap")
        for position, i in enumerate(covered):
            tags[i] = ("B-" if position == 0 else "I-") + label.strip()
            owner[i] = (number, partial)
    return tokens, tags, offsets, widened


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v.strip() for v in value)


def record_sentence(record: Record, *, spans_field: str = "entities", noun: str = "entity", example_type: str = "person",
                    partial_words: str = "widen", widened_spans: list[PartialWord] | None = None) -> tuple[Sentence, int]:
    """One record as a ``Sentence`` and the number of widened spans (see ``char_spans_to_tags``).

    Either form: ``tokens`` + ``tags`` (or ``ner_tags``, a saved dataset's column) with one tag
    per token (and optionally the ``text`` they come from: each token is then located in it, so
    offsets slice the user's text), or ``text`` + ``spans_field`` (character spans; the tags are
    then IOB2). The record's fields are kept in ``Sentence.fields``.
    """
    row, number, where = record.row, record.number, record.where
    if "tokens" in row:
        tag_field = "tags" if "tags" in row or "ner_tags" not in row else "ner_tags"
        if tag_field not in row:
            raise DataError(f"{where}: missing field 'tags' (found: {', '.join(sorted(row))})", hint="give one tag per token")
        tokens, tags = row["tokens"], row[tag_field]
        if not _string_list(tokens):
            raise DataError(f"{where}: field 'tokens' must be a non-empty list of non-empty strings, got {tokens!r}")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise DataError(f"{where}: field 'tags' must be a list of strings, got {tags!r}")
        if len(tags) != len(tokens):
            raise DataError(f"{where}: {len(tags)} tags for {len(tokens)} tokens", hint="give exactly one tag per token")
        words = tuple(t.strip() for t in tokens)
        text, offsets = None, None
        if isinstance(row.get("text"), str):
            try:
                offsets = tuple(locate_words(row["text"], words))
            except DataError as exc:
                raise DataError(f"{where}: {exc.message}", hint=exc.hint) from None
            text = row["text"]
        sentence = Sentence(words, tuple(t.strip() for t in tags), (number,) * len(tokens), text, offsets,
                            source=record.source, fields=row)
        return sentence, 0
    if "text" in row:
        if spans_field not in row:
            raise DataError(f"{where}: missing field '{spans_field}' (found: {', '.join(sorted(row))})",
                            hint=f'give "{spans_field}": [{{"start": 0, "end": 5, "label": "{example_type}"}}, ...] ([] when there are none)')
        text = row["text"]
        if not isinstance(text, str) or not split_words(text)[0]:
            raise DataError(f"{where}: field 'text' must be a string with at least one word, got {text!r}")
        tokens, tags, offsets, widened = char_spans_to_tags(text, row[spans_field], where, field_name=spans_field, noun=noun,
                                                            example_type=example_type, partial_words=partial_words,
                                                            widened_spans=widened_spans)
        sentence = Sentence(tuple(tokens), tuple(tags), (number,) * len(tokens), text, tuple(offsets), record.source, row)
        return sentence, widened
    raise DataError(f"{where}: missing field 'tokens' or 'text' (found: {', '.join(sorted(row)) or 'none'})",
                    hint=f'each line is {{"tokens": [...], "tags": [...]}} or {{"text": "...", "{spans_field}": [...]}}')


def read_record_sentences(records: Iterable[Record], path: Path, *, spans_field: str = "entities", noun: str = "entity",
                          example_type: str = "person", partial_words: str = "widen",
                          widened_spans: list[tuple[Sentence, PartialWord]] | None = None) -> tuple[list[Sentence], bool]:
    """Sentences from records of either form (``record_sentence``); and whether all came from character spans.

    When they all did, their tags are IOB2 already. Widened spans are reported in one
    ``TagRepairWarning``, and each is appended to ``widened_spans`` with its sentence when that is
    given (``builder data check`` makes a finding of each); no record at all is a ``DataError``.
    """
    sentences: list[Sentence] = []
    widened = 0
    for record in records:
        found: list[PartialWord] = []
        sentence, count = record_sentence(record, spans_field=spans_field, noun=noun, example_type=example_type,
                                          partial_words=partial_words, widened_spans=found)
        sentences.append(sentence)
        widened += count
        if widened_spans is not None:
            widened_spans.extend((sentence, partial) for partial in found)
    if not sentences:
        raise DataError(f"{path}: no sentences found (empty file); expected records with 'tokens' and 'tags', or 'text' and '{spans_field}'")
    if widened:
        what = noun if widened == 1 else _plural(noun)
        warnings.warn(f"{path}: {widened} {what} did not start or end on a word boundary "
                      "and were widened to whole words (words are runs of letters and digits, single punctuation marks, and single "
                      "Chinese, Japanese or Thai characters); `builder data check` names each", TagRepairWarning, stacklevel=2)
    return sentences, all(s.text is not None for s in sentences)


# ---------------------------------------------------------------------------------------------
# Normalisation to IOB2
# ---------------------------------------------------------------------------------------------


def normalise(sentences: Sequence[Sentence], path: Path, *, scheme: str = "auto", invalid_tags: str = "repair",
              tags_path: Path | None = None, noun: str = "entity", scheme_setting: str | None = None) -> list[Sentence]:
    """One file's sentences with IOB2 tags and with ``text`` and ``offsets`` (words joined by spaces if absent).

    ``scheme`` is the file's scheme (``"auto"``: ``tags.detect_scheme`` over the whole file).
    Invalid sequences (an entity starting with ``I-``/``E-``) are read as ``B-`` with one
    ``TagRepairWarning`` (``invalid_tags="repair"``) or stop with a ``DataError``
    (``"error"``). Tag problems are located in ``tags_path`` (the tags file, default ``path``) at
    the word's line; ``scheme_setting`` names the recipe key that sets the scheme, for the hint.
    """
    tags_origin = tags_path or path
    declared = None if scheme == "auto" else scheme
    for sentence in sentences:
        for position, (tag, line) in enumerate(zip(sentence.tags, sentence.lines)):
            problem = tag_problem(tag, declared)
            if problem:
                word = "" if sentence.word_per_line else f"word {position + 1}: "
                wrong_scheme = "is not valid in the" in problem
                hint = f'set {scheme_setting} to the scheme of the file, or "auto"' if wrong_scheme and scheme_setting else _TAG_HINTS[declared]
                raise DataError(f"{sentence.source or tags_origin}:{line}: {word}{problem}", hint=hint)
    used = detect_scheme(s.tags for s in sentences) if declared is None else declared
    normalised: list[Sentence] = []
    repaired: list[int] = []
    for sentence in sentences:
        tags, invalid = to_iob2(sentence.tags, used)  # every tag was checked above
        for position in invalid:
            if invalid_tags == "error":
                previous = f"'{sentence.tags[position - 1]}'" if position else "the sentence start"
                raise DataError(f"{sentence.source or tags_origin}:{sentence.lines[position]}: invalid {used.upper()} sequence: "
                                f"'{sentence.tags[position]}' (word {sentence.tokens[position]!r}) follows {previous}; "
                                f"{_article(noun)} {noun} must start with B-",
                                hint='fix the tag, or set task.options.invalid_tags = "repair" to read it as B-')
            repaired.append(sentence.lines[position])
        if sentence.text is not None and sentence.offsets is not None:
            text, offsets = sentence.text, sentence.offsets
        else:
            text, joined = join_words(sentence.tokens)
            offsets = tuple(joined)
        normalised.append(replace(sentence, tags=tuple(tags), text=text, offsets=tuple(offsets)))
    if repaired:
        starts = "I-" if used in ("iob1", "iob2") else "I-/E-"
        warnings.warn(f"{tags_origin}: repaired {len(repaired)} invalid tag sequence{'s' if len(repaired) > 1 else ''} "
                      f"({_article(noun)} {noun} starting with {starts}, read as B-; first at line {repaired[0]}); "
                      'set task.options.invalid_tags = "error" to stop on them instead', TagRepairWarning, stacklevel=2)
    return normalised
