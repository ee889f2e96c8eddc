"""Training as the TUI sees it: the chart series and status of one run (textual-free), and the two
ways events reach it: an engine ``Callback`` (training started in the app) and a tail of the run's
``metrics.jsonl`` (a run started headless by ``builder run``).

Both only call ``post(message)``; the Train screen applies the messages to a ``TrainingState`` and
redraws. Neither touches a widget, so they are safe to run in worker threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.callbacks import (Callback, CheckpointSaved, EvalEnded, ExportVerified, RunEnded, RunStarted, StageStarted,
                                         StepEnded, TrainingStarted)
from assistant_builder.tui import messages as m
from assistant_builder.tui.project import display_path, read_json, read_log, run_status

Post = Callable[[Any], Any]


@dataclass
class TrainingState:
    """Everything the Train screen draws: chart series, counters and the log tail."""

    run_dir: Path | None = None
    stage: str = ""
    step: int = 0
    epoch: float = 0.0
    total_steps: int | None = None
    epochs: int | None = None
    examples_per_second: float = 0.0
    metric: str = ""
    loss_steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_values: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    _rate_points: list[tuple[float, int]] = field(default_factory=list)

    def on_step(self, event: m.TrainStep) -> None:
        self.step, self.epoch, self.examples_per_second = event.step, event.epoch, event.examples_per_second
        self.loss_steps.append(event.step)
        self.losses.append(event.loss)
        self._rate_points = [*self._rate_points[-9:], (event.at or time.time(), event.step)]
        if self.total_steps is None and self.epochs and event.epoch > 0:
            self.total_steps = round(event.step / event.epoch * self.epochs)  # attached: estimate from the epoch fraction

    def on_eval(self, event: m.TrainEval) -> None:
        metric = self.metric if self.metric in event.metrics else next(iter(event.metrics), "")
        self.metric = metric
        if metric:
            self.eval_steps.append(event.step)
            self.eval_values.append(float(event.metrics[metric]))

    def eta_seconds(self) -> float | None:
        """Seconds left at the recent step rate (None until two steps are known)."""
        if self.total_steps is None or len(self._rate_points) < 2:
            return None
        (t0, s0), (t1, s1) = self._rate_points[0], self._rate_points[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return max(0.0, (self.total_steps - self.step) * (t1 - t0) / (s1 - s0))

    def add_log(self, line: str, keep: int = 200) -> None:
        self.log = [*self.log[-(keep - 1):], line]


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class PostingCallback(Callback):
    """Engine callback that turns each event into a small message for the UI (and nothing else)."""

    def __init__(self, post: Post) -> None:
        self.post = post

    def on_run_start(self, event: RunStarted) -> None:
        self.post(m.TrainRunDir(event.run_dir))
        self.post(m.TrainLog(f"{event.task} / {event.trainer}: {event.train_examples} training, "
                             f"{event.validation_examples} validation examples, {len(event.labels)} labels"))

    def on_stage_start(self, event: StageStarted) -> None:
        self.post(m.TrainStage(event.stage, event.detail))

    def on_train_start(self, event: TrainingStarted) -> None:
        self.post(m.TrainStarted(event.total_steps, event.steps_per_epoch, event.epochs, event.device, event.initial_step))

    def on_step_end(self, event: StepEnded) -> None:
        self.post(m.TrainStep(event.step, event.epoch, event.loss, event.learning_rate, event.examples_per_second, time.time()))

    def on_eval_end(self, event: EvalEnded) -> None:
        self.post(m.TrainEval(event.step, event.epoch, dict(event.metrics), event.is_best))

    def on_checkpoint(self, event: CheckpointSaved) -> None:
        self.post(m.TrainLog(f"checkpoint at step {event.step}"))

    def on_export_verified(self, event: ExportVerified) -> None:
        self.post(m.TrainLog(f"export {event.exporter}/{event.variant}: {event.status or ('verified' if event.passed else 'FAILED')}"))

    def on_run_end(self, event: RunEnded) -> None:
        self.post(m.TrainLog(f"run finished: {display_path(event.run_dir)}"))


def record_to_messages(record: dict[str, Any]) -> list[Any]:
    """One ``metrics.jsonl`` line -> the messages a live callback would have posted."""
    event = record.get("event")
    if event == "step":
        return [m.TrainStep(int(record["step"]), float(record["epoch"]), float(record["loss"]), float(record.get("learning_rate", 0.0)),
                            float(record.get("examples_per_second", 0.0)), float(record.get("time", 0.0)))]
    if event == "eval":
        metrics = {k: float(v) for k, v in record.items()
                   if k not in ("time", "event", "step", "epoch", "is_best") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        return [m.TrainEval(int(record["step"]), int(record["epoch"]), metrics, bool(record.get("is_best")))]
    if event == "checkpoint":
        return [m.TrainLog(f"checkpoint at step {record.get('step')}")]
    if event == "export":
        status = record.get("status") or ("verified" if record.get("passed") else "FAILED")
        return [m.TrainLog(f"export {record.get('exporter')}/{record.get('variant')}: {status}")]
    return []


def tail_run(run_dir: Path, post: Post, cancelled: Callable[[], bool], interval: float = 0.5) -> None:
    """Follow ``run_dir/metrics.jsonl`` until the run finishes or stops, or ``cancelled()``."""
    recipe = read_json(run_dir / "recipe.resolved.json") or {}
    epochs = recipe.get("train", {}).get("epochs")
    post(m.TrainRunDir(run_dir, attached=True, epochs=epochs))
    post(m.TrainLog(f"attached to {run_dir.name}" + (f": {epochs} epochs planned" if epochs else "")))
    offset = 0
    while True:
        records, offset = read_log(run_dir / "metrics.jsonl", offset)
        for record in records:
            for message in record_to_messages(record):
                post(message)
        status = run_status(run_dir)
        if status != "running" or cancelled():
            summary = read_json(run_dir / "summary.json") or {}
            post(m.TrainFinished(run_dir, summary, interrupted=status == "stopped", detached=cancelled(),
                                 resume_command=f"builder run --resume {run_dir}" if status == "stopped" else ""))
            return
        time.sleep(interval)
