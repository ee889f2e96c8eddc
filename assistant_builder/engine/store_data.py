"""Recipes whose ``data.train`` or ``data.validation`` name a labelling store (``*.labels.sqlite``,
the file ``builder tui`` keeps next to a recipe).

Before the task reads its data, each store is exported, with its labelled items only, to the task's
training format inside the run directory (``RUN/data/train.jsonl``, ``validation.json``...), and
the task reads that file. The run therefore trains on exactly what was labelled when it started,
keeps a copy of it, and a resumed run reads the same copy instead of the store as it is now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant_builder.errors import DataError
from assistant_builder.labelling.records import STORE_SUFFIX
#: file extension of the export per labelling kind (formats the built-in readers detect)
EXPORT_SUFFIX = {"text_class": ".jsonl", "token_spans": ".jsonl", "answer_span": ".json", "response": ".jsonl"}


def is_store(path: Path | None) -> bool:
    return path is not None and str(path).endswith(STORE_SUFFIX)


def materialise_store_data(data: Any, task: Any, options: Any, run_dir: Path) -> Any:
    """``data`` (a ``DataSection`` with absolute paths) with every store replaced by its export."""
    if not (is_store(data.train) or is_store(data.validation)):
        return data
    from assistant_builder.labelling.formats import export_file
    from assistant_builder.labelling.store import LabelStore

    kind = getattr(task, "labelling_kind", "")
    if kind not in EXPORT_SUFFIX:
        raise DataError(f"{data.train}: task '{task.name}' has labelling kind '{kind}', which a labelling store cannot export",
                        hint="export the store with `builder tui` to a file the task reads, and name that file")
    update: dict[str, Any] = {"format": "auto"}
    for split in ("train", "validation"):
        path = getattr(data, split)
        if not is_store(path):
            continue
        target = run_dir / "data" / f"{split}{EXPORT_SUFFIX[kind]}"
        if not target.exists():  # a resumed run keeps the copy it started from
            if not Path(path).is_file():
                raise DataError(f"{path}: labelling store not found", hint="check data.train / data.validation")
            target.parent.mkdir(parents=True, exist_ok=True)
            with LabelStore(path) as store:
                count = export_file(store, target, kind, text_field=getattr(options, "text_field", "text"),
                                    label_field=getattr(options, "label_field", "label"),
                                    messages_field=getattr(options, "messages_field", "messages"))
            if count == 0:
                target.unlink()
                raise DataError(f"{path}: the labelling store has no labelled items yet", hint="label some with `builder tui`")
        update[split] = target
    return data.model_copy(update=update)
