"""Import data into the label store, and export it in the task's training formats.

Torch- and textual-free. Per labelling kind (``Task.labelling_kind``):

* ``text_class``: plain text (one example per line, unlabelled), JSONL or CSV with a text field and
  an optional label field. Export: JSONL ``{text_field: ..., label_field: ...}``.
* ``token_spans``: CoNLL (word and tag columns, blank line between sentences), JSONL
  ``{"tokens", "tags"?}`` or plain text (split into words). Gold = token spans
  ``[{"start", "end", "label"}]`` (end exclusive). Export: JSONL tokens/IOB2 tags, or CoNLL.
* ``answer_span``: SQuAD JSON (v1.1/v2.0). Gold = ``{"answers": [{"text", "answer_start"}]}`` (an
  empty list: unanswerable). Export: SQuAD v2.0 JSON.
* ``response`` (``generation``): JSONL or CSV in the TRL formats (``{"messages"}``, ``{"prompt",
  "completion"?}``), or plain text (one prompt per line). Payload = the prompt's messages, gold = the
  response text (``responses.py``). Export: JSONL ``{"messages": [..., {"role": "assistant",
  "content": gold}]}`` (CSV: that list as JSON in one column).

Exports include only labelled items and are written atomically, so ``builder run`` trains on
exactly what was labelled. Errors are ``DataError``s naming file and line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from assistant_builder.atomic import atomic_write_text
from assistant_builder.datasources import read_jsonl
from assistant_builder.errors import DataError
from assistant_builder.labelling import responses
from assistant_builder.labelling.responses import ResponseFields
from assistant_builder.labelling.store import LABELLED, LabelStore
from assistant_builder.toolkit.alignment import split_words

Row = tuple[dict[str, Any], Any, str, "str | None"]  # payload, gold, source, given id
KINDS = ("text_class", "token_spans", "answer_span", "response")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; expected a data file to import") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})", hint="re-save the file as UTF-8") from None
    for number, line in enumerate(text.splitlines(), start=1):
        yield number, line


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected a data file to import")
    for record in read_jsonl(path):
        yield record.number, record.row


def _csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV rows as dicts by header, with the line each row ends on."""
    reader = csv.DictReader(io.StringIO("\n".join(line for _, line in _lines(path))))
    for row in reader:
        yield reader.line_num, row


def detect(path: Path, kind: str) -> str:
    """The file format from the extension: txt, jsonl, csv, conll or squad."""
    suffix = path.suffix.lower()
    table = {".txt": "txt", ".text": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv",
             ".conll": "conll", ".bio": "conll", ".iob": "conll", ".json": "squad"}
    fmt = table.get(suffix)
    if kind not in KINDS:
        raise DataError(f"unknown labelling kind '{kind}'; expected one of: {', '.join(KINDS)}")
    allowed = {"text_class": ("txt", "jsonl", "csv"), "token_spans": ("txt", "jsonl", "conll"), "answer_span": ("squad",),
               "response": ("txt", "jsonl", "csv")}[kind]
    if fmt not in allowed:
        raise DataError(f"{path}: cannot import '{suffix or 'no extension'}' files for {kind} labelling; "
                        f"expected one of: {', '.join(ext for ext, f in table.items() if f in allowed)}")
    return fmt


# -- classification -------------------------------------------------------------------------------
def _class_rows(path: Path, fmt: str, text_field: str, label_field: str, id_field: str | None) -> Iterator[Row]:
    if fmt == "txt":
        for number, line in _lines(path):
            if line.strip():
                yield {"text": line.strip()}, None, f"{path.name}:{number}", None
        return
    for number, record in _csv(path) if fmt == "csv" else _jsonl(path):
        text = record.get(text_field)
        if not isinstance(text, str) or not text.strip():
            keys = ", ".join(sorted(map(str, record))) or "none"
            raise DataError(f"{path}:{number}: expected a non-empty string in field '{text_field}' (found fields: {keys})",
                            hint="set task.options.text_field in the recipe to the field holding the text")
        label = record.get(label_field)
        gold = str(label).strip() if label not in (None, "") else None
        given = str(record[id_field]) if id_field and record.get(id_field) not in (None, "") else None
        yield {"text": text.strip()}, gold, f"{path.name}:{number}", given


# -- token spans ----------------------------------------------------------------------------------
def tags_to_spans(tags: list[str]) -> list[dict[str, Any]]:
    """IOB/IOB2/BIOES-ish tags -> ``[{"start", "end", "label"}]`` token spans (end exclusive)."""
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for index, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if current is not None and (tag == "O" or prefix in ("B", "S", "U") or label != current["label"]):
            current["end"] = index
            spans.append(current)
            current = None
        if tag != "O" and current is None:
            current = {"start": index, "end": index + 1, "label": label or prefix}
    return spans


def spans_to_tags(length: int, spans: list[dict[str, Any]]) -> list[str]:
    tags = ["O"] * length
    for span in sorted(spans, key=lambda s: s["start"]):
        for index in range(span["start"], min(span["end"], length)):
            tags[index] = ("B-" if index == span["start"] else "I-") + span["label"]
    return tags


