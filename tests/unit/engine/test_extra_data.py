"""``data.extra`` merging (``engine/extra_data.py``) for the three built-in tasks, without training:
added, corrected (the store wins, every copy), duplicate, left out because it is a validation
example, unlabelled items ignored, the run's frozen copy reused, and located errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant_builder.contracts import TaskData
from assistant_builder.engine.extra_data import add_extra_data, describe
from assistant_builder.errors import DataError
from assistant_builder.labelling.store import LabelStore
from assistant_builder.registry import build_registry


def task(name: str):  # type: ignore[no-untyped-def]
    return build_registry().create("task", name)


def make_store(path: Path, rows: list) -> Path:
    with LabelStore(path) as store:
        store.add_items(rows)
    return path


def test_classification_items_are_added_corrected_deduplicated_and_kept_out_of_validation(tmp_path: Path) -> None:
    classification = task("classification")
    ex = classification.parse_input
    from assistant_builder_tasks.classification.data import TextExample

    train = [TextExample("wake me at 7", "alarm", None, "train.jsonl:1"), TextExample("play jazz", "music", None, "train.jsonl:2"),
             TextExample("play jazz", "music", None, "train.jsonl:3"), TextExample("rain today", "weather", None, "train.jsonl:4")]
    validation = [TextExample("is it cold", "weather", None, "valid.jsonl:1")]
    data = TaskData(train, validation, ["alarm", "music", "weather"], {"train": tmp_path / "train.jsonl"})
    store = make_store(tmp_path / "a.labels.sqlite", [
        ({"text": "play jazz"}, "alarm", "serve", None),          # corrected, both copies
        ({"text": "wake me at 7"}, "alarm", "inbox.txt:1", None),  # duplicate
        ({"text": "turn it up"}, "music", "serve", None),          # added
        ({"text": "is it cold"}, "alarm", "serve", None),          # a validation input: left out
        ({"text": "not labelled"}, None, "serve", None),           # ignored
    ])
    merged, report = add_extra_data(classification, data, [store], classification.Options(), tmp_path / "run")
    labels = [(e.text, e.label) for e in merged.train]
    assert labels == [("wake me at 7", "alarm"), ("play jazz", "alarm"), ("play jazz", "alarm"), ("rain today", "weather"),
                      ("turn it up", "music")]
    assert merged.validation == validation and ex("x").text == "x"
    [stats] = report["stores"]
    assert {k: stats[k] for k in ("labelled", "added", "corrected", "duplicate", "in_validation")} == {
        "labelled": 4, "added": 1, "corrected": 1, "duplicate": 1, "in_validation": 1}
    assert stats["by_source"] == {"serve": 2}
    assert report["corrections"] == [{"input": {"text": "play jazz"}, "was": "music", "now": "alarm", "training_source": "train.jsonl:2",
                                      "store": str(store), "item": 1, "copies": 2}]
    assert report["training_examples"] == {"total": 5, "by_source": {str(tmp_path / "train.jsonl"): 2, str(store): 3}}
    assert "1 added, 1 corrected, 1 duplicates, 1 left out" in describe(report) and "'play jazz' music -> alarm" in describe(report)
    assert json.loads((tmp_path / "run" / "data" / "extra_report.json").read_text()) == report
    # a resumed run reads the frozen copy, not the store as it is now
    with LabelStore(store) as live:
        live.add_items([({"text": "new since"}, "music", "serve", None)])
    again, _ = add_extra_data(classification, data, [store], classification.Options(), tmp_path / "run")
    assert [e.text for e in again.train] == [e.text for e in merged.train]


def test_ner_and_qa_items_go_through_the_task_contract(tmp_path: Path) -> None:
    ner = task("ner")
    from assistant_builder_tasks.ner.data import TokenExample

    train = [TokenExample(("call", "mom"), ("O", "B-person"), "call mom", ((0, 4), (5, 8)), "t.conll:1")]
    data = TaskData(train, [], ["O", "B-person", "I-person"], {})
    store = make_store(tmp_path / "n.labels.sqlite", [({"tokens": ["call", "mom"]}, [], "serve", None),
                                                      ({"tokens": ["text", "dad"]}, [{"start": 1, "end": 2, "label": "person"}], "serve", None)])
    merged, report = add_extra_data(ner, data, [store], ner.Options(), tmp_path / "run-ner")
    assert [e.tags for e in merged.train] == [("O", "O"), ("O", "B-person")]
    assert report["stores"][0]["corrected"] == 1 and report["stores"][0]["added"] == 1

    qa = task("qa")
    context = "The shop opens at 9 am."
    data = TaskData([], [], [], {})
    store = make_store(tmp_path / "q.labels.sqlite", [({"question": "when", "context": context},
                                                       {"answers": [{"text": "9 am", "answer_start": 18}]}, "serve", None)])
    merged, _ = add_extra_data(qa, data, [store], qa.Options(), tmp_path / "run-qa")
    assert merged.train[0].answers[0].text == "9 am" and merged.train[0].answers[0].start == 18


def test_a_store_can_bring_a_new_class_when_the_recipe_declares_no_labels(tmp_path: Path) -> None:
    classification = task("classification")
    data = TaskData([], [], ["alarm", "music"], {})
    store = make_store(tmp_path / "n.labels.sqlite", [({"text": "dim the lights"}, "lights", "serve", None),
                                                      ({"text": "play jazz"}, "music", "serve", None)])
    merged, report = add_extra_data(classification, data, [store], classification.Options(), tmp_path / "run")
    assert merged.labels == ["alarm", "music", "lights"] and report["new_labels"] == ["lights"]
    assert [(e.text, e.label) for e in merged.train] == [("dim the lights", "lights"), ("play jazz", "music")]


def test_bad_items_and_missing_stores_are_located_data_errors(tmp_path: Path) -> None:
    classification = task("classification")
    data = TaskData([], [], ["alarm", "music"], {})
    store = make_store(tmp_path / "b.labels.sqlite", [({"text": "dim the lights"}, "lights", "serve", None)])
    declared = classification.Options(labels=["alarm", "music"])  # a declared label set is the whole set
    with pytest.raises(DataError, match=r"b\.labels\.sqlite item #1 \(serve\): gold: expected one of the model's labels "
                                        r"\(alarm, music\), got \"lights\""):
        add_extra_data(classification, data, [store], declared, tmp_path / "run")
    with pytest.raises(DataError, match="missing.labels.sqlite: labelling store not found"):
        add_extra_data(classification, data, [tmp_path / "missing.labels.sqlite"], classification.Options(), tmp_path / "run2")
    qa = task("qa")
    store = make_store(tmp_path / "u.labels.sqlite", [({"question": "q", "context": "c"}, {"answers": []}, "serve", None)])
    with pytest.raises(DataError, match="allow_unanswerable is false"):
        add_extra_data(qa, TaskData([], [], [], {}), [store], qa.Options(), tmp_path / "run3")


def test_data_extra_must_name_stores(tmp_path: Path, write_recipe) -> None:  # type: ignore[no-untyped-def]
    from assistant_builder.cli.main import main

    recipe = write_recipe(tmp_path, task={"type": "classification"}, data={"train": "train.jsonl", "extra": ["more.jsonl"]})
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": "x"}\n')
    assert main(["validate", str(recipe)]) == 2
