"""The task's combined label list: intents and IOB2 slot tags in one list. Pure Python, torch-free.

A ``joint_nlu`` model has two label sets but the host passes one ``labels`` list around (it is
saved as ``labels.json`` in every bundle). The list holds the intents first, each prefixed with
``intent:``, then the slot tags (``O``, ``B-type``, ``I-type`` per slot type). A slot tag never
starts with ``intent:``, so ``split_labels`` recovers both sets from any bundle. The slot tags
themselves (``tag_list``, ``repair``, ``spans_from_tags``...) are assistant-builder's toolkit
(``assistant_builder.toolkit.tags``).
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant_builder.toolkit.tags import tag_list

INTENT_PREFIX = "intent:"


def combined_labels(intents: Sequence[str], slot_types: Sequence[str]) -> list[str]:
    """The task's label list: ``intent:<name>`` for each intent, then ``O`` and ``B-``/``I-`` per slot type."""
    return [*(INTENT_PREFIX + intent for intent in intents), *tag_list(slot_types)]


def split_labels(labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(intents, slot tags)`` of a list made by ``combined_labels``, each in class-id order."""
    intents = [label[len(INTENT_PREFIX):] for label in labels if label.startswith(INTENT_PREFIX)]
    tags = [label for label in labels if not label.startswith(INTENT_PREFIX)]
    return intents, tags
