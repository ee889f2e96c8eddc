"""Token spans for the span labelling widget (NER entities, QA answers), textual-free.

The widget edits ``[{"start", "end", "label"}]`` token spans (end exclusive) over a list of words.
For NER those words are the item's tokens and the spans are the gold value itself. For QA the words
are the context split like the NER task splits text (``toolkit.alignment.split_words``: runs of letters
and digits, single punctuation marks, and single Chinese, Japanese or Thai characters);
the answer span converts to SQuAD's ``{"text", "answer_start"}`` through the words' character offsets.
"""

from __future__ import annotations

from typing import Any

from assistant_builder.labelling.formats import tags_to_spans
from assistant_builder.toolkit.alignment import split_words

ANSWER = "answer"

Span = dict[str, Any]


def words_and_offsets(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The words of ``text`` as the token tasks split it, and their character offsets."""
    return split_words(text)


def editor_words(kind: str, payload: dict[str, Any]) -> list[str]:
    """The words the widget shows: an NER item's tokens, or a QA item's context words."""
    return list(payload["tokens"]) if kind == "token_spans" else words_and_offsets(payload["context"])[0]


def char_span_to_tokens(offsets: list[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """The tokens overlapping characters ``[start, end)``, as a ``(first, last + 1)`` token span."""
    inside = [i for i, (s, e) in enumerate(offsets) if s < end and e > start]
    return (inside[0], inside[-1] + 1) if inside else None


def gold_to_spans(kind: str, payload: dict[str, Any], gold: Any) -> list[Span]:
    if gold is None:
        return []
    if kind == "token_spans":
        return [dict(span) for span in gold]
    _, offsets = words_and_offsets(payload["context"])
    spans = []
    for answer in (gold.get("answers") or [])[:1]:
        found = char_span_to_tokens(offsets, int(answer["answer_start"]), int(answer["answer_start"]) + len(answer["text"]))
        if found:
            spans.append({"start": found[0], "end": found[1], "label": ANSWER})
    return spans


def spans_to_gold(kind: str, payload: dict[str, Any], spans: list[Span]) -> Any:
    """What the store records for the widget's spans (QA: the first span is the answer, none = unanswerable)."""
    if kind == "token_spans":
        return sorted(({"start": s["start"], "end": s["end"], "label": s["label"]} for s in spans), key=lambda s: s["start"])
    if not spans:
        return {"answers": []}
    _, offsets = words_and_offsets(payload["context"])
    first, last = offsets[spans[0]["start"]][0], offsets[spans[0]["end"] - 1][1]
    return {"answers": [{"text": payload["context"][first:last], "answer_start": first}]}


def suggestion_spans(kind: str, payload: dict[str, Any], suggestion: dict[str, Any] | None) -> list[Span] | None:
    """A model prediction as widget spans (None when there is no usable suggestion)."""
    if not suggestion:
        return None
    if kind == "token_spans":
        tags = suggestion.get("tags")
        return tags_to_spans(list(tags)) if isinstance(tags, list) and len(tags) == len(payload["tokens"]) else None
    if not suggestion.get("answer"):
        return []
    _, offsets = words_and_offsets(payload["context"])
    found = char_span_to_tokens(offsets, int(suggestion["start"]), int(suggestion["end"]))
    return [{"start": found[0], "end": found[1], "label": ANSWER}] if found else None


def tag(spans: list[Span], start: int, end: int, label: str, single: bool = False) -> list[Span]:
    """``spans`` with ``[start, end)`` tagged ``label``; spans it overlaps are replaced."""
    kept = [] if single else [s for s in spans if s["end"] <= start or s["start"] >= end]
    return sorted([*kept, {"start": start, "end": end, "label": label}], key=lambda s: s["start"])


def remove_at(spans: list[Span], index: int) -> list[Span]:
    """``spans`` without the span covering token ``index``."""
    return [s for s in spans if not s["start"] <= index < s["end"]]
