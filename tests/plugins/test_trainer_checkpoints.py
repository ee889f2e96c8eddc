"""The trainers' weight files: in-place loading, the best epoch's weights at the end of a run, and freeing memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from assistant_builder.cli.main import main
from assistant_builder.errors import TrainingError
from assistant_builder.testing import write_intent_data
from assistant_builder_trainers import checkpoints
from assistant_builder_trainers.memory import release_free_memory


def small_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))


def test_load_weights_copies_into_the_existing_parameters(tmp_path: Path) -> None:
    source, target = small_model(1), small_model(2)
    checkpoints.save_weights(source, tmp_path / "w.safetensors")
    before = [id(p) for p in target.parameters()]
    checkpoints.load_weights(target, tmp_path / "w.safetensors")
    assert [id(p) for p in target.parameters()] == before  # in place: optimiser references stay valid
    for mine, theirs in zip(target.state_dict().values(), source.state_dict().values()):
        assert torch.equal(mine, theirs)


def test_load_weights_rejects_foreign_files(tmp_path: Path) -> None:
    bigger = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 1))
    checkpoints.save_weights(bigger, tmp_path / "more.safetensors")
    with pytest.raises(TrainingError, match="has weights the model lacks: \\['2.(bias|weight)'"):
        checkpoints.load_weights(small_model(0), tmp_path / "more.safetensors")
    checkpoints.save_weights(torch.nn.Sequential(torch.nn.Linear(5, 3)), tmp_path / "wide.safetensors")
    with pytest.raises(TrainingError, match=r"weight 0.weight has shape \[3, 5\], the model's is \[3, 4\]"):
        checkpoints.load_weights(small_model(0), tmp_path / "wide.safetensors")


def test_release_free_memory_runs_on_glibc() -> None:
    assert release_free_memory() is True  # this suite runs on Linux/glibc; elsewhere it is a documented no-op


@pytest.mark.parametrize("scores,best_epoch", [([0.9, 0.5, 0.4], 1), ([0.2, 0.3, 0.6], 3)])
def test_the_run_ends_with_the_best_epochs_weights(tmp_path: Path, write_recipe, scripted_accuracy,  # type: ignore[no-untyped-def]
                                                  scores: list[float], best_epoch: int) -> None:
    """Scripted validation scores pick the best epoch; the saved model must hold exactly its weights."""
    scripted_accuracy(scores)
    write_intent_data(tmp_path, per_label=6, seed=2)
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "train.jsonl", "validation": "valid.jsonl"},
                          train={"epochs": 3, "batch_size": 8, "learning_rate": 1e-2, "early_stopping_patience": 0},
                          export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe), "-q"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "checkpoints" / "best" / "best.json").read_text())["epoch"] == best_epoch
    with safe_open(str(run_dir / "checkpoints" / "best" / "model.safetensors"), "pt") as best, \
            safe_open(str(run_dir / "model" / "model.safetensors"), "pt") as final:
        assert torch.equal(best.get_tensor("classifier.weight"), final.get_tensor("classifier.weight"))
        assert torch.equal(best.get_tensor("encoder.encoder.layer.0.output.dense.weight"),
                           final.get_tensor("bert.encoder.layer.0.output.dense.weight"))
