"""``builder init --task TASK [DIR]``: a commented starter recipe and example data that validate and
run, for every installed task; existing files are never overwritten."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.contracts import Task
from assistant_builder.hookspecs import hookimpl
from assistant_builder.recipe.fields import describe
from assistant_builder.recipe.loader import read_toml
from assistant_builder.recipe.schema import Recipe
from assistant_builder_tasks.classification.task import ClassificationTask

REPO = Path(__file__).resolve().parents[2]
TASKS = ("classification", "ner", "qa")


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", "1")


def init(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["init", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("task", TASKS)
def test_init_writes_a_recipe_and_example_data_that_validate(task: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    code, out, err = init(capsys, "--task", task, str(project))
    assert code == 0, err
    recipe = project / "recipe.toml"
    data = read_toml(recipe)
    assert data["task"]["type"] == task and data["name"] == "project" and data["model"]["base"] == "minilm-l6"
    for key in ("train", "validation"):
        assert (project / data["data"][key]).is_file()
    assert (project / "data" / "README.md").read_text().count("examples only") == 1
    assert f"wrote {recipe}" in out and "replace the example data" in out
    text = recipe.read_text()
    assert text.startswith(f"# Starter recipe for the '{task}' task")
    assert "EXAMPLES ONLY" in text and f"builder run {recipe}" in text
    assert main(["validate", str(recipe)]) == 0, capsys.readouterr().err
    assert "ok" in capsys.readouterr().out


def test_every_schema_key_is_in_the_recipe_with_its_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert init(capsys, "--task", "classification", str(tmp_path))[0] == 0
    text = (tmp_path / "recipe.toml").read_text()
    for table in describe(Recipe):
        if table.table is None:
            continue
        assert f"\n[{table.key}]\n" in text
        for field in describe(table.table):
            if field.type != "table":
                assert f"\n{field.key} = " in text or f"\n# {field.key} = " in text, f"{table.key}.{field.key} is missing"
    assert "\n# epochs = 6\n" in text and "Integer, >= 0, <= 1000; default: 6." in text
    assert "\n[task.options]\n" in text and "\n# pooling = \"mean\"\n" in text
    assert "\n[export.options.onnx]\n" in text and "\n# quantize = false\n" in text
    assert "\n# tensorboard = true\n" in text  # loggers are offered, not switched on
    parsed = read_toml(tmp_path / "recipe.toml")
    assert parsed["train"] == {"options": {}} and parsed["log"] == {}  # everything else keeps its default


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("mine\n")
    code, out, err = init(capsys, "--task", "classification", str(tmp_path))
    assert code == 1 and out == ""
    assert f"refusing to overwrite {tmp_path / 'data' / 'train.jsonl'}" in err
    assert (tmp_path / "data" / "train.jsonl").read_text() == "mine\n"
    assert not (tmp_path / "recipe.toml").exists() and not (tmp_path / "data" / "valid.jsonl").exists()

    (tmp_path / "data" / "train.jsonl").unlink()
    assert init(capsys, "--task", "classification", str(tmp_path))[0] == 0
    code, _, err = init(capsys, "--task", "ner", str(tmp_path))
    assert code == 1 and f"refusing to overwrite {tmp_path / 'recipe.toml'}" in err


def test_unknown_task_lists_the_installed_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = init(capsys, "--task", "clasification", str(tmp_path))
    assert code == 2
    assert "unknown task 'clasification'; did you mean 'classification'?" in err and "qa" in err
    assert not any(tmp_path.iterdir())


def test_name_base_and_trainer_options(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "My Project!"
    assert init(capsys, "--task", "ner", "--base", str(tiny_model_dir), "--trainer", "lora", str(project))[0] == 0
    data = read_toml(project / "recipe.toml")
    assert data["name"] == "My-Project" and data["model"]["base"] == str(tiny_model_dir) and data["train"]["trainer"] == "lora"
    assert "\n# r = 16\n" in (project / "recipe.toml").read_text()  # the chosen trainer's options
    assert init(capsys, "--task", "qa", "--name", "faq-bot", str(tmp_path / "other"))[0] == 0
    assert read_toml(tmp_path / "other" / "recipe.toml")["name"] == "faq-bot"


class BareTask(ClassificationTask):
    name = "bare"
    sample_data = Task.sample_data  # type: ignore[assignment]


def test_a_task_without_sample_data_gets_a_recipe_only(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("bare_task_for_init_tests")
    module.register_tasks = hookimpl(lambda register: register(BareTask))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    fake = types.SimpleNamespace(name="bare", value=module.__name__, dist=types.SimpleNamespace(name="bare", version="1"))
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [fake] if kw.get("group") == "assistant_builder" else [])
    monkeypatch.delenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS")
    code, out, _ = init(capsys, "--task", "bare", str(tmp_path))
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.toml"]
    assert read_toml(tmp_path / "recipe.toml")["data"]["train"] == "data/train.jsonl"
    assert "has no sample data: put your training data at" in out


def test_init_imports_no_torch(tmp_path: Path) -> None:
    script = ("import contextlib, io, json, sys\n"
              "from assistant_builder.cli.main import main\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              f"    codes = [main(['init', '--task', t, {str(tmp_path)!r} + '/' + t]) for t in {TASKS!r}]\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'onnx', 'peft', 'sklearn'))\n"
              "print(json.dumps({'codes': codes, 'heavy': heavy}))\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"codes": [0, 0, 0], "heavy": []}


@pytest.mark.parametrize("task", ["classification", pytest.param("ner", marks=pytest.mark.slow), pytest.param("qa", marks=pytest.mark.slow)])
def test_the_starter_recipe_runs_with_the_tiny_model(task: str, tmp_path: Path, tiny_model_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / task
    assert init(capsys, "--task", task, "--base", str(tiny_model_dir), str(project))[0] == 0
    assert main(["run", "-q", str(project / "recipe.toml"), "train.epochs=1", "train.min_steps=0"]) == 0, capsys.readouterr().err
    [run_dir] = (project / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == task and {e["exporter"] for e in summary["exports"]} == {"onnx", "torchscript"}
