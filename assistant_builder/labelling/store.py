"""The labelling project store: one SQLite file next to the recipe (``<recipe-stem>.labels.sqlite``).

No textual, no torch: the CLI (``builder tui --import/--export``), the TUI and the model-in-the-loop
worker all use it. One ``LabelStore`` per thread (SQLite connections are not shared across threads);
WAL mode lets the suggestion worker write while the UI reads and writes.

Tables:

* ``items``: one row per example: ``payload`` (task JSON: ``{"text"}``, ``{"tokens"}``,
  ``{"question", "context"}`` or ``{"messages"}``), ``source``, ``gold`` (JSON label / spans /
  answers / response text, NULL when unlabelled), ``status`` (``todo``, ``labelled``, ``skipped``, ``review``), ``suggestion`` (a model
  prediction, JSON) and its ``margin`` (top-1 minus top-2 score: smaller = less certain), ``note``.
* ``history``: append-only, one row per change a person made (``label``, ``skip``, ``send_back``,
  ``undo``, ``redo``, and ``feedback`` from ``builder serve``): item, state before and after, time.
  Never updated; rows are deleted only with their item by an explicit purge
  (``builder feedback --purge``, see ``serve_store.py``).
* ``undo_stack`` + ``meta.undo_top``: positions of the history rows that undo/redo walk. A new
  decision drops everything above the top (the redo branch), exactly like an editor; the stack is
  unbounded, so undo is unlimited (and survives restarts).
* ``meta``: the progress snapshot, the undo top, the saved label set, and ``draft:<item id>``: text
  typed for an item but not saved yet (the response editor's), dropped when the item is labelled.

Durability: every decision is its own transaction, committed before the call returns. In WAL mode
with ``synchronous=NORMAL`` a commit is an append to the ``-wal`` file (no fsync), so a killed
process (SIGKILL, crash) never loses a committed decision: the data is in the OS page cache and
the next open replays the WAL. Only a power cut or kernel crash can drop the last few commits (never
corrupting the file). ``durable=True`` switches to ``synchronous=FULL`` (an fsync per decision).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assistant_builder.labelling.records import (LABELLED, RESPONSE_PAYLOAD_MARK, REVIEW, SKIPPED, STATUSES, STORE_SUFFIX, TODO, Decision, Item,
                                                 Progress, gold_labels, is_response_payload, item_key, store_path_for)
from assistant_builder.labelling.records import dump_json as _dump
from assistant_builder.labelling.records import load_json as _load

__all__ = ["LABELLED", "REVIEW", "SKIPPED", "STATUSES", "STORE_SUFFIX", "TODO", "Decision", "Item", "LabelStore", "Progress",
           "gold_labels", "item_key", "store_path_for"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    gold TEXT,
    status TEXT NOT NULL DEFAULT 'todo',
    suggestion TEXT,
    margin REAL,
    note TEXT,
    updated REAL
);
CREATE INDEX IF NOT EXISTS items_status ON items(status);
CREATE INDEX IF NOT EXISTS items_status_margin ON items(status, margin);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    before_gold TEXT, before_status TEXT,
    after_gold TEXT, after_status TEXT,
    time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS undo_stack (pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class LabelStore:
    """The store at ``path`` (created if missing). Use one instance per thread."""

    def __init__(self, path: str | Path, *, durable: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db.executescript(SCHEMA)
        self._progress: Progress | None = None

    # -- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE (take the write lock up front) ... COMMIT, or ROLLBACK on error."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _meta(self, key: str, default: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    @staticmethod
    def _item(row: tuple[Any, ...] | None) -> Item | None:
        if row is None:
            return None
        id_, payload, source, gold, status, suggestion, margin, note = row
        return Item(id_, json.loads(payload), source, _load(gold), status, _load(suggestion), margin, note)

    _COLUMNS = "id, payload, source, gold, status, suggestion, margin, note"

    # -- items ----------------------------------------------------------------------------------
    def add_items(self, rows: Iterable[tuple[dict[str, Any], Any, str, str | None]]) -> tuple[int, int]:
        """Add ``(payload, gold_or_None, source, given_id)`` rows in one transaction.

        Examples already in the store (same id, else same content) are left as they are, so that a
        re-import never overwrites a person's decisions. Returns ``(added, already_present)``.
        """
        added = seen = 0
        now = time.time()
        with self._transaction() as db:
            progress = self._counts(db)
            for payload, gold, source, given in rows:
                status = TODO if gold is None else LABELLED
                cursor = db.execute("INSERT OR IGNORE INTO items(key, payload, source, gold, status, updated) VALUES (?, ?, ?, ?, ?, ?)",
                                    (item_key(payload, given), _dump(payload), source, _dump(gold), status, now))
                added += cursor.rowcount
                seen += 1 - cursor.rowcount
                if cursor.rowcount:
                    progress.total += 1
                    _count(progress, status, gold, +1, is_response_payload(payload))
            self._save_counts(db, progress)
        return added, seen

    def item(self, item_id: int) -> Item:
        found = self._item(self.db.execute(f"SELECT {self._COLUMNS} FROM items WHERE id = ?", (item_id,)).fetchone())
        if found is None:
            raise KeyError(f"no item {item_id} in {self.path}")
        return found

    def items(self, status: str | None = None) -> Iterator[Item]:
        """Every item (of ``status``), in id order."""
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        for row in self.db.execute(f"SELECT {self._COLUMNS} FROM items {where} ORDER BY id", args):
            yield self._item(row)  # type: ignore[misc]

    def next_item(self, order: str = "uncertainty", source: str | None = None) -> Item | None:
        """The next item to label: items sent back for review first, then ``todo`` items, either in
        input order or (``order="uncertainty"``) least margin first, items without a suggestion last.
        Each query is one index lookup (``items_status`` / ``items_status_margin``). With ``source``,
        only items of that source family (``serve``; ``inbox.txt`` for ``inbox.txt:12``...)."""
        where = " AND (source = :source OR substr(source, 1, length(:source) + 1) = :source || ':')" if source else ""
        queries = [f"SELECT {self._COLUMNS} FROM items WHERE status = 'review'{where} ORDER BY id LIMIT 1"]
        if order == "uncertainty":
            queries.append(f"SELECT {self._COLUMNS} FROM items WHERE status = 'todo' AND margin IS NOT NULL{where} ORDER BY margin, id LIMIT 1")
        queries.append(f"SELECT {self._COLUMNS} FROM items WHERE status = 'todo'{where} ORDER BY id LIMIT 1")
        for query in queries:
            found = self._item(self.db.execute(query, {"source": source} if source else {}).fetchone())
            if found is not None:
                return found
        return None

    def queue_sources(self) -> dict[str, int]:
        """Items waiting (``todo`` or ``review``) per source family, e.g. ``{"inbox.txt": 20, "serve": 7}``."""
        family = "CASE WHEN instr(source, ':') > 0 THEN substr(source, 1, instr(source, ':') - 1) ELSE source END"
        rows = self.db.execute(f"SELECT {family} AS family, count(*) FROM items WHERE status IN ('todo', 'review') "
                               "GROUP BY family ORDER BY family")
        return {name: count for name, count in rows}

    # -- decisions --------------------------------------------------------------------------------
    def _change(self, db: sqlite3.Connection, item_id: int, gold: Any, status: str, kind: str, note: str | None = None,
                suggestion: Any = ..., payload: Any = ...) -> Decision:
        progress = self._counts(db)  # before any write: the snapshot still matches the data
        row = db.execute("SELECT gold, status, instr(payload, ?) > 0 FROM items WHERE id = ?", (RESPONSE_PAYLOAD_MARK, item_id)).fetchone()
        if row is None:
            raise KeyError(f"no item {item_id} in {self.path}")
        before_gold, before_status, response = row
        after_gold = _dump(gold)
        now = time.time()
        sets, args = ["gold = ?", "status = ?", "updated = ?"], [after_gold, status, now]
        if note is not None:
            sets.append("note = ?")
            args.append(note or None)
        if suggestion is not ...:
            sets.append("suggestion = ?")
            args.append(_dump(suggestion))
        db.execute(f"UPDATE items SET {', '.join(sets)} WHERE id = ?", (*args, item_id))
        seq = db.execute("INSERT INTO history(item_id, kind, before_gold, before_status, after_gold, after_status, time) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", (item_id, kind, before_gold, before_status, after_gold, status, now)).lastrowid
        _count(progress, before_status, _load(before_gold), -1, bool(response))
        _count(progress, status, gold, +1, bool(response))
        self._save_counts(db, progress)
        return Decision(seq, item_id, kind, _load(before_gold), before_status, gold, status)  # type: ignore[arg-type]

    def _push(self, db: sqlite3.Connection, seq: int) -> None:
        top = int(self._meta("undo_top", "0"))
        db.execute("DELETE FROM undo_stack WHERE pos > ?", (top,))
        db.execute("INSERT INTO undo_stack(pos, seq) VALUES (?, ?)", (top + 1, seq))
        self._set_meta("undo_top", str(top + 1))

    def decide(self, item_id: int, gold: Any, kind: str = "label") -> Decision:
        """Record a label (``gold``) for an item; committed before this returns. The item's draft
        (``set_draft``), if any, is dropped in the same transaction."""
        with self._transaction() as db:
            decision = self._change(db, item_id, gold, LABELLED, kind)
            self._push(db, decision.seq)
            db.execute("DELETE FROM meta WHERE key = ?", (_draft_key(item_id),))
        return decision

    # -- drafts -----------------------------------------------------------------------------------
    def draft(self, item_id: int) -> str | None:
        """Unsaved text typed for an item (the TUI's response editor keeps it when you leave the item
        without saving), or None. A draft is not a decision: it has no history and no undo."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (_draft_key(item_id),)).fetchone()
        return row[0] if row else None

    def set_draft(self, item_id: int, text: str | None) -> None:
        """Keep ``text`` as the item's draft (None or blank: drop it); committed before this returns."""
        with self._transaction() as db:
            if text is None or not text.strip():
                db.execute("DELETE FROM meta WHERE key = ?", (_draft_key(item_id),))
            else:
                self._set_meta(_draft_key(item_id), text)

    def skip(self, item_id: int) -> Decision:
        """Take an item out of the queue without labelling it (undoable)."""
        with self._transaction() as db:
            current = db.execute("SELECT gold FROM items WHERE id = ?", (item_id,)).fetchone()
            decision = self._change(db, item_id, _load(current[0]) if current else None, SKIPPED, "skip")
            self._push(db, decision.seq)
        return decision

    def send_back(self, payload: dict[str, Any], gold: Any, suggestion: dict[str, Any] | None, note: str, source: str) -> Decision:
        """Put an example (e.g. a validation error) at the head of the queue, marked for review, with
        its current ``gold`` and the model's ``suggestion`` shown. Adds the item if it is new."""
        with self._transaction() as db:
            key = item_key(payload)
            progress = self._counts(db)
            db.execute("INSERT OR IGNORE INTO items(key, payload, source, gold, status, updated) VALUES (?, ?, ?, NULL, ?, ?)",
                       (key, _dump(payload), source, TODO, time.time()))
            if db.execute("SELECT changes()").fetchone()[0]:
                progress.total += 1
                progress.by_status[TODO] += 1
                self._save_counts(db, progress)
            item_id = db.execute("SELECT id FROM items WHERE key = ?", (key,)).fetchone()[0]
            decision = self._change(db, item_id, gold, REVIEW, "send_back", note=note, suggestion=suggestion)
            self._push(db, decision.seq)
        return decision

    def find(self, payload: dict[str, Any], given: str | None = None) -> Item | None:
        """The item with this content (or given id), or None if the store does not have it."""
        row = self.db.execute(f"SELECT {self._COLUMNS} FROM items WHERE key = ?", (item_key(payload, given),)).fetchone()
        return self._item(row)

    def review(self, item_id: int, suggestion: dict[str, Any] | None, note: str) -> Decision:
        """Put an item that is already in the store at the head of the queue (status ``review``), its
        gold label kept, with ``suggestion`` shown and ``note`` saying why (undoable, like ``send_back``)."""
        with self._transaction() as db:
            row = db.execute("SELECT gold FROM items WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise KeyError(f"no item {item_id} in {self.path}")
            decision = self._change(db, item_id, _load(row[0]), REVIEW, "send_back", note=note, suggestion=suggestion)
            self._push(db, decision.seq)
        return decision

    def undo(self) -> Decision | None:
        """Revert the newest decision not yet undone; returns the new history row, or None."""
        with self._transaction() as db:
            top = int(self._meta("undo_top", "0"))
            row = db.execute("SELECT h.item_id, h.before_gold, h.before_status FROM undo_stack s JOIN history h ON h.seq = s.seq "
                             "WHERE s.pos = ?", (top,)).fetchone()
            if row is None:
                return None
            decision = self._change(db, row[0], _load(row[1]), row[2], "undo")
            self._set_meta("undo_top", str(top - 1))
        return decision

    def redo(self) -> Decision | None:
        """Re-apply the newest undone decision (until a new decision discards the redo branch)."""
        with self._transaction() as db:
            top = int(self._meta("undo_top", "0"))
            row = db.execute("SELECT h.item_id, h.after_gold, h.after_status FROM undo_stack s JOIN history h ON h.seq = s.seq "
                             "WHERE s.pos = ?", (top + 1,)).fetchone()
            if row is None:
                return None
            decision = self._change(db, row[0], _load(row[1]), row[2], "redo")
            self._set_meta("undo_top", str(top + 1))
        return decision

    def history(self, limit: int = 50) -> list[Decision]:
        """The newest ``limit`` history rows, newest first."""
        rows = self.db.execute("SELECT seq, item_id, kind, before_gold, before_status, after_gold, after_status FROM history "
                               "ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [Decision(s, i, k, _load(bg), bs, _load(ag), as_) for s, i, k, bg, bs, ag, as_ in rows]

    # -- suggestions ----------------------------------------------------------------------------
    def unlabelled_ids(self, without_suggestion: bool = False) -> list[int]:
        """Ids of ``todo``/``review`` items (optionally only those without a suggestion yet)."""
        extra = " AND suggestion IS NULL" if without_suggestion else ""
        return [r[0] for r in self.db.execute(f"SELECT id FROM items WHERE status IN ('todo', 'review'){extra} ORDER BY id")]

    def set_suggestions(self, rows: Iterable[tuple[int, dict[str, Any], float | None]]) -> int:
        """Store model predictions ``(item_id, suggestion, margin)`` in one transaction (not decisions:
        they are not in the history and do not touch gold labels)."""
        with self._transaction() as db:
            cursor = db.executemany("UPDATE items SET suggestion = ?, margin = ? WHERE id = ?",
                                    ((_dump(s), m, i) for i, s, m in rows))
        return cursor.rowcount

    # -- labels and progress ---------------------------------------------------------------------
    def labels(self) -> list[str]:
        """The label set saved with the store (``set_labels``), else every label used in gold data."""
        saved = self._meta("labels", "")
        if saved:
            return json.loads(saved)
        return sorted(self.progress().per_label)

    def set_labels(self, labels: list[str]) -> None:
        with self._transaction():
            self._set_meta("labels", json.dumps(list(labels)))

    def progress(self) -> Progress:
        """Counts by status and per label, read from the snapshot the store keeps with its data.

        Every write transaction updates the snapshot (``meta.progress``) together with a fingerprint
        of the data it describes (newest history row, newest item). Opening a store of a million
        items therefore reads one row; only a snapshot whose fingerprint no longer matches (a store
        written by an older version, or edited by hand) is recounted, once.
        """
        if self._progress is None:
            self._progress = self._counts(self.db)
        return Progress(self._progress.total, Counter(self._progress.by_status), Counter(self._progress.per_label))

    def _fingerprint(self, db: sqlite3.Connection) -> str:
        seq, item = db.execute("SELECT (SELECT COALESCE(MAX(seq), 0) FROM history), (SELECT COALESCE(MAX(id), 0) FROM items)").fetchone()
        return f"{seq}:{item}"

    def _counts(self, db: sqlite3.Connection) -> Progress:
        """The current counts: the stored snapshot if it matches the data, else counted from the items."""
        row = db.execute("SELECT value FROM meta WHERE key = 'progress'").fetchone()
        if row is not None:
            saved = json.loads(row[0])
            if saved.get("fingerprint") == self._fingerprint(db):
                return Progress(saved["total"], Counter(saved["by_status"]), Counter(saved["per_label"]))
        progress = Progress()
        for status, count in db.execute("SELECT status, count(*) FROM items GROUP BY status"):
            progress.by_status[status] = count
            progress.total += count
        for gold, response, count in db.execute("SELECT gold, instr(payload, ?) > 0 AS response, count(*) FROM items "
                                                "WHERE status = 'labelled' GROUP BY gold, response", (RESPONSE_PAYLOAD_MARK,)):
            for label in gold_labels(_load(gold), bool(response)):
                progress.per_label[label] += count
        return progress

    def _save_counts(self, db: sqlite3.Connection, progress: Progress) -> None:
        """Store ``progress`` as the snapshot of the data as it is now (inside the write transaction)."""
        snapshot = {"fingerprint": self._fingerprint(db), "total": progress.total,
                    "by_status": {k: v for k, v in progress.by_status.items() if v},
                    "per_label": {k: v for k, v in progress.per_label.items() if v}}
        self._set_meta("progress", json.dumps(snapshot, sort_keys=True))
        self._progress = progress


def _draft_key(item_id: int) -> str:
    return f"draft:{int(item_id)}"


def _count(progress: Progress, status: str, gold: Any, delta: int, response: bool = False) -> None:
    """Move one item with ``gold`` into (``delta`` +1) or out of (-1) ``status`` in ``progress``
    (``response``: the item is a conversation, whose gold counts towards no label)."""
    progress.by_status[status] += delta
    if status == LABELLED:
        for label in gold_labels(gold, response):
            progress.per_label[label] += delta
