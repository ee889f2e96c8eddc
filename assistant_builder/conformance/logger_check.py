"""A logger's ``create`` returns a callback that takes a whole run's events (and a failed run's)
without raising, and closes cleanly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant_builder.callbacks import (
    Callback, CheckpointSaved, EvalEnded, ExportVerified, RunEnded, RunStarted, StageStarted, StepEnded, TrainingStarted,
)
from assistant_builder.conformance.bench import Workspace
from assistant_builder.conformance.results import CheckSkipped, Recorder, expect
from assistant_builder.contracts import Logger
from assistant_builder.errors import BuilderError

METHODS = tuple(name for name in vars(Callback) if name.startswith("on_"))


def run_events(run_dir: Path) -> list[tuple[str, Any]]:
    """The events of a short successful run, in the order the engine sends them."""
    report = {"exported_metric": 0.5, "agreement": 1.0, "max_abs_diff": 1e-6, "size_bytes": 1000, "passed": True}
    return [
        ("on_stage_start", StageStarted("load data", "train.jsonl")),
        ("on_run_start", RunStarted(run_dir, "conformance", "classification", "full", 12, 3, ("a", "b"))),
        ("on_train_start", TrainingStarted(6, 3, 2, "cpu")),
        ("on_step_end", StepEnded(3, 1.0, 1.1, 1e-4, 100.0)),
        ("on_eval_end", EvalEnded(3, 1, {"accuracy": 0.5, "macro_f1": 0.4}, True)),
        ("on_checkpoint", CheckpointSaved(3, run_dir / "checkpoints" / "step-0000003")),
        ("on_step_end", StepEnded(6, 2.0, 0.9, 5e-5, 110.0)),
        ("on_eval_end", EvalEnded(6, 2, {"accuracy": 0.6, "macro_f1": 0.5}, True)),
        ("on_export_verified", ExportVerified("onnx", "fp32", run_dir / "exports" / "onnx" / "model.onnx", report, True)),
        ("on_run_end", RunEnded(run_dir, {"metrics": {"accuracy": 0.6}})),
    ]


def check_logger(recorder: Recorder, logger_class: type[Logger], workspace: Workspace) -> None:
    state: dict[str, Any] = {}

    def create(run_dir: Path) -> Any:
        try:
            return logger_class().create(run_dir, logger_class.Options())
        except BuilderError as error:  # the documented way to say a dependency is missing
            raise CheckSkipped(f"create() raised {type(error).__name__}: {error.message} (missing dependency here?)") from error

    def callback() -> str:
        run_dir = workspace.scratch(f"logger-{logger_class.name}")
        made = create(run_dir)
        missing = [name for name in METHODS if not callable(getattr(made, name, None))]
        expect(not missing, f"create() must return a callbacks.Callback (subclass it for no-op defaults); "
                            f"{type(made).__name__} lacks {', '.join(missing)}")
        state["run_dir"], state["callback"] = run_dir, made
        return type(made).__name__

    def events() -> str:
        made = state["callback"]
        for method, event in run_events(state["run_dir"]):
            getattr(made, method)(event)
        if callable(getattr(made, "close", None)):
            made.close()
        written = sorted(str(p.relative_to(state["run_dir"])) for p in state["run_dir"].rglob("*") if p.is_file())
        return f"wrote {len(written)} file(s) under the run directory"

    def failed_run() -> str:
        run_dir = workspace.scratch(f"logger-{logger_class.name}-failed")
        made = create(run_dir)
        events = run_events(run_dir)
        for method, event in events[:4]:
            getattr(made, method)(event)
        made.on_exception(RuntimeError("conformance: the run failed"))
        if callable(getattr(made, "close", None)):
            made.close()
        return "on_exception then close()"

    recorder.run_steps([("create", callback), ("events", events)])
    recorder.run("failed run", failed_run)
