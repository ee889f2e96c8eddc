"""``builder plugins check``: the conformance suite from the command line, a table (or JSON) of
checks, exit code 1 on any failure."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.callbacks import Callback
from assistant_builder.cli.main import main
from assistant_builder.cli.plugins_check import COLUMNS
from assistant_builder.hookspecs import hookimpl
from assistant_builder_loggers.tensorboard import TensorBoardLogger
from assistant_builder_tasks.classification.task import ClassificationTask

REPO = Path(__file__).resolve().parents[2]
BUILTIN = {"classification", "ner", "qa", "generation", "full", "lora", "onnx", "torchscript", "tensorboard"}


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check the built-in plugins only: whatever else is installed here is not under test."""
    monkeypatch.setenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", "1")


def install(monkeypatch: pytest.MonkeyPatch, plugin: str, module: types.ModuleType | None) -> None:
    """Make ``module`` an installed plugin named ``plugin`` (an entry point of a fake distribution);
    ``None`` for a plugin whose module cannot be imported."""
    value = module.__name__ if module is not None else "no_such_module_for_plugins_check"
    if module is not None:
        monkeypatch.setitem(sys.modules, module.__name__, module)
    fake = types.SimpleNamespace(name=plugin, value=value, dist=types.SimpleNamespace(name=f"{plugin}-dist", version="0.0.1"))
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [fake] if kw.get("group") == "assistant_builder" else [])
    monkeypatch.delenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", raising=False)


def plugin_module(name: str, hook: str, component: type[Any]) -> types.ModuleType:
    module = types.ModuleType(name)
    setattr(module, hook, hookimpl(lambda register: register(component)))
    return module


def rows(out: str) -> list[dict[str, str]]:
    """Parse the table back into dicts (columns are padded with at least two spaces)."""
    lines = out.splitlines()
    header = lines[0]
    starts = [header.index(column) for column in COLUMNS]
    parsed = []
    for line in lines[1:]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])]
        parsed.append(dict(zip(COLUMNS, cells)))
    return parsed


def test_static_check_of_every_builtin_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "check", "--static"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[0].split() == list(COLUMNS)
    table = rows(out)
    assert {r["component"] for r in table} == BUILTIN
    assert {r["status"] for r in table} <= {"pass", "warn"}
    assert {r["check"] for r in table if r["component"] == "qa"} >= {"labelling_kind", "metrics", "outputs", "imports"}
    assert not any(r["check"] == "train" for r in table)  # --static: no functional checks
    assert out.rstrip().splitlines()[-1].startswith(f"{len(BUILTIN)} component(s), {len(table)} checks: ")


def test_functional_check_of_one_component_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "check", "--json", "torchscript"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert {r["component"] for r in report["results"]} == {"torchscript"}
    checks = {r["check"]: r for r in report["results"]}
    assert checks["other shapes"]["status"] == "pass" and checks["other shapes"]["kind"] == "exporter"
    assert checks["export"]["plugin"] == "torchscript"
    assert report["summary"]["failed"] == 0 and report["summary"]["components"] == 1
    assert all("traceback" not in r for r in report["results"])


def test_names_select_components_or_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "check", "--static", "lora", "onnx"]) == 0
    assert {r["component"] for r in rows(capsys.readouterr().out)} == {"lora", "onnx"}


def test_an_unknown_name_is_an_error_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "check", "torchscrpt"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "no installed plugin or component named 'torchscrpt'" in err and "did you mean 'torchscript'?" in err


class PicturesTask(ClassificationTask):
    name = "pictures"
    labelling_kind = "pictures"


def test_a_nonconforming_plugin_fails_with_exit_code_1(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, "pictures-plugin", plugin_module("pictures_plugin_for_tests", "register_tasks", PicturesTask))
    assert main(["plugins", "check", "--static", "pictures-plugin"]) == 1
    table = rows(capsys.readouterr().out)
    bad = [r for r in table if r["status"] == "fail"]
    assert [(r["component"], r["kind"], r["plugin"], r["check"]) for r in bad] == [("pictures", "task", "pictures-plugin", "labelling_kind")]
    assert "got 'pictures'" in bad[0]["detail"]

    assert main(["plugins", "check", "--static", "-q", "pictures"]) == 1
    quiet = {r["check"]: r["status"] for r in rows(capsys.readouterr().out)}  # -q: only what did not pass
    assert quiet["labelling_kind"] == "fail" and "pass" not in quiet.values() and "contract" not in quiet


def test_a_plugin_that_fails_to_load_is_a_failed_check(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, "ghost", None)
    assert main(["plugins", "check", "--static"]) == 1
    out, err = capsys.readouterr()
    [row] = [r for r in rows(out) if r["plugin"] == "ghost"]
    assert (row["check"], row["status"]) == ("load", "fail")
    assert "No module named 'no_such_module_for_plugins_check'" in row["detail"]


class BrokenLogger(TensorBoardLogger):
    name = "broken_logger"

    def create(self, run_dir: Path, options: Any) -> Callback:
        raise RuntimeError("cannot open the log")


def test_traceback_shows_the_plugins_traceback(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, "broken-logger", plugin_module("broken_logger_for_tests", "register_loggers", BrokenLogger))
    assert main(["plugins", "check", "--traceback", "broken_logger"]) == 1
    out = capsys.readouterr().out
    [row] = [r for r in rows(out) if r["check"] == "create"]
    assert row["status"] == "fail" and row["detail"].startswith("RuntimeError: cannot open the log (at unit/test_plugins_check_cli.py:")
    assert "--- logger 'broken_logger' (broken-logger): create" in out
    assert "Traceback (most recent call last)" in out and 'raise RuntimeError("cannot open the log")' in out


def test_without_torch_the_functional_checks_explain_what_to_install(capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant_builder.conformance as conformance

    monkeypatch.setattr(conformance, "torch_available", lambda: False)
    assert main(["plugins", "check"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "needs torch" in err and "pip install 'assistant-builder[train]'" in err and "--static" in err


def test_help_lists_the_check_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["plugins", "--help"])
    assert exit_info.value.code == 0
    assert "check" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["plugins", "check", "--help"])
    out = capsys.readouterr().out
    assert "--static" in out and "--json" in out and "NAME" in out


def test_plugins_listing_shows_loggers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    listed = {row["plugin"]: row for row in json.loads(capsys.readouterr().out)["plugins"]}
    assert listed["tensorboard"]["loggers"] == ["tensorboard"]
    assert main(["plugins"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tensorboard "))
    assert line.endswith("loggers: tensorboard")


def test_static_check_loads_no_torch() -> None:
    script = ("import contextlib, io, json, sys\n"
              "from assistant_builder.cli.main import main\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              "    code = main(['plugins', 'check', '--static', 'classification', 'onnx'])\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'onnx', 'peft'))\n"
              "print(json.dumps({'code': code, 'heavy': heavy}))\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"code": 0, "heavy": []}
