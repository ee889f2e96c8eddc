"""Fixtures for the TUI tests: a small classification project, fake run directories, a fake
training engine (no torch), and a text capture of the screen at a fixed size."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.callbacks import (CallbackList, CheckpointSaved, EvalEnded, RunEnded, RunStarted, StageStarted, StepEnded,
                                         TrainingStarted)
from assistant_builder.engine.run import RunResult
from assistant_builder.errors import RunInterrupted

SIZE = (100, 30)
LABELS = ["alarm", "weather", "music"]
TEXTS = ["wake me at 7", "will it rain", "play jazz", "alarm at 6 please", "is it cold today", "play some songs"]
#: the recipe's validation file: other texts than TEXTS (a labelled validation text is kept out of training)
VALID_TEXTS = ["set an alarm for 8", "is it sunny", "put on some music", "alarm at 9", "how warm is it", "play the radio"]


@pytest.fixture(scope="session")
def registry() -> Any:
    from assistant_builder.registry import build_registry

    return build_registry()


def write_recipe(directory: Path, labels: list[str] | None = None, name: str = "demo", task: str = "classification") -> Path:
    options = f"label_field = \"intent\"\nlabels = {json.dumps(labels)}\n" if labels else "label_field = \"intent\"\n"
    if task != "classification":
        options = ""
    data = "train = \"train.jsonl\"\nvalidation = \"valid.jsonl\"\n"
    for split, texts in (("train", TEXTS), ("valid", VALID_TEXTS)):
        (directory / f"{split}.jsonl").write_text("".join(json.dumps({"text": t, "intent": l}) + "\n"
                                                          for t, l in zip(texts, LABELS * 2)))
    path = directory / "recipe.toml"
    path.write_text(f"recipe_version = 1\nname = \"{name}\"\n[task]\ntype = \"{task}\"\n[task.options]\n{options}"
                    f"[data]\n{data}[train]\nepochs = 4\nmin_steps = 0\n[export]\nformats = []\n[output]\nruns_dir = \"runs\"\n")
    return path


@pytest.fixture
def make_project(tmp_path: Path, registry: Any) -> Callable[..., Any]:
    """``make_project(labels=..., texts=...)``: a recipe in tmp_path with ``texts`` imported."""
    from assistant_builder.labelling.formats import import_file
    from assistant_builder.tui.project import open_project
    from assistant_builder.labelling.store import LabelStore

    def make(labels: list[str] | None = LABELS, texts: list[str] = TEXTS, task: str = "classification") -> Any:
        project = open_project(write_recipe(tmp_path, labels, task=task), registry)
        if texts:
            source = tmp_path / "texts.txt"
            source.write_text("\n".join(texts) + "\n")
            with LabelStore(project.store_path) as store:
                import_file(store, source, project.kind)
        return project

    return make


def make_run(runs_dir: Path, stamp: str, *, name: str = "demo", finished: bool = True, onnx: bool = False,
             rows: list[tuple[str, str, str, float]] | None = None, options: dict[str, Any] | None = None) -> Path:
    """A run directory as the engine writes it. ``rows``: (text, gold, predicted, score) validation rows;
    ``options``: more task options for the recipe."""
    rows = rows if rows is not None else [("wake me at 7", "alarm", "alarm", 0.9), ("will it rain", "weather", "music", 0.8),
                                          ("play jazz", "music", "music", 0.95), ("alarm at 6", "alarm", "weather", 0.6)]
    run = runs_dir / f"{name}-{stamp}"
    run.mkdir(parents=True)
    valid = run / "valid.jsonl"
    valid.write_text("".join(json.dumps({"text": t, "intent": g}) + "\n" for t, g, _, _ in rows))
    recipe = {"recipe_version": 1, "name": name, "task": {"type": "classification", "options": {"label_field": "intent", **(options or {})}},
              "data": {"train": str(valid), "validation": str(valid)}, "train": {"trainer": "full", "epochs": 4},
              "export": {"formats": []}}
    (run / "recipe.resolved.json").write_text(json.dumps(recipe))
    (run / "recipe.toml").write_text("")
    (run / "provenance.json").write_text(json.dumps({"data": {"validation": {"path": str(valid)}, "train": {"path": str(valid)}}}))
    log = [{"event": "step", "step": s, "epoch": s / 10, "loss": 2.0 / s, "learning_rate": 1e-3, "examples_per_second": 50.0, "time": 1.0 + s}
           for s in range(1, 21)]
    log += [{"event": "eval", "step": 10, "epoch": 1, "is_best": True, "accuracy": 0.5}, {"event": "eval", "step": 20, "epoch": 2, "is_best": True, "accuracy": 0.5}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    if not finished:
        return run
    accuracy = sum(g == p for _, g, p, _ in rows) / len(rows)
    labels = sorted({g for _, g, _, _ in rows} | {p for _, _, p, _ in rows})
    matrix = [[sum(1 for _, g, p, _ in rows if g == a and p == b) for b in labels] for a in labels]
    metrics = {"accuracy": accuracy, "macro_f1": accuracy - 0.05}
    (run / "metrics.json").write_text(json.dumps({
        "metrics": metrics, "metric": "accuracy", "labels": labels, "confusion_matrix": matrix,
        "per_label": {label: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 1} for label in labels},
        "errors": [{"text": t, "gold": g, "predicted": p, "score": s} for t, g, p, s in rows if g != p]}))
    (run / "validation_predictions.jsonl").write_text("".join(
        json.dumps({"index": i, "label": p, "score": s, "top": [{"label": p, "score": s}, {"label": g if g != p else "x", "score": 1 - s}]}) + "\n"
        for i, (_, g, p, s) in enumerate(rows)))
    exports = []
    if onnx:
        (run / "exports" / "onnx").mkdir(parents=True)
        (run / "exports" / "onnx" / "manifest.json").write_text("{}")
        exports = [{"exporter": "onnx", "variant": "int8", "exported_metric": accuracy, "latency_batch1_ms_p50": 1.5,
                    "size_bytes": 23e6, "passed": True}]
    (run / "summary.json").write_text(json.dumps({"run_dir": str(run), "task": "classification", "trainer": "full", "metric": "accuracy",
                                                  "metrics": metrics, "best_epoch": 2, "epochs_run": 4, "train_examples_per_second": 88.0,
                                                  "exports": exports}))
    return run


OOS = "out_of_scope"
#: (text, gold, top in-scope label, in-scope score): five in-scope examples (one wrong) and three out-of-scope
OOS_ROWS = [("wake me at 7", "alarm", "alarm", 9.0), ("will it rain", "weather", "weather", 8.0), ("play jazz", "music", "music", 7.0),
            ("alarm at 6", "alarm", "weather", 3.5), ("is it cold", "weather", "weather", 3.0), ("tell me a joke", OOS, "music", 5.0),
            ("capital of peru", OOS, "weather", 2.0), ("who won the match", OOS, "alarm", 1.0)]
#: reliability bins as fallback.fit_rule saves them (over-confident before calibration)
RELIABILITY = {"before": [{"low": 0.8, "high": 0.9, "count": 2, "confidence": 0.85, "accuracy": 0.5},
                          {"low": 0.9, "high": 1.0, "count": 3, "confidence": 0.97, "accuracy": 0.67}],
               "after": [{"low": 0.5, "high": 0.6, "count": 2, "confidence": 0.55, "accuracy": 0.5},
                         {"low": 0.6, "high": 0.7, "count": 3, "confidence": 0.66, "accuracy": 0.67}]}


def make_oos_run(runs_dir: Path, stamp: str, *, threshold: float | None = 4.25, rows: list[tuple[str, str, str, float]] = OOS_ROWS,
                 name: str = "demo") -> Path:
    """A finished run with out-of-scope rejection (``fallback_label``), as the engine writes it: the
    fitted threshold in ``task_options.json``, ``in_scope``/``in_scope_score`` in the predictions and the
    calibration summary with reliability bins in ``metrics.json``. Rejected: score < ``threshold``."""
    rejected = [threshold is not None and s < threshold for _, _, _, s in rows]
    run = make_run(runs_dir, stamp, name=name, options={"fallback_label": OOS},
                   rows=[(t, g, OOS if r else c, 0.9) for (t, g, c, _), r in zip(rows, rejected)])
    (run / "task_options.json").write_text(json.dumps({"label_field": "intent", "fallback_label": OOS, "fallback_threshold": threshold,
                                                       "temperature": 1.5, "calibration": "temperature", "top_k": 3}))
    (run / "validation_predictions.jsonl").write_text("".join(
        json.dumps({"index": i, "label": OOS if r else c, "score": 0.1 if r else 0.9, "in_scope": not r, "in_scope_score": s,
                    "top": [{"label": c, "score": 0.9}]}) + "\n" for i, ((_, _, c, s), r) in enumerate(zip(rows, rejected))))
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["decision_rule"] = {"calibration": {"method": "temperature", "temperature": 1.5, "ece_before": 0.2, "ece_after": 0.05,
                                                "reliability": RELIABILITY},
                                "rejection": {"fallback_label": OOS, "score": "energy", "threshold": threshold}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


class FakeEngine:
    """Stands in for ``engine.run``: emits a run's events through the callbacks, honours
    ``stop_event`` like a trainer (checkpoint, then ``RunInterrupted``). ``hold_at`` makes it wait
    at that step until stopped (for cancel tests)."""

    def __init__(self, steps: int = 20, hold_at: int | None = None) -> None:
        self.steps = steps
        self.hold_at = hold_at
        self.calls: list[dict[str, Any]] = []
        self.reached_hold = threading.Event()

    def __call__(self, loaded: Any, registry: Any, callbacks: Any, stop_event: threading.Event, overrides: Any = (), resume_dir: Any = None) -> RunResult:
        self.calls.append({"loaded": loaded, "overrides": list(overrides)})
        events = CallbackList(callbacks)
        run_dir = loaded.resolve(loaded.recipe.output.runs_dir) / f"{loaded.recipe.name}-fake"
        run_dir.mkdir(parents=True, exist_ok=True)
        events.on_stage_start(StageStarted("load data"))
        events.on_run_start(RunStarted(run_dir, loaded.recipe.name, "classification", "full", 6, 2, ("alarm", "weather", "music")))
        events.on_stage_start(StageStarted("train", "full trainer"))
        events.on_train_start(TrainingStarted(self.steps, self.steps // 4, 4, "cpu"))
        for step in range(1, self.steps + 1):
            if step == self.hold_at:
                self.reached_hold.set()
                stop_event.wait(20)
            if stop_event.is_set():
                events.on_checkpoint(CheckpointSaved(step - 1, run_dir / "checkpoints"))
                raise RunInterrupted(f"training stopped at step {step - 1}", hint=f"resume with: builder run --resume {run_dir}")
            events.on_step_end(StepEnded(step, step / (self.steps / 4), 2.0 / step, 1e-3, 100.0))
            if step % (self.steps // 4) == 0:
                events.on_eval_end(EvalEnded(step, step // (self.steps // 4), {"accuracy": step / self.steps, "macro_f1": 0.5}, True))
            time.sleep(0.002)
        summary = {"run_dir": str(run_dir), "metrics": {"accuracy": 1.0}}
        events.on_run_end(RunEnded(run_dir, summary))
        return RunResult(run_dir, {"accuracy": 1.0}, [], summary)


async def wait_until(pilot: Any, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let the app run until ``condition()`` holds (workers post messages asynchronously)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)
        await asyncio.sleep(0)


def screen_text(app: Any) -> str:
    """The current screen as plain text (a text snapshot; the SVG ``export_screenshot`` without styles)."""
    from assistant_builder.tui.capture import screen_text as capture

    return capture(app)


# Test modules cannot import conftest under --import-mode=importlib: the helpers travel as fixtures.
@pytest.fixture
def tui_helpers() -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(make_run=make_run, make_oos_run=make_oos_run, OOS=OOS, OOS_ROWS=OOS_ROWS, FakeEngine=FakeEngine, wait_until=wait_until, screen_text=screen_text,
                           write_recipe=write_recipe, SIZE=SIZE, LABELS=LABELS, TEXTS=TEXTS)
