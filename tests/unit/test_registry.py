"""The registry: built-ins, validation on registration, isolation of broken plugins, env switches."""

from __future__ import annotations

import importlib.util
import json
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from assistant_builder import plugins
from assistant_builder.cli.main import main
from assistant_builder.contracts import ComponentOptions, Evaluation, Exporter, Task, TaskData, Trainer
from assistant_builder.errors import PluginError
from assistant_builder.hookspecs import hookimpl
from assistant_builder.plugins import make_plugin_manager
from assistant_builder.registry import build_registry

GHOST = "no_such_module_for_assistant_builder_tests"


def make_plugin(name: str, **hooks: Callable[..., None]) -> types.ModuleType:
    """A plugin module object named ``name`` implementing ``hooks`` (hook name -> function)."""
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def registering(*components: Any) -> Callable[..., None]:
    def hook(register: Callable[[Any], None]) -> None:
        for component in components:
            register(component)
    return hook


class StubTask(Task):
    name = "stub_task"
    labelling_kind = "text_class"
    primary_metric = "accuracy"
    output_names = ("logits",)

    def load_data(self, data: Any, options: Any) -> TaskData:
        return TaskData([], [], [])

    def encode(self, examples: Any, tokenizer: Any, labels: Any, options: Any, max_length: int) -> list[Any]:
        return []

    def build_model(self, base_model: Any, labels: Any, options: Any, train_features: Any = None) -> Any:
        return None

    def collate(self, features: Any, pad_token_id: int) -> dict[str, Any]:
        return {}

    def decode(self, outputs: Any, features: Any, examples: Any, labels: Any, options: Any) -> list[Any]:
        return []

    def evaluate(self, predictions: Any, examples: Any, labels: Any) -> Evaluation:
        return Evaluation({})

    def parse_input(self, raw: Any) -> Any:
        return raw


class OtherTask(StubTask):
    name = "other_task"


class StubTrainer(Trainer):
    name = "stub_trainer"

    def train(self, job: Any) -> Any:
        return None


class StubExporter(Exporter):
    name = "stub_exporter"

    class Options(ComponentOptions):
        level: int = 1

    def export(self, job: Any) -> list[Any]:
        return []

    def load_runner(self, artifact: Any, output_names: Any) -> Any:
        return None


def failure(registry: Any, plugin: str) -> Any:
    found = [f for f in registry.failures if f.name == plugin]
    assert len(found) == 1, f"expected one failure for {plugin!r}, got {registry.failures}"
    return found[0]


# --------------------------------------------------------------------------- built-ins


def test_builtin_task_and_trainers_present() -> None:
    registry = build_registry()
    assert "classification" in registry.names("task")
    assert {"full", "lora"} <= set(registry.names("trainer"))
    assert registry.get("task", "classification").plugin == "classification"
    assert isinstance(registry.create("trainer", "lora"), Trainer)


@pytest.mark.parametrize("name", ["onnx", "torchscript"])
def test_builtin_exporters_present(name: str) -> None:
    module = plugins.DEFAULT_PLUGINS[name]
    if importlib.util.find_spec(module.rpartition(".")[0]) is None or importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not written yet")
    registry = build_registry()
    assert name in registry.names("exporter"), registry.failures
    assert issubclass(registry.get("exporter", name).component, Exporter)


def test_components_attributed_to_their_plugin(register_plugin: Callable[..., Any]) -> None:
    registry = register_plugin(make_plugin("mine", register_tasks=registering(StubTask),
                                           register_trainers=registering(StubTrainer),
                                           register_exporters=registering(StubExporter)))
    assert {r.name for r in registry.by_plugin()["mine"]} == {"stub_task", "stub_trainer", "stub_exporter"}
    assert registry.get("exporter", "stub_exporter").component is StubExporter


# --------------------------------------------------------------------------- validation on registration


