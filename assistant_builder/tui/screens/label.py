"""Label screen, for the four labelling kinds tasks declare (``Task.labelling_kind``):

* ``text_class``: one key per label (1-9, in the footer) labels the item; ``/`` filters the rest.
* ``token_spans`` (NER): move over the words (left/right), extend a selection (shift+arrows), a
  label key tags it, ``x`` removes the span under the cursor, Enter saves the sentence.
* ``answer_span`` (QA): select the answer in the context the same way, ``1`` marks it, Enter saves;
  ``n`` saves "unanswerable".
* ``response`` (generation): the conversation so far, roles marked, above a multi-line editor that
  has the focus: type the answer, ctrl+s saves it, ctrl+g puts the model's suggestion in the editor
  (an edit: ctrl+z takes it back), esc leaves the editor for the one-letter keys below, ``e`` or a
  click goes back in. The editor starts from the draft typed earlier, else the current label (a
  reference response), else the model's suggestion, else empty. Leaving an item without saving
  (skip, undo, another screen, quit) keeps what was typed as the item's draft in the store
  (``LabelStore.set_draft``), shown again when the item comes back; only a save labels it.

Everywhere: ``a`` accepts the model's suggestion (responses: ctrl+g), ``s`` skips, ``u`` goes back
(undo), ``r`` redoes; each decision is committed to the store before the screen moves on. Model in
the loop: ``m`` pre-fills suggestions from the newest run's ONNX bundle in a worker thread
(responses: its generated answers, one at a time), ``o`` orders the queue by uncertainty, ``f``
shows only the items of one source (cycling through the sources in the queue: ``serve`` for what
``builder serve --feedback`` captured, with the model's guess pre-filled; an imported file's
name...; then all again).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import get_current_worker

from assistant_builder.errors import BuilderError
from assistant_builder.tui import spans as sp
from assistant_builder.tui.messages import SuggestDone, SuggestProgress
from assistant_builder.tui.project import Project, latest_run
from assistant_builder.labelling.store import Item, LabelStore
from assistant_builder.tui.suggest import fill_suggestions, load_suggester, suggested_response
from assistant_builder.tui.widgets.item_view import ItemView
from assistant_builder.tui.widgets.label_filter import LabelFilter
from assistant_builder.tui.widgets.nav import NavBar
from assistant_builder.tui.widgets.progress_panel import ProgressPanel
from assistant_builder.tui.widgets.response_editor import ResponseEditor
from assistant_builder.tui.widgets.span_editor import SpanEditor

KINDS = ("text_class", "token_spans", "answer_span", "response")
LABELLING_ACTIONS = {"label", "accept", "skip", "filter", "save", "unanswerable", "edit"}
#: actions only the response editor has (ctrl+ keys: they work while typing)
RESPONSE_ACTIONS = {"edit", "save_response", "take_suggestion"}


class LabelScreen(Screen[None]):
    AUTO_FOCUS = ""  # keys go to the screen's bindings (or the span editor); only the label filter takes text
    BINDINGS = [
        Binding("enter", "save", "save", id="label.save"),
        Binding("ctrl+s", "save_response", "save", id="label.save_response"),
        Binding("ctrl+g", "take_suggestion", "use suggestion", id="label.take_suggestion"),
        Binding("e", "edit", "edit", id="label.edit"),
        Binding("n", "unanswerable", "no answer", id="label.unanswerable"),
        Binding("a", "accept", "accept", id="label.accept"),
        Binding("s", "skip", "skip", id="label.skip"),
        Binding("u", "undo", "back", id="label.undo"),
        Binding("r", "redo", "redo", id="label.redo"),
        Binding("slash", "filter", "filter", key_display="/", id="label.filter"),
        Binding("m", "suggest", "suggest", id="label.suggest"),
        Binding("o", "toggle_order", "order", id="label.order"),
        Binding("f", "cycle_source", "source", id="label.source"),
    ]

    def __init__(self, project: Project, store: LabelStore, predictor_factory: Any = None) -> None:
        super().__init__(id="label-screen")
        self.project = project
        self.kind = project.kind
        self.store = store
        self.labels = [sp.ANSWER] if self.kind == "answer_span" else [] if self.kind == "response" else project.labels(store)
        self.predictor_factory = predictor_factory
        self.current: Item | None = None
        self.order = "uncertainty"
        #: show only items of this source family (``serve``, ``inbox.txt``...); None: all
        self.source: str | None = None
        self.decision_times: list[float] = []
        #: the response editor (kept: the app reads it while shutting down, when queries find nothing)
        self.editor: ResponseEditor | None = None
        self.last_ack = ""
        # The label keys depend on the project, so they are added per instance, ahead of the class
        # bindings so that the footer lists them first.
        label_keys = {str(i + 1): [Binding(str(i + 1), f"label({i})", label[:12], id=f"label.key{i + 1}")]
                      for i, label in enumerate(self.labels[:9])}
        self._bindings.key_to_bindings = {**label_keys, **self._bindings.key_to_bindings}

    @property
    def supported(self) -> bool:
        return self.kind in KINDS

    @property
    def spans_mode(self) -> bool:
        return self.kind in ("token_spans", "answer_span")

    @property
    def response_mode(self) -> bool:
        return self.kind == "response"

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar("label", id="nav")
        with Horizontal(id="label-main"):
            with Vertical(id="label-item-pane"):
                if self.supported:
                    yield ItemView(id="item-view")
                    if self.spans_mode:
                        yield SpanEditor(self.labels, id="span-editor")
                    elif self.response_mode:
                        self.editor = ResponseEditor(id="response-editor")
                        yield self.editor
                    yield Static("", id="label-ack")
                    yield LabelFilter(self.labels, id="label-filter")
                else:
                    yield Static(f"[b]No labelling widget for '{self.kind}' labelling[/b] (task '{self.project.task_name}'); "
                                 f"the TUI knows {', '.join(KINDS)}. Training (F2), evaluation (F3) and runs (F4) still work.",
                                 id="label-unsupported")
            yield ProgressPanel(id="label-progress")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"label · {self.project.name}"
        if self.supported:
            if not self.labels and not self.response_mode:
                self.notify("No labels known: declare task.options.labels in the recipe, or import labelled data "
                            "(builder tui RECIPE --import FILE).", severity="warning", timeout=10)
            self.advance()
        self.refresh_progress()

    def on_screen_resume(self) -> None:
        """Items may have been sent back from the Evaluate screen: show the queue head again."""
        if self.supported and (self.current is None or self.store.item(self.current.id).status not in ("todo", "review")):
            self.advance()
        self._focus_editor()
        self.refresh_progress()

    def on_screen_suspend(self) -> None:
        """Another screen (F2-F5): what was typed stays in the editor, and in the store as a draft."""
        self.keep_draft()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in LABELLING_ACTIONS and not self.supported:
            return False
        if action in RESPONSE_ACTIONS and not self.response_mode:
            return False
        if action in ("label", "filter") and self.response_mode:
            return False
        if action == "save" and not self.spans_mode:
            return False  # responses: ctrl+s (Enter is a new line in the editor)
        if action == "accept" and self.response_mode:
            return False  # responses: ctrl+g, in the editor or not
        if action == "unanswerable" and self.kind != "answer_span":
            return False
        return True

    # -- showing -------------------------------------------------------------------------------
    def _focus_editor(self) -> None:
        if self.editor is not None:
            self.set_focus(self.editor)
            return
        self.set_focus(self.query_one(SpanEditor) if self.spans_mode else None)

    def keep_draft(self) -> bool:
        """Store the response editor's unsaved text as the current item's draft; False when there was nothing new."""
        editor = self.editor
        if editor is None or self.current is None or not editor.dirty:
            return False
        self.store.set_draft(self.current.id, editor.text)
        editor.loaded = editor.text
        return True

    def _starting_response(self, item: Item) -> str:
        """What the editor starts from: the draft, else the current label, else the suggestion, else nothing."""
        draft = self.store.draft(item.id)
        if draft is not None:
            return draft
        if isinstance(item.gold, str):
            return item.gold
        return suggested_response(item.suggestion) or ""

    def show(self, item: Item | None) -> None:
        self.keep_draft()
        self.current = item
        self.query_one(ItemView).show(item, self.kind)
        if self.response_mode:
            self.query_one(ResponseEditor).load(self._starting_response(item) if item is not None else "")
        if self.spans_mode:
            editor = self.query_one(SpanEditor)
            if item is None:
                editor.load([], [])
            else:
                spans = sp.gold_to_spans(self.kind, item.payload, item.gold) if item.gold is not None else None
                if spans is None:  # unlabelled: start from the model's suggestion, if any
                    spans = sp.suggestion_spans(self.kind, item.payload, item.suggestion) or []
                editor.load(sp.editor_words(self.kind, item.payload), spans)

    def advance(self) -> None:
        self.show(self.store.next_item(self.order, self.source))

    def pace(self) -> float | None:
        """Decisions per minute over the last 20 this session."""
        recent = self.decision_times[-20:]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return None
        return (len(recent) - 1) / ((recent[-1] - recent[0]) / 60.0)

    def refresh_progress(self) -> None:
        order = f"{self.order} · source {self.source}" if self.source else self.order
        self.query_one(ProgressPanel).show(self.store.progress(), self.labels, self.pace(), order)

    def acknowledge(self, text: str) -> None:
        self.last_ack = text
        if self.supported:
            self.query_one("#label-ack", Static).update(f"[dim]✓ saved: {text}[/dim]")
        self.refresh_progress()

    # -- decisions -----------------------------------------------------------------------------
    def _decide(self, gold: Any, shown: str) -> None:
        if self.current is None:
            self.app.bell()
            return
        decision = self.store.decide(self.current.id, gold)
        self.decision_times.append(time.time())
        self.advance()
        self.acknowledge(f"#{decision.item_id} = {shown}")

    def action_label(self, index: int) -> None:
        if index >= len(self.labels):
            return
        if self.spans_mode:
            self.query_one(SpanEditor).tag(self.labels[index], single=self.kind == "answer_span")
        else:
            self._decide(self.labels[index], self.labels[index])

    def action_save(self) -> None:
        if self.current is None:
            self.app.bell()
            return
        spans = self.query_one(SpanEditor).spans
        if self.kind == "answer_span" and not spans:
            self.notify("Select the answer (shift+arrows), mark it with 1, then Enter; or n: no answer.", severity="warning")
            return
        gold = sp.spans_to_gold(self.kind, self.current.payload, spans)
        shown = repr(gold["answers"][0]["text"]) if self.kind == "answer_span" else ", ".join(f"{s['label']} {s['start']}-{s['end']}" for s in gold) or "no entities"
        self._decide(gold, shown)

    def action_save_response(self) -> None:
        """Label the current item with the editor's text (blank: refused) and move on."""
        if self.current is None:
            self.app.bell()
            return
        editor = self.query_one(ResponseEditor)
        if not editor.response:
            self.notify("Type the response first (or s: skip the item).", severity="warning")
            return
        editor.loaded = editor.text  # saved: no draft to keep when the next item is shown
        text = " ".join(editor.response.split())
        self._decide(editor.response, repr(text if len(text) <= 40 else text[:39] + "…"))
        self._focus_editor()

    def action_take_suggestion(self) -> None:
        """Put the model's suggested response in the editor, to edit before saving."""
        item = self.current
        text = suggested_response(item.suggestion) if item is not None else None
        if text is None:
            self.notify("No model suggestion for this item (m: get suggestions from the newest run).", severity="warning")
            return
        editor = self.query_one(ResponseEditor)
        editor.replace_with(text)
        self.set_focus(editor)

    def action_edit(self) -> None:
        self._focus_editor()

    def action_unanswerable(self) -> None:
        self._decide({"answers": []}, "unanswerable")

    def action_accept(self) -> None:
        item = self.current
        if item is None or not item.suggestion:
            self.notify("No model suggestion for this item (m: get suggestions from the newest run).", severity="warning")
            return
        if not self.spans_mode:
            self._decide(str(item.suggestion["label"]), str(item.suggestion["label"]))
            return
        spans = sp.suggestion_spans(self.kind, item.payload, item.suggestion)
        if spans is None:
            self.notify("The suggestion does not fit this item's words.", severity="warning")
            return
        gold = sp.spans_to_gold(self.kind, item.payload, spans)
        self._decide(gold, "suggestion accepted")

    def action_skip(self) -> None:
        if self.current is None:
            self.app.bell()
            return
        kept = self.keep_draft()
        decision = self.store.skip(self.current.id)
        self.advance()
        self.acknowledge(f"#{decision.item_id} skipped" + (" (what you typed is kept as its draft)" if kept else ""))

    def action_undo(self) -> None:
        decision = self.store.undo()
        if decision is None:
            self.notify("Nothing to undo.")
            return
        if self.supported:
            self.show(self.store.item(decision.item_id))
        self.acknowledge(f"undid #{decision.item_id}")

    def action_redo(self) -> None:
        decision = self.store.redo()
        if decision is None:
            self.notify("Nothing to redo.")
            return
        if self.supported:
            self.advance()
        self.acknowledge(f"redid #{decision.item_id}")

    def action_filter(self) -> None:
        if self.labels:
            self.query_one(LabelFilter).open()

    @on(LabelFilter.Chosen)
    def _filter_chosen(self, event: LabelFilter.Chosen) -> None:
        self._focus_editor()
        self.action_label(self.labels.index(event.label))

    @on(LabelFilter.Closed)
    def _filter_closed(self) -> None:
        self._focus_editor()

    def action_cycle_source(self) -> None:
        """Next source family with items waiting (in name order), then all sources again."""
        waiting = self.store.queue_sources()
        names = sorted(waiting)
        following = [name for name in names if self.source is None or name > self.source]
        self.source = following[0] if following else None
        if self.source is None:
            self.notify(f"Queue: every source ({sum(waiting.values())} waiting).")
        else:
            self.notify(f"Queue: only items from {self.source} ({waiting[self.source]} waiting); f: next source.")
        if self.supported:
            self.advance()
        self.refresh_progress()

    def action_toggle_order(self) -> None:
        self.order = "input order" if self.order == "uncertainty" else "uncertainty"
        self.advance()
        self.refresh_progress()

    # -- model in the loop ----------------------------------------------------------------------
    def action_suggest(self) -> None:
        run_dir = latest_run(self.project.runs_dir, self.project.name, with_onnx=True)
        if run_dir is None:
            self.notify("No finished run with an ONNX export yet: train one first (F2).", severity="warning")
            return
        self.notify(f"Predicting unlabelled items with {run_dir.name}…")
        self._suggest(run_dir)

    @work(thread=True, exclusive=True, group="suggest", exit_on_error=False)
    def _suggest(self, run_dir: Path) -> None:
        worker = get_current_worker()
        try:
            predictor = (self.predictor_factory or load_suggester)(run_dir)
            count = fill_suggestions(self.project.store_path, predictor, self.kind, should_stop=lambda: worker.is_cancelled,
                                     on_progress=lambda done, total: self.post_message(SuggestProgress(done, total)))
        except BuilderError as error:
            self.post_message(SuggestDone(0, run_dir, error.render()))
        except Exception as error:  # noqa: BLE001 - report any failure on screen instead of crashing the app
            self.post_message(SuggestDone(0, run_dir, f"{type(error).__name__}: {error}"))
        else:
            self.post_message(SuggestDone(count, run_dir))

    def on_suggest_progress(self, message: SuggestProgress) -> None:
        self.sub_title = f"label · {self.project.name} · suggestions {message.done}/{message.total}"
        if self.response_mode and self.current is not None and not self.current.suggestion:
            self._refresh_current()  # answers come one at a time: show the head's as soon as it is there

    def _refresh_current(self) -> None:
        """Re-read the current item (a new suggestion); text typed in an editor is kept."""
        if self.current is None:
            return
        item = self.store.item(self.current.id)
        editing = (self.spans_mode and self.query_one(SpanEditor).spans) or (self.editor is not None and self.editor.text)
        if editing:
            self.current = item
            self.query_one(ItemView).show(item, self.kind)
        else:
            self.show(item)

    def on_suggest_done(self, message: SuggestDone) -> None:
        self.sub_title = f"label · {self.project.name}"
        if message.error:
            self.notify(message.error, severity="error", timeout=10)
            return
        self.notify(f"{message.count} suggestions from {message.run_dir.name if message.run_dir else 'the model'}")
        self._refresh_current()
