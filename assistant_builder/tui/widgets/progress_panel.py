"""Labelling progress: labelled / total, the queue, per-label counts (as bars) and pace."""

from __future__ import annotations

from rich.markup import escape
from textual.widgets import Static

from assistant_builder.labelling.store import REVIEW, SKIPPED, TODO, Progress


class ProgressPanel(Static):
    """Redrawn after every decision from ``LabelStore.progress()`` (kept current in memory)."""

    def show(self, progress: Progress, labels: list[str], pace_per_minute: float | None, order: str) -> None:
        done = progress.labelled
        share = done / progress.total if progress.total else 0.0
        lines = [f"[b]labelled {done} / {progress.total}[/b] ({share:.0%})",
                 f"todo {progress.by_status[TODO]} · review {progress.by_status[REVIEW]} · skipped {progress.by_status[SKIPPED]}"]
        if pace_per_minute:
            eta = progress.remaining / pace_per_minute if pace_per_minute else 0
            lines.append(f"pace {pace_per_minute:.1f}/min · ~{eta:.0f} min left")
        else:
            lines.append("pace – (label a few items)")
        lines += [f"order: {order}", ""]
        names = list(labels) + sorted(set(progress.per_label) - set(labels))
        widest = max((progress.per_label[n] for n in names), default=0) or 1
        for index, name in enumerate(names):
            count = progress.per_label[name]
            key = str(index + 1) if index < 9 and name in labels else " "
            bar = "█" * max(0, round(8 * count / widest))
            lines.append(f"{key} {escape(name[:14]):<14} {count:>5} {bar}")
        self.update("\n".join(lines))