def test_duplicate_task_name_names_both_plugins(register_plugin: Callable[..., Any]) -> None:
    class Clash(StubTask):
        name = "classification"

    with pytest.raises(PluginError) as caught:
        register_plugin(make_plugin("clashing_plugin", register_tasks=registering(Clash)))
    message = caught.value.message
    assert "'classification'" in message
    assert "plugin 'classification'" in message and "plugin 'clashing_plugin'" in message
    assert "ASSISTANT_BUILDER_BLOCK_PLUGINS" in (caught.value.hint or "")


def test_duplicate_between_two_new_plugins(register_plugin: Callable[..., Any]) -> None:
    with pytest.raises(PluginError, match="'first'.*'second'|'second'.*'first'"):
        register_plugin(make_plugin("first", register_trainers=registering(StubTrainer)),
                        make_plugin("second", register_trainers=registering(StubTrainer)))


class Uppercase(StubTask):
    name = "MyTask"


class NoOptionsModel(StubTask):
    name = "no_options"
    Options = None  # type: ignore[assignment]


class OptionsNotPydantic(StubTask):
    name = "dict_options"
    Options = dict  # type: ignore[assignment]


class OptionsAllowExtra(StubTask):
    name = "lax_options"

    class Options(BaseModel):  # type: ignore[no-redef]
        x: int = 1


class NotATask:
    name = "not_a_task"


class MissingMethods(Task):
    name = "half_done"
    labelling_kind = "text_class"
    primary_metric = "accuracy"
    output_names = ("logits",)


# StubTask's implementation, minus primary_metric (which Task only annotates)
MissingTaskAttributes = type("MissingTaskAttributes", (Task,), {
    **{k: v for k, v in vars(StubTask).items() if not k.startswith("_") and k != "primary_metric"}, "name": "no_metric"})


@pytest.mark.parametrize(("component", "expected"), [
    (Uppercase, "lowercase"),
    (NoOptionsModel, "no pydantic Options"),
    (OptionsNotPydantic, "no pydantic Options"),
    (OptionsAllowExtra, "extra='forbid'"),
    (NotATask, "expected a subclass of Task"),
    (StubTrainer, "expected a subclass of Task"),
    (MissingMethods, "does not implement"),
    (MissingTaskAttributes, "does not set primary_metric"),
], ids=["uppercase", "options-none", "options-dict", "options-extra-allowed", "not-subclass", "wrong-kind", "abstract",
        "no-primary-metric"])
def test_invalid_component_recorded_as_failure_of_its_plugin(
    register_plugin: Callable[..., Any], component: Any, expected: str,
) -> None:
    registry = register_plugin(make_plugin("broken", register_tasks=registering(component)),
                               make_plugin("healthy", register_tasks=registering(OtherTask)))
    broken = failure(registry, "broken")
    assert expected in broken.error
    assert "plugin 'broken'" in broken.error
    assert broken.error.startswith("PluginError: ")
    # the other plugins still load
    assert {"classification", "other_task"} <= set(registry.names("task"))
    assert getattr(component, "name", None) not in registry.names("task")


def test_missing_abstract_methods_are_named(register_plugin: Callable[..., Any]) -> None:
    registry = register_plugin(make_plugin("broken", register_tasks=registering(MissingMethods)))
    error = failure(registry, "broken").error
    for method in ("collate", "decode", "encode", "evaluate", "load_data", "parse_input", "build_model"):
        assert method in error


def test_plugin_whose_hook_raises_is_isolated(register_plugin: Callable[..., Any]) -> None:
    def explode(register: Callable[[Any], None]) -> None:
        raise RuntimeError("boom in plugin")

    registry = register_plugin(make_plugin("exploding", register_trainers=explode),
                               make_plugin("fine", register_trainers=registering(StubTrainer)))
    broken = failure(registry, "exploding")
    assert broken.error == "RuntimeError: boom in plugin"
    assert "Traceback" in broken.traceback and "boom in plugin" in broken.traceback
    assert {"full", "lora", "stub_trainer"} <= set(registry.names("trainer"))


def test_get_unknown_name_lists_available_with_did_you_mean() -> None:
    registry = build_registry()
    with pytest.raises(PluginError) as caught:
        registry.get("task", "clasification")
    assert "unknown task 'clasification'" in caught.value.message
    assert "did you mean 'classification'?" in caught.value.message
    assert "available: classification" in caught.value.message
    with pytest.raises(PluginError, match="available: full, lora"):
        registry.get("trainer", "qlora_xyz")


