"""Training data from the store: labelled validation texts stay out of training; fixes go to a validation copy."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from assistant_builder.labelling.store import LabelStore
from assistant_builder.tui.project import open_project
from assistant_builder.tui.trainset import export_training_data

from .conftest import LABELS, TEXTS, VALID_TEXTS


def label(store: LabelStore, text: str, gold: str) -> None:
    store.add_items([({"text": text}, None, "test", None)])
    item = next(i for i in store.items() if i.payload["text"] == text)
    store.decide(item.id, gold)


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_fixed_validation_error_corrects_a_copy_of_validation_and_never_trains(make_project: Any, registry: Any) -> None:
    project = make_project(texts=[])
    file_label = dict(zip(VALID_TEXTS, LABELS * 2))
    with LabelStore(project.store_path) as store:
        for text, gold in zip(TEXTS, LABELS * 2):
            label(store, text, gold)
        label(store, VALID_TEXTS[0], "music")  # sent back and fixed: the file says "alarm"
        label(store, VALID_TEXTS[1], file_label[VALID_TEXTS[1]])  # labelled as the file has it
        store.send_back({"text": VALID_TEXTS[2]}, file_label[VALID_TEXTS[2]], None, "sent back", "run")  # still in review
        exported = export_training_data(store, project, registry)
    assert (exported.train_count, exported.held_out, exported.corrected) == (len(TEXTS), 2, 1)
    assert [r["text"] for r in rows(exported.train_path)] == TEXTS
    copy = exported.validation_path
    assert copy == project.recipe_path.with_name("recipe.labels.valid.jsonl")
    assert rows(copy) == [{"text": t, "intent": "music" if t == VALID_TEXTS[0] else file_label[t]} for t in VALID_TEXTS]
    assert rows(project.recipe_path.with_name("valid.jsonl"))[0] == {"text": VALID_TEXTS[0], "intent": "alarm"}  # untouched
    assert exported.overrides == [f"data.train={json.dumps(str(exported.train_path))}", f"data.validation={json.dumps(str(copy))}"]
    assert "2 labelled validation texts kept out of training, 1 corrected label applied" in exported.describe()


def test_without_corrections_there_is_no_copy(make_project: Any, registry: Any) -> None:
    project = make_project(texts=[])
    with LabelStore(project.store_path) as store:
        label(store, TEXTS[0], "alarm")
        label(store, VALID_TEXTS[1], LABELS[1])
        exported = export_training_data(store, project, registry)
    assert (exported.train_count, exported.held_out, exported.validation_path) == (1, 1, None)
    assert len(exported.overrides) == 1 and not project.recipe_path.with_name("recipe.labels.valid.jsonl").exists()


def test_a_recipe_without_a_validation_file_exports_everything(tmp_path: Path, registry: Any) -> None:
    (tmp_path / "train.csv").write_text("text,intent\nwake me at 7,alarm\n")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('recipe_version = 1\nname = "csv"\n[task]\ntype = "classification"\n[task.options]\nlabel_field = "intent"\n'
                      '[data]\ntrain = "train.csv"\n')
    project = open_project(recipe, registry)
    with LabelStore(project.store_path) as store:
        label(store, "wake me at 7", "alarm")
        label(store, "play jazz, loud", "music")  # a comma: CSV quoting
        exported = export_training_data(store, project, registry)
    assert exported.train_path.suffix == ".csv" and (exported.train_count, exported.held_out) == (2, 0)
    with exported.train_path.open(newline="", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == [{"text": "wake me at 7", "intent": "alarm"}, {"text": "play jazz, loud", "intent": "music"}]
