"""The CLI's view of a run: stage lines and a tqdm progress bar on stderr, a summary on stdout."""

from __future__ import annotations

import sys
from typing import Any

from assistant_builder.callbacks import (Callback, EvalEnded, ExportVerified, RunEnded, RunStarted, StageStarted, StepEnded,
                                         TrainingStarted)


class ConsoleProgress(Callback):
    """Prints what the engine does. Progress goes to stderr; only the final summary to stdout."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.last_step = 0

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
        from tqdm.auto import tqdm

        self.bar = tqdm(total=event.total_steps, initial=event.initial_step, desc="training", unit="step", file=sys.stderr, dynamic_ncols=True)
        self.last_step = event.initial_step
        self._say(f"  {event.epochs} epochs × {event.steps_per_epoch} steps on {event.device}")

    def on_step_end(self, event: StepEnded) -> None:
        if self.bar is not None:
            self.bar.update(event.step - self.last_step)
            self.last_step = event.step
            self.bar.set_postfix(epoch=f"{event.epoch:.2f}", loss=f"{event.loss:.4f}", ex_s=f"{event.examples_per_second:.0f}")

    def on_eval_end(self, event: EvalEnded) -> None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in list(event.metrics.items())[:3])
        self._say(f"  epoch {event.epoch}: {shown}{'  (best so far)' if event.is_best else ''}")

    def on_export_verified(self, event: ExportVerified) -> None:
        r = event.report
        verdict = "ok" if event.passed else "FAILED"
        self._say(f"  {event.exporter}/{event.variant}: {r['metric']} {r['exported_metric']:.4f} (PyTorch {r['reference_metric']:.4f}), "
                  f"agreement {r['agreement']:.2%}, {r['latency_batch1_ms_p50']:.1f} ms/example — {verdict}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_run_end(self, event: RunEnded) -> None:
        self.close()

    def on_exception(self, error: BaseException) -> None:
        self.close()


def render_summary(summary: dict[str, Any]) -> str:
    """Short human summary printed on stdout when a run ends."""
    metrics = summary["metrics"]
    lines = [f"Run finished: {summary['run_dir']}",
             f"  {summary['task']} / {summary['trainer']}: best epoch {summary['best_epoch']} of {summary['epochs_run']}"
             + (" (early stopping)" if summary["stopped_early"] else "")
             + f", {summary['train_examples_per_second']:.0f} training examples/s",
             "  validation: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())]
    for export in summary["exports"]:
        lines.append(f"  export {export['exporter']}/{export['variant']}: {export['metric']} {export['exported_metric']:.4f}, "
                     f"agreement {export['agreement']:.2%}, batch-1 {export['latency_batch1_ms_p50']:.1f} ms, "
                     f"{export['size_bytes'] / 1e6:.1f} MB — {'verified' if export['passed'] else 'FAILED'}")
    lines.append(f"  model (Hugging Face format): {summary['model_dir']}")
    lines.append(f"  report: {summary['run_dir']}/report.md, exports: {summary['run_dir']}/export_report.md")
    example = summary.get("predict_example", '"your text here"')
    lines.append(f"  try it: builder predict {summary['run_dir']} {example}")
    return "\n".join(lines)
