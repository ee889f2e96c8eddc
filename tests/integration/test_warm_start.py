"""Warm-start updates (``builder run RECIPE --from RUN``) on the tiny model: new labels extend the
head, the replay sample is seeded and recorded, a forgetting update is refused and not exported,
an interrupted update resumes from the same parent, and a parent that cannot be continued is said so."""

from __future__ import annotations

import gzip
import json
import os
import signal
from pathlib import Path

import pytest

from assistant_builder.callbacks import Callback, StepEnded
from assistant_builder.cli import main as cli_main
from assistant_builder.testing import write_intent_data


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def parent(tmp_path_factory, tiny_model_dir):
    """A finished run on alarm + weather; the folder also holds train_all.jsonl / valid_all.jsonl with music added."""
    from assistant_builder.testing import recipe_toml

    root = tmp_path_factory.mktemp("warm")
    write_intent_data(root, per_label=24, seed=5)
    train, valid = _rows(root / "train.jsonl"), _rows(root / "valid.jsonl")
    more = root / "more"
    more.mkdir()
    write_intent_data(more, per_label=24, seed=11)  # further alarm / weather requests the parent has not seen
    seen = {r["text"] for r in train + valid}
    extra = [r for r in _rows(more / "train.jsonl") if r["intent"] != "music" and r["text"] not in seen]
    _write(root / "train_all.jsonl", train + extra)
    _write(root / "valid_all.jsonl", valid)
    _write(root / "train.jsonl", [r for r in train if r["intent"] != "music"])
    _write(root / "valid.jsonl", [r for r in valid if r["intent"] != "music"])

    def recipe(name: str, train_file: str, valid_file: str, **train_options) -> Path:
        path = root / name
        path.write_text(recipe_toml({
            "recipe_version": 1, "name": "warm", "model": {"base": str(tiny_model_dir), "max_length": 32},
            "task": {"type": "classification", "options": {"label_field": "intent"}},
            "data": {"train": train_file, "validation": valid_file},
            "train": {"epochs": 4, "batch_size": 8, "learning_rate": 2e-3, "head_learning_rate": 5e-3, "min_steps": 0,
                      "freeze_word_embeddings": False, "early_stopping_patience": 0, "seed": 3, **train_options},
            # max_forgetting: 2 of 16 examples; learning_rate_scale 1: the tiny model needs the full rate to learn in 3 epochs
            "update": {"epochs": 3, "min_replay": 8, "replay": 2.0, "max_forgetting": 0.13, "learning_rate_scale": 1.0},
            "export": {"formats": ["onnx"]}, "output": {"runs_dir": "runs"},
        }))
        return path

    assert cli_main.main(["run", str(recipe("parent.toml", "train.jsonl", "valid.jsonl")), "-q"]) == 0
    (run,) = (root / "runs").iterdir()
    return {"root": root, "run": run, "recipe": recipe, "extra": extra}


def _new_run(root: Path, before: set[Path]) -> Path:
    (run,) = set((root / "runs").iterdir()) - before
    return run


