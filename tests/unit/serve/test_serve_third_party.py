"""A third-party task gets feedback and capture through the task contract alone: its own correction
field (``intent``), its own store records and confidence; the conformance suite checks the
contract, and catches a task that breaks it."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.contracts import StoreRecord, Task
from assistant_builder.conformance import run_conformance
from assistant_builder.errors import DataError
from assistant_builder.hookspecs import hookimpl
from assistant_builder.labelling.serve_store import FeedbackStore
from assistant_builder_tasks.classification.data import TextExample
from assistant_builder_tasks.classification.task import ClassificationTask


class IntentTask(ClassificationTask):
    """Stands for a plugin's task: its model code is the classification task's, its feedback contract its own."""

    name = "intents_3p"
    description = "a third-party intent task"
    feedback_fields = ("intent",)
    capture_threshold = 0.9

    def to_store(self, example: TextExample) -> StoreRecord:
        return StoreRecord({"text": example.text}, example.label, example.source)

    def from_store(self, record: StoreRecord, labels: Any, options: Any) -> TextExample:
        if record.gold not in labels:
            raise DataError(f"gold: expected one of {', '.join(labels)}, got {record.gold!r}")
        return TextExample(record.payload["text"], record.gold, None, record.source)

    def prediction_gold(self, example: TextExample, prediction: dict[str, Any]) -> str:
        return str(prediction["label"])

    def feedback_gold(self, example: Any, prediction: dict[str, Any], correction: Any, labels: Any, options: Any) -> Any:
        if "intent" in correction:
            if correction["intent"] not in labels:
                raise DataError(f"intent: expected one of {', '.join(labels)}, got {correction['intent']!r}")
            return correction["intent"]
        return super().feedback_gold(example, prediction, correction, labels, options)

    def prediction_confidence(self, prediction: dict[str, Any]) -> float | None:
        return 0.0 if prediction.get("in_scope") is False else float(prediction["score"])


class LenientTask(IntentTask):
    name = "lenient_3p"

    def from_store(self, record: StoreRecord, labels: Any, options: Any) -> TextExample:
        return TextExample(record.payload["text"], record.gold)  # accepts any label: breaks the contract

    def prediction_confidence(self, prediction: dict[str, Any]) -> float | None:
        return 2.0  # outside [0, 1]


class NoFeedbackTask(ClassificationTask):
    name = "plain_3p"
    to_store = Task.to_store  # type: ignore[assignment]
    from_store = Task.from_store  # type: ignore[assignment]


class Plugin:
    @staticmethod
    @hookimpl
    def register_tasks(register: Any) -> None:
        register(IntentTask)


def by_check(results: list[Any]) -> dict[str, Any]:
    return {r.check: r for r in results}


def feedback_checks(task: type[Task], model_dir: Path, work_dir: Path) -> dict[str, Any]:
    """The feedback checks alone (``run_conformance`` runs them after the whole round trip)."""
    from assistant_builder.conformance.bench import Workspace
    from assistant_builder.conformance.feedback_check import check_task_feedback
    from assistant_builder.conformance.results import Recorder

    recorder = Recorder(task.name, "task")
    check_task_feedback(recorder, task, Workspace(model_dir=model_dir, work_dir=work_dir))
    return by_check(recorder.results)


def test_the_conformance_suite_checks_the_feedback_contract(tiny_model_dir: Path, tmp_path: Path) -> None:
    checks = feedback_checks(IntentTask, tiny_model_dir, tmp_path / "a")
    for name in ("feedback: store records", "feedback: corrections", "feedback: confidence"):
        assert checks[name].status == "pass", checks[name]
    assert "fields: intent" in checks["feedback: corrections"].detail
    broken = feedback_checks(LenientTask, tiny_model_dir, tmp_path / "b")
    assert broken["feedback: store records"].status == "fail" and "__no_such_label__" in broken["feedback: store records"].detail
    plain = by_check(run_conformance(NoFeedbackTask, model_dir=tiny_model_dir, work_dir=tmp_path / "c", functional=False))
    assert "feedback" not in plain  # the feedback checks are functional ones
    plain = feedback_checks(NoFeedbackTask, tiny_model_dir, tmp_path / "c")
    assert plain["feedback"].status == "pass" and "not implemented (optional)" in plain["feedback"].detail


def test_confidence_outside_the_unit_interval_fails(tiny_model_dir: Path, tmp_path: Path) -> None:
    class BadConfidence(IntentTask):
        name = "bad_confidence_3p"

        def prediction_confidence(self, prediction: dict[str, Any]) -> float | None:
            return 2.0

    checks = feedback_checks(BadConfidence, tiny_model_dir, tmp_path)
    assert checks["feedback: confidence"].status == "fail" and "got 2.0" in checks["feedback: confidence"].detail


def test_a_third_party_task_serves_with_feedback_and_capture(register_plugin: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from assistant_builder.runtime.bundle import read_bundle
    from assistant_builder.runtime.predictor import Predictor
    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.settings import ServeSettings

    spec = importlib.util.spec_from_file_location("_serve_conftest_3p", Path(__file__).with_name("conftest.py"))
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    registry = register_plugin(Plugin())
    run = conftest.build_run("intents_3p", tmp_path / "run", tiny_model_dir, registry=registry)
    predictor = Predictor(read_bundle(run), registry=registry)
    assert type(predictor.task).__name__ == "IntentTask"
    store_path = tmp_path / "fb.labels.sqlite"
    settings = ServeSettings(path=str(run), threads=1, intra_op_threads=1, feedback=str(store_path), capture="uncertain")
    with TestClient(create_app(settings, predictor=predictor)) as client:
        [prediction] = client.post("/predict", json={"input": "wake me up"}).json()["predictions"]
        deadline = time.monotonic() + 10  # a score below the task's own threshold of 0.9: captured
        while 'result="stored"} 1' not in client.get("/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        bad = client.post("/feedback", json={"prediction_id": prediction["prediction_id"], "label": "music"})
        assert bad.status_code == 422 and bad.json()["error"]["message"] == "label: unknown field; expected prediction_id, correct, intent"
        wrong = client.post("/feedback", json={"prediction_id": prediction["prediction_id"], "intent": "jazz"})
        assert wrong.status_code == 422 and wrong.json()["error"]["message"].startswith("intent: expected one of alarm, music, weather")
        ok = client.post("/feedback", json={"prediction_id": prediction["prediction_id"], "intent": "alarm"})
        assert ok.status_code == 200 and ok.json()["gold"] == "alarm"
    with FeedbackStore(store_path) as store:
        [item] = store.items()
        assert item.payload == {"text": "wake me up"} and item.gold == "alarm" and [e["kind"] for e in store.events()] == [
            "capture", "feedback"]


@pytest.mark.parametrize("value", [None, 3, {"x": 1}])
def test_the_intent_field_is_validated_by_the_task(value: Any) -> None:
    task = IntentTask()
    with pytest.raises(DataError, match="^intent: expected one of"):
        task.feedback_gold(task.parse_input("hi"), {"label": "alarm"}, {"intent": value}, ["alarm"], task.Options())
