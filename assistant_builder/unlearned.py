"""What a labelling store holds that a run has not learned yet ("waiting to be learned").

A run reads a store through ``data.extra`` and freezes its labelled items into
``RUN/data/extra-<n>.jsonl`` (``engine/extra_data.py``; the store's path is in
``RUN/data/extra_report.json``). An item of the store is **waiting** when it is labelled now and the
run's copy either lacks it (labelled, or sent as feedback, after the run started) or has it with
another label (corrected since). A run whose recipe does not list the store has learned none of it.

Standard library and the core only (no torch): ``builder feedback``, ``builder serve --learn`` and
the TUI read it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.labelling.records import dump_json


@dataclass(frozen=True)
class Unlearned:
    """The store's labelled items a run has not learned: how many, since when, and with which labels."""

    store: Path
    run_dir: Path | None
    #: False when the run did not read this store at all (its recipe's ``data.extra`` does not list it)
    run_reads_store: bool
    #: labelled items in the store now
    labelled: int
    #: of them, not in the run's copy (new) or in it with another label (corrected)
    new: int = 0
    corrected: int = 0
    #: when the oldest waiting item was labelled (``items.updated``, epoch seconds); None when nothing waits
    oldest: float | None = None
    #: waiting items per source family (``serve``, an imported file's name...)
    by_source: dict[str, int] = field(default_factory=dict)
    #: the ids of the waiting items
    item_ids: tuple[int, ...] = ()

    @property
    def waiting(self) -> int:
        return self.new + self.corrected

    def waited_seconds(self, now: float | None = None) -> float:
        """How long the oldest waiting item has waited (0 when nothing waits)."""
        return 0.0 if self.oldest is None else max(0.0, (time.time() if now is None else now) - self.oldest)

    def describe(self) -> dict[str, Any]:
        return {"store": str(self.store), "run": str(self.run_dir) if self.run_dir else None, "run_reads_store": self.run_reads_store,
                "labelled": self.labelled, "waiting": self.waiting, "new": self.new, "corrected": self.corrected,
                "oldest_waiting": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.oldest)) if self.oldest else None,
                "by_source": dict(self.by_source)}


def _same(a: Path | str, b: Path | str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


def learned_copy(run_dir: Path, store: Path) -> Path | None:
    """The run's frozen copy of ``store`` (``RUN/data/extra-<n>.jsonl``), or None if the run did not read it."""
    try:
        report = json.loads((run_dir / "data" / "extra_report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for entry in report.get("stores", []) if isinstance(report, dict) else []:
        if isinstance(entry, dict) and _same(entry.get("path", ""), store):
            copy = Path(entry.get("copy") or "")
            if not copy.is_file():  # the run folder was moved: the copy sits beside the report
                copy = run_dir / "data" / copy.name
            return copy if copy.is_file() else None
    return None


def runs_dir_of(recipe: Path) -> Path:
    """The recipe's ``output.runs_dir`` (default ``runs``), resolved against the recipe's folder."""
    from assistant_builder.recipe.loader import read_toml

    runs = Path(str((read_toml(recipe).get("output") or {}).get("runs_dir", "runs")))
    return runs if runs.is_absolute() else (recipe.parent / runs).resolve()


def latest_run(recipe: Path) -> Path | None:
    """The newest finished run (``summary.json`` written) of ``recipe`` (by its ``name``) in its runs folder."""
    from assistant_builder.recipe.loader import read_toml

    name = read_toml(recipe).get("name")
    runs = runs_dir_of(recipe)
    best: tuple[float, str, Path] | None = None
    for run in (p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else ():
        try:
            done = (run / "summary.json").stat().st_mtime
            resolved = json.loads((run / "recipe.resolved.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(resolved, dict) and resolved.get("name") == name and (best is None or (done, run.name) > best[:2]):
            best = (done, run.name, run)
    return best[2] if best else None


def unlearned(store: Path, run_dir: Path | None) -> Unlearned:
    """The store's labelled items ``run_dir`` has not learned (every labelled item when ``run_dir`` is None
    or did not read the store). Opens the store read-only in effect (no writes)."""
    from assistant_builder.labelling.store import LABELLED, LabelStore

    copy = learned_copy(run_dir, store) if run_dir is not None else None
    learned: dict[int, str | None] = {}
    if copy is not None:
        for line in copy.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                learned[int(row["item"])] = dump_json(row.get("gold"))
    new = corrected = 0
    oldest: float | None = None
    by_source: dict[str, int] = {}
    ids: list[int] = []
    labelled = 0
    with LabelStore(store) as opened:
        rows = opened.db.execute("SELECT id, source, gold, updated FROM items WHERE status = ?", (LABELLED,)).fetchall()
    for item_id, source, gold, updated in rows:
        labelled += 1
        if item_id in learned and learned[item_id] == dump_json(json.loads(gold) if gold is not None else None):
            continue
        if item_id in learned:
            corrected += 1
        else:
            new += 1
        ids.append(item_id)
        family = (source or "?").split(":", 1)[0]
        by_source[family] = by_source.get(family, 0) + 1
        if updated is not None and (oldest is None or updated < oldest):
            oldest = float(updated)
    return Unlearned(store, run_dir, copy is not None, labelled, new, corrected, oldest, dict(sorted(by_source.items())), tuple(ids))
