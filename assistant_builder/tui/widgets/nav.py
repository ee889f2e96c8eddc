"""One line under the header naming the screens and their keys, the current one highlighted."""

from __future__ import annotations

from textual.widgets import Static

SCREENS = (("f1", "label"), ("f2", "train"), ("f3", "evaluate"), ("f4", "runs"), ("f5", "export"))


class NavBar(Static):
    """``F1 label  F2 train  F3 evaluate  F4 runs  F5 export`` with ``current`` in reverse video."""

    def __init__(self, current: str, **kwargs: object) -> None:
        super().__init__(self.text(current), **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def text(current: str) -> str:
        parts = [f"[reverse] {key.upper()} {name} [/reverse]" if name == current else f" [b]{key.upper()}[/b] {name} " for key, name in SCREENS]
        return "".join(parts) + "  [dim]ctrl+q quit[/dim]"
