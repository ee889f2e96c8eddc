"""Task.augment of the classification and ner tasks, through the public contract and the engine."""

from __future__ import annotations

import json
import random

import pytest

from assistant_builder.cli.main import main
from assistant_builder.contracts import TaskData
from assistant_builder.engine.augmenting import augment_training
from assistant_builder.recipe.schema import AugmentSection, DataSection, TrainSection
from assistant_builder.registry import build_registry
from assistant_builder.testing import write_intent_data
from assistant_builder.toolkit.tags import spans_from_tags

CONLL = """\
fly O
to O
new B-loc
york I-loc
with O
anna B-per

meet O
bob B-per
in O
paris B-loc

rome B-loc
at O
noon B-time

call O
carla B-per
about O
berlin B-loc
"""


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def ner_data(registry, tmp_path):
    (tmp_path / "train.conll").write_text(CONLL)
    (tmp_path / "valid.conll").write_text(CONLL)
    task = registry.create("task", "ner")
    data = task.load_data(DataSection(train=tmp_path / "train.conll", validation=tmp_path / "valid.conll"), task.Options())
    return task, data


def test_augmentation_is_off_by_default(registry, tmp_path):
    assert TrainSection().augment.copies == 0
    task, data = ner_data(registry, tmp_path)
    same, added = augment_training(task, data, TrainSection().augment, 42)
    assert same is data and added == 0


def test_ner_mention_replacement_preserves_entity_types(registry, tmp_path):
    task, data = ner_data(registry, tmp_path)
    settings = AugmentSection(copies=3, probability=1.0, token_replacement=False)
    added = task.augment(data.train, settings, random.Random(0))
    assert added and len(added) <= 3 * len(data.train)
    originals = {e.tokens for e in data.train}
    mentions = {(tuple(e.tokens[s:t]), k) for e in data.train for s, t, k in spans_from_tags(e.tags)}
    for example in added:
        assert example.tokens not in originals and len(example.tokens) == len(example.tags) == len(example.offsets)
        assert example.text == " ".join(example.tokens) and "(augmented" in example.source
        for start, end, entity_type in spans_from_tags(example.tags):
            assert (tuple(example.tokens[start:end]), entity_type) in mentions
    # each augmented sentence has the entity types, in order, of some training sentence
    type_sequences = {tuple(k for _, _, k in spans_from_tags(e.tags)) for e in data.train}
    assert all(tuple(k for _, _, k in spans_from_tags(e.tags)) in type_sequences for e in added)


def test_ner_augmentation_is_deterministic_and_leaves_validation_alone(registry, tmp_path):
    task, data = ner_data(registry, tmp_path)
    settings = AugmentSection(copies=2, probability=0.5)
    first, n1 = augment_training(task, data, settings, 42)
    second, n2 = augment_training(task, data, settings, 42)
    assert n1 == n2 > 0 and first.train == second.train
    assert first.validation == data.validation and len(first.train) == len(data.train) + n1
    other, _ = augment_training(task, data, settings.model_copy(update={"seed": 1}), 42)
    assert other.train != first.train


def test_classification_ops_keep_labels_and_words(registry, tmp_path):
    write_intent_data(tmp_path, per_label=6)
    task = registry.create("task", "classification")
    options = task.Options(label_field="intent")
    data = task.load_data(DataSection(train=tmp_path / "train.jsonl", validation=tmp_path / "valid.jsonl"), options)
    settings = AugmentSection(copies=2, probability=0.3, deletion=False, swap=True, span_mask=False)
    added = task.augment(data.train, settings, random.Random(3))
    by_source = {e.source: e for e in data.train}
    assert added
    for example in added:
        source = by_source[example.source.rsplit(" (augmented", 1)[0]]
        assert example.label == source.label and sorted(example.text.split()) == sorted(source.text.split())
    assert task.augment(data.train, settings.model_copy(update={"swap": False}), random.Random(3)) == []
    masked = task.augment(data.train, AugmentSection(copies=1, deletion=False, swap=False, span_mask=True), random.Random(0))
    assert masked and all("[MASK]" in e.text for e in masked)


def test_a_run_records_the_augmented_examples(tmp_path, write_recipe, capsys):
    write_intent_data(tmp_path, per_label=8)
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "train.jsonl", "validation": "valid.jsonl"},
                          train={"epochs": 1, "batch_size": 8, "augment": {"copies": 1, "probability": 0.3}},
                          export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe), "-q"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    provenance = json.loads((run / "provenance.json").read_text())
    assert summary["augmented_examples"] == provenance["augmented_examples"] > 0
    predictions = (run / "validation_predictions.jsonl").read_text().splitlines()
    assert len(predictions) == len((tmp_path / "valid.jsonl").read_text().splitlines())  # validation untouched
