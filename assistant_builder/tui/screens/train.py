"""Train screen: run the same engine as ``builder run`` in a worker thread, with a live loss and
validation-metric chart, step/epoch, examples/s, ETA and a log tail; cancel keeps the last
checkpoint and shows the resume command. ``a`` attaches to a run started headless (``builder run``
in another terminal) by tailing its ``metrics.jsonl``; detaching leaves that run alone.

The worker only posts messages (``tui.messages``) through ``training.PostingCallback``; the
handlers here, on the UI thread, update the ``TrainingState`` and redraw.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Log, Static
from textual.worker import Worker, get_current_worker

from assistant_builder.errors import BuilderError, RunInterrupted
from assistant_builder.labelling.store import LabelStore
from assistant_builder.tui import messages as m
from assistant_builder.tui.project import Project, display_path, list_runs
from assistant_builder.tui.trainset import export_training_data
from assistant_builder.tui.training import PostingCallback, TrainingState, format_eta, tail_run
from assistant_builder.tui.widgets.loss_chart import LossChart
from assistant_builder.tui.widgets.nav import NavBar


class TrainScreen(Screen[None]):
    BINDINGS = [
        Binding("t", "start", "train", id="train.start"),
        Binding("c", "cancel", "cancel / detach", id="train.cancel"),
        Binding("a", "attach", "attach to running", id="train.attach"),
        Binding("d", "toggle_source", "data source", id="train.source"),
    ]

    def __init__(self, project: Project, store: LabelStore, registry: Any, engine: Any = None) -> None:
        super().__init__(id="train-screen")
        self.project = project
        self.store = store
        self.registry = registry
        self.engine = engine
        self.state = TrainingState(metric=self.project.metric)
        self.stop_event = threading.Event()
        self.worker: Worker[None] | None = None
        self.attached = False
        self.use_store = store.progress().labelled > 0
        self.quit_when_done = False
        self.result: m.TrainFinished | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar("train", id="nav")
        yield Static(id="train-status")
        yield LossChart(id="train-chart")
        yield Log(id="train-log", max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"train · {self.project.name}"
        self.render_status()

    @property
    def busy(self) -> bool:
        return self.worker is not None and not self.worker.is_finished

    # -- status ---------------------------------------------------------------------------------
    def render_status(self, extra: str = "") -> None:
        s = self.state
        source = (f"labelled store ({self.store.progress().labelled} items) → {self.project.training_file().name}"
                  if self.use_store else f"recipe data ({self.project.loaded.recipe.data.train})")
        total = f"/{s.total_steps}" if s.total_steps else ""
        lines = [f"data: {source}   [dim](d: switch)[/dim]",
                 f"[b]{s.stage or 'idle'}[/b]   step {s.step}{total}   epoch {s.epoch:.2f}"
                 + (f"/{s.epochs}" if s.epochs else "") + f"   {s.examples_per_second:.0f} examples/s   ETA {format_eta(s.eta_seconds() if s.stage == 'train' else None)}",
                 f"run: {display_path(s.run_dir) if s.run_dir else '–'}" + (" (attached)" if self.attached else "")]
        if s.eval_values:
            lines[-1] += f"   best {s.metric} {max(s.eval_values):.4f}"
        if extra:
            lines.append(extra)
        self.query_one("#train-status", Static).update("\n".join(lines))

    def log_line(self, line: str) -> None:
        self.state.add_log(line)
        self.query_one(Log).write_line(line)

    # -- actions --------------------------------------------------------------------------------
    def action_toggle_source(self) -> None:
        if self.busy:
            self.notify("Training is running; the data source applies to the next run.", severity="warning")
            return
        self.use_store = not self.use_store
        self.render_status()

    def action_start(self) -> None:
        if self.busy:
            self.notify("Already training or attached (c to cancel or detach).", severity="warning")
            return
        self.state, self.attached, self.result = TrainingState(metric=self.project.metric), False, None
        self.stop_event = threading.Event()
        self.query_one(Log).clear()
        self.query_one(LossChart).draw(self.state)
        self.log_line("starting training…")
        self.worker = self._train(self.use_store)

    def action_cancel(self) -> None:
        if not self.busy:
            self.notify("Nothing is running.")
            return
        if self.attached:
            assert self.worker is not None
            self.worker.cancel()
            self.log_line("detaching (the run keeps going)…")
        else:
            self.stop_event.set()
            self.log_line("stopping after the current step and writing a checkpoint…")
            self.render_status("[b]stopping…[/b]")

    def action_attach(self, run_dir: Path | None = None) -> None:
        if self.busy:
            self.notify("Already training or attached (c to cancel or detach).", severity="warning")
            return
        if run_dir is None:
            running = [r for r in list_runs(self.project.runs_dir, self.project.name) if r.status == "running"]
            if not running:
                self.notify("No run of this project is in progress (start one with `builder run` or t).", severity="warning")
                return
            run_dir = running[0].path
        self.state, self.attached, self.result = TrainingState(metric=self.project.metric), True, None
        self.query_one(Log).clear()
        self.worker = self._tail(run_dir)

    def stop_and_quit(self) -> None:
        """Quitting while training here: stop cleanly (checkpoint written), then exit."""
        self.quit_when_done = True
        self.action_cancel()

    # -- workers (never touch widgets: they only post messages) -----------------------------------
    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def _train(self, use_store: bool) -> None:
        post = self.post_message
        run_dir: list[Path] = []

        def note_and_post(message: Any) -> None:
            if isinstance(message, m.TrainRunDir):
                run_dir.append(message.run_dir)
            post(message)

        callback = PostingCallback(note_and_post)
        try:
            overrides: list[str] = []
            if use_store:
                with LabelStore(self.project.store_path) as store:  # this thread's own connection
                    exported = export_training_data(store, self.project, self.registry)
                post(m.TrainLog(f"{exported.describe()} ({display_path(exported.train_path)}"
                                + (f", validation copy {display_path(exported.validation_path)})" if exported.validation_path else ")")))
                overrides.extend(exported.overrides)
            from assistant_builder.recipe.loader import load_recipe

            loaded = load_recipe(self.project.recipe_path, overrides, registry=self.registry)
            engine = self.engine
            if engine is None:
                from assistant_builder.engine import run as engine
            result = engine(loaded, self.registry, [callback], self.stop_event, overrides=overrides)
            post(m.TrainFinished(result.run_dir, dict(result.summary)))
        except RunInterrupted as error:
            where = run_dir[-1] if run_dir else None
            post(m.TrainFinished(where, interrupted=True, error=error.message,
                                 resume_command=f"builder run --resume {where}" if where else (error.hint or "")))
        except BuilderError as error:
            post(m.TrainFinished(run_dir[-1] if run_dir else None, error=error.render()))
        except Exception as error:  # noqa: BLE001 - shown on screen; the app stays usable
            post(m.TrainFinished(run_dir[-1] if run_dir else None, error=f"{type(error).__name__}: {error}"))

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def _tail(self, run_dir: Path) -> None:
        worker = get_current_worker()
        tail_run(run_dir, self.post_message, lambda: worker.is_cancelled)

    # -- message handlers (UI thread) -------------------------------------------------------------
    def on_train_run_dir(self, message: m.TrainRunDir) -> None:
        self.state.run_dir = message.run_dir
        if message.epochs:
            self.state.epochs = message.epochs
        self.render_status()

    def on_train_stage(self, message: m.TrainStage) -> None:
        self.state.stage = message.stage
        self.log_line(f"• {message.stage}" + (f": {message.detail}" if message.detail else ""))
        self.render_status()

    def on_train_started(self, message: m.TrainStarted) -> None:
        self.state.total_steps, self.state.epochs = message.total_steps, message.epochs
        self.log_line(f"{message.epochs} epochs × {message.steps_per_epoch} steps on {message.device}")
        self.render_status()

    def on_train_step(self, message: m.TrainStep) -> None:
        self.state.stage = self.state.stage or "train"
        self.state.on_step(message)
        self.query_one(LossChart).draw(self.state)
        self.render_status()

    def on_train_eval(self, message: m.TrainEval) -> None:
        self.state.on_eval(message)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in list(message.metrics.items())[:3])
        self.log_line(f"epoch {message.epoch}: {shown}{'  (best so far)' if message.is_best else ''}")
        self.query_one(LossChart).draw(self.state)
        self.render_status()

    def on_train_log(self, message: m.TrainLog) -> None:
        self.log_line(message.line)

    def on_train_finished(self, message: m.TrainFinished) -> None:
        self.result = message
        if message.error and not message.interrupted:
            self.state.stage = "failed"
            self.log_line(message.error)
            self.notify(message.error, title="training failed", severity="error", timeout=15)
        elif message.interrupted:
            self.state.stage = "stopped"
            self.log_line(f"stopped; resume with: {message.resume_command}")
            self.notify(f"Checkpoint kept. Resume with:\n{message.resume_command}", title="training stopped", timeout=15)
        elif message.detached:
            self.state.stage = "detached"
            self.log_line("detached")
        else:
            self.state.stage = "finished"
            metrics = message.summary.get("metrics", {})
            self.log_line("finished: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            self.notify(f"Run finished: {display_path(message.run_dir) if message.run_dir else ''}. F3 shows its evaluation, F5 exports it.",
                        title="training finished")
        self.render_status(f"[b]{self.state.stage}[/b]" + (f"  resume: {message.resume_command}" if message.resume_command else ""))
        if self.quit_when_done:
            self.app.exit()
