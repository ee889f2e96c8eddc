"""Data-parallel training with two CPU processes (torchrun, gloo): disjoint shards, rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from assistant_builder.testing import write_intent_data
from assistant_builder_trainers.loop import epoch_batches


def test_ranks_get_disjoint_shards_of_equal_size():
    lengths = [3 + (i * 7) % 40 for i in range(103)]
    shards = [epoch_batches(lengths, 8, seed=5, epoch=1, group_by_length=True, rank=r, world=2) for r in (0, 1)]
    seen = [{i for batch in shard for i in batch} for shard in shards]
    assert not seen[0] & seen[1]
    assert len(shards[0]) == len(shards[1]) == 13 // 2
    assert len(seen[0] | seen[1]) >= 103 - 2 * 8  # at most one uneven batch per rank dropped
    assert epoch_batches(lengths, 8, 5, 1, True, 0, 2) == shards[0]  # deterministic


@pytest.mark.slow
def test_two_process_torchrun_trains_once_and_only_rank0_writes(tmp_path, write_recipe):
    write_intent_data(tmp_path, per_label=16, seed=2)
    recipe = write_recipe(
        tmp_path,
        task={"type": "classification", "options": {"label_field": "intent"}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"epochs": 2, "batch_size": 4, "learning_rate": 3e-3, "early_stopping_patience": 0, "num_threads": 1},
        export={"formats": ["onnx"]},
        output={"runs_dir": "runs"},
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "assistant_builder.cli.main", "run", str(recipe), "-q"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Run finished:") == 1  # only rank 0 prints the summary
    (run_dir,) = list((tmp_path / "runs").iterdir())  # only rank 0 created a run directory
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "train_start")
    assert start["world_size"] == 2
    assert start["examples_per_epoch"] == 48  # 48 examples = 12 batches, 6 per rank, all used
    assert start["steps_per_epoch"] == 6  # each rank steps on its own half of the batches
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2
    assert json.loads((run_dir / "export_report.json").read_text())[0]["passed"]
    assert not list(tmp_path.glob("**/assistant-builder-rank1-*"))
