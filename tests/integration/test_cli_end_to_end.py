"""End to end through the CLI on a tiny random model: train -> evaluate -> both exports -> verify -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.testing import TOY_INTENTS as INTENTS
from assistant_builder.testing import write_intent_data as write_data

@pytest.fixture
def project(tmp_path, write_recipe):
    write_data(tmp_path, per_label=24, seed=1)

    def make(**train):
        return write_recipe(
            tmp_path,
            task={"type": "classification", "options": {"label_field": "intent"}},
            data={"train": "train.jsonl", "validation": "valid.jsonl"},
            train={"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
                   "early_stopping_patience": 0, "seed": 7, **train},
            export={"formats": ["onnx", "torchscript"], "max_metric_drop": 0.05, "min_agreement": 0.9,
                    "options": {"onnx": {"quantize": True}}},
            output={"runs_dir": "runs"},
        )

    return make


def only_run_dir(path: Path) -> Path:
    runs = sorted((path / "runs").iterdir())
    assert len(runs) == 1
    return runs[0]


def test_run_evaluate_export_verify_predict(project, tmp_path, capsys):
    recipe = project()
    assert main(["run", str(recipe), "-q"]) == 0
    out = capsys.readouterr().out
    run_dir = only_run_dir(tmp_path)
    assert f"Run finished: {run_dir}" in out

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["metrics"]["accuracy"] > 0.8, metrics["metrics"]  # the tiny model learns these patterns
    assert len(metrics["confusion_matrix"]) == 3 and set(metrics["per_label"]) == set(INTENTS)
    assert "# Classification report" in (run_dir / "report.md").read_text()

    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in steps if e["event"] == "eval"] == [1, 2, 3]
    assert any(e["event"] == "step" for e in steps)

    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["seed"] == 7 and set(provenance["data"]) == {"train", "validation"}
    assert len(provenance["data"]["train"]["sha256"]) == 64
    assert json.loads((run_dir / "recipe.resolved.json").read_text())["train"]["epochs"] == 3

    reports = json.loads((run_dir / "export_report.json").read_text())
    assert {(r["exporter"], r["variant"]) for r in reports} == {("onnx", "fp32"), ("onnx", "int8"), ("torchscript", "fp32")}
    for report in reports:
        assert report["passed"], report
        assert report["latency_batch1_ms_p50"] > 0 and report["size_bytes"] > 0
        if report["variant"] == "fp32":
            assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-3
    manifest = json.loads((run_dir / "exports" / "onnx" / "manifest.json").read_text())
    assert manifest["task"] == "classification" and manifest["labels"] == sorted(INTENTS)
    assert {"tokenizer.json", "labels.json", "model.onnx", "model.int8.onnx"} <= {p.name for p in (run_dir / "exports" / "onnx").iterdir()}

    # the fine-tuned encoder loads with plain transformers
    from transformers import AutoModel

    assert AutoModel.from_pretrained(run_dir / "model").config.id2label[0] == "alarm"

    assert main(["predict", str(run_dir), "--variant", "fp32", "set an alarm for 6", "will it rain in paris"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["label"] for line in lines] == ["alarm", "weather"]


def test_lora_trainer_end_to_end(project, tmp_path, capsys):
    recipe = project(trainer="lora", options={"r": 8, "alpha": 16}, learning_rate=1e-2, epochs=4)
    assert main(["run", str(recipe), "-q", "export.formats=[\"onnx\"]", "export.options={}"]) == 0
    run_dir = only_run_dir(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert metrics["accuracy"] > 0.6
    report = json.loads((run_dir / "export_report.json").read_text())[0]
    assert report["passed"] and report["agreement"] == 1.0  # adapters merged: plain model exported


def test_same_seed_gives_identical_results(project, tmp_path, capsys):
    recipe = project(epochs=1)
    for _ in range(2):
        assert main(["run", str(recipe), "-q", "export.formats=[]", "export.options={}"]) == 0
    first, second = sorted((tmp_path / "runs").iterdir())
    a = json.loads((first / "metrics.json").read_text())
    b = json.loads((second / "metrics.json").read_text())
    assert a["history"] == b["history"]
    assert (first / "model" / "model.safetensors").read_bytes() == (second / "model" / "model.safetensors").read_bytes()


def test_export_failing_threshold_fails_the_run(project, tmp_path, capsys):
    recipe = project(epochs=1)
    code = main(["run", str(recipe), "-q", "export.formats=[\"onnx\"]", "export.max_abs_diff=1e-12"])
    assert code == 1
    err = capsys.readouterr().err
    assert "export verification failed" in err and "export.max_abs_diff" in err
    run_dir = only_run_dir(tmp_path)
    assert "FAIL" in (run_dir / "export_report.md").read_text()
    assert (run_dir / "model" / "config.json").exists()  # the trained model is kept


def test_bad_data_gives_located_error_and_exit_2(project, tmp_path, capsys):
    recipe = project()
    (tmp_path / "train.jsonl").write_text('{"text": "hi", "intent": "a"}\n{"text": oops}\n')
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "train.jsonl:2: malformed JSON" in err
