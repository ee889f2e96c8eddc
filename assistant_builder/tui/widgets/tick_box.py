"""A checkbox whose state also shows without colour: ``▐X▌`` ticked, ``▐ ▌`` not (Textual's own
checkbox draws an X either way and tells them apart by colour only, which text captures lose)."""

from __future__ import annotations

from textual.widgets import Checkbox


class TickBox(Checkbox):
    @property  # type: ignore[override]
    def BUTTON_INNER(self) -> str:  # noqa: N802 - overrides ToggleButton.BUTTON_INNER
        return "X" if self.value else " "
