"""Runs screen: the project's past runs (model versions) side by side with their key metrics; the
line under the table says where the highlighted one came from (a full run, or an update of its
parent: what it learned and its gate's figures), and the title how many labelled items wait to be
learned. Enter opens a run on the Evaluate screen, ``a`` follows a running one on the Train screen,
``x`` opens a finished one on the Export screen."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from assistant_builder.tui.messages import RunChosen
from assistant_builder.tui.project import Project, RunInfo, describe_version, display_path, list_runs
from assistant_builder.tui.widgets.nav import NavBar


def _export_cell(run: RunInfo) -> str:
    """The deployable variant's figures: int8 if exported, else the first export."""
    exports = sorted((e for e in run.exports if e.get("status") != "rejected"), key=lambda e: e.get("variant") != "int8")
    if not exports:
        return "–"
    e = exports[0]
    return (f"{e.get('exporter')}/{e.get('variant')} {e.get('exported_metric', 0):.3f} "
            f"{e.get('latency_batch1_ms_p50', 0):.1f}ms {e.get('size_bytes', 0) / 1e6:.0f}MB" + ("" if e.get("passed") else " FAILED"))


class RunsScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "evaluate run", id="runs.open"),
        Binding("a", "attach", "attach to running", id="runs.attach"),
        Binding("x", "export", "export run", id="runs.export"),
        Binding("g", "reload", "reload", id="runs.reload"),
    ]

    def __init__(self, project: Project) -> None:
        super().__init__(id="runs-screen")
        self.project = project
        self.runs: list[RunInfo] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar("runs", id="nav")
        yield Static(id="runs-title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="runs-version")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"runs · {self.project.name}"

    def on_screen_resume(self) -> None:
        """Runs appear and finish while the app is open: re-read them each time the screen is shown."""
        self.action_reload()

    def action_reload(self) -> None:
        self.runs = list_runs(self.project.runs_dir, self.project.name)
        metric_names: list[str] = []
        for run in self.runs:
            for name in ([run.metric] if run.metric else []) + list(run.metrics):
                if name not in metric_names:
                    metric_names.append(name)
        metric_names = metric_names[:2]  # the run's metric and one more: the table fits 100 columns
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns("run", "status", "trainer/from", *metric_names, "best/ep", "ex/s", "export")
        for run in self.runs:
            metrics = [f"{run.metrics[n]:.4f}" if n in run.metrics else "–" for n in metric_names]
            epochs = f"{run.best_epoch if run.best_epoch is not None else '–'}/{run.epochs or '–'}"
            speed = f"{run.examples_per_second:.0f}" if run.examples_per_second else "–"
            origin = run.trainer if run.update is None else (
                {"update": "", "refused": "refused ", "updating": "… "}[run.version_kind] + "from " + self._short_name(Path(str(run.update.get("parent", "?")))))
            table.add_row(self._short_name(run), run.status, origin, *metrics, epochs, speed, _export_cell(run), key=str(run.path))
        where = display_path(self.project.runs_dir)
        self.query_one("#runs-title", Static).update(
            (f"{len(self.runs)} run{'s' if len(self.runs) != 1 else ''} of '{self.project.name}' in {where}" if self.runs
             else f"No runs of '{self.project.name}' in {where} yet.") + self._waiting())
        self._show_version()

    def _waiting(self) -> str:
        """`` · N labelled items wait to be learned`` by the newest finished run (nothing when none wait)."""
        from assistant_builder.unlearned import unlearned

        store = self.project.store_path
        finished = next((run for run in self.runs if run.status == "finished"), None)
        if finished is None or not store.is_file():
            return ""
        try:
            found = unlearned(store, finished.path)
        except Exception:  # noqa: BLE001 - a store being written or from another version: no count, the table still shows
            return ""
        if not found.waiting or not found.run_reads_store:
            return ""
        return f" · {found.waiting} labelled item{'s' if found.waiting != 1 else ''} wait to be learned (builder run --from, or builder serve --learn)"

    def _show_version(self) -> None:
        run = self._selected()
        self.query_one("#runs-version", Static).update(
            describe_version(run, lambda name: self._short_name_of(str(name))) if run is not None else "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_version()

    def _short_name(self, run: RunInfo | Path) -> str:
        """The run's folder name without the recipe name the title already gives (its timestamp)."""
        return self._short_name_of(run.name)

    def _short_name_of(self, name: str) -> str:
        prefix = f"{self.project.name}-"
        return name[len(prefix):] if name.startswith(prefix) else name

    def _selected(self) -> RunInfo | None:
        if not self.runs:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.runs[row] if 0 <= row < len(self.runs) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        run = self._selected()
        if run is not None:
            self.post_message(RunChosen(run.path, "evaluate"))

    def action_attach(self) -> None:
        run = self._selected()
        if run is None or run.status != "running":
            self.notify("Select a running run to attach to.", severity="warning")
            return
        self.post_message(RunChosen(run.path, "attach"))

    def action_export(self) -> None:
        run = self._selected()
        if run is None or run.status != "finished":
            self.notify("Select a finished run to export.", severity="warning")
            return
        self.post_message(RunChosen(run.path, "export"))
