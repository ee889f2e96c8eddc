"""The label store: decisions, unlimited undo/redo, the queue, progress counts, speed at scale, and
durability when the process is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant_builder.labelling.store import LABELLED, REVIEW, SKIPPED, TODO, LabelStore, store_path_for


def fill(store: LabelStore, n: int, labelled_every: int = 0) -> None:
    store.add_items(({"text": f"example {i}"}, ("a" if i % 2 else "b") if labelled_every and i % labelled_every == 0 else None, f"f:{i}", None)
                    for i in range(n))


def test_store_file_sits_next_to_the_recipe(tmp_path: Path) -> None:
    assert store_path_for(tmp_path / "intents.toml") == tmp_path / "intents.labels.sqlite"
    with LabelStore(tmp_path / "x.labels.sqlite") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_decisions_queue_and_progress(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "s.sqlite") as store:
        assert store.add_items([({"text": "one"}, None, "a:1", None), ({"text": "two"}, "b", "a:2", None),
                                ({"text": "one"}, None, "a:3", None)]) == (2, 1)  # same text: already present
        first = store.next_item()
        assert first is not None and first.payload == {"text": "one"} and first.status == TODO
        store.decide(first.id, "a")
        assert store.next_item() is None
        progress = store.progress()
        assert (progress.total, progress.labelled, progress.remaining) == (2, 2, 0)
        assert progress.per_label == {"a": 1, "b": 1}
    with LabelStore(tmp_path / "s.sqlite") as reopened:  # counts recomputed from the file agree
        assert reopened.progress().per_label == {"a": 1, "b": 1}
        assert reopened.item(first.id).gold == "a"


def test_unlimited_undo_and_redo_and_a_new_decision_drops_the_redo_branch(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "s.sqlite") as store:
        fill(store, 30)
        ids = []
        for index in range(25):
            item = store.next_item()
            assert item is not None
            ids.append(item.id)
            store.decide(item.id, "a" if index % 2 else "b") if index % 5 else store.skip(item.id)
        for expected in reversed(ids):  # undo everything, newest first
            decision = store.undo()
            assert decision is not None and decision.item_id == expected and decision.after_status == TODO
        assert store.undo() is None
        assert store.progress().by_status[TODO] == 30
        for expected in ids[:10]:
            assert store.redo().item_id == expected  # type: ignore[union-attr]
        assert store.progress().labelled == 8 and store.progress().by_status[SKIPPED] == 2
        store.decide(ids[20], "c")  # a new decision: the undone tail can no longer be redone
        assert store.redo() is None
        assert store.undo().item_id == ids[20]  # type: ignore[union-attr]
        assert store.undo().item_id == ids[9]  # type: ignore[union-attr]
        kinds = [d.kind for d in store.history(limit=1000)]
        assert kinds.count("undo") == 27 and kinds.count("redo") == 10  # the history is append-only
    with LabelStore(tmp_path / "s.sqlite") as reopened:  # the undo stack survives a restart
        assert reopened.undo().item_id == ids[8]  # type: ignore[union-attr]


def test_review_items_come_first_then_least_margin(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "s.sqlite") as store:
        fill(store, 10)
        store.set_suggestions([(3, {"label": "a"}, 0.5), (7, {"label": "b"}, 0.1), (5, {"label": "a"}, 0.9)])
        assert store.next_item("uncertainty").id == 7  # type: ignore[union-attr]
        assert store.next_item("input order").id == 1  # type: ignore[union-attr]
        sent = store.send_back({"text": "a validation error"}, "a", {"label": "b", "score": 0.97}, "gold a, predicted b", "valid.jsonl:4")
        head = store.next_item()
        assert head is not None and head.id == sent.item_id and head.status == REVIEW
        assert head.gold == "a" and head.suggestion == {"label": "b", "score": 0.97} and "predicted b" in head.note  # type: ignore[operator]
        assert store.progress().total == 11 and store.progress().by_status[REVIEW] == 1
        store.decide(head.id, "b")
        assert store.next_item().id == 7  # type: ignore[union-attr]
        assert store.undo().item_id == head.id and store.item(head.id).status == REVIEW  # type: ignore[union-attr]


def test_20k_items_fetch_and_decide_fast_and_correct(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "s.sqlite") as store:
        fill(store, 20_000, labelled_every=3)
        store.set_suggestions((i, {"label": "a"}, (i * 7919 % 1000) / 1000) for i in range(2, 20_001, 3))
        expected_todo = store.progress().by_status[TODO]
        timings = []
        seen = set()
        for _ in range(300):
            start = time.perf_counter()
            item = store.next_item()
            assert item is not None and item.status == TODO and item.id not in seen
            store.decide(item.id, "a")
            timings.append(time.perf_counter() - start)
            seen.add(item.id)
        margins = [store.item(i).margin for i in seen]
        assert all(m is not None for m in margins) and max(margins) <= min(  # type: ignore[type-var]
            m for m in (store.item(i).margin for i in range(2, 20_001, 3) if i not in seen))
        timings.sort()
        assert timings[len(timings) // 2] < 0.020 and timings[-5] < 0.050, timings[-5:]  # median and p98 (shared CPUs)
        assert store.progress().by_status[TODO] == expected_todo - 300


WRITER = """
import sys
from assistant_builder.labelling.store import LabelStore
store = LabelStore(sys.argv[1])
while True:
    item = store.next_item()
    if item is None:
        break
    store.decide(item.id, "a" if item.id % 2 else "b")
    print(item.id, flush=True)  # acknowledged only after the commit returned
"""


def test_kill_9_loses_no_committed_decision(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with LabelStore(path) as store:
        fill(store, 50_000)
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged = []
    assert process.stdout is not None
    while len(acknowledged) < 300:
        line = process.stdout.readline()
        assert line, "writer exited early"
        acknowledged.append(int(line))
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with LabelStore(path) as store:
        for item_id in acknowledged:
            item = store.item(item_id)
            assert item.status == LABELLED and item.gold == ("a" if item_id % 2 else "b")
        assert store.history(limit=1)[0].seq >= len(acknowledged)
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("bad", ["not json", "[1, 2]"])
def test_payloads_are_json(tmp_path: Path, bad: str) -> None:
    with LabelStore(tmp_path / "s.sqlite") as store:
        store.add_items([({"text": bad}, None, "x", None)])
        assert json.loads(store.db.execute("SELECT payload FROM items").fetchone()[0]) == {"text": bad}
