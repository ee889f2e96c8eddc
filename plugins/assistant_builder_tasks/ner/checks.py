"""NER data for ``builder data check``: sentences as ``ExampleView``s and the tag checks.

The files are read with the task's own readers, but leniently: a sentence with a malformed tag
(``X-PER``), a prefix its scheme lacks (``E-`` in IOB2) or an invalid sequence (an entity that
starts with ``I-``) becomes a located finding instead of stopping the check, and validation entity
types missing from training are left to the generic ``label_split`` check. Each entity mention
counts towards its type (``ExampleView.classes``), so the generic ``rare_label`` check reports
entity types seen only once.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from assistant_builder import datasources
from assistant_builder.contracts import CheckData, ExampleView, Finding
from assistant_builder.toolkit.alignment import join_words
from assistant_builder.toolkit.readers import PartialWord, Sentence, read_conll, read_parallel, read_record_sentences
from assistant_builder.toolkit.tags import TagError, detect_scheme, spans_from_tags, split_tag, to_iob2
from assistant_builder_tasks.ner.data import detect_format


def _raw(path: Path, file_format: str, split: str) -> tuple[list[Sentence], Path, bool, list[tuple[Sentence, PartialWord]]]:
    """The sentences of one source as written, the file they are located in, whether they are IOB2 already,
    and the character spans that cut a word (widened to whole words when training)."""
    fmt = detect_format(path, file_format)
    if fmt == "conll":
        return read_conll(path), path, False, []
    if fmt == "seq":
        sentences, files = read_parallel(path)
        return sentences, files.words, False, []
    records = datasources.read_jsonl(path) if fmt == "jsonl" else datasources.read_records(path, fmt, split)
    widened: list[tuple[Sentence, PartialWord]] = []
    sentences, iob2 = read_record_sentences(records, path, widened_spans=widened)
    return sentences, path, iob2, widened


def _partial_word_finding(sentence: Sentence, origin: Path, partial: PartialWord) -> Finding:
    text = sentence.text or ""
    start, end = partial.span
    words = " and ".join(repr(word) for word in partial.cut)
    return Finding("ner.partial_word", "warning", f"{sentence.source or origin}:{sentence.lines[0]}",
                   f"entity {partial.number} ({partial.label}, {text[start:end]!r}, characters {start}-{end}) starts or ends inside "
                   f"the word {words}; trained as the whole words {text[partial.words[0]:partial.words[1]]!r} "
                   f"({partial.words[0]}-{partial.words[1]}); expected spans on word boundaries")


def read_split(path: Path, file_format: str, options: Any, split: str) -> tuple[list[ExampleView], list[Finding]]:
    """Views of the sentences whose tags are usable (invalid sequences repaired), and a finding for
    every malformed tag, every invalid sequence and every character span that cuts a word."""
    sentences, origin, iob2, widened = _raw(path, file_format, split)
    findings: list[Finding] = [_partial_word_finding(sentence, origin, partial) for sentence, partial in widened]
    usable: list[Sentence] = []
    for sentence in sentences:
        where = sentence.source or str(origin)
        for tag, line in zip(sentence.tags, sentence.lines):
            try:
                split_tag(tag)
            except ValueError as exc:
                findings.append(Finding("ner.malformed_tag", "error", f"{where}:{line}", f"{exc}; the sentence is left out of the check"))
                break
        else:
            usable.append(sentence)
    scheme = "iob2" if iob2 else (detect_scheme(s.tags for s in usable) if options.scheme == "auto" else options.scheme)
    views: list[ExampleView] = []
    level = "error" if options.invalid_tags == "error" else "warning"
    action = "training stops on it (task.options.invalid_tags = \"error\")" if level == "error" else "read as B- (repaired)"
    for sentence in usable:
        where = sentence.source or str(origin)
        try:
            tags, invalid = to_iob2(sentence.tags, scheme)
        except TagError as exc:
            findings.append(Finding("ner.malformed_tag", "error", f"{where}:{sentence.lines[exc.position]}",
                                    f"{exc.reason}; expected tags of the {scheme.upper()} scheme (task.options.scheme)"))
            continue
        for position in invalid:
            previous = sentence.tags[position - 1] if position else "the sentence start"
            findings.append(Finding("ner.invalid_tags", level, f"{where}:{sentence.lines[position]}",
                                    f"'{sentence.tags[position]}' (word {sentence.tokens[position]!r}) follows {previous!r}: an entity "
                                    f"starting with I-, {action}; expected B-{sentence.tags[position][2:]}"))
        text = sentence.text if sentence.text is not None else join_words(sentence.tokens)[0]
        views.append(ExampleView(text, " ".join(tags), tuple(t for _, _, t in spans_from_tags(tags)), f"{where}:{sentence.lines[0]}"))
    return views, findings


def _held_out(views: list[ExampleView], data: Any) -> tuple[list[ExampleView], list[ExampleView]]:
    """The same train/validation split ``data.load_split`` makes when there is no ``data.validation``."""
    order = list(range(len(views)))
    random.Random(data.split_seed).shuffle(order)
    chosen = set(order[: max(1, round(len(views) * data.validation_split))]) if len(views) > 1 else set()
    return [v for i, v in enumerate(views) if i not in chosen], [v for i, v in enumerate(views) if i in chosen]


def check_examples(data: Any, options: Any) -> CheckData:
    train, _ = read_split(Path(data.train), data.format, options, data.dataset_train_split)
    if data.validation is None:
        train, validation = _held_out(train, data)
        return CheckData(train, validation, held_out=True)
    validation, _ = read_split(Path(data.validation), data.format, options, data.dataset_validation_split)
    return CheckData(train, validation)


def check_data(data: Any, options: Any) -> list[Finding]:
    """Malformed tags, invalid (repaired) tag sequences and spans cutting a word in the training and validation files."""
    findings = read_split(Path(data.train), data.format, options, data.dataset_train_split)[1]
    if data.validation is not None:
        findings += read_split(Path(data.validation), data.format, options, data.dataset_validation_split)[1]
    return findings
