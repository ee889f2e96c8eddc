"""Quick filter for choosing among many labels: type part of a name (or its number), Enter picks
the highlighted match, up/down move, Escape closes."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList


def matching(labels: list[str], query: str) -> list[str]:
    """Labels whose name contains ``query`` (case-insensitive), prefix matches first; a number
    selects that label (1-based)."""
    query = query.strip().lower()
    if query.isdigit() and 1 <= int(query) <= len(labels):
        return [labels[int(query) - 1]]
    found = [label for label in labels if query in label.lower()]
    return sorted(found, key=lambda label: (not label.lower().startswith(query), labels.index(label)))


class LabelFilter(Vertical):
    """Hidden until ``open()``; posts ``LabelFilter.Chosen`` or ``LabelFilter.Closed``."""

    BINDINGS = [
        Binding("escape", "close", "close filter", id="filter.close"),
        Binding("down", "move(1)", "next match", show=False, id="filter.down"),
        Binding("up", "move(-1)", "previous match", show=False, id="filter.up"),
    ]

    @dataclass
    class Chosen(Message):
        label: str

    class Closed(Message):
        pass

    def __init__(self, labels: list[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.labels = list(labels)

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter labels: type a name or number, Enter to apply", id="filter-input")
        yield OptionList(id="filter-options")

    def open(self) -> None:
        self.display = True
        field = self.query_one(Input)
        field.value = ""
        self._refresh_options("")
        field.focus()

    def close(self) -> None:
        self.display = False
        self.post_message(self.Closed())

    def _refresh_options(self, query: str) -> None:
        options = self.query_one(OptionList)
        options.set_options(matching(self.labels, query))
        options.highlighted = 0 if options.option_count else None

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        self._refresh_options(event.value)

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._choose()

    @on(OptionList.OptionSelected, "#filter-options")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose()

    def _choose(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            self.app.bell()
            return
        label = str(options.get_option_at_index(options.highlighted).prompt)
        self.display = False
        self.post_message(self.Chosen(label))

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            options.highlighted = ((options.highlighted or 0) + delta) % options.option_count

    def action_close(self) -> None:
        self.close()