# --------------------------------------------------------------------------- environment switches


def test_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_BUILDER_PLUGINS", "classification, full")
    manager = make_plugin_manager()
    assert set(manager.plugin_info) == {"classification", "full"}
    assert manager.load_failures == []  # plugins left out are not even imported
    assert build_registry(manager).names("trainer") == ["full"]


def test_block_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_BUILDER_BLOCK_PLUGINS", "lora,onnx,torchscript")
    manager = make_plugin_manager()
    assert {"classification", "full"} <= set(manager.plugin_info)
    assert not {"lora", "onnx", "torchscript"} & set(manager.plugin_info)
    assert not {f.name for f in manager.load_failures} & {"lora", "onnx", "torchscript"}


def test_block_wins_over_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_BUILDER_PLUGINS", "classification,lora")
    monkeypatch.setenv("ASSISTANT_BUILDER_BLOCK_PLUGINS", "lora")
    assert set(make_plugin_manager().plugin_info) == {"classification"}


@pytest.mark.parametrize("value", ["1", "true"])
def test_disable_entry_points_loads_only_default_plugins(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setattr(plugins, "DEFAULT_PLUGINS", {"classification": "assistant_builder_tasks.classification"})
    monkeypatch.setenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", value)
    manager = make_plugin_manager()
    assert set(manager.plugin_info) == {"classification"}
    assert manager.plugin_info["classification"].distribution == "assistant-builder"


def test_entry_points_used_when_not_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", raising=False)
    monkeypatch.setattr(plugins, "DEFAULT_PLUGINS", {})
    manager = make_plugin_manager()
    assert {"classification", "full", "lora"} <= set(manager.plugin_info)
    assert manager.plugin_info["full"].module == "assistant_builder_trainers.full"


def test_plugin_module_failing_to_import_is_recorded_and_listed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", "1")
    monkeypatch.setattr(plugins, "DEFAULT_PLUGINS", {"classification": "assistant_builder_tasks.classification", "ghost": GHOST})
    manager = make_plugin_manager()
    [ghost] = manager.load_failures
    assert ghost.name == "ghost" and ghost.distribution == "assistant-builder"
    assert ghost.error == f"ModuleNotFoundError: No module named '{GHOST}'"
    assert "Traceback" in ghost.traceback
    assert "classification" in manager.plugin_info  # the others still load
    registry = build_registry(manager)
    assert failure(registry, "ghost").error == ghost.error
    with pytest.raises(PluginError) as caught:
        registry.get("exporter", "ghost")
    assert "ghost" in (caught.value.hint or "") and "builder plugins" in (caught.value.hint or "")

    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert f"FAILED ghost (assistant-builder): ModuleNotFoundError: No module named '{GHOST}'" in out
    assert "Traceback" not in out
    assert main(["plugins", "--traceback"]) == 0
    assert "Traceback" in capsys.readouterr().out
    assert main(["plugins", "--json"]) == 0
    failed = json.loads(capsys.readouterr().out)["failed"]
    assert {"plugin": "ghost", "distribution": "assistant-builder", "error": ghost.error} in failed


def test_misspelled_hook_is_a_load_failure_not_a_crash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "typo_plugin_for_tests.py").write_text(
        "from assistant_builder.hookspecs import hookimpl\n\n@hookimpl\ndef register_task(register):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", "1")
    monkeypatch.setattr(plugins, "DEFAULT_PLUGINS", {"classification": "assistant_builder_tasks.classification",
                                                     "typo": "typo_plugin_for_tests"})
    manager = make_plugin_manager()
    [typo] = manager.load_failures
    assert typo.name == "typo"
    assert "register_task" in typo.error and "did you mean 'register_tasks'?" in typo.error
    assert manager.get_plugin("typo") is None
    assert "typo" not in manager.plugin_info
    assert build_registry(manager).names("task") == ["classification"]
