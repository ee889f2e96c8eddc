"""The response editor of the ``response`` labelling kind: a multi-line ``TextArea`` for the answer
the assistant should give.

Typing goes to the editor while it has focus (so do Enter, arrows, ctrl+z / ctrl+y: its own undo);
the screen's ctrl+ keys (save, take the suggestion) still work, and escape leaves the editor so the
screen's one-letter keys (skip, undo, ...) apply. ``dirty`` says whether the text differs from what
was loaded, so the screen can keep it as a draft when you leave the item without saving.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import TextArea

PLACEHOLDER = "Type the response the assistant should give (ctrl+s saves; esc leaves the editor)"


class ResponseEditor(TextArea):
    BINDINGS = [
        Binding("escape", "leave", "leave editor", key_display="esc", id="response.leave"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(soft_wrap=True, tab_behavior="focus", placeholder=PLACEHOLDER, **kwargs)  # type: ignore[arg-type]
        self.loaded = ""

    def load(self, text: str) -> None:
        """Show ``text`` (its own edit history cleared), cursor at the end; it counts as unchanged."""
        self.loaded = text
        self.load_text(text)
        self.move_cursor(self.document.end)

    def replace_with(self, text: str) -> None:
        """Put ``text`` in the editor as an edit (ctrl+z takes it back; it counts as a change)."""
        self.replace(text, self.document.start, self.document.end)
        self.move_cursor(self.document.end)

    @property
    def dirty(self) -> bool:
        return self.text != self.loaded

    @property
    def response(self) -> str:
        """The text as it would be saved (surrounding blank space removed)."""
        return self.text.strip()

    def action_leave(self) -> None:
        self.screen.set_focus(None)
