"""The conformance suite: the built-in components pass it; deliberately broken tasks, trainers,
exporters and loggers fail the checks they break, with a detail that says what is wrong."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ConfigDict

from assistant_builder.callbacks import Callback, CallbackList
from assistant_builder.conformance import check_registry, run_conformance
from assistant_builder.contracts import ComponentOptions, ExportedArtifact, Task
from assistant_builder.plugins import make_plugin_manager
from assistant_builder.registry import build_registry
from assistant_builder.testing import assert_conforms, conformance_tests
from assistant_builder_exporters.torchscript_exporter import TorchScriptExporter
from assistant_builder_loggers.tensorboard import TensorBoardLogger
from assistant_builder_tasks.classification.task import ClassificationTask
from assistant_builder_trainers.full import FullTrainer


def by_check(results: list[Any]) -> dict[str, Any]:
    return {r.check: r for r in results}


def failed(results: list[Any]) -> dict[str, str]:
    return {r.check: r.detail for r in results if r.status == "fail"}


# ------------------------------------------------------------------------------------------ built-ins


@pytest.fixture(scope="module")
def builtin_results(tiny_model_dir: Path) -> list[Any]:
    registry = build_registry(make_plugin_manager(entry_points=False))
    return check_registry(registry, model_dir=tiny_model_dir)


def test_builtin_components_pass(builtin_results: list[Any]) -> None:
    problems = [f"{r.kind} {r.component}: {r.check}: {r.detail}" for r in builtin_results if r.failed]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("component", "last_check"), [
    ("classification", "torch-free runtime"), ("ner", "torch-free runtime"), ("qa", "torch-free runtime"),
    ("full", "stop_event"), ("lora", "stop_event"), ("onnx", "other shapes"), ("torchscript", "other shapes"),
    ("tensorboard", "failed run"),
])
def test_builtin_components_get_their_functional_checks(builtin_results: list[Any], component: str, last_check: str) -> None:
    if component == "tensorboard" and importlib.util.find_spec("tensorboardX") is None:
        pytest.skip("tensorboardX is not installed (the tensorboard extra)")
    checks = by_check([r for r in builtin_results if r.component == component])
    assert {"contract", "name", "description", "options", "imports"} <= set(checks)
    assert checks[last_check].status == "pass", checks[last_check]
    assert all(r.status in ("pass", "warn") for r in checks.values()), [r for r in checks.values() if r.status not in ("pass", "warn")]


def test_task_round_trip_covers_every_step(builtin_results: list[Any]) -> None:
    checks = by_check([r for r in builtin_results if r.component == "qa"])
    for step in ("sample_data", "load_data", "encode", "build_model", "collate", "forward", "decode", "evaluate", "save/load"):
        assert checks[step].status == "pass", checks[step]
    assert "start_positions" in checks["collate"].detail


# ------------------------------------------------------------------------------------------ broken tasks


class LooseOptions(ComponentOptions):
    model_config = ConfigDict(extra="allow", frozen=True)


class BadAttributesTask(ClassificationTask):
    name = "bad_attributes"
    description = ""
    Options = LooseOptions  # type: ignore[assignment]
    labelling_kind = "pictures"
    primary_metric = "bleu"
    sequence_outputs = ("hidden",)
    data_formats = ("JSONL",)
    learning_rates = {"full": 2.0}


def test_bad_class_attributes_fail_their_checks() -> None:
    results = run_conformance(BadAttributesTask, functional=False)
    problems = failed(results)
    assert set(problems) == {"description", "options", "labelling_kind", "metrics", "outputs", "data formats",
                             "training defaults"}
    assert "'pictures'" in problems["labelling_kind"] and "text_class" in problems["labelling_kind"]
    assert "'bleu'" in problems["metrics"] and "accuracy" in problems["metrics"]
    assert "('hidden',)" in problems["outputs"] and "subset of output_names" in problems["outputs"]
    assert "extra='forbid'" in problems["options"] and "'allow'" in problems["options"]
    assert "['JSONL']" in problems["data formats"]
    assert "{'full': 2.0}" in problems["training defaults"] and "(0, 1]" in problems["training defaults"]


class NumpyScoreTask(ClassificationTask):
    name = "numpy_score"

    def decode(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return [{**p, "score": np.float32(p["score"])} for p in super().decode(*args, **kwargs)]


def test_predictions_that_are_not_json_fail_decode_and_skip_what_needs_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    checks = by_check(run_conformance(NumpyScoreTask, model_dir=tiny_model_dir, work_dir=tmp_path))
    assert checks["forward"].status == "pass"
    assert checks["decode"].status == "fail"
    assert "not JSON-serialisable" in checks["decode"].detail and "float32" in checks["decode"].detail
    assert checks["evaluate"].status == "skip" and "needs 'decode'" in checks["evaluate"].detail
    assert checks["save/load"].status == "skip"


class ForgetfulTask(ClassificationTask):
    """load_model builds a fresh model instead of reading the saved weights."""

    name = "forgetful"

    def load_model(self, directory: Path) -> Any:
        import torch

        from assistant_builder_tasks.classification.model import load_classifier

        model = load_classifier(directory)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.5)
        return model


def test_a_model_that_does_not_reload_fails_save_load(tiny_model_dir: Path, tmp_path: Path) -> None:
    checks = by_check(run_conformance(ForgetfulTask, model_dir=tiny_model_dir, work_dir=tmp_path))
    assert checks["save/load"].status == "fail"
    assert "differs by" in checks["save/load"].detail and "'logits'" in checks["save/load"].detail
    assert checks["evaluate"].status == "pass"


class NoSampleTask(ClassificationTask):
    name = "no_sample"
    sample_data = Task.sample_data  # type: ignore[assignment]


def test_a_task_without_sample_data_skips_the_round_trip() -> None:
    results = run_conformance(NoSampleTask)
    assert by_check(results)["round trip"].status == "skip"
    assert "sample_data()" in by_check(results)["round trip"].detail
    assert not failed(results)


class BrokenLossTask(ClassificationTask):
    """collate drops the labels: the model never gets targets, so there is no loss to train on."""

    name = "no_targets"

    def collate(self, features: Any, pad_token_id: int) -> dict[str, Any]:
        return {k: v for k, v in super().collate(features, pad_token_id).items() if k != "labels"}


def test_a_collate_without_targets_fails(tiny_model_dir: Path, tmp_path: Path) -> None:
    checks = by_check(run_conformance(BrokenLossTask, model_dir=tiny_model_dir, work_dir=tmp_path))
    assert checks["collate"].status == "fail" and "no targets" in checks["collate"].detail


HEAVY_MODULE = '''
import torch  # at module level: every torch-free path would load it

from assistant_builder_tasks.classification.task import ClassificationTask


class HeavyTask(ClassificationTask):
    name = "heavy"
'''

LAZY_TORCH_MODULE = '''
from assistant_builder_tasks.classification.task import ClassificationTask


class TorchDecodeTask(ClassificationTask):
    name = "torch_decode"

    def decode(self, outputs, features, examples, labels, options):
        import torch  # the runtime has no torch

        return super().decode(outputs, features, examples, labels, options)
'''


def write_module(directory: Path, name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(directory))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return __import__(name)


def test_a_module_that_imports_torch_fails_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = write_module(tmp_path, "conformance_heavy_task", HEAVY_MODULE, monkeypatch)
    checks = by_check(run_conformance(module.HeavyTask, functional=False))
    assert checks["imports"].status == "fail"
    assert "importing conformance_heavy_task loads torch" in checks["imports"].detail


def test_a_decode_that_needs_torch_fails_the_torch_free_replay(tiny_model_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    module = write_module(tmp_path, "conformance_torch_decode", LAZY_TORCH_MODULE, monkeypatch)
    checks = by_check(run_conformance(module.TorchDecodeTask, model_dir=tiny_model_dir, work_dir=tmp_path / "work"))
    assert checks["imports"].status == "pass" and checks["decode"].status == "pass"
    assert checks["torch-free runtime"].status == "fail"
    assert "decode without torch failed" in checks["torch-free runtime"].detail
    assert "'torch'" in checks["torch-free runtime"].detail


# ------------------------------------------------------------------------------------------ broken trainer


class DeafTrainer(FullTrainer):
    """Trains, but reports nothing and ignores stop_event."""

    name = "deaf"

    def train(self, job: Any) -> Any:
        import threading

        return super().train(dataclasses.replace(job, callbacks=CallbackList(), stop_event=threading.Event()))


def test_a_trainer_that_ignores_callbacks_and_stop_event_fails_both(tiny_model_dir: Path, tmp_path: Path) -> None:
    checks = by_check(run_conformance(DeafTrainer, model_dir=tiny_model_dir, work_dir=tmp_path))
    assert checks["train"].status == "pass" and checks["best metrics"].status == "pass"
    assert checks["callbacks"].status == "fail" and "on_train_start" in checks["callbacks"].detail
    assert checks["stop_event"].status == "fail" and "interrupted=True" in checks["stop_event"].detail


class IdleTrainer(FullTrainer):
    """Returns the model untouched."""

    name = "idle"

    def train(self, job: Any) -> Any:
        from assistant_builder.contracts import TrainingOutcome

        return TrainingOutcome(job.model.eval(), {}, 0, 1, 1, False, 0.0, interrupted=job.stop_event.is_set())


def test_a_trainer_that_does_not_train_fails(tiny_model_dir: Path, tmp_path: Path) -> None:
    checks = by_check(run_conformance(IdleTrainer, model_dir=tiny_model_dir, work_dir=tmp_path))
    assert checks["train"].status == "fail" and "changed no weight" in checks["train"].detail


# ------------------------------------------------------------------------------------------ broken exporters


class SkewedExporter(TorchScriptExporter):
    """Its runner adds 1 to every output."""

    name = "skewed"

    def load_runner(self, artifact: ExportedArtifact, output_names: Any) -> Any:
        runner = super().load_runner(artifact, output_names)
        return lambda batch: {name: value + 1.0 for name, value in runner(batch).items()}


class LostExporter(TorchScriptExporter):
    """Reports a file it never wrote."""

    name = "lost"

    def export(self, job: Any) -> list[ExportedArtifact]:
        return [ExportedArtifact(self.name, "fp32", job.output_dir / "nowhere.pt")]


def test_an_exporter_whose_runner_disagrees_fails_outputs(tiny_model_dir: Path, tmp_path: Path) -> None:
    checks = by_check(run_conformance(SkewedExporter, model_dir=tiny_model_dir, work_dir=tmp_path))
    assert checks["export"].status == "pass"
    assert checks["outputs"].status == "fail" and "differ from PyTorch by up to 1.00e+00" in checks["outputs"].detail
    assert checks["other shapes"].status == "fail"


def test_an_exporter_that_writes_nothing_fails_export(tiny_model_dir: Path, tmp_path: Path) -> None:
    checks = by_check(run_conformance(LostExporter, model_dir=tiny_model_dir, work_dir=tmp_path))
    assert checks["export"].status == "fail" and "nowhere.pt does not exist" in checks["export"].detail
    assert checks["outputs"].status == "skip"


# ------------------------------------------------------------------------------------------ broken logger, non-components


class LoudCallback(Callback):
    def on_eval_end(self, event: Any) -> None:
        raise KeyError("accuracy")


class LoudLogger(TensorBoardLogger):
    name = "loud"

    def create(self, run_dir: Path, options: Any) -> Callback:
        return LoudCallback()


def test_a_logger_whose_callback_raises_fails_events(tmp_path: Path) -> None:
    checks = by_check(run_conformance(LoudLogger, work_dir=tmp_path))
    assert checks["create"].status == "pass"
    assert checks["events"].status == "fail"
    assert checks["events"].detail.startswith("KeyError: 'accuracy' (at unit/test_conformance.py:")
    assert "in on_eval_end" in checks["events"].detail and checks["events"].traceback


def test_something_that_is_not_a_component_fails_contract() -> None:
    results = run_conformance(dict)
    assert [(r.check, r.status) for r in results] == [("contract", "fail")]
    assert "Task, Trainer, Exporter" in results[0].detail


# ------------------------------------------------------------------------------------------ pytest helpers


def test_assert_conforms_fails_the_test_with_every_problem() -> None:
    with pytest.raises(pytest.fail.Exception) as caught:
        assert_conforms(BadAttributesTask)
    message = str(caught.value)
    assert "BadAttributesTask does not conform" in message
    assert "task 'bad_attributes': labelling_kind: FAIL: expected one of" in message
    assert "metrics: FAIL" in message


test_conformance_helper = conformance_tests(TorchScriptExporter)


def test_conformance_tests_is_parametrised_over_components() -> None:
    marks = [m for m in test_conformance_helper.pytestmark if m.name == "parametrize"]  # type: ignore[attr-defined]
    assert marks and list(marks[0].args[1]) == [TorchScriptExporter]
    assert marks[0].kwargs["ids"] == ["torchscript"]


# ------------------------------------------------------------------------------------------ the suite's own reference task


def test_the_reference_task_trainers_and_exporters_are_checked_with_conforms(tiny_model_dir: Path, tmp_path: Path) -> None:
    from assistant_builder.conformance.reference_task import ReferenceTask

    checks = by_check(assert_conforms(ReferenceTask, model_dir=tiny_model_dir, work_dir=tmp_path, strict=True))
    for step in ("imports", "sample_data", "load_data", "encode", "build_model", "forward", "decode", "evaluate", "save/load",
                 "torch-free runtime"):
        assert checks[step].status == "pass", checks[step]


def test_trainers_and_exporters_are_checked_without_the_builtin_tasks(tiny_model_dir: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "assistant_builder_tasks"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing any built-in task now fails
    for component in (FullTrainer, TorchScriptExporter):
        results = run_conformance(component, model_dir=tiny_model_dir, work_dir=tmp_path / component.name)
        assert [r for r in results if r.status != "pass"] == [], component
