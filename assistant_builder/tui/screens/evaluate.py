"""Evaluate screen: a run's metrics, per-label scores, confusion matrix and an error browser sorted
by confidence; ``b`` sends the highlighted error back to the labelling queue (marked for review,
with its gold and predicted labels shown on the Label screen).

For a run with out-of-scope rejection, an "Out of scope" tab (``o``) shows the rejected validation
examples and the out-of-scope ones accepted; ``[`` / ``]`` (``{`` / ``}``: ten at a time, ``=``: back)
move the threshold through the validation scores as a what-if, with the figures updated live. A
"Calibration" tab (``c``) draws the reliability chart when the run saved its bins. An "Answers"
tab (``a``) lists a generative run's answers on validation prompts: reference, base model and
fine-tuned, with token F1, the highlighted one in full. These tabs are hidden for runs without that
data.

The run is read in a worker thread (reloading the validation data can take a moment); the worker
posts ``EvaluationLoaded`` and the handler fills the tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from assistant_builder.tui.evaluation import RunEvaluation, load_evaluation
from assistant_builder.tui.messages import EvaluationLoaded
from assistant_builder.tui.project import Project, latest_run
from assistant_builder.labelling.store import LabelStore
from assistant_builder.tui.widgets.nav import NavBar
from assistant_builder.tui.widgets.reliability_chart import ReliabilityChart
from assistant_builder.tui.widgets.samples_panel import SamplesPanel
from assistant_builder.tui.widgets.threshold_panel import ThresholdPanel

#: tabs shown only when the run has their data, and the actions that need them
OPTIONAL_TABS = {"eval-oos-tab": ("threshold", "threshold_reset"), "eval-calibration-tab": (), "eval-samples-tab": ()}
THRESHOLD = Binding.Group("threshold", compact=True)


class EvaluateScreen(Screen[None]):
    BINDINGS = [
        Binding("b", "send_back", "send back to labelling", id="evaluate.send_back"),
        Binding("g", "reload", "reload", id="evaluate.reload"),
        Binding("e", "show_tab('eval-errors-tab')", "errors", id="evaluate.errors"),
        Binding("x", "show_tab('eval-confusion-tab')", "confusion", id="evaluate.confusion"),
        Binding("s", "show_tab('eval-summary-tab')", "scores", id="evaluate.summary"),
        Binding("o", "show_tab('eval-oos-tab')", "out of scope", id="evaluate.out_of_scope"),
        Binding("left_square_bracket", "threshold(-1)", "threshold down", key_display="[", id="evaluate.threshold_down", group=THRESHOLD),
        Binding("right_square_bracket", "threshold(1)", "threshold up", key_display="]", id="evaluate.threshold_up", group=THRESHOLD),
        Binding("left_curly_bracket", "threshold(-10)", "threshold down 10", key_display="{", id="evaluate.threshold_down_10", show=False),
        Binding("right_curly_bracket", "threshold(10)", "threshold up 10", key_display="}", id="evaluate.threshold_up_10", show=False),
        Binding("equals_sign", "threshold_reset", "the run's threshold", key_display="=", id="evaluate.threshold_reset", show=False),
        Binding("c", "show_tab('eval-calibration-tab')", "calibration", id="evaluate.calibration"),
        Binding("a", "show_tab('eval-samples-tab')", "answers", id="evaluate.answers"),
    ]

    def __init__(self, project: Project, store: LabelStore, registry: Any) -> None:
        super().__init__(id="evaluate-screen")
        self.project = project
        self.store = store
        self.registry = registry
        self.run_dir: Path | None = None
        self.evaluation: RunEvaluation | None = None
        self.sent: list[int] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar("evaluate", id="nav")
        yield Static("no run loaded", id="eval-title")
        with TabbedContent(initial="eval-errors-tab", id="eval-tabs"):
            with TabPane("Errors", id="eval-errors-tab"):
                yield DataTable(id="eval-errors", cursor_type="row", zebra_stripes=True)
            with TabPane("Scores", id="eval-summary-tab"):
                with Horizontal():
                    yield DataTable(id="eval-metrics", cursor_type="row")
                    yield DataTable(id="eval-per-label", cursor_type="row")
            with TabPane("Confusion", id="eval-confusion-tab"):
                yield DataTable(id="eval-confusion")
            with TabPane("Out of scope", id="eval-oos-tab"):
                yield ThresholdPanel(id="eval-oos-panel")
            with TabPane("Calibration", id="eval-calibration-tab"):
                yield Static("", id="eval-calibration-figures")
                yield ReliabilityChart(id="eval-reliability")
            with TabPane("Answers", id="eval-samples-tab"):
                yield SamplesPanel(id="eval-samples-panel")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"evaluate · {self.project.name}"
        self.available: set[str] = set()  # the optional tabs this run has data for
        for tab in OPTIONAL_TABS:
            self.query_one(TabbedContent).hide_tab(tab)
        self.show_run(self.run_dir)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Out-of-scope and calibration keys only for a run that has that data (hidden from the footer otherwise)."""
        for tab, actions in OPTIONAL_TABS.items():
            if (action in actions or (action == "show_tab" and parameters == (tab,))) and tab not in getattr(self, "available", ()):
                return False
        return True

    def show_run(self, run_dir: Path | None = None) -> None:
        """Load ``run_dir`` (default: the newest finished run of the project) in a worker."""
        run_dir = run_dir or latest_run(self.project.runs_dir, self.project.name)
        self.run_dir = run_dir
        if run_dir is None:
            self.query_one("#eval-title", Static).update("No finished run yet: train one (F2), or pick one on the Runs screen (F4).")
            return
        self.query_one("#eval-title", Static).update(f"loading {run_dir.name}…")
        self._load(run_dir)

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False)
    def _load(self, run_dir: Path) -> None:
        try:
            self.post_message(EvaluationLoaded(load_evaluation(run_dir, self.registry)))
        except Exception as error:  # noqa: BLE001 - shown on screen
            self.post_message(EvaluationLoaded(None, f"{run_dir.name}: {type(error).__name__}: {error}"))

    def on_evaluation_loaded(self, message: EvaluationLoaded) -> None:
        if message.error or message.evaluation is None:
            self.query_one("#eval-title", Static).update(f"[b $error]{message.error}[/]")
            return
        if message.evaluation.run.path != self.run_dir:
            return  # a load superseded by a newer choice of run
        self.evaluation = evaluation = message.evaluation
        metric = evaluation.metrics.get(evaluation.metric)
        title = f"[b]{evaluation.run.name}[/b] ({evaluation.run.status}) · {evaluation.metric} " + (f"{metric:.4f}" if metric is not None else "–")
        title += f" · {len(evaluation.errors)} errors"
        if evaluation.note:
            title += f"\n[dim]{evaluation.note}[/dim]"
        self.query_one("#eval-title", Static).update(title)
        self._fill_metrics(evaluation)
        self._fill_confusion(evaluation)
        self._fill_errors(evaluation)
        self._fill_optional(evaluation)

    def _fill_metrics(self, evaluation: RunEvaluation) -> None:
        table = self.query_one("#eval-metrics", DataTable)
        table.clear(columns=True)
        table.add_columns("metric", "value")
        for name, value in evaluation.metrics.items():
            table.add_row(name, f"{value:.4f}")
        per_label = self.query_one("#eval-per-label", DataTable)
        per_label.clear(columns=True)
        per_label.add_columns("label", "precision", "recall", "F1", "support")
        for label, scores in sorted(evaluation.per_label.items(), key=lambda item: item[1].get("f1", 0.0)):
            per_label.add_row(label[:24], *(f"{scores.get(k, 0.0):.3f}" for k in ("precision", "recall", "f1")), str(scores.get("support", "")))

    def _fill_confusion(self, evaluation: RunEvaluation) -> None:
        table = self.query_one("#eval-confusion", DataTable)
        table.clear(columns=True)
        if not evaluation.confusion:
            table.add_column("no confusion matrix for this task")
            return
        labels = evaluation.labels
        table.add_columns("gold \\ predicted", *(label[:8] for label in labels))
        for label, row in zip(labels, evaluation.confusion):
            cells = [Text(str(v), style="bold" if i == labels.index(label) else ("red" if v else "dim")) for i, v in enumerate(row)]
            table.add_row(label[:18], *cells)

    def _fill_errors(self, evaluation: RunEvaluation) -> None:
        table = self.query_one("#eval-errors", DataTable)
        table.clear(columns=True)
        table.add_columns("score", "gold", "predicted", "text")
        for error in evaluation.errors:
            table.add_row(f"{error.score:.3f}", error.gold[:20], error.predicted[:20], error.text[:200])

    def _fill_optional(self, evaluation: RunEvaluation) -> None:
        """The out-of-scope and calibration tabs, shown only when the run has their data."""
        tabs = self.query_one(TabbedContent)
        self.available = set()
        if evaluation.scored and evaluation.fallback_label:
            self.available.add("eval-oos-tab")
            self.query_one(ThresholdPanel).show(evaluation.scored, evaluation.fallback_label, evaluation.fallback_threshold,
                                                evaluation.run.path, evaluation.fallback_margin, evaluation.run_rejected)
        calibration = evaluation.calibration
        if (calibration.get("reliability") or {}).get("after"):
            self.available.add("eval-calibration-tab")
            ece = " → ".join(f"{name} {calibration[key]:.4f}" for name, key in (
                ("before", "ece_before"), ("after", "ece_after"), ("out of fold", "ece_after_out_of_fold"))
                if isinstance(calibration.get(key), (int, float)))
            method = {"temperature": "temperature scaling", "temperature+isotonic": "temperature scaling + isotonic map"}.get(
                calibration.get("method"), "no calibration")
            self.query_one("#eval-calibration-figures", Static).update(
                f"{method} T = {calibration.get('temperature', 1.0):.3f}" + (f" · ECE {ece}" if ece else "") + " · validation, 10 bins")
            self.query_one(ReliabilityChart).draw(calibration)
        if evaluation.samples:
            self.available.add("eval-samples-tab")
            self.query_one(SamplesPanel).show(evaluation.samples)
        for tab in OPTIONAL_TABS:
            if tab in self.available:
                tabs.show_tab(tab)
            else:
                if tabs.active == tab:
                    tabs.active = "eval-errors-tab"
                tabs.hide_tab(tab)
        if evaluation.samples and not evaluation.errors and tabs.active == "eval-errors-tab":
            tabs.active = "eval-samples-tab"  # a generative run has answers to read, not errors
        self.refresh_bindings()

    # -- actions --------------------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        tables = self.query(f"#{tab} DataTable")
        if tables:
            tables.first(DataTable).focus()

    def action_threshold(self, steps: int) -> None:
        """Move the out-of-scope threshold ``steps`` validation scores (a what-if: nothing is saved)."""
        if self.query_one(TabbedContent).active != "eval-oos-tab":
            self.action_show_tab("eval-oos-tab")
        self.query_one(ThresholdPanel).step(steps)

    def action_threshold_reset(self) -> None:
        if self.query_one(TabbedContent).active != "eval-oos-tab":
            self.action_show_tab("eval-oos-tab")
        self.query_one(ThresholdPanel).reset()

    def action_reload(self) -> None:
        self.show_run(self.run_dir)

    def action_send_back(self) -> None:
        if self.evaluation is None or not self.evaluation.errors:
            self.notify("No error to send back.", severity="warning")
            return
        table = self.query_one("#eval-errors", DataTable)
        if self.query_one(TabbedContent).active != "eval-errors-tab":
            self.action_show_tab("eval-errors-tab")  # show which error the key applies to first
            return
        row = table.cursor_row
        error = self.evaluation.errors[row]
        if error.payload is None:
            self.notify(self.evaluation.note or "This error cannot be sent back.", severity="warning")
            return
        note = f"sent back from {self.evaluation.run.name}: gold {error.gold}, predicted {error.predicted} ({error.score:.2f})"
        decision = self.store.send_back(error.payload, error.gold, error.suggestion, note, error.source or self.evaluation.run.name)
        self.sent.append(decision.item_id)
        self.notify(f"Sent to the labelling queue (#{decision.item_id}): gold {error.gold}, predicted {error.predicted}.")
