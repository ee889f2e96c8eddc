"""Export screen: pick a finished run, tick the formats (every installed exporter plugin) and their
yes/no options (ONNX int8 quantisation...), and ``e`` exports and verifies it in a worker thread,
as ``builder run`` does after training. The report table shows, per format and variant, the
metric on the exported model against PyTorch, prediction agreement, latency, size and the verdict;
below it, where the bundles are and the ``builder predict`` / ``builder serve`` commands to use them.

The worker (``tui.exporting.run_export`` over ``engine.reexport.export_run``) only posts messages;
the handlers here, on the UI thread, update the widgets. Failures are shown, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Checkbox, DataTable, Footer, Header, Select, Static
from textual.worker import Worker

from assistant_builder.tui import messages as m
from assistant_builder.tui.exporting import (REPORT_COLUMNS, exporter_choices, read_export_report, report_cells, run_export, run_metric,
                                             thresholds_text, usage_lines, verdict_text)
from assistant_builder.tui.project import Project, RunInfo, list_runs
from assistant_builder.tui.widgets.nav import NavBar
from assistant_builder.tui.widgets.tick_box import TickBox


def _run_label(run: RunInfo) -> str:
    metric = run.metrics.get(run.metric)
    shown = f" · {run.metric} {metric:.4f}" if metric is not None else ""
    exported = " · " + "+".join(dict.fromkeys(e.get("exporter", "?") for e in run.exports)) if run.exports else ""
    return f"{run.name}{shown}{exported}"


def _short(description: str, width: int = 44) -> str:
    text = description.split(" (")[0].split(";")[0]
    return text if len(text) <= width else text[: width - 1] + "…"


class ExportScreen(Screen[None]):
    BINDINGS = [
        Binding("e", "export", "export + verify", id="export.run"),
        Binding("g", "reload", "reload runs", id="export.reload"),
    ]

    def __init__(self, project: Project, registry: Any, exporter: Callable[..., Any] | None = None) -> None:
        super().__init__(id="export-screen")
        self.project = project
        self.registry = registry
        self.exporter = exporter  # tests may inject a stand-in for engine.reexport.export_run
        self.choices = exporter_choices(registry, None)
        self.runs: list[RunInfo] = []
        self.run_dir: Path | None = None
        self.worker: Worker[None] | None = None
        self.progress: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.result: m.ExportFinished | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar("export", id="nav")
        with Horizontal(id="export-run-row"):
            yield Static("run ", id="export-run-label")
            yield Select[Path]([], prompt="no finished run yet", id="export-run", compact=True)
        with Horizontal(id="export-main"):
            with Vertical(id="export-choices"):
                yield Static("[b]formats[/b] [dim](space ticks)[/dim]", id="export-choices-title")
                for choice in self.choices:
                    yield TickBox(f"{choice.name} [dim]{escape(_short(choice.description))}[/dim]", choice.selected,
                                   id=f"fmt-{choice.name}", compact=True, tooltip=choice.description)
                    for option in choice.options:
                        yield TickBox(f"{option.name} [dim]{escape(_short(option.description, 38))}[/dim]", option.value,
                                       id=f"opt-{choice.name}-{option.name}", classes="export-option", compact=True,
                                       tooltip=option.description)
            yield Static(id="export-status")
        yield Static(id="export-report-title")
        yield DataTable(id="export-report", cursor_type="row", zebra_stripes=True)
        yield Static(id="export-usage")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"export · {self.project.name}"
        table = self.query_one(DataTable)
        table.add_columns(*REPORT_COLUMNS)
        self.action_reload()

    def on_screen_resume(self) -> None:
        """Runs finish while the app is open: re-read them each time the screen is shown."""
        if not self.busy:
            self.action_reload()

    @property
    def busy(self) -> bool:
        return self.worker is not None and not self.worker.is_finished

    # -- runs -----------------------------------------------------------------------------------
    def action_reload(self, prefer: Path | None = None) -> None:
        """Re-read the project's finished runs; show ``prefer``, else the run shown, else the newest."""
        if self.busy:
            self.notify("An export is running; pick another run when it is done.", severity="warning")
            return
        self.runs = [r for r in list_runs(self.project.runs_dir, self.project.name) if r.status == "finished"]
        paths = [run.path for run in self.runs]
        target = next((p for p in (prefer, self.run_dir) if p is not None and p in paths), paths[0] if paths else None)
        select: Select[Path] = self.query_one("#export-run", Select)
        with select.prevent(Select.Changed):
            select.set_options([(_run_label(run), run.path) for run in self.runs])
            if target is not None:
                select.value = target
        if prefer is not None and target != prefer:
            self.notify(f"{prefer.name} is not a finished run of this project.", severity="warning")
        self.show_run(target)

    def show_run(self, run_dir: Path | None) -> None:
        """Show ``run_dir`` (one of ``self.runs``): its last export report and, when it is another run than
        the one shown, the export choices of its recipe (ticks made for the same run are kept)."""
        if run_dir != self.run_dir:
            self.choices = exporter_choices(self.registry, run_dir)
            for choice in self.choices:
                self.query_one(f"#fmt-{choice.name}", Checkbox).value = choice.selected
                for option in choice.options:
                    self.query_one(f"#opt-{choice.name}-{option.name}", Checkbox).value = option.value
        self.run_dir, self.result, self.progress = run_dir, None, []
        self._sync_options()
        self.rows = read_export_report(run_dir)
        self._fill_report()
        if run_dir is None:
            self._status("No finished run yet: train one (F2). Exports come from a run's saved model.")
            return
        self._status(("last export: " + ", ".join(f"{r['exporter']}/{r['variant']} {verdict_text(r)}" for r in self.rows)
                      if self.rows else "not exported yet") + "\n[dim]e: export and verify with the formats ticked[/dim]")

    @on(Select.Changed, "#export-run")
    def _run_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, Path) and event.value != self.run_dir and not self.busy:
            self.show_run(event.value)

    @on(Checkbox.Changed)
    def _ticked(self, event: Checkbox.Changed) -> None:
        self._sync_options()

    def _sync_options(self) -> None:
        """An exporter's options are greyed out while the exporter is not ticked."""
        for choice in self.choices:
            ticked = self.query_one(f"#fmt-{choice.name}", Checkbox).value
            for option in choice.options:
                self.query_one(f"#opt-{choice.name}-{option.name}", Checkbox).disabled = not ticked or self.busy

    def chosen(self) -> tuple[list[str], dict[str, dict[str, bool]]]:
        """The ticked formats and the values of their yes/no options."""
        formats = [c.name for c in self.choices if self.query_one(f"#fmt-{c.name}", Checkbox).value]
        options = {c.name: {o.name: self.query_one(f"#opt-{c.name}-{o.name}", Checkbox).value for o in c.options}
                   for c in self.choices if c.name in formats and c.options}
        return formats, options

    # -- display --------------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        gates = f"{escape(thresholds_text(self.run_dir))}\n" if self.run_dir is not None else ""
        self.query_one("#export-status", Static).update(gates + text)

    def _fill_report(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.query_one("#export-report-title", Static).update(
            f"[b]export report[/b] · {escape(run_metric(self.run_dir))} on the validation set, PyTorch vs exported · p50: batch-1 latency"
            if self.run_dir is not None else "")
        for row in self.rows:
            table.add_row(*report_cells(row))
        usage = self.query_one("#export-usage", Static)
        if self.run_dir is None or not self.rows:
            usage.update("")
            return
        failures = [f"[b $error]{escape(row['exporter'])}/{escape(row['variant'])} {'rejected' if row.get('status') == 'rejected' else 'failed'}:[/] "
                    f"{escape('; '.join(row.get('failures') or []))}" for row in self.rows if not row.get("passed")]
        usage.update("\n".join([*failures, *(escape(line) for line in usage_lines(self.run_dir, self.rows))]))

    # -- export ---------------------------------------------------------------------------------
    def action_export(self) -> None:
        if self.busy:
            self.notify("An export is already running.", severity="warning")
            return
        if self.run_dir is None:
            self.notify("No finished run to export: train one first (F2).", severity="warning")
            return
        formats, options = self.chosen()
        if not formats:
            self.notify("Tick at least one format (onnx is the one builder predict and serve read).", severity="warning")
            return
        self.result, self.progress, self.rows = None, [], []
        self._fill_report()
        for widget in (self.query_one("#export-run", Select), *self.query(Checkbox)):
            widget.disabled = True
        ticked = ", ".join(f + (" (" + ", ".join(k for k, v in options.get(f, {}).items() if v) + ")" if any(options.get(f, {}).values()) else "")
                           for f in formats)
        self._progress(f"exporting {self.run_dir.name}: {ticked}…")
        self.worker = self._export(self.run_dir, formats, options)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export(self, run_dir: Path, formats: list[str], options: dict[str, dict[str, Any]]) -> None:
        run_export(run_dir, self.registry, formats, options, self.post_message, self.exporter)

    def _progress(self, line: str) -> None:
        self.progress = [*self.progress[-5:], line]
        self._status("\n".join(escape(p) for p in self.progress))

    # -- message handlers (UI thread) -------------------------------------------------------------
    def on_export_progress(self, message: m.ExportProgress) -> None:
        self._progress(f"• {message.line}".replace(str(self.run_dir), self.run_dir.name if self.run_dir else ""))

    def on_export_variant_done(self, message: m.ExportVariantDone) -> None:
        row = message.report
        self.rows.append(row)
        self.query_one(DataTable).add_row(*report_cells(row))
        self._progress(f"{'✓' if row.get('passed') else '✗'} {row.get('exporter')}/{row.get('variant')} {verdict_text(row)}")

    def on_export_finished(self, message: m.ExportFinished) -> None:
        self.result = message
        for widget in (self.query_one("#export-run", Select), *self.query(Checkbox)):
            widget.disabled = False
        self._sync_options()
        if message.error and not message.verification_failed:
            self._progress(f"[failed] {message.error.splitlines()[0]}")
            self.query_one("#export-usage", Static).update(f"[b $error]{escape(message.error)}[/]")
            self.notify(message.error, title="export failed", severity="error", timeout=15)
            return
        self.rows = read_export_report(message.run_dir)  # the run's whole report: formats exported earlier stay listed
        self._fill_report()
        notes = [f"note: {n}" for n in message.notes]
        if message.verification_failed:
            self._progress("✗ verification failed: an export broke the recipe's thresholds (see below)")
            self.notify("An export broke the recipe's thresholds; the table says which.", title="export verification failed",
                        severity="warning", timeout=15)
        else:
            self._progress(f"✓ exported and verified ({message.seconds:.0f} s)")
            self.notify(f"Exported {message.run_dir.name}: {len(message.reports)} variant(s) verified.", title="export finished")
        for note in notes:
            self._progress(note)
