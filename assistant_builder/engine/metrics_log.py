"""The always-on JSONL metrics log (``metrics.jsonl`` in the run directory)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from assistant_builder.callbacks import Callback, CheckpointSaved, EvalEnded, ExportVerified, StepEnded, TrainingStarted


class MetricsLog(Callback):
    """Appends one JSON object per step log, evaluation, checkpoint and export; flushed each line."""

    def __init__(self, path: Path) -> None:
        self.handle = open(path, "a", encoding="utf-8")

    def _write(self, record: dict[str, Any]) -> None:
        self.handle.write(json.dumps({"time": round(time.time(), 3), **record}, default=str) + "\n")
        self.handle.flush()

    def on_train_start(self, event: TrainingStarted) -> None:
        self._write({"event": "train_start", "total_steps": event.total_steps, "steps_per_epoch": event.steps_per_epoch,
                     "epochs": event.epochs, "device": event.device, "initial_step": event.initial_step,
                     "world_size": event.world_size, "examples_per_epoch": event.examples_per_epoch})

    def on_step_end(self, event: StepEnded) -> None:
        self._write({"event": "step", "step": event.step, "epoch": round(event.epoch, 4), "loss": event.loss,
                     "learning_rate": event.learning_rate, "examples_per_second": round(event.examples_per_second, 2)})

    def on_eval_end(self, event: EvalEnded) -> None:
        self._write({"event": "eval", "step": event.step, "epoch": event.epoch, "is_best": event.is_best, **event.metrics})

    def on_checkpoint(self, event: CheckpointSaved) -> None:
        self._write({"event": "checkpoint", "step": event.step, "path": event.path})

    def on_export_verified(self, event: ExportVerified) -> None:
        self._write({"event": "export", "exporter": event.exporter, "variant": event.variant, "passed": event.passed, **event.report})

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.close()
