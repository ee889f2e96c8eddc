"""The NER task's side of the feedback contract: sentences as store records and back, the model's
tags as token spans, and a user's character-span correction as token spans. Torch-free."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assistant_builder.contracts import StoreRecord
from assistant_builder.feedback import char_entities_to_token_spans, check_token_spans
from assistant_builder.toolkit.alignment import join_words
from assistant_builder.toolkit.tags import spans_from_tags, tag_types, tags_from_spans
from assistant_builder_tasks.ner.data import TokenExample


def tags_to_token_spans(tags: Sequence[str]) -> list[dict[str, Any]]:
    """IOB2 tags as ``[{"start", "end", "label"}]`` over word positions (end exclusive)."""
    return [{"start": start, "end": end, "label": label} for start, end, label in spans_from_tags(list(tags))]


def token_spans_to_tags(n_tokens: int, token_spans: Sequence[Mapping[str, Any]]) -> list[str]:
    """The IOB2 tags of ``n_tokens`` words holding checked, non-overlapping ``token_spans``."""
    return tags_from_spans([(span["start"], span["end"], str(span["label"])) for span in token_spans], n_tokens)


def to_store(example: TokenExample) -> StoreRecord:
    gold = tags_to_token_spans(example.tags) if example.tags is not None else None
    return StoreRecord({"tokens": list(example.tokens)}, gold, example.source)


def from_store(record: StoreRecord, labels: Sequence[str]) -> TokenExample:
    tokens = [str(token) for token in record.payload["tokens"]]
    checked = check_token_spans(record.gold, len(tokens), tag_types(labels), "gold")
    text, offsets = join_words(tokens)
    return TokenExample(tuple(tokens), tuple(token_spans_to_tags(len(tokens), checked)), text, tuple(offsets), record.source)


def correction_spans(example: TokenExample, entities: Any, labels: Sequence[str]) -> list[dict[str, Any]]:
    """``{"entities": [{"start", "end", "label"}]}`` in characters of the input text -> token spans."""
    return char_entities_to_token_spans(entities, example.text, example.offsets, tag_types(labels), "entities")
