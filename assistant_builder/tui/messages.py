"""Messages the TUI's workers post to its screens: small dataclasses, never widgets.

Worker threads only ever call ``post_message`` (thread-safe) with one of these; the screen's
handler, on the UI thread, updates its widgets. Progress messages coalesce (``can_replace``): when
the UI falls behind, only the newest is shown. Loss and evaluation points never coalesce (each is a
point on the chart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.message import Message

# -- training (live engine callback, or tailing a run's metrics.jsonl) ------------------------------


@dataclass
class TrainRunDir(Message):
    """The run directory is known (created by the engine, or attached to)."""

    run_dir: Path
    attached: bool = False
    epochs: int | None = None


@dataclass
class TrainStage(Message):
    stage: str
    detail: str = ""


@dataclass
class TrainStarted(Message):
    total_steps: int
    steps_per_epoch: int
    epochs: int
    device: str = ""
    initial_step: int = 0


@dataclass
class TrainStep(Message):
    step: int
    epoch: float
    loss: float
    learning_rate: float
    examples_per_second: float
    at: float = 0.0  # wall-clock time of the step (for the ETA)


@dataclass
class TrainEval(Message):
    step: int
    epoch: int
    metrics: dict[str, float]
    is_best: bool


@dataclass
class TrainLog(Message):
    line: str


@dataclass
class TrainFinished(Message):
    """Training ended: finished (``summary``), stopped (``interrupted``, with the resume command),
    failed (``error``) or, when attached, the followed run finished or was detached."""

    run_dir: Path | None
    summary: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    error: str = ""
    resume_command: str = ""
    detached: bool = False


# -- model in the loop -------------------------------------------------------------------------------


@dataclass
class SuggestProgress(Message):
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SuggestProgress)


@dataclass
class SuggestDone(Message):
    count: int
    run_dir: Path | None
    error: str = ""


# -- evaluation and runs ----------------------------------------------------------------------------


@dataclass
class EvaluationLoaded(Message):
    evaluation: Any  # tui.evaluation.RunEvaluation
    error: str = ""


@dataclass
class RunChosen(Message):
    """A run was picked on the Runs screen: ``action`` is "evaluate", "attach" or "export"."""

    run_dir: Path
    action: str


# -- export ------------------------------------------------------------------------------------------


@dataclass
class ExportProgress(Message):
    """A stage of the export started (load data, load model, reference, export)."""

    line: str


@dataclass
class ExportVariantDone(Message):
    """One exported variant was verified (a row of ``export_report.json``)."""

    report: dict[str, Any]


@dataclass
class ExportFinished(Message):
    """The export ended: ``reports`` of this export, or ``error`` (``verification_failed``: the
    reports were written and say which variant broke a threshold)."""

    run_dir: Path
    reports: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    verification_failed: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
