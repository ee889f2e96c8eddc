"""``FeedbackStore`` (what ``builder serve --feedback`` writes) and ``builder feedback``: captures,
feedback, eviction, purging by source (text overwritten, counts and undo stack kept right)."""

from __future__ import annotations

import time
from pathlib import Path

from assistant_builder.cli.main import main
from assistant_builder.labelling.serve_store import Captured, Feedback, FeedbackStore
from assistant_builder.labelling.store import LabelStore


def captured(text: str, n: int = 0) -> Captured:
    return Captured(f"p-{n}", text, {"text": text}, {"label": "a", "score": 0.5}, 0.1, "v1", time.time())


def recounted(path: Path) -> tuple[int, dict, dict]:
    """The counts recomputed from the rows (the snapshot the store keeps must agree)."""
    with LabelStore(path) as store:
        store.db.execute("DELETE FROM meta WHERE key = 'progress'")
        progress = store._counts(store.db)
        return progress.total, dict(+progress.by_status), dict(+progress.per_label)


def test_capture_feedback_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "s.labels.sqlite"
    with FeedbackStore(path) as store:
        result = store.capture([captured("one", 1), captured("two", 2), captured("one", 3)])
        assert (result.stored, result.duplicates, result.evicted) == (2, 1, 0)
        item_id, status = store.record_feedback(Feedback("p-1", "one", {"text": "one"}, {"label": "a"}, "b", "feedback",
                                                         {"label": "b"}, "v1", time.time()))
        assert status == "labelled" and store.item(item_id).gold == "b"
        assert store.find_prediction("p-2").raw_input == "two" and store.find_prediction("nope") is None
        snapshot = store.progress()
        assert (snapshot.total, snapshot.labelled, snapshot.per_label["b"]) == (2, 1, 1)
    assert recounted(path) == (2, {"todo": 1, "labelled": 1}, {"b": 1})


def test_purge_deletes_a_source_overwrites_its_text_and_keeps_the_rest_consistent(tmp_path: Path) -> None:
    path = tmp_path / "s.labels.sqlite"
    with FeedbackStore(path) as store:
        store.add_items([({"text": "imported one"}, None, "inbox.txt:1", None), ({"text": "imported two"}, None, "inbox.txt:2", None)])
        store.capture([captured("secret words here", 1), captured("another private text", 2)])
        inbox_first = store.next_item("input order", "inbox.txt")
        store.decide(inbox_first.id, "a")                          # undo stack: [inbox decision, serve decision]
        serve_item = store.next_item("input order", "serve")
        store.decide(serve_item.id, "b")
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"secret words here" in path.read_bytes()
    assert main(["feedback", str(path), "--purge", "serve"]) == 0  # without --yes: shows, deletes nothing
    with FeedbackStore(path) as store:
        assert store.source_counts()["serve"] == {"todo": 1, "labelled": 1}
    assert main(["feedback", str(path), "--purge", "serve", "--yes"]) == 0
    assert b"secret words here" not in path.read_bytes() and b"another private text" not in path.read_bytes()
    assert not any(Path(str(path) + suffix).exists() and b"secret" in Path(str(path) + suffix).read_bytes() for suffix in ("-wal",))
    with FeedbackStore(path) as store:
        assert set(store.source_counts()) == {"inbox.txt"} and store.events() == []
        undone = store.undo()  # the remaining decision is still undoable; the purged one left the stack
        assert undone is not None and undone.item_id == inbox_first.id and store.undo() is None
    assert recounted(path) == (2, {"todo": 2}, {})


def test_purge_unlabelled_only_and_eviction_keep_labelled_items(tmp_path: Path) -> None:
    path = tmp_path / "s.labels.sqlite"
    with FeedbackStore(path) as store:
        store.capture([captured(f"text {n}", n) for n in range(5)])
        store.decide(store.next_item("input order").id, "a")
        assert store.capture([captured("text 5", 5)], capture_max=2).evicted == 3  # the oldest waiting ones
        assert [i.payload["text"] for i in store.items()] == ["text 0", "text 4", "text 5"]
        result = store.purge("serve", unlabelled_only=True)
        assert (result.items, result.labelled) == (2, 0)
        assert [i.payload["text"] for i in store.items()] == ["text 0"]
    assert recounted(path) == (1, {"labelled": 1}, {"a": 1})


def test_feedback_command_summary_and_errors(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.labels.sqlite"
    with FeedbackStore(path) as store:
        store.capture([captured("one", 1)])
    assert main(["feedback", str(path)]) == 0
    out = capsys.readouterr().out
    assert "serve" in out and "1 captured predictions" in out and "model version" in out
    assert main(["feedback", str(path), "--purge", "nothing", "--yes"]) == 1
    assert "no items of that source" in capsys.readouterr().err
    assert main(["feedback", str(tmp_path / "absent.labels.sqlite")]) == 1
