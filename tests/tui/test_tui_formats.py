"""Import into the store and export to the task's training formats (read back by the task plugins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant_builder.errors import DataError
from assistant_builder.labelling.formats import export_file, import_file, spans_to_tags, tags_to_spans
from assistant_builder.labelling.store import LabelStore


def test_classification_text_jsonl_and_csv(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("wake me at 7\n\nwill it rain\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "play jazz", "intent": "music"}) + "\n" + json.dumps({"text": "hello"}) + "\n")
    (tmp_path / "c.csv").write_text("text,intent\nset an alarm,alarm\nwill it rain,\n")
    with LabelStore(tmp_path / "s.sqlite") as store:
        assert import_file(store, tmp_path / "a.txt", "text_class", label_field="intent") == (2, 0)
        assert import_file(store, tmp_path / "b.jsonl", "text_class", label_field="intent") == (2, 0)
        assert import_file(store, tmp_path / "c.csv", "text_class", label_field="intent") == (1, 1)
        assert store.progress().labelled == 2 and store.progress().total == 5
        assert [i.source for i in store.items()][:2] == ["a.txt:1", "a.txt:3"]
        out = tmp_path / "out.jsonl"
        assert export_file(store, out, "text_class", label_field="intent") == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"text": "play jazz", "intent": "music"}, {"text": "set an alarm", "intent": "alarm"}]


def test_exported_classification_data_loads_in_the_task(tmp_path: Path) -> None:
    from assistant_builder_tasks.classification.data import read_examples

    with LabelStore(tmp_path / "s.sqlite") as store:
        store.add_items([({"text": f"text {i}"}, "ab"[i % 2], "x", None) for i in range(6)])
        export_file(store, tmp_path / "train.csv", "text_class", label_field="intent")
        export_file(store, tmp_path / "train.jsonl", "text_class", label_field="intent")
    examples = read_examples(tmp_path / "train.jsonl", "auto", "text", "intent", None)
    assert [(e.text, e.label) for e in examples][:2] == [("text 0", "a"), ("text 1", "b")]


def test_bad_rows_are_located(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": "ok"}) + "\n{oops\n")
    (tmp_path / "nofield.jsonl").write_text(json.dumps({"sentence": "hi"}) + "\n")
    with LabelStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(DataError, match=r"bad.jsonl:2: malformed JSON"):
            import_file(store, tmp_path / "bad.jsonl", "text_class")
        with pytest.raises(DataError, match=r"nofield.jsonl:1: .*'text'.*sentence"):
            import_file(store, tmp_path / "nofield.jsonl", "text_class")
        with pytest.raises(DataError, match=r"expected one of"):
            import_file(store, tmp_path / "x.parquet", "text_class")
        assert store.progress().total == 0  # a failed import adds nothing


def test_tags_and_spans_round_trip() -> None:
    tags = ["O", "B-person", "I-person", "O", "B-date", "B-time", "I-time"]
    spans = tags_to_spans(tags)
    assert spans == [{"start": 1, "end": 3, "label": "person"}, {"start": 4, "end": 5, "label": "date"}, {"start": 5, "end": 7, "label": "time"}]
    assert spans_to_tags(len(tags), spans) == tags
    assert tags_to_spans(["I-x", "I-x", "O"]) == [{"start": 0, "end": 2, "label": "x"}]  # IOB1 style


def test_ner_conll_import_and_export(tmp_path: Path) -> None:
    (tmp_path / "a.conll").write_text("-DOCSTART- O\n\ncall B-person\nAunt I-person\nLidia I-person\n\nat O\nnoon B-time\n")
    with LabelStore(tmp_path / "s.sqlite") as store:
        assert import_file(store, tmp_path / "a.conll", "token_spans") == (2, 0)
        first = next(store.items())
        assert first.payload == {"tokens": ["call", "Aunt", "Lidia"]} and first.gold == [{"start": 0, "end": 3, "label": "person"}]
        assert store.progress().per_label == {"person": 1, "time": 1}
        export_file(store, tmp_path / "out.conll", "token_spans")
        export_file(store, tmp_path / "out.jsonl", "token_spans")
    assert (tmp_path / "out.conll").read_text() == "call B-person\nAunt I-person\nLidia I-person\n\nat O\nnoon B-time\n"
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[1]) == {"tokens": ["at", "noon"], "tags": ["O", "B-time"]}


def test_squad_import_and_export(tmp_path: Path) -> None:
    squad = {"data": [{"title": "t", "paragraphs": [{"context": "The ferry takes six minutes.", "qas": [
        {"id": "q1", "question": "How long?", "answers": [{"text": "six minutes", "answer_start": 16}]},
        {"id": "q2", "question": "Who?", "answers": [], "is_impossible": True},
        {"id": "q3", "question": "When?", "answers": []}]}]}]}
    (tmp_path / "a.json").write_text(json.dumps(squad))
    with LabelStore(tmp_path / "s.sqlite") as store:
        assert import_file(store, tmp_path / "a.json", "answer_span") == (3, 0)
        assert store.progress().labelled == 2 and store.progress().per_label == {"answer": 1, "unanswerable": 1}
        assert export_file(store, tmp_path / "out.json", "answer_span") == 2
    out = json.loads((tmp_path / "out.json").read_text())
    qas = out["data"][0]["paragraphs"][0]["qas"]
    assert [(q["question"], q["is_impossible"]) for q in qas] == [("How long?", False), ("Who?", True)]
    assert qas[0]["answers"] == [{"text": "six minutes", "answer_start": 16}]
