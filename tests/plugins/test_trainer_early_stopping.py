"""Early stopping in the shared training loop: epochs inside the learning-rate warmup do not count."""

from __future__ import annotations

import json
from pathlib import Path

from assistant_builder.cli.main import main
from assistant_builder.testing import write_intent_data


def scripted_run(tmp_path: Path, write_recipe, scripted_accuracy, scores: list[float], **train) -> dict:  # type: ignore[no-untyped-def]
    """A run whose validation accuracy per epoch is ``scores`` (then its last value); returns metrics.json."""
    scripted_accuracy(scores)
    write_intent_data(tmp_path, per_label=6, seed=2)
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "train.jsonl", "validation": "valid.jsonl"},
                          train={"batch_size": 8, "min_steps": 0, "early_stopping_min_per_label": 0, **train},
                          export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe), "-q"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    return json.loads((run_dir / "metrics.json").read_text())


def test_a_plateau_inside_the_warmup_does_not_stop_the_run(tmp_path, write_recipe, scripted_accuracy):
    # 8 epochs, warmup over half the steps: epochs 1-4 end inside (or at the end of) the warmup
    metrics = scripted_run(tmp_path, write_recipe, scripted_accuracy, [0.5, 0.4], epochs=8, warmup_ratio=0.5,
                           early_stopping_patience=1)
    assert metrics["stopped_early"] is True
    assert metrics["epochs_run"] == 5  # the first epoch after the warmup without improvement stops it
    assert metrics["best_epoch"] == 1


def test_without_warmup_the_plateau_stops_the_run_at_once(tmp_path, write_recipe, scripted_accuracy):
    metrics = scripted_run(tmp_path, write_recipe, scripted_accuracy, [0.5, 0.4], epochs=8, warmup_ratio=0.0,
                           early_stopping_patience=1)
    assert metrics["stopped_early"] is True and metrics["epochs_run"] == 2
