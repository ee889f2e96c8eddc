"""Plain-text capture of what the app shows (for tests, and the captures in ``docs/screens/``)."""

from __future__ import annotations

import io
from typing import Any


def screen_text(app: Any) -> str:
    """The current screen as plain text: what ``App.export_screenshot`` draws as SVG, without styles."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None, record=True,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens, simplify=True))
    return console.export_text()
