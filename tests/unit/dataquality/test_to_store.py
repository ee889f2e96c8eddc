"""`--to-store` uses the store's review mechanism: items already in the store are queued with their
gold kept and the suspected label as suggestion (undoable); a person's decision is never undone."""

from __future__ import annotations

from assistant_builder.dataquality.label_errors import LabelIssue
from assistant_builder.dataquality.to_store import send_to_store
from assistant_builder.labelling.store import LABELLED, REVIEW, LabelStore


def issue(where: str, text: str, given: str = "alarm", suspected: str = "weather") -> LabelIssue:
    return LabelIssue(where, text, given, suspected, 0.9, 0.1, 0.8, ((suspected, 0.8), (given, 0.1)))


def test_items_in_the_store_are_queued_for_review_and_undoable(tmp_path):
    path = tmp_path / "r.labels.sqlite"
    with LabelStore(path) as store:
        store.add_items([({"text": "will it rain"}, "alarm", "train.jsonl:1", None), ({"text": "wake me"}, "alarm", "train.jsonl:2", "id7")])
        ids = [item.id for item in store.items()]
    # by content for data files; by item id for a store-backed recipe (given ids change the key)
    queued, left = send_to_store(path, [issue("/data/train.jsonl:1", "will it rain"), issue(f"{path}#{ids[1]}", "wake me")])
    assert (queued, left) == (2, 0)
    with LabelStore(path) as store:
        for item_id in ids:
            item = store.item(item_id)
            assert item.status == REVIEW and item.gold == "alarm" and item.suggestion["label"] == "weather"
            assert "given 'alarm', suspected 'weather'" in item.note
        assert store.progress().total == 2  # nothing added
        store.undo()
        assert store.item(ids[1]).status == LABELLED


def test_a_relabelled_or_queued_text_is_left_alone(tmp_path):
    path = tmp_path / "r.labels.sqlite"
    with LabelStore(path) as store:
        store.add_items([({"text": "will it rain"}, "weather", "train.jsonl:1", None)])  # a person relabelled it already
    assert send_to_store(path, [issue("/data/train.jsonl:1", "will it rain")]) == (0, 1)
    assert send_to_store(path, [issue("/data/train.jsonl:5", "new text")]) == (1, 0)
    assert send_to_store(path, [issue("/data/train.jsonl:5", "new text")]) == (0, 1)  # already queued
    with LabelStore(path) as store:
        (new,) = [i for i in store.items() if i.payload == {"text": "new text"}]
        assert new.status == REVIEW and new.gold == "alarm" and new.source == "/data/train.jsonl:5"
