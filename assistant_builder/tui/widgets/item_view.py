"""The example being labelled: its text (or question, or conversation), current label, the model's
suggestion with its score, and why it is in the queue (e.g. sent back from an evaluation). For span
tasks the words themselves are in the ``SpanEditor`` below this view; for responses the answer
being written is in the ``ResponseEditor``."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.widgets import Static

from assistant_builder.tui.project import display_path
from assistant_builder.labelling.store import Item


def _source(source: str) -> str:
    """``/abs/path/file.jsonl:35`` as the user would type it from here (``data/file.jsonl:35``)."""
    path, sep, line = source.rpartition(":")
    if sep and line.isdigit() and path.startswith("/"):
        return f"{display_path(path)}:{line}"
    return display_path(source) if source.startswith("/") else source


#: characters of a response shown in the one-line summary of a label or suggestion
SUMMARY_CHARS = 80
ROLE_STYLES = {"system": "$text-muted", "user": "$secondary", "assistant": "$success"}


def conversation_lines(messages: list[dict[str, Any]]) -> list[str]:
    """A prompt's messages as markup, one block per message, its role marked (``user ›``)."""
    lines = []
    for message in messages:
        role = str(message.get("role", "?"))
        content = escape(str(message.get("content", ""))).splitlines() or [""]
        lines.append(f"[b {ROLE_STYLES.get(role, '$text')}]{escape(role):>9} ›[/] {content[0]}")
        lines += [f"{'':>11} {line}" for line in content[1:]]
    return lines


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return escape(flat if len(flat) <= SUMMARY_CHARS else flat[: SUMMARY_CHARS - 1] + "…")


def _summary(kind: str, value: Any) -> str:
    """A gold value or suggestion in one line."""
    if kind == "response":
        text = value.get("completion") if isinstance(value, dict) else value
        return _one_line(str(text)) if text else "no answer"
    if kind == "text_class":
        return escape(str(value.get("label") if isinstance(value, dict) else value))
    if kind == "token_spans":
        if isinstance(value, dict):  # an NER prediction
            entities = value.get("entities") or []
            return escape(", ".join(f"{e.get('text')} ({e.get('label')} {float(e.get('score', 0)):.2f})" for e in entities) or "no entities")
        return f"{len(value)} span{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict) and "answers" in value:
        return escape(repr(value["answers"][0]["text"])) if value["answers"] else "unanswerable"
    return escape(repr(value.get("answer"))) + f" ({float(value.get('score', 0)):.2f})" if value.get("answer") else "unanswerable"


class ItemView(Static):
    """Shows one ``Item``; ``item`` is None when the queue is empty."""

    def show(self, item: Item | None, kind: str = "text_class") -> None:
        if item is None:
            self.update("[b]Queue empty.[/b] Every item is labelled or skipped.\n\n"
                        "Train on what you labelled (F2), or undo (u) to revisit the last decision.")
            return
        lines = [f"[dim]#{item.id} · {escape(_source(item.source))} · {item.status}[/dim]", ""]
        if kind == "text_class":
            lines += [f"[b]{escape(str(item.payload.get('text', item.payload)))}[/b]", ""]
        elif kind == "answer_span":
            lines += [f"[b]Q: {escape(item.payload['question'])}[/b]", ""]
        elif kind == "response":
            lines += [*conversation_lines(list(item.payload.get("messages") or [])), ""]
        if item.gold is not None:
            lines.append(f"current label: [b]{_summary(kind, item.gold)}[/b]")
        if item.suggestion:
            lines.append(f"model suggests: [b $accent]{_summary(kind, item.suggestion)}[/]")
            top = item.suggestion.get("top") if kind == "text_class" else None
            if top:
                lines[-1] += f" ({float(item.suggestion.get('score', 0)):.2f})  [dim]" + ", ".join(
                    f"{escape(str(t.get('label')))} {float(t.get('score', 0)):.2f}" for t in top[:3]) + "[/dim]"
        if item.note:
            lines.append(f"[$warning]{escape(item.note)}[/]")
        self.update("\n".join(lines))
