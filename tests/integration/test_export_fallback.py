"""A failed optional variant (int8) does not fail the run; a failed reference export (fp32) always does.

The int8 graph is broken on purpose (its classifier bias shifted, so it always answers one label),
through the real exporter, verification, bundle and runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant_builder.cli.main import main
from assistant_builder.runtime.bundle import read_bundle
from assistant_builder.runtime.predictor import load_predictor
from assistant_builder.testing import write_intent_data


def broken_copy(source: Path, target: Path) -> None:
    """``target``: the graph of ``source`` with its classifier bias pushed towards class 0."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    (bias,) = [init for init in model.graph.initializer if init.name.endswith("classifier.bias")]
    values = numpy_helper.to_array(bias).copy()
    values[0] += 50.0
    bias.CopyFrom(numpy_helper.from_array(values.astype(np.float32), bias.name))
    onnx.save(model, str(target))


@pytest.fixture
def broken_int8(monkeypatch):
    from assistant_builder_exporters import onnx_exporter

    def quantize(source, target, *args, **kwargs):
        broken_copy(Path(source), Path(target))

    monkeypatch.setattr(onnx_exporter, "_quantize", quantize)


@pytest.fixture
def recipe(tmp_path, write_recipe):
    write_intent_data(tmp_path, per_label=24, seed=1)

    def make(**export):
        return write_recipe(
            tmp_path,
            task={"type": "classification", "options": {"label_field": "intent"}},
            data={"train": "train.jsonl", "validation": "valid.jsonl"},
            train={"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "warmup_ratio": 0.0,
                   "early_stopping_patience": 0, "seed": 7},
            export={"formats": ["onnx"], "max_metric_drop": 0.05, "options": {"onnx": {"quantize": True}}, **export},
            output={"runs_dir": "runs"},
        )

    return make


def run_dir_of(tmp_path: Path) -> Path:
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def test_rejected_int8_keeps_the_run_green_and_the_bundle_on_fp32(recipe, tmp_path, broken_int8, capsys):
    assert main(["run", str(recipe()), "-q"]) == 0
    out = capsys.readouterr().out
    run_dir = run_dir_of(tmp_path)
    assert "export onnx/fp32:" in out and "— verified" in out
    assert "export onnx/int8:" in out and "— rejected" in out and "int8 rejected: accuracy dropped by" in out

    reports = {r["variant"]: r for r in json.loads((run_dir / "export_report.json").read_text())}
    assert reports["fp32"]["status"] == "verified" and reports["int8"]["status"] == "rejected"
    assert reports["int8"]["optional"] and not reports["int8"]["passed"]
    assert "rejected" in (run_dir / "export_report.md").read_text()

    bundle = read_bundle(run_dir)
    assert bundle.manifest["default_variant"] == "fp32"
    assert "accuracy dropped by" in bundle.manifest["rejected"]["int8"][0]
    assert bundle.choose_variant("auto") == "fp32"
    assert load_predictor(run_dir).variant == "fp32"

    capsys.readouterr()
    assert main(["predict", str(run_dir), "--variant", "int8", "wake me up at 7 am"]) == 2  # a model error, as for a missing variant
    err = capsys.readouterr().err
    assert "the 'int8' model was rejected when it was exported: accuracy dropped by" in err
    assert main(["predict", str(run_dir), "wake me up at 7 am"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["label"] == "alarm"


def test_on_failure_fail_makes_a_rejected_int8_fail_the_run(recipe, tmp_path, broken_int8, capsys):
    assert main(["run", str(recipe(on_failure="fail")), "-q"]) == 1
    err = capsys.readouterr().err
    assert "onnx/int8: accuracy dropped by" in err and 'on_failure = "fail"' in err
    reports = {r["variant"]: r for r in json.loads((run_dir_of(tmp_path) / "export_report.json").read_text())}
    assert reports["int8"]["status"] == "failed" and reports["fp32"]["status"] == "verified"


def test_a_broken_fp32_export_fails_the_run_even_with_fallback(recipe, tmp_path, monkeypatch, capsys):
    """The reference variant is never optional: when it disagrees with PyTorch, the run fails."""
    from assistant_builder_exporters.onnx_exporter import OnnxExporter

    real = OnnxExporter.load_runner

    def shifted(self, artifact, output_names):
        runner = real(self, artifact, output_names)
        if artifact.variant != "fp32":
            return runner
        return lambda batch: {k: v[:, ::-1].copy() for k, v in runner(batch).items()}  # labels reversed

    monkeypatch.setattr(OnnxExporter, "load_runner", shifted)
    assert main(["run", str(recipe()), "-q"]) == 1
    err = capsys.readouterr().err
    assert "onnx/fp32:" in err and "agree with PyTorch on" in err
    run_dir = run_dir_of(tmp_path)
    reports = {r["variant"]: r for r in json.loads((run_dir / "export_report.json").read_text())}
    assert reports["fp32"]["status"] == "failed"
    # builder predict refuses the run (whatever variant it would open), naming it and the failed check; the flag overrides
    for variant in ("auto", "fp32"):
        assert main(["predict", str(run_dir), "hello", "--variant", variant]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and str(run_dir) in captured.err and "fp32 model: " in captured.err
        assert "agree with PyTorch on" in captured.err and "--allow-unverified" in captured.err
    assert main(["predict", str(run_dir), "hello", "--allow-unverified"]) == 0
    captured = capsys.readouterr()
    assert "label" in json.loads(captured.out) and "warning:" in captured.err
