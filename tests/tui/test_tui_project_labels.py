"""The Label screen's keys come from declared labels, else from the recipe's training data, then the store."""

from __future__ import annotations

from assistant_builder.registry import build_registry
from assistant_builder.testing import write_intent_data
from assistant_builder.tui.project import open_project
from assistant_builder.labelling.store import LabelStore


def test_labels_come_from_the_training_data_before_anything_is_labelled(tmp_path, write_recipe):
    write_intent_data(tmp_path, per_label=4, seed=0)
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "train.jsonl", "validation": "valid.jsonl"})
    project = open_project(recipe, build_registry())
    store = LabelStore(project.store_path)
    try:
        assert project.labels(store) == ["alarm", "music", "weather"]
    finally:
        store.close()


def test_labels_are_empty_without_data_or_declaration(tmp_path, write_recipe):
    recipe = write_recipe(tmp_path, task={"type": "classification"}, data={"train": "missing.jsonl"})
    project = open_project(recipe, build_registry())
    store = LabelStore(project.store_path)
    try:
        assert project.labels(store) == []
    finally:
        store.close()
