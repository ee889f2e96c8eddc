"""What ``builder serve --feedback`` keeps in a labelling store: captured predictions and feedback.

``FeedbackStore`` is a ``LabelStore`` (same file, same ``items``/``history`` tables, so
``builder tui`` shows everything here in its queue) with one more table:

* ``serve_events``: one row per captured prediction and per feedback request: ``prediction_id``,
  ``item_id``, ``kind`` (``capture``, ``feedback``: a label was given, ``wrong``: marked wrong
  without the right answer), ``input`` (the request's input, JSON, so a later feedback on a
  captured prediction is validated against exactly what was predicted), ``prediction`` (JSON),
  ``confidence``, ``model_version``, ``correction`` (the feedback body, JSON) and ``time``.

Items created here have source ``serve``. Captured ones are ``todo`` with the prediction as their
suggestion and its confidence as their margin (so ``builder tui`` shows the model's guess and can
order by uncertainty); feedback sets ``gold`` and status ``labelled`` (or ``review`` for
``wrong``), recorded in ``history`` as kind ``feedback`` but not put on the TUI's undo stack (a
person's ``u`` never reverts a user's feedback).

Durability: the server opens it with ``durable=True`` (``synchronous=FULL``): a feedback request is
answered only after its transaction committed and was synced. ``purge`` deletes inputs by source
with ``secure_delete`` on and truncates the WAL, so the deleted text does not linger in the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.labelling.records import LABELLED, RESPONSE_PAYLOAD_MARK, REVIEW, TODO, dump_json, item_key, load_json
from assistant_builder.labelling.store import LabelStore, _count

SERVE_SOURCE = "serve"

SERVE_SCHEMA = """
CREATE TABLE IF NOT EXISTS serve_events (
    id INTEGER PRIMARY KEY,
    prediction_id TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    input TEXT,
    prediction TEXT,
    confidence REAL,
    model_version TEXT,
    correction TEXT,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS serve_events_prediction ON serve_events(prediction_id);
CREATE INDEX IF NOT EXISTS serve_events_item ON serve_events(item_id);
CREATE INDEX IF NOT EXISTS items_source_status ON items(source, status);
CREATE INDEX IF NOT EXISTS history_item ON history(item_id);
"""

#: SQL condition: ``items.source`` is ``:source`` or starts with ``:source`` + ``:`` (``inbox.txt`` matches ``inbox.txt:12``)
SOURCE_MATCH = "(source = :source OR substr(source, 1, length(:source) + 1) = :source || ':')"


@dataclass(frozen=True)
class Captured:
    """One prediction to keep: the request's input, its store payload, the prediction and who made it."""

    prediction_id: str
    raw_input: Any
    payload: dict[str, Any]
    prediction: dict[str, Any]
    confidence: float | None
    model_version: str
    time: float
    note: str = ""


@dataclass(frozen=True)
class Feedback:
    """One feedback request: ``gold`` is ``None`` for ``kind="wrong"`` (marked wrong, right answer unknown)."""

    prediction_id: str
    raw_input: Any
    payload: dict[str, Any]
    prediction: dict[str, Any]
    gold: Any
    kind: str
    correction: dict[str, Any]
    model_version: str
    time: float


@dataclass(frozen=True)
class CaptureResult:
    stored: int
    duplicates: int
    evicted: int


@dataclass(frozen=True)
class KnownPrediction:
    """A prediction found in ``serve_events`` (feedback after it left the server's memory)."""

    prediction_id: str
    raw_input: Any
    prediction: dict[str, Any]
    model_version: str


@dataclass(frozen=True)
class PurgeResult:
    items: int
    labelled: int
    events: int
    history: int


class FeedbackStore(LabelStore):
    """A labelling store that also records serving events (one instance per thread, as ``LabelStore``)."""

    def __init__(self, path: str | Path, *, durable: bool = True) -> None:
        super().__init__(path, durable=durable)
        self.db.executescript(SERVE_SCHEMA)

    # -- capture ----------------------------------------------------------------------------------
    def capture(self, rows: Sequence[Captured], capture_max: int | None = None) -> CaptureResult:
        """Add captured predictions as ``todo`` items in one transaction; inputs already in the store
        are left alone (counted as duplicates). Then, with ``capture_max``, delete the oldest captured
        items still waiting (``todo``, never decided) beyond that many."""
        stored = duplicates = evicted = 0
        with self._transaction() as db:
            progress = self._counts(db)
            for row in rows:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO items(key, payload, source, gold, status, suggestion, margin, note, updated) "
                    "VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)",
                    (item_key(row.payload), dump_json(row.payload), SERVE_SOURCE, TODO, dump_json(row.prediction), row.confidence,
                     row.note or None, row.time))
                if not cursor.rowcount:
                    duplicates += 1
                    continue
                stored += 1
                progress.total += 1
                progress.by_status[TODO] += 1
                self._event(db, row.prediction_id, int(cursor.lastrowid or 0), "capture", row.raw_input, row.prediction,
                            row.confidence, row.model_version, None, row.time)
            if capture_max is not None:
                evicted = self._evict(db, progress, capture_max)
            self._save_counts(db, progress)
        return CaptureResult(stored, duplicates, evicted)

    def waiting_captures(self) -> int:
        """Captured items still waiting to be labelled (what ``capture_max`` bounds)."""
        return int(self.db.execute("SELECT count(*) FROM items WHERE source = ? AND status = ?", (SERVE_SOURCE, TODO)).fetchone()[0])

    def _evict(self, db: sqlite3.Connection, progress: Any, capture_max: int) -> int:
        excess = int(db.execute("SELECT count(*) FROM items WHERE source = ? AND status = ?", (SERVE_SOURCE, TODO)).fetchone()[0]) - capture_max
        if excess <= 0:
            return 0
        ids = [r[0] for r in db.execute(
            "SELECT id FROM items WHERE source = ? AND status = ? AND NOT EXISTS (SELECT 1 FROM history h WHERE h.item_id = items.id) "
            "ORDER BY id LIMIT ?", (SERVE_SOURCE, TODO, excess))]
        self._delete_items(db, ids)
        progress.total -= len(ids)
        progress.by_status[TODO] -= len(ids)
        return len(ids)

    # -- feedback ---------------------------------------------------------------------------------
    def record_feedback(self, feedback: Feedback) -> tuple[int, str]:
        """Record one feedback request in one transaction; returns ``(item_id, status)``.

        The input becomes an item (source ``serve``) if it is not in the store yet; ``kind="feedback"``
        sets its gold and status ``labelled`` (whatever it was before: the before-state is kept in
        ``history``), ``kind="wrong"`` keeps its gold and puts it in the ``review`` queue.
        """
        with self._transaction() as db:
            key = item_key(feedback.payload)
            progress = self._counts(db)
            cursor = db.execute("INSERT OR IGNORE INTO items(key, payload, source, gold, status, updated) VALUES (?, ?, ?, NULL, ?, ?)",
                                (key, dump_json(feedback.payload), SERVE_SOURCE, TODO, feedback.time))
            if cursor.rowcount:
                progress.total += 1
                progress.by_status[TODO] += 1
                self._save_counts(db, progress)
            item_id, gold = db.execute("SELECT id, gold FROM items WHERE key = ?", (key,)).fetchone()
            if feedback.kind == "wrong":
                status, new_gold, note = REVIEW, load_json(gold), f"marked wrong through POST /feedback (model {feedback.model_version})"
            else:
                status, new_gold, note = LABELLED, feedback.gold, None
            self._change(db, item_id, new_gold, status, "feedback", note=note, suggestion=feedback.prediction)
            self._event(db, feedback.prediction_id, item_id, feedback.kind, feedback.raw_input, feedback.prediction, None,
                        feedback.model_version, feedback.correction, feedback.time)
        return item_id, status

    def find_prediction(self, prediction_id: str) -> KnownPrediction | None:
        """The newest recorded event of ``prediction_id`` (captured or given feedback before), if any."""
        row = self.db.execute("SELECT input, prediction, model_version FROM serve_events WHERE prediction_id = ? AND input IS NOT NULL "
                              "ORDER BY id DESC LIMIT 1", (prediction_id,)).fetchone()
        if row is None:
            return None
        return KnownPrediction(prediction_id, json.loads(row[0]), load_json(row[1]) or {}, row[2] or "")

    def events(self, prediction_id: str | None = None) -> list[dict[str, Any]]:
        """Serving events (of one prediction), oldest first, as dicts (for tests and ``builder feedback``)."""
        where, args = ("WHERE prediction_id = ?", (prediction_id,)) if prediction_id else ("", ())
        columns = ("id", "prediction_id", "item_id", "kind", "input", "prediction", "confidence", "model_version", "correction", "time")
        rows = self.db.execute(f"SELECT {', '.join(columns)} FROM serve_events {where} ORDER BY id", args).fetchall()
        decoded = ("input", "prediction", "correction")
        return [{c: (load_json(v) if c in decoded else v) for c, v in zip(columns, row)} for row in rows]

    def _event(self, db: sqlite3.Connection, prediction_id: str, item_id: int, kind: str, raw_input: Any, prediction: Any,
               confidence: float | None, model_version: str, correction: Any, time: float) -> None:
        db.execute("INSERT INTO serve_events(prediction_id, item_id, kind, input, prediction, confidence, model_version, correction, time) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (prediction_id, item_id, kind, dump_json(raw_input), dump_json(prediction), confidence, model_version,
                    dump_json(correction), time))

    # -- sources and purging -------------------------------------------------------------------------
    def source_counts(self) -> dict[str, dict[str, int]]:
        """Items per source family (``inbox.txt:12`` counts as ``inbox.txt``) and status."""
        family = "CASE WHEN instr(source, ':') > 0 THEN substr(source, 1, instr(source, ':') - 1) ELSE source END"
        counts: dict[str, dict[str, int]] = {}
        for name, status, count in self.db.execute(f"SELECT {family} AS family, status, count(*) FROM items GROUP BY family, status"):
            counts.setdefault(name, {})[status] = count
        return counts

    def purge(self, source: str, *, unlabelled_only: bool = False) -> PurgeResult:
        """Delete every item of ``source`` (a source family, e.g. ``serve``), or only those not labelled,
        with their history and serving events; returns what was deleted.

        The deleted text is overwritten in the database file (``secure_delete``) and the WAL is
        truncated afterwards. Decisions about purged items leave the undo stack.
        """
        self.db.execute("PRAGMA secure_delete = ON")
        try:
            with self._transaction() as db:
                progress = self._counts(db)
                status_filter = f" AND status != '{LABELLED}'" if unlabelled_only else ""
                rows = db.execute(f"SELECT id, status, gold, instr(payload, :mark) > 0 FROM items WHERE {SOURCE_MATCH}{status_filter}",
                                  {"source": source, "mark": RESPONSE_PAYLOAD_MARK}).fetchall()
                ids = [r[0] for r in rows]
                for _, status, gold, response in rows:
                    progress.total -= 1
                    _count(progress, status, load_json(gold), -1, bool(response))
                events, history = self._delete_items(db, ids)
                self._save_counts(db, progress)
        finally:
            self.db.execute("PRAGMA secure_delete = OFF")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return PurgeResult(len(ids), sum(1 for r in rows if r[1] == LABELLED), events, history)

    def _delete_items(self, db: sqlite3.Connection, ids: Sequence[int]) -> tuple[int, int]:
        """Delete items, their serving events and history rows, and compact the undo stack."""
        events = history = 0
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            marks = ", ".join("?" * len(chunk))
            events += db.execute(f"DELETE FROM serve_events WHERE item_id IN ({marks})", chunk).rowcount
            seqs = {r[0] for r in db.execute(f"SELECT seq FROM history WHERE item_id IN ({marks})", chunk)}
            if seqs:
                self._drop_from_undo_stack(db, seqs)
            history += db.execute(f"DELETE FROM history WHERE item_id IN ({marks})", chunk).rowcount
            db.execute(f"DELETE FROM items WHERE id IN ({marks})", chunk)
        return events, history

    def _drop_from_undo_stack(self, db: sqlite3.Connection, seqs: set[int]) -> None:
        top = int(self._meta("undo_top", "0"))
        stack = db.execute("SELECT pos, seq FROM undo_stack ORDER BY pos").fetchall()
        kept = [(pos, seq) for pos, seq in stack if seq not in seqs]
        db.execute("DELETE FROM undo_stack")
        db.executemany("INSERT INTO undo_stack(pos, seq) VALUES (?, ?)", [(i + 1, seq) for i, (_, seq) in enumerate(kept)])
        self._set_meta("undo_top", str(sum(1 for pos, _ in kept if pos <= top)))
