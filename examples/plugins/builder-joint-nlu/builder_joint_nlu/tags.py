"""IOB2 slot tags and the task's combined label list. Pure Python, torch-free.

A ``joint_nlu`` model has two label sets but the host passes one ``labels`` list around (it is
saved as ``labels.json`` in every bundle). The list holds the intents first, each prefixed with
``intent:``, then the slot tags (``O``, ``B-type``, ``I-type`` per slot type). A slot tag never
starts with ``intent:``, so ``split_labels`` recovers both sets from any bundle.
"""

from __future__ import annotations

from collections.abc import Sequence

INTENT_PREFIX = "intent:"

Span = tuple[int, int, str]
"""A slot over words: ``(first word, last word + 1, type)``."""


def combined_labels(intents: Sequence[str], slot_types: Sequence[str]) -> list[str]:
    """The task's label list: ``intent:<name>`` for each intent, then ``O`` and ``B-``/``I-`` per slot type."""
    return [*(INTENT_PREFIX + intent for intent in intents), *tag_list(slot_types)]


def split_labels(labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(intents, slot tags)`` of a list made by ``combined_labels``, each in class-id order."""
    intents = [label[len(INTENT_PREFIX):] for label in labels if label.startswith(INTENT_PREFIX)]
    tags = [label for label in labels if not label.startswith(INTENT_PREFIX)]
    return intents, tags


def tag_list(slot_types: Sequence[str]) -> list[str]:
    """Slot classes: ``O`` then ``B-``/``I-`` of each type, in the given order."""
    return ["O", *(f"{prefix}-{slot_type}" for slot_type in slot_types for prefix in "BI")]


def slot_types_of(tags: Sequence[str]) -> list[str]:
    """The slot types of a tag list made by ``tag_list`` (in class order)."""
    return [tag[2:] for tag in tags if tag.startswith("B-")]


def check_tag(tag: str) -> str | None:
    """``None`` if ``tag`` is ``O``, ``B-type`` or ``I-type``; otherwise what is wrong with it."""
    if tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-")):
        return None
    return f"expected 'O', 'B-TYPE' or 'I-TYPE' (IOB2), got '{tag}'"


def invalid_positions(tags: Sequence[str]) -> list[int]:
    """Positions of ``I-X`` tags that start an entity (after ``O``, the start, or another type)."""
    return [i for i, tag in enumerate(tags)
            if tag.startswith("I-") and (i == 0 or tags[i - 1] == "O" or tags[i - 1][2:] != tag[2:])]


def repair(tags: Sequence[str]) -> list[str]:
    """Make an IOB2 sequence valid: an ``I-X`` that starts an entity becomes ``B-X``."""
    out = list(tags)
    for position in invalid_positions(tags):
        out[position] = "B-" + out[position][2:]
    return out


def spans(tags: Sequence[str]) -> list[Span]:
    """Slots of an IOB2 sequence as ``(start, end, type)`` over word positions."""
    found: list[Span] = []
    start, current = -1, ""
    for position, tag in enumerate([*tags, "O"]):
        inside = tag.startswith("I-") and tag[2:] == current
        if current and not inside:
            found.append((start, position, current))
            current = ""
        if tag != "O" and not inside:
            start, current = position, tag[2:]
    return found
