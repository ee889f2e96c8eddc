"""The label store's value types and encodings (no SQLite, no textual): statuses, items, decisions,
progress counts, and how gold values count towards labels."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TODO, LABELLED, SKIPPED, REVIEW = "todo", "labelled", "skipped", "review"
STATUSES = (TODO, LABELLED, SKIPPED, REVIEW)
STORE_SUFFIX = ".labels.sqlite"


def store_path_for(recipe: str | Path) -> Path:
    """``recipes/intents.toml`` -> ``recipes/intents.labels.sqlite``."""
    recipe = Path(recipe)
    return recipe.with_name(recipe.stem + STORE_SUFFIX)


#: how a ``response`` item's payload (``{"messages": [...]}``, see ``contracts.StoreRecord``) starts in its
#: ``dump_json`` form; any ``"`` inside a string is escaped, so only a key can match
RESPONSE_PAYLOAD_MARK = '"messages": ['


def is_response_payload(payload: dict[str, Any] | str | None) -> bool:
    """Whether a payload (a dict, or its ``dump_json`` text) is a conversation of the ``response`` kind."""
    if isinstance(payload, str):
        return RESPONSE_PAYLOAD_MARK in payload
    return isinstance(payload, dict) and "messages" in payload


def gold_labels(gold: Any, response: bool = False) -> list[str]:
    """Label names a gold value counts towards: a class, each span's label, answerable or not.

    A ``response`` item's gold (``response=True``: its payload is a conversation) is free text and
    counts towards no label, so the store's per-label counts stay small whatever the responses say.
    """
    if gold is None or response:
        return []
    if isinstance(gold, str):
        return [gold]
    if isinstance(gold, list):
        return [str(span.get("label", "?")) for span in gold if isinstance(span, dict)]
    if isinstance(gold, dict) and "answers" in gold:
        return ["answer" if gold["answers"] else "unanswerable"]
    return [str(gold)]


@dataclass(frozen=True)
class Item:
    id: int
    payload: dict[str, Any]
    source: str
    gold: Any
    status: str
    suggestion: dict[str, Any] | None
    margin: float | None
    note: str | None


@dataclass(frozen=True)
class Decision:
    """One change a person made (or undid/redid): which item, and its state before and after."""

    seq: int
    item_id: int
    kind: str
    before_gold: Any
    before_status: str
    after_gold: Any
    after_status: str


@dataclass
class Progress:
    total: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    per_label: Counter[str] = field(default_factory=Counter)

    @property
    def labelled(self) -> int:
        return self.by_status[LABELLED]

    @property
    def remaining(self) -> int:
        return self.by_status[TODO] + self.by_status[REVIEW]


def dump_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def item_key(payload: dict[str, Any], given: str | None = None) -> str:
    """Stable identity of an example (for de-duplicating re-imports): its id, else its content."""
    return f"id:{given}" if given else "sha1:" + hashlib.sha1(dump_json(payload).encode("utf-8")).hexdigest()  # type: ignore[union-attr]
