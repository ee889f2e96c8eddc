"""``data.extra``: the labelled items of labelling stores, added to the training split only.

For each store, in the order listed, its labelled items are frozen into the run directory
(``RUN/data/extra-<n>.jsonl``, one ``{"item", "source", "payload", "gold"}`` per line), so the run
trains on the store as it was when it started, keeps the copy, and a resumed run reads that copy.
Each item becomes a training example through the task's feedback contract (``Task.from_store``;
its identity is ``Task.to_store(example).payload``, the input without its label):

* ``added``: an input the training data does not have;
* ``corrected``: the training data has the input with another label: the store's label wins, for
  every copy of it, and the change is reported (``RUN/data/extra_report.json``, the run's stage line);
* ``duplicate``: the same input with the same label is there already (nothing changes);
* ``in_validation``: the input is a validation example: left out, so that validation never sees
  what the model trained on (whether ``data.validation`` is a file or split from ``data.train``).

A class-labelling task (``text_class``) whose recipe declares no ``task.options.labels`` takes the
stores' new classes as new labels (appended after the training data's, in order of appearance):
a new intent can arrive through a store alone. Its validation examples, if any, must still come
with the training file (validation labels are checked against it when the data loads).

Unlabelled, skipped and review items are not used. Everything is counted per store (and per item
source: ``serve``, ``inbox.txt``...) for ``provenance.json`` and ``summary.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant_builder.atomic import atomic_write_json, atomic_write_text
from assistant_builder.contracts import StoreRecord, Task, TaskData
from assistant_builder.errors import DataError
from assistant_builder.labelling.records import dump_json

#: corrections listed in the report (all are counted)
REPORTED_CORRECTIONS = 200


def _freeze(store_path: Path, copy: Path) -> list[dict[str, Any]]:
    """The store's labelled items, from the run's copy if it exists (a resumed run), else written to it."""
    if copy.is_file():
        return [json.loads(line) for line in copy.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not store_path.is_file():
        raise DataError(f"data.extra: {store_path}: labelling store not found",
                        hint="label items with `builder tui`, or collect feedback with `builder serve --feedback`; or remove it "
                             "from data.extra")
    from assistant_builder.labelling.store import LABELLED, LabelStore

    with LabelStore(store_path) as store:
        rows = [{"item": item.id, "source": item.source, "payload": item.payload, "gold": item.gold} for item in store.items(LABELLED)]
    copy.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(copy, "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows))
    return rows


def _key(task: Task, example: Any) -> str:
    return dump_json(task.to_store(example).payload) or ""


def _family(source: str) -> str:
    return source.split(":", 1)[0] if source else "?"


def add_extra_data(task: Task, task_data: TaskData, stores: Sequence[Path], options: Any, run_dir: Path) -> tuple[TaskData, dict[str, Any]]:
    """``task_data`` with the stores' labelled items merged into ``train``, and the report (see the module doc)."""
    from assistant_builder.feedback import supports_feedback

    if not stores:
        return task_data, {}
    if not supports_feedback(task):
        raise DataError(f"data.extra: task '{task.name}' cannot read labelling stores: it does not implement Task.to_store / "
                        "from_store", hint="remove data.extra, or implement the feedback contract (docs/writing_plugins.md)")
    train = list(task_data.train)
    positions: dict[str, list[int]] = {}
    for index, example in enumerate(train):
        positions.setdefault(_key(task, example), []).append(index)
    validation = {_key(task, example) for example in task_data.validation}
    #: training example index -> the store its label comes from
    owner: dict[int, str] = {}
    reports, corrections = [], []
    frozen = [_freeze(Path(store_path), run_dir / "data" / f"extra-{number}.jsonl") for number, store_path in enumerate(stores, start=1)]
    labels = _with_store_labels(task, task_data.labels, options, frozen)
    for number, (store_path, rows) in enumerate(zip(stores, frozen), start=1):
        copy = run_dir / "data" / f"extra-{number}.jsonl"
        outcome: Counter[str] = Counter()
        by_source: Counter[str] = Counter()
        for row in rows:
            where = f"{store_path} item #{row['item']} ({row['source']})"
            try:
                example = task.from_store(StoreRecord(row["payload"], row["gold"], where), labels, options)
            except DataError as exc:
                raise DataError(f"data.extra: {where}: {exc.message}",
                                hint=exc.hint or "fix the item with `builder tui`, or declare the label in task.options.labels") from None
            key = _key(task, example)
            if key in validation:
                outcome["in_validation"] += 1
                continue
            gold = task.to_store(example).gold
            if key not in positions:
                positions[key] = [len(train)]
                train.append(example)
                owner[len(train) - 1] = str(store_path)
                outcome["added"] += 1
                by_source[_family(row["source"])] += 1
                continue
            previous = task.to_store(train[positions[key][0]])
            if previous.gold == gold:
                outcome["duplicate"] += 1
                continue
            for index in positions[key]:
                train[index] = example
                owner[index] = str(store_path)
            outcome["corrected"] += 1
            by_source[_family(row["source"])] += 1
            if len(corrections) < REPORTED_CORRECTIONS:
                corrections.append({"input": row["payload"], "was": previous.gold, "now": gold, "training_source": previous.source,
                                    "store": str(store_path), "item": row["item"], "copies": len(positions[key])})
        reports.append({"path": str(store_path), "copy": str(copy), "labelled": len(rows),
                        **{k: outcome[k] for k in ("added", "corrected", "duplicate", "in_validation")},
                        "by_source": dict(sorted(by_source.items()))})
    per_store = Counter(owner.values())
    report = {"stores": reports, "corrections": corrections,
              "training_examples": {"total": len(train), "by_source": {str(task_data.sources.get("train", "data.train")): len(train) - len(owner),
                                                                        **{r["path"]: per_store[r["path"]] for r in reports}}},
              "validation_examples": len(task_data.validation), "new_labels": labels[len(task_data.labels):]}
    atomic_write_json(run_dir / "data" / "extra_report.json", report)
    return replace(task_data, train=train, labels=labels), report


def _with_store_labels(task: Task, labels: Sequence[str], options: Any, frozen: Sequence[Sequence[dict[str, Any]]]) -> list[str]:
    """``labels`` and, for a class-labelling task whose options declare none (``labels``), the classes the
    stores' items carry that the training data lacks (a new intent labelled in ``builder tui`` or sent as
    feedback), appended in order of appearance so the existing class ids keep their meaning."""
    labels = list(labels)
    if getattr(task, "labelling_kind", None) != "text_class" or getattr(options, "labels", None):
        return labels
    fallback = getattr(options, "fallback_label", None)
    for rows in frozen:
        for row in rows:
            gold = row.get("gold")
            if isinstance(gold, str) and gold.strip() and gold not in labels and gold != fallback:
                labels.append(gold)
    return labels


def describe(report: dict[str, Any]) -> str:
    """One line for the run's progress output."""
    parts = [f"{Path(r['path']).name}: {r['labelled']} labelled, {r['added']} added, {r['corrected']} corrected, "
             f"{r['duplicate']} duplicates, {r['in_validation']} left out (in validation)" for r in report.get("stores", [])]
    shown = [f"'{c['input'].get('text', c['input'])}' {c['was']} -> {c['now']}" for c in report.get("corrections", [])[:3]]
    more = f" (corrections: {'; '.join(shown)}{'...' if len(report.get('corrections', [])) > 3 else ''})" if shown else ""
    added = report.get("new_labels") or []
    labels = f"; new labels: {', '.join(added[:8])}{'...' if len(added) > 8 else ''}" if added else ""
    return "; ".join(parts) + more + labels