def test_an_update_learns_a_new_label_from_the_parent_and_records_what_it_did(parent, capsys):
    root, parent_run = parent["root"], parent["run"]
    sets = json.loads(gzip.decompress((parent_run / "data" / "example_sets.json.gz").read_bytes()))
    assert sets["labels"] == ["alarm", "weather"] and len(sets["train"]) == 48 and sets["train"][0].keys() == {"payload", "gold"}
    update_recipe = parent["recipe"]("update.toml", "train_all.jsonl", "valid_all.jsonl")
    before = set((root / "runs").iterdir())
    assert cli_main.main(["run", str(update_recipe), "--from", str(parent_run), "-q"]) == 0
    run = _new_run(root, before)
    summary = json.loads((run / "summary.json").read_text())
    update = summary["update"]
    assert update["kept"] and update["parent"] == str(parent_run) and update["new_labels"] == ["music"]
    held, new = update["held_out"], 24 + len(parent["extra"])
    # holdout 0.2 of the new alarm / weather examples (whole inputs), never a music one: the parent knows no music
    assert update["new_examples"] == new and 1 <= held <= len(parent["extra"]) // 5 and update["new_trained"] == new - held
    assert update["replayed"] == min(48, 2 * (new - held))  # replay 2.0 per new training example, at most all the parent's
    assert update["training_examples"] == new - held + update["replayed"]
    config = json.loads((run / "model" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(3)] == ["alarm", "weather", "music"]  # the parent's class ids kept
    assert summary["metrics"]["accuracy"] >= 0.8, summary["metrics"]  # music is learned (a third of validation)
    record = json.loads((run / "update.json").read_text())
    gate = record["gate"]
    # the held-out check ran on both models, over the held-out alarm / weather requests
    held_out = gate["held_out_new"]
    assert gate["passed"] and held_out["before"] is not None and held_out["after"] is not None
    assert held_out["wins"] + held_out["losses"] <= held and 0.0 <= held_out["p_value"] <= 1.0
    assert gate["parent_validation"]["before"] == json.loads((parent_run / "metrics.json").read_text())["metrics"]["accuracy"]
    assert len(record["plan"]["new_inputs"]) == new - held and len(record["plan"]["held_out_inputs"]) == held
    trained = {r["text"] for r in record["plan"]["new_inputs"]}
    assert not trained & {r["text"] for r in record["plan"]["held_out_inputs"]}  # no held-out input trains, in any copy
    assert {r["text"] for r in record["plan"]["held_out_inputs"]} <= {r["text"] for r in parent["extra"]}  # no music held out
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["parent"]["run_dir"] == str(parent_run) and provenance["update"]["seed"] == 3
    assert (run / "exports" / "onnx" / "manifest.json").is_file()
    known = json.loads(gzip.decompress((run / "data" / "example_sets.json.gz").read_bytes()))
    assert known["labels"] == ["alarm", "weather", "music"] and len(known["train"]) == 48 + new - held  # all it has learned, not only the replay

    # the next update from this one finds only the held-out examples new
    again = set((root / "runs").iterdir())
    assert cli_main.main(["run", str(update_recipe), "--from", str(run), "-q"]) == 0
    second = json.loads((_new_run(root, again) / "summary.json").read_text())["update"]
    assert second["new_examples"] == held and second["new_labels"] == [] and second["held_out"] == 0


def test_an_update_that_forgets_is_refused_and_not_exported(parent, capsys):
    root = parent["root"]
    # a learning rate that wrecks the weights: the parent's validation accuracy falls far below the tolerance
    recipe = parent["recipe"]("forget.toml", "train_all.jsonl", "valid_all.jsonl", learning_rate=0.5, head_learning_rate=0.5)
    before = set((root / "runs").iterdir())
    code = cli_main.main(["run", str(recipe), "--from", str(parent["run"]), "-q", "update.max_forgetting=0.0",
                          "update.learning_rate_scale=0.5"])
    err = capsys.readouterr().err
    run = _new_run(root, before)
    assert code == 3 and "update refused" in err and "it forgot" in err, err
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [e["learning_rate"] for e in steps if e["event"] == "step"]
    assert rates and max(rates) <= 0.25 + 1e-9  # the update trains at learning_rate_scale x the recipe's rates
    assert not (run / "exports").exists()
    gate = json.loads((run / "update.json").read_text())["gate"]
    assert not gate["passed"] and gate["parent_validation"]["forgetting"] > 0
    from assistant_builder.engine.warm_start import refused_update

    assert "it forgot" in refused_update(run)


class KillAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step, self.sent = step, False

    def on_step_end(self, event: StepEnded) -> None:
        if event.step >= self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def test_an_interrupted_update_resumes_from_the_same_parent(parent, capsys, monkeypatch):
    from assistant_builder.cli import progress

    root = parent["root"]
    recipe = parent["recipe"]("resume.toml", "train_all.jsonl", "valid_all.jsonl")
    killer = KillAtStep(3)

    class WithKiller(progress.ConsoleProgress):  # type: ignore[misc, valid-type]
        def on_step_end(self, event):
            super().on_step_end(event)
            killer.on_step_end(event)

    monkeypatch.setattr(progress, "ConsoleProgress", WithKiller)
    before = set((root / "runs").iterdir())
    assert cli_main.main(["run", str(recipe), "--from", str(parent["run"]), "-q"]) == 130
    run = _new_run(root, before)
    assert json.loads((run / "update.json").read_text())["parent"] == str(parent["run"])
    monkeypatch.undo()
    assert cli_main.main(["run", "--resume", str(run), "-q"]) == 0
    update = json.loads((run / "summary.json").read_text())["update"]
    assert update["kept"] and update["parent"] == str(parent["run"]) and update["new_labels"] == ["music"]


def test_a_parent_that_cannot_be_continued_is_refused_before_training(parent, tmp_path, capsys):
    recipe = parent["recipe"]("bad.toml", "train_all.jsonl", "valid_all.jsonl")
    assert cli_main.main(["run", str(recipe), "--from", str(tmp_path), "-q"]) != 0
    err = capsys.readouterr().err
    assert "--from" in err and "not a finished run" in err, err
    old = tmp_path / "old-run"
    old.mkdir()
    (old / "model").mkdir()
    (old / "summary.json").write_text(json.dumps({"task": "classification"}))
    assert cli_main.main(["run", str(recipe), "--from", str(old), "-q"]) != 0
    assert "has no record of what it trained on" in capsys.readouterr().err
    (old / "summary.json").write_text(json.dumps({"task": "ner"}))
    assert cli_main.main(["run", str(recipe), "--from", str(old), "-q"]) != 0
    assert "is a 'ner' run" in capsys.readouterr().err


def test_the_head_keeps_the_parents_rows_and_starts_new_ones_from_their_examples(parent, tiny_model_dir):
    """Before any training: the old rows as they were, the new row a prototype at the old rows' mean length."""
    import torch

    from assistant_builder.contracts import StoreRecord
    from assistant_builder.registry import build_registry
    from assistant_builder.tokenization import load_tokenizer

    task = build_registry().create("task", "classification")
    options = task.Options(label_field="intent")
    labels = ["alarm", "weather", "music"]
    rows = _rows(parent["root"] / "train_all.jsonl")
    examples = [task.from_store(StoreRecord({"text": r["text"]}, r["intent"]), labels, options) for r in rows]
    features = task.encode(examples, load_tokenizer(parent["run"] / "model", 32), labels, options, 32)
    old = task.load_model(parent["run"] / "model").classifier
    model = task.warm_start_model(parent["run"] / "model", labels[:2], labels, options, features)
    head = model.classifier
    assert head.out_features == 3 and torch.equal(head.weight[:2], old.weight) and torch.equal(head.bias[:2], old.bias)
    assert torch.isclose(head.weight[2].norm(), old.weight.norm(dim=1).mean(), rtol=1e-4)
    assert not torch.equal(head.weight[2], torch.zeros_like(head.weight[2]))
    with pytest.raises(ValueError, match="start with the parent's"):
        task.warm_start_model(parent["run"] / "model", labels[:2], ["weather", "alarm", "music"], options, features)
