"""Small-data defaults in a real run: train.min_steps raises the epochs, a tiny validation set
switches early stopping off, and the run says both in its stage lines."""

from __future__ import annotations

import json

from assistant_builder.cli.main import main
from assistant_builder.testing import write_intent_data


def test_min_steps_and_tiny_validation(tmp_path, write_recipe, capsys):
    write_intent_data(tmp_path, per_label=8)  # 24 training examples (3 steps of 8), 9 validation (3 per label)
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "train.jsonl", "validation": "valid.jsonl"},
                          train={"epochs": 1, "batch_size": 8, "min_steps": 12, "early_stopping_patience": 1},
                          export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe)]) == 0
    err = capsys.readouterr().err
    assert "• train settings: 1 epochs x 3 steps = 3 steps < train.min_steps 12: training 4 epochs (12 steps)" in err
    assert "• train settings: early stopping off: the validation data has 3.0 examples per label" in err
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 4 and metrics["stopped_early"] is False
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["train_adjustments"]) == 2