def _span_rows(path: Path, fmt: str) -> Iterator[Row]:
    if fmt == "txt":
        for number, line in _lines(path):
            if line.strip():
                yield {"tokens": split_words(line)[0]}, None, f"{path.name}:{number}", None
    elif fmt == "jsonl":
        for number, record in _jsonl(path):
            tokens, tags = record.get("tokens"), record.get("tags")
            if not isinstance(tokens, list) or not tokens:
                raise DataError(f"{path}:{number}: expected a non-empty list in 'tokens'", hint='each line is {"tokens": [...], "tags": [...]}')
            if tags is not None and (not isinstance(tags, list) or len(tags) != len(tokens)):
                raise DataError(f"{path}:{number}: expected 'tags' to have one tag per token ({len(tokens)}), got {tags!r}")
            yield {"tokens": [str(t) for t in tokens]}, tags_to_spans(tags) if tags is not None else None, f"{path.name}:{number}", None
    else:
        words: list[str] = []
        tags: list[str] = []
        start = 0
        for number, line in [*_lines(path), (-1, "")]:
            parts = line.split()
            if parts and parts[0] == "-DOCSTART-":
                continue
            if not parts:
                if words:
                    yield {"tokens": words}, tags_to_spans(tags), f"{path.name}:{start}", None
                words, tags = [], []
                continue
            if len(parts) < 2:
                raise DataError(f"{path}:{number}: expected a word and its tag, got {line!r}")
            start = start if words else number
            words.append(parts[0])
            tags.append(parts[-1])


# -- answer spans ---------------------------------------------------------------------------------
def _squad_rows(path: Path) -> Iterator[Row]:
    try:
        document = json.loads("\n".join(line for _, line in _lines(path)))
        articles = document["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: expected SQuAD JSON {{\"data\": [{{\"paragraphs\": [...]}}]}}, got {type(exc).__name__}: {exc}") from None
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph.get("context")
            for q, qa in enumerate(paragraph.get("qas", [])):
                where = f"{path.name}:data[{a}].paragraphs[{p}].qas[{q}]"
                if not isinstance(context, str) or not isinstance(qa.get("question"), str):
                    raise DataError(f"{where}: expected a 'question' string and a paragraph 'context' string")
                answers = [{"text": x["text"], "answer_start": int(x["answer_start"])} for x in qa.get("answers", [])]
                gold = {"answers": answers} if answers or qa.get("is_impossible") else None
                yield {"question": qa["question"], "context": context}, gold, where, str(qa["id"]) if qa.get("id") else None


def import_file(store: LabelStore, path: str | Path, kind: str, *, text_field: str = "text", label_field: str = "label",
                id_field: str | None = None, fields: ResponseFields | None = None) -> tuple[int, int]:
    """Import ``path`` into ``store``; returns ``(added, already_present)``. ``fields``: the record
    field names of the ``response`` kind (default ``messages``, ``prompt``, ``completion``). A file
    with a bad record adds nothing (one transaction)."""
    path = Path(path)
    fmt = detect(path, kind)
    if kind == "text_class":
        rows: Iterator[Row] = _class_rows(path, fmt, text_field, label_field, id_field)
    elif kind == "token_spans":
        rows = _span_rows(path, fmt)
    elif kind == "response":
        if fmt == "txt":
            rows = responses.prompt_rows(_lines(path), path.name)
        else:
            rows = responses.response_rows(_csv(path) if fmt == "csv" else _jsonl(path), path.name, fields or ResponseFields())
    else:
        rows = _squad_rows(path)
    return store.add_items(rows)


def export_file(store: LabelStore, path: str | Path, kind: str, *, text_field: str = "text", label_field: str = "label",
                exclude_texts: Collection[str] = (), messages_field: str = "messages") -> int:
    """Write the labelled items of ``store`` to ``path`` in the task's format; returns how many.

    Text classification goes to CSV (``.csv``; ``.tsv`` tab-separated) with a header row of
    ``text_field`` and ``label_field``, else to JSONL. Items whose text is in ``exclude_texts`` are
    left out (see ``tui/trainset.py``). Responses go to JSONL records ``{messages_field: [...]}``
    (``.csv``: one column of JSON lists); an item that is not a conversation with a response is a
    ``DataError`` naming it, and nothing is written.
    """
    path = Path(path)
    excluded = set(exclude_texts)
    items = [i for i in store.items(LABELLED) if not excluded or i.payload.get("text") not in excluded]
    if kind == "text_class":
        rows = [{text_field: i.payload["text"], label_field: i.gold} for i in items]
        if path.suffix.lower() in (".csv", ".tsv"):
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=[text_field, label_field], delimiter="\t" if path.suffix.lower() == ".tsv" else ",",
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            atomic_write_text(path, buffer.getvalue())
        else:
            atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    elif kind == "token_spans":
        tagged = [(i.payload["tokens"], spans_to_tags(len(i.payload["tokens"]), i.gold or [])) for i in items]
        if path.suffix.lower() in (".conll", ".bio", ".iob", ".txt"):
            text = "\n".join("".join(f"{w} {t}\n" for w, t in zip(words, tags)) for words, tags in tagged)
        else:
            text = "".join(json.dumps({"tokens": w, "tags": t}, ensure_ascii=False) + "\n" for w, t in tagged)
        atomic_write_text(path, text)
    elif kind == "response":
        records = [responses.training_record(i.payload, i.gold, f"{store.path.name} item #{i.id} ({i.source})", messages_field)
                   for i in items]
        atomic_write_text(path, responses.render(records, "," if path.suffix.lower() == ".csv" else None, messages_field))
    elif kind == "answer_span":
        paragraphs: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            answers = (item.gold or {}).get("answers", [])
            paragraphs.setdefault(item.payload["context"], []).append({
                "id": str(item.id), "question": item.payload["question"], "answers": answers, "is_impossible": not answers})
        data = [{"title": "labelled", "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}]
        atomic_write_text(path, json.dumps({"version": "v2.0", "data": data}, ensure_ascii=False, indent=1) + "\n")
    else:
        raise DataError(f"unknown labelling kind '{kind}'; expected one of: {', '.join(KINDS)}")
    return len(items)
