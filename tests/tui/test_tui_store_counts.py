"""The store's progress snapshot: kept in step with every write, read on open instead of a recount,
and recounted when rows were added or decided without it (its fingerprint is the newest history row
and the newest item)."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path

from assistant_builder.labelling.store import LABELLED, LabelStore


def recount(path: Path) -> tuple[int, Counter, Counter]:
    """Counts straight from the items table, the way an auditor would."""
    import json

    db = sqlite3.connect(path)
    by_status = Counter(dict(db.execute("SELECT status, count(*) FROM items GROUP BY status").fetchall()))
    per_label: Counter = Counter()
    for (gold,) in db.execute("SELECT gold FROM items WHERE status = ?", (LABELLED,)):
        per_label[json.loads(gold)] += 1
    db.close()
    return sum(by_status.values()), by_status, per_label


def snapshot_of(store: LabelStore) -> tuple[int, Counter, Counter]:
    progress = store.progress()
    return progress.total, +progress.by_status, +progress.per_label


def test_snapshot_matches_a_recount_after_any_mix_of_operations(tmp_path: Path) -> None:
    path = tmp_path / "p.labels.sqlite"
    rng = random.Random(3)
    with LabelStore(path) as store:
        store.add_items(({"text": f"t{i}"}, rng.choice([None, "a", "b"]), f"s:{i}", None) for i in range(200))
        for step in range(300):
            action = rng.random()
            item = store.next_item("uncertainty" if step % 2 else "input order")
            if action < 0.5 and item is not None:
                store.decide(item.id, rng.choice(["a", "b", "c"]))
            elif action < 0.6 and item is not None:
                store.skip(item.id)
            elif action < 0.75:
                store.undo()
            elif action < 0.85:
                store.redo()
            elif action < 0.95:
                store.send_back({"text": f"sent {rng.randint(0, 20)}"}, "a", {"label": "b"}, "wrong", "validation")
            else:
                store.add_items([({"text": f"late {step}"}, None, "late", None), ({"text": "t1"}, None, "dup", None)])
            if step % 50 == 0:
                assert snapshot_of(store) == recount(path)
        assert snapshot_of(store) == recount(path)
    with LabelStore(path) as reopened:  # read from the snapshot, not recounted
        assert snapshot_of(reopened) == recount(path)


def test_a_snapshot_older_than_the_data_is_recounted(tmp_path: Path) -> None:
    path = tmp_path / "p.labels.sqlite"
    with LabelStore(path) as store:
        store.add_items(({"text": f"t{i}"}, "a" if i < 3 else None, "s", None) for i in range(10))
        store.decide(store.next_item().id, "b")
    db = sqlite3.connect(path)  # a writer that does not keep the snapshot (an older version, a hand edit)
    db.execute("INSERT INTO items(key, payload, status, gold) VALUES ('k-new', '{\"text\": \"new\"}', 'labelled', '\"c\"')")
    db.commit()
    db.close()
    with LabelStore(path) as store:
        assert snapshot_of(store) == recount(path) == (11, Counter({"todo": 6, "labelled": 5}), Counter({"a": 3, "b": 1, "c": 1}))
