"""The generation task end to end on a tiny random Llama built in code: train -> answers in the report ->
ONNX export verified on generated answers -> torch-free answers; and what it refuses before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.conformance.tiny_causal_lm import make_tiny_causal_lm
from assistant_builder_tasks.generation.samples import write_samples


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


def generation_recipe(tmp_path: Path, write_recipe, tiny_lm: Path, *, epochs: int = 1, export: dict | None = None) -> Path:
    write_samples(tmp_path)
    return write_recipe(
        tmp_path, task={"type": "generation", "options": {"eval_samples": 3, "max_new_tokens": 6}},
        model={"base": str(tiny_lm), "max_length": 256}, data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"trainer": "lora", "epochs": epochs, "batch_size": 8, "seed": 3},
        export=export if export is not None else {"formats": ["onnx"]}, output={"runs_dir": "runs"})


def only_run(tmp_path: Path) -> Path:
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def test_run_reports_answers_exports_verified_and_predicts_torch_free(tmp_path, write_recipe, tiny_lm, capsys):
    recipe = generation_recipe(tmp_path, write_recipe, tiny_lm)
    assert main(["run", str(recipe), "-q"]) == 0
    run_dir = only_run(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"neg_loss", "loss", "perplexity", "token_f1", "rouge_l", "base_token_f1"} <= set(metrics["metrics"])
    samples = metrics["samples"]
    assert len(samples) == 3 and all(s["answer"] is not None and s["base_answer"] is not None for s in samples)
    assert "| prompt | reference | base model | fine-tuned | token F1 |" in (run_dir / "report.md").read_text()
    (report,) = json.loads((run_dir / "export_report.json").read_text())
    assert report["status"] == "verified" and report["metric"] == "token_f1" and report["agreement_unit"] == "answer words"
    assert report["agreement"] == 1.0
    (run_dir / "prompts.jsonl").write_text(json.dumps({"prompt": samples[0]["prompt"]}) + "\n")
    capsys.readouterr()
    assert main(["predict", str(run_dir), "--input", str(run_dir / "prompts.jsonl"), "--max-new-tokens", "4"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    answer = json.loads(line)
    assert isinstance(answer["completion"], str) and answer["tokens"] <= 4 and answer["finish_reason"] in ("eos", "length")


def test_an_export_whose_greedy_answers_differ_fails_the_run(tmp_path, write_recipe, tiny_lm, monkeypatch, capsys):
    from assistant_builder_exporters.onnx_exporter import OnnxExporter

    real = OnnxExporter.load_generator

    def shifted(self, artifact):  # every generated token one id off: a broken export
        generate = real(self, artifact)
        return lambda prompts, n: [[(t + 1) % 900 + 3 for t in answer] or [5] for answer in generate(prompts, n)]

    monkeypatch.setattr(OnnxExporter, "load_generator", shifted)
    recipe = generation_recipe(tmp_path, write_recipe, tiny_lm)
    assert main(["run", str(recipe), "-q"]) == 1
    (report,) = json.loads((only_run(tmp_path) / "export_report.json").read_text())
    assert report["status"] == "failed" and any("agree with PyTorch" in f for f in report["failures"])


def test_zero_epochs_evaluates_the_base_model_untouched(tmp_path, write_recipe, tiny_lm):
    recipe = generation_recipe(tmp_path, write_recipe, tiny_lm, epochs=0, export={"formats": []})
    assert main(["run", str(recipe), "-q"]) == 0
    metrics = json.loads((only_run(tmp_path) / "metrics.json").read_text())
    assert metrics["epochs_run"] == 0 and "token_f1" in metrics["metrics"] and "base_token_f1" not in metrics["metrics"]
    from safetensors.numpy import load_file

    saved, base = load_file(str(only_run(tmp_path) / "model" / "model.safetensors")), load_file(str(tiny_lm / "model.safetensors"))
    assert all((saved[k] == base[k]).all() for k in base)


def test_an_encoder_base_and_torchscript_are_refused_before_training(tmp_path, write_recipe, tiny_lm, tiny_model_dir, capsys):
    recipe = generation_recipe(tmp_path, write_recipe, tiny_lm, export={"formats": ["onnx", "torchscript"]})
    assert main(["run", str(recipe), "-q"]) == 2
    assert "'torchscript' cannot export a 'generation' model" in capsys.readouterr().err
    other = tmp_path / "encoder"
    other.mkdir()
    recipe = generation_recipe(other, write_recipe, tiny_model_dir, export={"formats": ["onnx"]})
    assert main(["run", str(recipe), "-q"]) == 2
    assert "needs a causal (decoder) language model" in capsys.readouterr().err
