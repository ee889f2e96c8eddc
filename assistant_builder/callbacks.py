"""Engine events and the callback protocol.

The engine knows no UI: the CLI progress bar, the metrics log and the TUI are all callbacks. Events
are frozen dataclasses; every ``Callback`` method is a no-op by default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunStarted:
    run_dir: Path
    recipe_name: str
    task: str
    trainer: str
    train_examples: int
    validation_examples: int
    labels: tuple[str, ...]


@dataclass(frozen=True)
class StageStarted:
    """A named stage began: 'load data', 'encode', 'build model', 'train', 'evaluate', 'export'."""

    stage: str
    detail: str = ""


@dataclass(frozen=True)
class TrainingStarted:
    total_steps: int
    steps_per_epoch: int
    epochs: int
    device: str
    initial_step: int = 0
    world_size: int = 1
    examples_per_epoch: int = 0


@dataclass(frozen=True)
class StepEnded:
    step: int
    epoch: float
    loss: float
    learning_rate: float
    examples_per_second: float


@dataclass(frozen=True)
class EvalEnded:
    step: int
    epoch: int
    metrics: dict[str, float]
    is_best: bool


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: Path


@dataclass(frozen=True)
class ExportVerified:
    exporter: str
    variant: str
    path: Path
    report: dict[str, Any]
    passed: bool
    #: "verified", "rejected" (an optional variant that broke a gate; the run goes on) or "failed"
    status: str = ""


@dataclass(frozen=True)
class RunEnded:
    run_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Observer of a run. Override the methods you need; all default to doing nothing."""

    def on_run_start(self, event: RunStarted) -> None: ...
    def on_stage_start(self, event: StageStarted) -> None: ...
    def on_train_start(self, event: TrainingStarted) -> None: ...
    def on_step_end(self, event: StepEnded) -> None: ...
    def on_eval_end(self, event: EvalEnded) -> None: ...
    def on_checkpoint(self, event: CheckpointSaved) -> None: ...
    def on_export_verified(self, event: ExportVerified) -> None: ...
    def on_run_end(self, event: RunEnded) -> None: ...
    def on_exception(self, error: BaseException) -> None: ...


class CallbackList(Callback):
    """Fans every event out to a list of callbacks, in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def _emit(self, method: str, payload: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, method)(payload)

    def on_run_start(self, event: RunStarted) -> None:
        self._emit("on_run_start", event)

    def on_stage_start(self, event: StageStarted) -> None:
        self._emit("on_stage_start", event)

    def on_train_start(self, event: TrainingStarted) -> None:
        self._emit("on_train_start", event)

    def on_step_end(self, event: StepEnded) -> None:
        self._emit("on_step_end", event)

    def on_eval_end(self, event: EvalEnded) -> None:
        self._emit("on_eval_end", event)

    def on_checkpoint(self, event: CheckpointSaved) -> None:
        self._emit("on_checkpoint", event)

    def on_export_verified(self, event: ExportVerified) -> None:
        self._emit("on_export_verified", event)

    def on_run_end(self, event: RunEnded) -> None:
        self._emit("on_run_end", event)

    def on_exception(self, error: BaseException) -> None:
        self._emit("on_exception", error)
