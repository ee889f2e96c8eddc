"""``BuilderApp``: the Textual app behind ``builder tui``.

Five screens as modes (F1 label, F2 train, F3 evaluate, F4 runs, F5 export), one label store shared
by the screens on the UI thread (workers open their own connections). The training engine, the
suggestion predictor and the exporter can be injected (tests pass fakes; ``builder tui`` uses the
real ones).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from assistant_builder.tui.messages import RunChosen
from assistant_builder.tui.project import Project
from assistant_builder.tui.screens.evaluate import EvaluateScreen
from assistant_builder.tui.screens.export import ExportScreen
from assistant_builder.tui.screens.label import LabelScreen
from assistant_builder.tui.screens.runs import RunsScreen
from assistant_builder.tui.screens.train import TrainScreen
from assistant_builder.labelling.store import LabelStore


class BuilderApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "assistant-builder"
    # F1-F5 are listed by each screen's NavBar (a tab line), leaving the footer to the screen's keys.
    BINDINGS = [
        Binding("f1", "switch_mode('label')", "label", id="app.label", show=False),
        Binding("f2", "switch_mode('train')", "train", id="app.train", show=False),
        Binding("f3", "switch_mode('evaluate')", "evaluate", id="app.evaluate", show=False),
        Binding("f4", "switch_mode('runs')", "runs", id="app.runs", show=False),
        Binding("f5", "switch_mode('export')", "export", id="app.export", show=False),
        Binding("ctrl+q", "quit", "quit", id="app.quit", priority=True),
    ]

    def __init__(self, project: Project, registry: Any, *, engine: Callable[..., Any] | None = None,
                 predictor_factory: Callable[[Path], Any] | None = None, exporter: Callable[..., Any] | None = None,
                 start: str = "label") -> None:
        super().__init__()
        self.project = project
        self.registry = registry
        self.store = LabelStore(project.store_path)
        self.screens_by_mode: dict[str, Screen[Any]] = {}
        self.start_mode = start
        factories: dict[str, Callable[[], Screen[Any]]] = {
            "label": lambda: LabelScreen(project, self.store, predictor_factory),
            "train": lambda: TrainScreen(project, self.store, registry, engine),
            "evaluate": lambda: EvaluateScreen(project, self.store, registry),
            "runs": lambda: RunsScreen(project),
            "export": lambda: ExportScreen(project, registry, exporter),
        }
        for mode, factory in factories.items():
            self.add_mode(mode, self._remembering(mode, factory))

    def _remembering(self, mode: str, factory: Callable[[], Screen[Any]]) -> Callable[[], Screen[Any]]:
        def make() -> Screen[Any]:
            self.screens_by_mode[mode] = screen = factory()
            return screen
        return make

    def on_mount(self) -> None:
        self.title = f"assistant-builder · {self.project.recipe_path.name}"
        self.switch_mode(self.start_mode)

    def keep_drafts(self) -> None:
        """Keep what was typed in the response editor but not saved, as its item's draft."""
        label = self.screens_by_mode.get("label")
        if isinstance(label, LabelScreen):
            label.keep_draft()

    def on_unmount(self) -> None:
        self.keep_drafts()
        self.store.close()

    async def on_run_chosen(self, message: RunChosen) -> None:
        mode = {"evaluate": "evaluate", "export": "export"}.get(message.action, "train")
        await self.switch_mode(mode)
        screen = self.screens_by_mode[mode]
        if isinstance(screen, EvaluateScreen):
            screen.show_run(message.run_dir)
        elif isinstance(screen, ExportScreen):
            screen.action_reload(prefer=message.run_dir)
        elif isinstance(screen, TrainScreen):
            screen.action_attach(message.run_dir)

    async def action_quit(self) -> None:
        """Quit; a run training inside the app is stopped first (checkpoint kept), a run started
        headless and merely followed here keeps going."""
        train = self.screens_by_mode.get("train")
        if isinstance(train, TrainScreen) and train.busy and not train.attached and not train.quit_when_done:
            self.notify("Stopping training (writing a checkpoint) before quitting… ctrl+q again: close the window now "
                        "(the process still ends only after the checkpoint).", timeout=30)
            train.stop_and_quit()
            return
        self.keep_drafts()
        self.exit()
