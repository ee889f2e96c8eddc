"""Keyboard span selection over words: NER entities, or a QA answer in its context.

left/right move the cursor, shift+left/right extend a selection, ``x`` removes the span under the
cursor. The screen tags the selection (label keys) and saves the spans; existing spans show in a
colour per label, the selection in reverse video, the cursor underlined.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget

from assistant_builder.toolkit.alignment import is_unspaced_char
from assistant_builder.tui import spans as sp

COLOURS = ("green", "magenta", "cyan", "yellow", "blue", "red", "bright_green", "bright_magenta", "bright_cyan")


class SpanEditor(Widget, can_focus=True):
    BINDINGS = [
        Binding("left", "move(-1)", "previous word", show=False, id="spans.left"),
        Binding("right", "move(1)", "next word", show=False, id="spans.right"),
        Binding("shift+left", "extend(-1)", "extend ◀", show=False, id="spans.extend_left"),
        Binding("shift+right", "extend(1)", "extend ▶", id="spans.extend_right"),
        Binding("x", "remove", "remove span", id="spans.remove"),
    ]

    def __init__(self, labels: list[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.labels = list(labels)
        self.words: list[str] = []
        self.spans: list[sp.Span] = []
        self.cursor = 0
        self.anchor: int | None = None

    def load(self, words: list[str], spans: list[sp.Span]) -> None:
        self.words, self.spans = list(words), [dict(s) for s in spans]
        self.cursor, self.anchor = 0, None
        self.refresh(layout=True)

    @property
    def selection(self) -> tuple[int, int]:
        """The selected words as ``(start, end)``; just the cursor's word without a selection."""
        if self.anchor is None:
            return self.cursor, self.cursor + 1
        return min(self.anchor, self.cursor), max(self.anchor, self.cursor) + 1

    def tag(self, label: str, single: bool = False) -> None:
        if self.words:
            start, end = self.selection
            self.spans = sp.tag(self.spans, start, end, label, single)
            self.anchor = None
            self.refresh()

    def action_move(self, delta: int) -> None:
        self.anchor = None
        self.cursor = max(0, min(len(self.words) - 1, self.cursor + delta))
        self.refresh()

    def action_extend(self, delta: int) -> None:
        if self.anchor is None:
            self.anchor = self.cursor
        self.cursor = max(0, min(len(self.words) - 1, self.cursor + delta))
        self.refresh()

    def action_remove(self) -> None:
        self.spans = sp.remove_at(self.spans, self.cursor)
        self.refresh()

    def _style(self, index: int) -> str:
        styles = []
        for span in self.spans:
            if span["start"] <= index < span["end"]:
                label = span["label"]
                colour = COLOURS[self.labels.index(label) % len(COLOURS)] if label in self.labels else "white"
                styles.append(f"bold {colour}")
        start, end = self.selection
        if self.anchor is not None and start <= index < end:
            styles.append("reverse")
        if index == self.cursor and self.has_focus:
            styles.append("underline")
        return " ".join(styles)

    def render(self) -> Text:
        text = Text()
        for index, word in enumerate(self.words):
            if index and not (is_unspaced_char(word) and is_unspaced_char(self.words[index - 1])):
                text.append(" ")  # Chinese, Japanese and Thai characters are words of their own, shown as written
            text.append(word, style=self._style(index))
            ends = [s["label"] for s in self.spans if s["end"] == index + 1]
            if ends:
                text.append(f"[{ends[0]}]", style="dim")
        return text
