"""A recipe can name the labelling store (`*.labels.sqlite`) as its data: the run trains on the
labelled items, keeps the exported copy, and a store with nothing labelled is a clear error."""

from __future__ import annotations

import json

from assistant_builder.cli.main import main
from assistant_builder.testing import write_intent_data
from assistant_builder.labelling.formats import import_file
from assistant_builder.labelling.store import LabelStore


def test_run_trains_on_the_labelled_items_of_a_store(tmp_path, write_recipe):
    write_intent_data(tmp_path, per_label=12, seed=4)
    store_path = tmp_path / "recipe.labels.sqlite"
    with LabelStore(store_path) as store:
        import_file(store, tmp_path / "train.jsonl", "text_class", label_field="intent")
        store.add_items([({"text": "not labelled yet"}, None, "inbox", None)])
        labelled = store.progress().labelled
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "recipe.labels.sqlite", "validation": "valid.jsonl"},
                          train={"epochs": 1, "batch_size": 8}, export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["validate", str(recipe)]) == 0
    assert main(["run", str(recipe), "-q"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    exported = [json.loads(line) for line in (run / "data" / "train.jsonl").read_text().splitlines()]
    distinct = {json.loads(line)["text"] for line in (tmp_path / "train.jsonl").read_text().splitlines()}
    assert len(exported) == labelled == len(distinct)  # the store keeps one item per distinct text
    assert {row["text"] for row in exported} == distinct and {"text", "intent"} <= set(exported[0])
    assert "not labelled yet" not in {row["text"] for row in exported}
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["data"]["train"]["path"] == str(run / "data" / "train.jsonl")


def test_a_store_with_nothing_labelled_is_a_data_error(tmp_path, write_recipe, capsys):
    write_intent_data(tmp_path, per_label=4)
    with LabelStore(tmp_path / "empty.labels.sqlite") as store:
        store.add_items([({"text": "hello"}, None, "inbox", None)])
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "empty.labels.sqlite"}, export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe), "-q"]) == 2
    assert "empty.labels.sqlite: the labelling store has no labelled items yet" in capsys.readouterr().err
