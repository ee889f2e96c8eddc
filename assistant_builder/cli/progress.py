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
