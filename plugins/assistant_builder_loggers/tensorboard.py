"""The ``tensorboard`` logger: training loss, learning rate, speed and validation metrics as
TensorBoard scalars under ``RUN/tensorboard/``, so ``tensorboard --logdir runs`` compares runs.

Enable it with ``[log] tensorboard = true`` (or a ``[log.tensorboard]`` table). Writes event files
with ``tensorboardX`` (no TensorFlow, no TensorBoard server needed to write); install it with
``pip install 'assistant-builder[tensorboard]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from assistant_builder.callbacks import Callback, EvalEnded, ExportVerified, RunEnded, RunStarted, StepEnded
from assistant_builder.contracts import ComponentOptions, Logger
from assistant_builder.errors import PluginError
from assistant_builder.hookspecs import hookimpl

LOG_SUBDIR = "tensorboard"


class TensorBoardOptions(ComponentOptions):
    flush_secs: int = Field(10, ge=1, le=3600, description="seconds between flushes of the event file to disk")
    subdir: str = Field(LOG_SUBDIR, pattern=r"^[A-Za-z0-9_.\-]+$", description="folder inside the run directory")


class TensorBoardCallback(Callback):
    """Writes one scalar per logged quantity; step = optimiser step (export figures at the last step)."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.last_step = 0

    def on_run_start(self, event: RunStarted) -> None:
        self.writer.add_text("run", f"recipe **{event.recipe_name}**: task `{event.task}`, trainer `{event.trainer}`, "
                                    f"{event.train_examples} train / {event.validation_examples} validation examples, "
                                    f"{len(event.labels)} labels")

    def on_step_end(self, event: StepEnded) -> None:
        self.last_step = event.step
        self.writer.add_scalar("train/loss", event.loss, event.step)
        self.writer.add_scalar("train/learning_rate", event.learning_rate, event.step)
        self.writer.add_scalar("train/examples_per_second", event.examples_per_second, event.step)
        self.writer.add_scalar("train/epoch", event.epoch, event.step)

    def on_eval_end(self, event: EvalEnded) -> None:
        self.last_step = max(self.last_step, event.step)
        for name, value in event.metrics.items():
            self.writer.add_scalar(f"validation/{name}", value, event.step)
        self.writer.flush()

    def on_export_verified(self, event: ExportVerified) -> None:
        for key in ("exported_metric", "agreement", "max_abs_diff", "latency_batch1_ms_p50", "batch32_examples_per_second", "size_bytes"):
            value = event.report.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"export/{event.exporter}-{event.variant}/{key}", value, self.last_step)

    def on_run_end(self, event: RunEnded) -> None:
        self.writer.flush()

    def on_exception(self, error: BaseException) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class TensorBoardLogger(Logger):
    name = "tensorboard"
    description = "TensorBoard event files under RUN/tensorboard (loss, learning rate, speed, validation metrics)"
    Options = TensorBoardOptions

    def create(self, run_dir: Path, options: TensorBoardOptions) -> TensorBoardCallback:  # type: ignore[override]
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise PluginError("log.tensorboard needs the tensorboardX package, which is not installed",
                              hint="pip install 'assistant-builder[tensorboard]', or remove tensorboard from the recipe's [log] table") from None
        return TensorBoardCallback(SummaryWriter(logdir=str(Path(run_dir) / options.subdir), flush_secs=options.flush_secs))


@hookimpl
def register_loggers(register):  # type: ignore[no-untyped-def]
    register(TensorBoardLogger)
