"""Interrupted runs: SIGTERM writes a checkpoint; --resume ends with exactly the uninterrupted weights."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from assistant_builder.callbacks import Callback, StepEnded
from assistant_builder.cli import main as cli_main

from assistant_builder.testing import write_intent_data as write_data


class KillAtStep(Callback):
    """Sends this process SIGTERM when training reaches ``step`` (the CLI's handler turns it into a stop)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.sent = False

    def on_step_end(self, event: StepEnded) -> None:
        if event.step >= self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def recipe(tmp_path, write_recipe):
    write_data(tmp_path, per_label=20, seed=3)
    return write_recipe(
        tmp_path,
        task={"type": "classification", "options": {"label_field": "intent", "dropout": 0.2}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"epochs": 3, "batch_size": 4, "learning_rate": 2e-3, "early_stopping_patience": 0, "seed": 11},
        export={"formats": []},
        output={"runs_dir": "runs"},
    )


def run_cli(args, extra_callbacks=(), monkeypatch=None):
    if extra_callbacks:
        from assistant_builder.cli import progress

        original = progress.ConsoleProgress

        class WithExtras(original):  # type: ignore[misc, valid-type]
            def on_step_end(self, event):
                super().on_step_end(event)
                for callback in extra_callbacks:
                    callback.on_step_end(event)

        monkeypatch.setattr(progress, "ConsoleProgress", WithExtras)
    return cli_main.main(args)


def test_sigterm_then_resume_matches_uninterrupted_run(recipe, tmp_path, capsys, monkeypatch):
    assert run_cli(["run", str(recipe), "-q"]) == 0
    (uninterrupted,) = sorted((tmp_path / "runs").iterdir())

    code = run_cli(["run", str(recipe), "-q"], [KillAtStep(20)], monkeypatch)  # mid-epoch 2 (15 steps per epoch)
    err = capsys.readouterr().err
    assert code == 130
    interrupted = next(p for p in sorted((tmp_path / "runs").iterdir()) if p != uninterrupted)
    assert f"builder run --resume {interrupted}" in err
    assert not (interrupted / "model").exists()
    state = json.loads(sorted((interrupted / "checkpoints").glob("step-*"))[-1].joinpath("state.json").read_text())
    assert state["epoch"] == 1 and 0 < state["batch_in_epoch"] < 15

    monkeypatch.undo()
    assert run_cli(["run", "--resume", str(interrupted), "-q"]) == 0
    a = json.loads((uninterrupted / "metrics.json").read_text())
    b = json.loads((interrupted / "metrics.json").read_text())
    assert a["history"] == b["history"]
    for name in ("model.safetensors", "config.json"):
        assert (uninterrupted / "model" / name).read_bytes() == (interrupted / "model" / name).read_bytes()


def test_corrupted_newest_checkpoint_falls_back_to_previous(recipe, tmp_path, capsys, monkeypatch):
    code = run_cli(["run", str(recipe), "-q", "train.checkpoint_every_steps=5"], [KillAtStep(12)], monkeypatch)
    assert code == 130
    (run_dir,) = sorted((tmp_path / "runs").iterdir())
    newest, previous = sorted((run_dir / "checkpoints").glob("step-*"), reverse=True)[:2]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated
    from assistant_builder_trainers import checkpoints

    assert not checkpoints.is_intact(newest) and checkpoints.is_intact(previous)
    with pytest.warns(UserWarning, match="corrupted"):
        assert checkpoints.latest_intact(run_dir / "checkpoints") == previous
    monkeypatch.undo()
    assert run_cli(["run", "--resume", str(run_dir), "-q"]) == 0
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 3


def test_resume_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert cli_main.main(["run", "--resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_nan_loss_stops_with_step_and_advice(recipe, tmp_path, capsys, monkeypatch):
    from assistant_builder_tasks.classification import model as classification_model

    original = classification_model.SequenceClassifier.forward
    calls = {"n": 0}

    def diverging(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        if "loss" in output and self.training:
            calls["n"] += 1
            if calls["n"] > 17:  # diverges in epoch 2, after the epoch-1 checkpoint
                output["loss"] = output["loss"] * float("nan")
        return output

    monkeypatch.setattr(classification_model.SequenceClassifier, "forward", diverging)
    code = cli_main.main(["run", str(recipe), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "loss became nan at step 20" in err.lower() and "lower train.learning_rate" in err
    (run_dir,) = sorted((tmp_path / "runs").iterdir())
    (checkpoint,) = sorted((run_dir / "checkpoints").glob("step-*"))
    assert checkpoint.name == "step-0000015"  # the last good one; nothing written after the NaN
