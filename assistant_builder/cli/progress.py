"""The CLI's view of a run: stage lines and training progress on stderr, a summary on stdout.

Training progress fits where stderr goes. On a terminal it is a live tqdm bar. Anywhere else (CI
logs, ``nohup``, a file) carriage-return bar frames would pile up, so it is plain periodic lines
instead, as HF Trainer and pip do::

    step 120/1317 (epoch 0.27): loss 0.4123, 212 ex/s, eta 4m10s

at most one every ``LINE_INTERVAL`` seconds, and always the first and the last step. Both come
from the same callback events.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from assistant_builder.callbacks import (Callback, EvalEnded, ExportVerified, RunEnded, RunStarted, StageStarted, StepEnded,
                                         TrainingStarted)

LINE_INTERVAL = 10.0
"""Seconds between two progress lines when stderr is not a terminal."""


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (a live bar can redraw itself there)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def format_duration(seconds: float) -> str:
    """``4m10s``, ``1h02m``, ``35s``: a remaining time, short."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class StepLines:
    """Training progress as plain lines: the first step, then at most one line every ``interval`` seconds, and the last step.

    The last step is the planned last one, or the one training stopped at (early stopping, a
    stop request): ``finish`` prints it if it is still unprinted.
    """

    def __init__(self, stream: TextIO, total_steps: int, initial_step: int, interval: float = LINE_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.total = total_steps
        self.initial = initial_step
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.last_line: float | None = None
        self.unprinted: StepEnded | None = None

    def line(self, event: StepEnded) -> str:
        """The progress line for ``event``: step, epoch, loss, examples/s and the estimated time left."""
        text = f"step {event.step}/{self.total} (epoch {event.epoch:.2f}): loss {event.loss:.4f}, {event.examples_per_second:.0f} ex/s"
        done = event.step - self.initial
        if 0 < done and event.step < self.total:
            text += f", eta {format_duration((self.clock() - self.started) / done * (self.total - event.step))}"
        return text

    def step(self, event: StepEnded) -> None:
        now = self.clock()
        due = self.last_line is None or now - self.last_line >= self.interval or event.step >= self.total
        if due:
            print(self.line(event), file=self.stream, flush=True)
            self.last_line = now
        self.unprinted = None if due else event

    def finish(self) -> None:
        """Print the last step if its line was held back (training ended before the interval came round)."""
        if self.unprinted is not None:
            print(self.line(self.unprinted), file=self.stream, flush=True)
            self.unprinted = None


class ConsoleProgress(Callback):
    """Prints what the engine does. Progress goes to stderr; only the final summary to stdout.

    ``live`` chooses the live bar (``True``) or plain periodic lines (``False``); by default it is
    whether stderr is a terminal.
    """

    def __init__(self, quiet: bool = False, live: bool | None = None, interval: float = LINE_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.live = live
        self.interval = interval
        self.clock = clock
        self.bar: Any = None
        self.lines: StepLines | None = None
        self.last_step = 0

    def _live(self) -> bool:
        return is_terminal(sys.stderr) if self.live is None else self.live

    def _say(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def on_run_start(self, event: RunStarted) -> None:
        self._say(f"run directory: {event.run_dir}")
        self._say(f"{event.task} with the {event.trainer} trainer: {event.train_examples} training / "
                  f"{event.validation_examples} validation examples" + (f", {len(event.labels)} labels" if event.labels else ""))

    def on_stage_start(self, event: StageStarted) -> None:
        if event.stage != "train":
            self.close()
        self._say(f"• {event.stage}" + (f": {event.detail}" if event.detail else ""))

    def on_train_start(self, event: TrainingStarted) -> None:
        if self.quiet:
            return
        self.last_step = event.initial_step
        if self._live():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=event.total_steps, initial=event.initial_step, desc="training", unit="step", file=sys.stderr,
                            dynamic_ncols=True)
        else:
            self.lines = StepLines(sys.stderr, event.total_steps, event.initial_step, self.interval, self.clock)
        self._say(f"  {event.epochs} epochs × {event.steps_per_epoch} steps on {event.device}")

    def on_step_end(self, event: StepEnded) -> None:
        if self.bar is not None:
            self.bar.update(event.step - self.last_step)
            self.bar.set_postfix(epoch=f"{event.epoch:.2f}", loss=f"{event.loss:.4f}", ex_s=f"{event.examples_per_second:.0f}")
        elif self.lines is not None:
            self.lines.step(event)
        self.last_step = event.step

    def on_eval_end(self, event: EvalEnded) -> None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in list(event.metrics.items())[:3])
        self._say(f"  epoch {event.epoch}: {shown}{'  (best so far)' if event.is_best else ''}")

    def on_export_verified(self, event: ExportVerified) -> None:
        r = event.report
        verdict = {"verified": "ok", "rejected": "rejected (fp32 stays the default)"}.get(event.status, "ok" if event.passed else "FAILED")
        self._say(f"  {event.exporter}/{event.variant}: {r['metric']} {r['exported_metric']:.4f} (PyTorch {r['reference_metric']:.4f}), "
                  f"agreement {agreement_text(r)}, {r['latency_batch1_ms_p50']:.1f} ms/example — {verdict}")
        if not event.passed:
            for failure in r.get("failures", ()):
                self._say(f"    {failure}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.lines is not None:
            self.lines.finish()
            self.lines = None

    def on_run_end(self, event: RunEnded) -> None:
        self.close()

    def on_exception(self, error: BaseException) -> None:
        self.close()


def agreement_text(report: dict[str, Any]) -> str:
    """``99.12% of entities (96.30% of examples)``, or ``100.00%`` when the unit is whole examples."""
    unit, examples = report.get("agreement_unit", "examples"), report.get("example_agreement")
    if unit == "examples" or examples is None:
        return f"{report['agreement']:.2%}"
    return f"{report['agreement']:.2%} of {unit} ({examples:.2%} of examples)"


def render_summary(summary: dict[str, Any]) -> str:
    """Short human summary printed on stdout when a run ends."""
    metrics = summary["metrics"]
    lines = [f"Run finished: {summary['run_dir']}",
             f"  {summary['task']} / {summary['trainer']}: best epoch {summary['best_epoch']} of {summary['epochs_run']}"
             + (" (early stopping)" if summary["stopped_early"] else "")
             + f", {summary['train_examples_per_second']:.0f} training examples/s",
             "  validation: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())]
    for export in summary["exports"]:
        status = export.get("status") or ("verified" if export["passed"] else "FAILED")
        lines.append(f"  export {export['exporter']}/{export['variant']}: {export['metric']} {export['exported_metric']:.4f}, "
                     f"agreement {agreement_text(export)}, batch-1 {export['latency_batch1_ms_p50']:.1f} ms, "
                     f"{export['size_bytes'] / 1e6:.1f} MB — {status}")
        if status == "rejected":
            lines.append(f"    {export['variant']} rejected: {'; '.join(export.get('failures', ()))}; the bundle serves the verified "
                         f"model by default (builder predict/serve --variant {export['variant']} is refused)")
    lines.append(f"  model (Hugging Face format): {summary['model_dir']}")
    lines.append(f"  report: {summary['run_dir']}/report.md, exports: {summary['run_dir']}/export_report.md")
    example = summary.get("predict_example", '"your text here"')
    lines.append(f"  try it: builder predict {summary['run_dir']} {example}")
    return "\n".join(lines)
