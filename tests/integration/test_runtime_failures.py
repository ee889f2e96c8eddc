"""Runtime failures give one clear message and keep what was written: out of memory, disk full."""

from __future__ import annotations

import errno

import pytest
import torch

from assistant_builder.cli.main import main
from assistant_builder.testing import write_intent_data


@pytest.fixture
def recipe(tmp_path, write_recipe):
    write_intent_data(tmp_path, per_label=8, seed=4)
    return write_recipe(
        tmp_path,
        task={"type": "classification", "options": {"label_field": "intent"}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"epochs": 2, "batch_size": 4, "early_stopping_patience": 0},
        export={"formats": []},
        output={"runs_dir": "runs"},
    )


def test_out_of_memory_suggests_smaller_batches(recipe, capsys, monkeypatch):
    from assistant_builder_tasks.classification import model

    def exhausted(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(model.SequenceClassifier, "forward", exhausted)
    assert main(["run", str(recipe), "-q"]) == 1
    err = capsys.readouterr().err
    assert "out of CPU memory at step 1 (batch of 4" in err
    assert "lower train.batch_size (now 4)" in err and "gradient_accumulation_steps" in err


def test_disk_full_while_checkpointing_leaves_no_partial_file(recipe, tmp_path, capsys, monkeypatch):
    from assistant_builder_trainers import checkpoints

    real_save = checkpoints.torch.save

    def full_disk(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)  # bytes hit the temporary file, then the disk "fills up"
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    assert main(["run", str(recipe), "-q"]) == 1
    err = capsys.readouterr().err
    assert "disk full while writing a checkpoint" in err and "resume" in err
    (run_dir,) = (tmp_path / "runs").iterdir()
    leftovers = [p.name for p in (run_dir / "checkpoints").rglob("*") if p.is_file()]
    assert not [name for name in leftovers if name.endswith(".tmp")], leftovers
    assert "optimizer.pt" not in leftovers and "state.json" not in leftovers


def test_strict_plugins_fails_on_a_broken_plugin(recipe, capsys, monkeypatch):
    from assistant_builder import plugins

    monkeypatch.setenv("ASSISTANT_BUILDER_STRICT_PLUGINS", "")  # main() sets it; monkeypatch restores it
    monkeypatch.setenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", "1")
    monkeypatch.setitem(plugins.DEFAULT_PLUGINS, "broken", "assistant_builder_no_such_module")
    assert main(["validate", str(recipe)]) == 0  # reported as a warning, the recipe does not need it
    assert "plugin 'broken'" in capsys.readouterr().err
    assert main(["--strict-plugins", "validate", str(recipe)]) == 2
    assert "strict mode: plugins failed to load: 'broken'" in capsys.readouterr().err


def test_block_plugins_flag_hides_a_component(recipe, capsys, monkeypatch):
    monkeypatch.setenv("ASSISTANT_BUILDER_BLOCK_PLUGINS", "")  # main() sets it; monkeypatch restores it
    assert main(["--block-plugins", "full", "validate", str(recipe)]) == 2
    assert "unknown trainer 'full'" in capsys.readouterr().err
