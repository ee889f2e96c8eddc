"""The built-in ``tensorboard`` logger: `[log] tensorboard = true` writes event files whose scalars
match the always-on metrics.jsonl; unknown loggers and bad options are recipe errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.errors import ConfigError
from assistant_builder.recipe import load_recipe
from assistant_builder.registry import build_registry
from assistant_builder.testing import write_intent_data

pytest.importorskip("tensorboardX", reason="the tensorboard extra is installed by `make test`")


def read_scalars(log_dir: Path) -> dict[str, dict[int, float]]:
    """Parse TensorBoard event files (TFRecord framing + Event protos) into tag -> {step: value}."""
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            record = data[offset + 12: offset + 12 + length]
            offset += 12 + length + 4
            event = Event.FromString(record)
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def write_project(tmp_path, write_recipe, log):
    write_intent_data(tmp_path, per_label=8, seed=3)
    return write_recipe(
        tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"epochs": 2, "batch_size": 8, "early_stopping_patience": 0}, export={"formats": []},
        output={"runs_dir": "runs"}, log=log,
    )


def test_tensorboard_scalars_match_the_jsonl_log(tmp_path, write_recipe):
    recipe = write_project(tmp_path, write_recipe, {"tensorboard": True})
    assert main(["run", str(recipe), "-q"]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    scalars = read_scalars(run_dir / "tensorboard")

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = {r["step"]: r for r in records if r["event"] == "step"}
    evals = [r for r in records if r["event"] == "eval"]
    assert steps and len(evals) == 2
    assert set(scalars["train/loss"]) == set(steps)
    for step, record in steps.items():
        assert scalars["train/loss"][step] == pytest.approx(record["loss"], rel=1e-5)
    for record in evals:
        assert scalars["validation/accuracy"][record["step"]] == pytest.approx(record["accuracy"], rel=1e-5)


def test_options_table_and_switched_off_logger(tmp_path, write_recipe):
    recipe = write_project(tmp_path, write_recipe, {"tensorboard": {"subdir": "tb", "flush_secs": 1}})
    assert main(["run", str(recipe), "-q"]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    assert read_scalars(run_dir / "tb")["train/loss"]
    assert not (run_dir / "tensorboard").exists()

    off = tmp_path / "off"
    off.mkdir()
    recipe = write_project(off, write_recipe, {"tensorboard": False})
    assert main(["run", str(recipe), "-q"]) == 0
    assert not list((off / "runs").glob("*/tensorboard"))


def test_unknown_logger_and_bad_options_are_located_recipe_errors(tmp_path, write_recipe):
    recipe = write_project(tmp_path, write_recipe, {"tensorbord": True, "tensorboard": {"flush_secs": 0, "colour": "red"}})
    with pytest.raises(ConfigError) as caught:
        load_recipe(recipe, registry=build_registry())
    text = str(caught.value)
    assert "log.tensorbord: unknown logger 'tensorbord'" in text and "did you mean 'tensorboard'" in text
    assert "log.tensorboard.flush_secs" in text and "log.tensorboard.colour" in text
