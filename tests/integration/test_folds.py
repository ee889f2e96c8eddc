"""`builder run RECIPE --folds K`: k-fold cross-validation on the training data, each fold a normal run."""

from __future__ import annotations

import json

from assistant_builder.cli.main import main
from assistant_builder.engine.folds import fold_splits
from assistant_builder.registry import build_registry
from assistant_builder.testing import write_intent_data
from assistant_builder_tasks.ner.data import TokenExample

TRAIN = {"epochs": 1, "batch_size": 8}


def intent_recipe(tmp_path, write_recipe, **data):
    write_intent_data(tmp_path, per_label=5)  # train.jsonl: 15 examples; valid.jsonl: 9
    return write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                        data={"train": "train.jsonl", **data}, train=TRAIN, output={"runs_dir": "runs"})


def test_folds_partition_the_training_data_and_summarise(tmp_path, write_recipe, capsys):
    recipe = intent_recipe(tmp_path, write_recipe)
    assert main(["run", str(recipe), "--folds", "3", "-q"]) == 0
    out = capsys.readouterr().out
    (cv_dir,) = (tmp_path / "runs").iterdir()
    assert cv_dir.name.startswith("test-cv-")
    summary = json.loads((cv_dir / "cv_summary.json").read_text())
    assert summary["folds"] == 3 and len(summary["per_fold"]) == 3 and summary["stratified"] is True
    assert summary["examples"] == 15 and summary["include_validation"] is False
    assert set(summary["mean"]) == set(summary["std"]) and "accuracy" in summary["mean"]
    accuracies = [f["metrics"]["accuracy"] for f in summary["per_fold"]]
    assert abs(summary["mean"]["accuracy"] - sum(accuracies) / 3) < 1e-9
    held = []
    for number in (1, 2, 3):
        fold_dir = cv_dir / f"fold-{number}"
        fold = json.loads((fold_dir / "fold.json").read_text())
        assert fold["train_examples"] + fold["validation_examples"] == 15
        held += fold["validation_indices"]
        labels = [json.loads(line)["label"] for line in (fold_dir / "validation_predictions.jsonl").read_text().splitlines()]
        assert len(labels) == fold["validation_examples"] == 5
        assert json.loads((fold_dir / "summary.json").read_text())["exports"] == []  # export off for folds
    assert sorted(held) == list(range(15))  # every example validated exactly once
    assert "| mean ± std |" in out and "cv_summary.json" in out
    assert (cv_dir / "cv_report.md").read_text().startswith("# Cross-validation: test")


def test_a_validation_file_is_refused_naming_the_key(tmp_path, write_recipe, capsys):
    recipe = intent_recipe(tmp_path, write_recipe, validation="valid.jsonl")
    assert main(["run", str(recipe), "--folds", "3"]) == 2
    err = capsys.readouterr().err
    assert "recipe.toml: data.validation: is set (valid.jsonl); --folds cross-validates on the training data only" in err
    assert "--folds-include-validation" in err
    assert not (tmp_path / "runs").exists()


def test_include_validation_pools_train_and_validation(tmp_path, write_recipe, capsys):
    recipe = intent_recipe(tmp_path, write_recipe, validation="valid.jsonl")
    assert main(["run", str(recipe), "--folds", "2", "--folds-include-validation", "-q"]) == 0
    (cv_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((cv_dir / "cv_summary.json").read_text())
    assert summary["examples"] == 24 and summary["include_validation"] is True and len(summary["per_fold"]) == 2


def test_ner_folds_are_plain_shuffled_folds():
    task = build_registry().create("task", "ner")
    examples = [TokenExample(("word", str(i)), ("O", "B-x")) for i in range(10)]
    splits, stratified = fold_splits(task, examples, 4, seed=0)
    assert stratified is False and len(splits) == 4
    assert sorted(i for split in splits for i in split) == list(range(10))
    assert fold_splits(task, examples, 4, seed=0) == (splits, False)  # seeded
