"""Generated answers of a run (``metrics.json``'s ``samples``, as the ``generation`` task writes them):
one row per validation prompt with its token F1, prompt, reference, base-model and fine-tuned
answer; the highlighted row in full below the table."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

#: characters of a prompt or answer shown in a table cell
CELL = 22


def _cell(text: Any) -> str:
    if text is None:
        return "–"
    flat = " ".join(str(text).split())
    return flat if len(flat) <= CELL else flat[: CELL - 1] + "…"


def _score(sample: dict[str, Any]) -> str:
    value = sample.get("token_f1")
    return f"{value:.2f}" if isinstance(value, (int, float)) else "–"


class SamplesPanel(Vertical):
    """``show(samples)`` fills the table; a sample is a dict with ``prompt``, ``reference``,
    ``answer`` and optionally ``base_answer``, ``token_f1`` and ``source``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.samples: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield DataTable(id="eval-samples", cursor_type="row", zebra_stripes=True)
        yield Static("", id="eval-sample-detail")

    def show(self, samples: list[dict[str, Any]]) -> None:
        self.samples = list(samples)
        has_base = any(s.get("base_answer") is not None for s in self.samples)
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns("F1", "prompt", "reference", *(["base model"] if has_base else []), "fine-tuned")
        for sample in self.samples:
            base = [_cell(sample.get("base_answer"))] if has_base else []
            table.add_row(_score(sample), _cell(sample.get("prompt")), _cell(sample.get("reference")), *base, _cell(sample.get("answer")))
        self._detail(0)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)

    def _detail(self, row: int) -> None:
        if not 0 <= row < len(self.samples):
            self.query_one("#eval-sample-detail", Static).update("")
            return
        sample = self.samples[row]
        parts = [("prompt", sample.get("prompt")), ("reference", sample.get("reference")), ("base model", sample.get("base_answer")),
                 ("fine-tuned", sample.get("answer"))]
        lines = [f"[dim]{escape(str(sample.get('source', '')))} · token F1 {_score(sample)}[/dim]"]
        lines += [f"[b]{name}:[/b] {escape(str(text))}" for name, text in parts if text is not None]
        self.query_one("#eval-sample-detail", Static).update("\n".join(lines))
