"""Out-of-scope panel of the Evaluate screen: the rejection threshold as a what-if.

Shows, at the current threshold, how many validation examples are rejected, in-scope accuracy and
kept share, out-of-scope precision / recall / F1 (``tui.threshold.what_if``), and a table of the
rejected examples and of the out-of-scope ones that are accepted. ``step(n)`` moves the threshold
``n`` validation scores up (reject more) or down; nothing is written: the panel shows the
``builder serve`` option and the recipe line that would apply the threshold.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from assistant_builder.tui.project import display_path
from assistant_builder.tui.threshold import ScoredExample, WhatIf, candidate_thresholds, format_threshold, step_threshold, what_if


def _figure(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


class ThresholdPanel(Vertical):
    """Owns the what-if state (the examples, the run's threshold, the current one); the screen only forwards keys."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.examples: list[ScoredExample] = []
        self.candidates: list[float] = []
        self.run_threshold: float | None = None
        self.threshold: float | None = None
        self.fallback_label = ""
        self.margin = 0.0
        self.run_rejected = 0
        self.run_dir: Path | None = None
        self.result: WhatIf | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="eval-oos-figures")
        yield DataTable(id="eval-oos", cursor_type="row", zebra_stripes=True)

    def show(self, examples: list[ScoredExample], fallback_label: str, threshold: float | None, run_dir: Path,
             margin: float = 0.0, run_rejected: int = 0) -> None:
        """Start on the run's own threshold (``None``: the run fitted none)."""
        self.examples, self.candidates = examples, candidate_thresholds([e.score for e in examples])
        self.fallback_label, self.run_threshold, self.run_dir = fallback_label, threshold, run_dir
        self.margin, self.run_rejected = margin, run_rejected
        self.set_threshold(threshold)

    def step(self, steps: int) -> None:
        self.set_threshold(step_threshold(self.candidates, self.threshold, steps))

    def reset(self) -> None:
        self.set_threshold(self.run_threshold)

    def set_threshold(self, threshold: float | None) -> None:
        self.threshold = threshold
        self.result = result = what_if(self.examples, threshold)
        self.query_one("#eval-oos-figures", Static).update(self._figures(result))
        table = self.query_one("#eval-oos", DataTable)
        table.clear(columns=True)
        table.add_columns("decision", "score", "gold", "would say", "text")
        for rejected, example in result.rows:
            if rejected:
                decision = Text("rejected", style="green" if example.out_of_scope else "red")
            else:
                decision = Text("accepted", style="red")
            table.add_row(decision, f"{example.score:.3f}", Text(example.gold[:20]), Text(example.candidate[:20]), Text(example.text[:200]))

    @staticmethod
    def _threshold_text(threshold: float | None) -> str:
        return "none (reject nothing)" if threshold is None else f"{threshold:.4f}"  # as the report shows it

    def _figures(self, result: WhatIf) -> str:
        scores = result.scores
        current = self._threshold_text(result.threshold)
        run = "the run's" if result.threshold == self.run_threshold else f"the run's: {self._threshold_text(self.run_threshold)}"
        lines = [f"[b]threshold {current}[/b] ({run}) · rejected [b]{result.rejected}[/b] of {len(self.examples)}: "
                 f"{result.rejected_out_of_scope} of {result.out_of_scope} out-of-scope, {result.rejected_in_scope} of {result.in_scope} in-scope",
                 f"in-scope accuracy [b]{_figure(scores.in_scope_accuracy)}[/b] · kept {_figure(scores.kept)} · out-of-scope "
                 f"precision {_figure(scores.oos_precision)} recall [b]{_figure(scores.oos_recall)}[/b] F1 [b]{_figure(scores.oos_f1)}[/b]"]
        if self.run_threshold is None and self.run_rejected:
            lines.append(f"[dim]the run fitted no threshold: it rejected {self.run_rejected} where its trained "
                         f"{escape(self.fallback_label)} class won[/dim]")
        if self.margin > 0:
            lines.append(f"[dim]fallback_margin = {self.margin} is left out of these figures (it also rejects close calls)[/dim]")
        if result.threshold is not None and result.threshold != self.run_threshold:
            value = format_threshold(result.threshold, [e.score for e in self.examples])  # short, same decisions
            run = escape(display_path(self.run_dir)) if self.run_dir else "RUN"
            lines.append(f"[dim]what-if only, nothing is saved · to use it: builder serve {run} --fallback-threshold {value}[/dim]")
        lines.append("[dim]\\[ / ] move the threshold one validation score (] rejects more), { / } ten, = back to the run's[/dim]")
        return "\n".join(lines)
