"""Building blocks of a task's feedback contract (``Task.to_store`` ... ``prediction_confidence``).

Public and torch-free: the built-in tasks use them, and so can a third-party task. Every checker
raises ``DataError`` whose message starts with the field it is about (``label: ...``,
``entities[1].end: ...``), which ``builder serve`` returns as a 422 and ``data.extra`` as a located
data error. Store shapes per labelling kind are described on ``contracts.StoreRecord``. The value
checks and confidence measures live in ``feedback_values`` (``contracts`` uses them) and are
re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from assistant_builder.contracts import StoreRecord, Task
from assistant_builder.errors import DataError
from assistant_builder.feedback_values import (default_confidence, lowest_entity_score, require_bool, require_label, shown,
                                               top_margin)

__all__ = ["PAYLOAD_KEYS", "answer_gold", "char_entities_to_token_spans", "check_answers", "check_record", "check_token_spans",
           "default_confidence", "lowest_entity_score", "require_bool", "require_label", "supports_feedback", "top_margin"]

#: payload keys of a store record, per labelling kind
PAYLOAD_KEYS: dict[str, tuple[str, ...]] = {"text_class": ("text",), "token_spans": ("tokens",), "answer_span": ("question", "context"),
                                             "response": ("messages",)}


def supports_feedback(task: Task | type[Task]) -> bool:
    """True when the task implements the feedback contract (``to_store`` and ``from_store``, plus
    ``prediction_gold`` unless its labelling kind is ``text_class``)."""
    cls = task if isinstance(task, type) else type(task)
    own = cls.to_store is not Task.to_store and cls.from_store is not Task.from_store
    return own and (cls.labelling_kind == "text_class" or cls.prediction_gold is not Task.prediction_gold)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- confidence ---------------------------------------------------------------------------------
# -- token spans (NER) --------------------------------------------------------------------------
def check_token_spans(spans: Any, n_tokens: int, types: Sequence[str], field: str = "gold") -> list[dict[str, Any]]:
    """Validated ``[{"start", "end", "label"}]`` token spans (sorted): inside ``n_tokens``, labels in
    ``types``, no overlaps."""
    if not isinstance(spans, list):
        raise DataError(f"{field}: expected a list of token spans {{\"start\", \"end\", \"label\"}}, got {shown(spans)}")
    checked = []
    for index, span in enumerate(spans):
        where = f"{field}[{index}]"
        if not isinstance(span, Mapping) or not _is_int(span.get("start")) or not _is_int(span.get("end")):
            raise DataError(f"{where}: expected {{\"start\": int, \"end\": int, \"label\": str}}, got {shown(span)}")
        start, end = span["start"], span["end"]
        if not 0 <= start < end <= n_tokens:
            raise DataError(f"{where}: expected 0 <= start < end <= {n_tokens} (the number of tokens), got {start}-{end}")
        checked.append({"start": start, "end": end, "label": require_label(span.get("label"), types, f"{where}.label")})
    checked.sort(key=lambda s: s["start"])
    for before, after in zip(checked, checked[1:]):
        if after["start"] < before["end"]:
            raise DataError(f"{field}: spans {before['start']}-{before['end']} and {after['start']}-{after['end']} overlap; "
                            "expected at most one entity per token")
    return checked


def char_entities_to_token_spans(entities: Any, text: str, offsets: Sequence[tuple[int, int]], types: Sequence[str],
                                 field: str = "entities") -> list[dict[str, Any]]:
    """A correction's entities, ``[{"start", "end", "label"}]`` in *characters* of ``text`` (as
    predictions give them), as token spans over the words at ``offsets``.

    A span must lie inside the text and cover at least one word; it is widened to whole words.
    Entities may not overlap. ``[]`` means "no entities".
    """
    if not isinstance(entities, list):
        raise DataError(f"{field}: expected a list of {{\"start\", \"end\", \"label\"}} character spans (may be empty), "
                        f"got {shown(entities)}")
    spans = []
    for index, entity in enumerate(entities):
        where = f"{field}[{index}]"
        if not isinstance(entity, Mapping):
            raise DataError(f"{where}: expected an object {{\"start\": int, \"end\": int, \"label\": str}}, got {shown(entity)}")
        unknown = sorted(set(entity) - {"start", "end", "label", "text", "score"})
        if unknown:
            raise DataError(f"{where}.{unknown[0]}: unknown field; expected start, end, label (and optionally text)")
        for key in ("start", "end"):
            if not _is_int(entity.get(key)):
                raise DataError(f"{where}.{key}: expected a character offset (an integer), got {shown(entity.get(key))}")
        start, end = entity["start"], entity["end"]
        if start < 0 or start >= len(text):
            raise DataError(f"{where}.start: expected 0 <= start < {len(text)} (the text's length), got {start}")
        if end <= start or end > len(text):
            raise DataError(f"{where}.end: expected start < end <= {len(text)} (the text's length), got {end}")
        if "text" in entity and entity["text"] != text[start:end]:
            raise DataError(f"{where}.text: expected the text at {start}-{end}, {shown(text[start:end])}, got {shown(entity['text'])}")
        label = require_label(entity.get("label"), types, f"{where}.label")
        inside = [i for i, (s, e) in enumerate(offsets) if s < end and e > start]
        if not inside:
            raise DataError(f"{where}: characters {start}-{end} ({shown(text[start:end])}) cover no word of the text")
        spans.append({"start": inside[0], "end": inside[-1] + 1, "label": label})
    return check_token_spans(spans, len(offsets), types, field)


# -- answer spans (QA) --------------------------------------------------------------------------
def answer_gold(answer: Any, context: str, allow_unanswerable: bool, field: str = "answer") -> dict[str, Any]:
    """A correction's answer as a store gold ``{"answers": [...]}``.

    ``answer`` is ``{"start": int, "end": int}`` in characters of ``context`` (optionally with the
    ``"text"``, which must match), or ``null`` for "the context does not answer it" (only when
    ``allow_unanswerable``).
    """
    if answer is None:
        if not allow_unanswerable:
            raise DataError(f"{field}: null (unanswerable) is not allowed: the model was trained with allow_unanswerable = false",
                            hint='send {"answer": {"start": ..., "end": ...}} with the span of the context that answers it')
        return {"answers": []}
    if not isinstance(answer, Mapping):
        raise DataError(f"{field}: expected {{\"start\": int, \"end\": int}} (characters of the context) or null, got {shown(answer)}")
    unknown = sorted(set(answer) - {"start", "end", "text"})
    if unknown:
        raise DataError(f"{field}.{unknown[0]}: unknown field; expected start, end (and optionally text)")
    for key in ("start", "end"):
        if not _is_int(answer.get(key)):
            raise DataError(f"{field}.{key}: expected a character offset in the context (an integer), got {shown(answer.get(key))}")
    start, end = answer["start"], answer["end"]
    if start < 0 or start >= len(context):
        raise DataError(f"{field}.start: expected 0 <= start < {len(context)} (the context's length), got {start}")
    if end <= start or end > len(context):
        raise DataError(f"{field}.end: expected start < end <= {len(context)} (the context's length), got {end}")
    if "text" in answer and answer["text"] != context[start:end]:
        raise DataError(f"{field}.text: expected the context's text at {start}-{end}, {shown(context[start:end])}, "
                        f"got {shown(answer['text'])}")
    if not context[start:end].strip():
        raise DataError(f"{field}: characters {start}-{end} of the context are blank; expected the answer's span")
    return {"answers": [{"text": context[start:end], "answer_start": start}]}


def check_answers(gold: Any, context: str, allow_unanswerable: bool, field: str = "gold") -> list[tuple[str, int]]:
    """A store gold ``{"answers": [{"text", "answer_start"}]}`` as ``(text, start)`` pairs, each found in ``context``."""
    if not isinstance(gold, Mapping) or not isinstance(gold.get("answers"), list):
        raise DataError(f"{field}: expected {{\"answers\": [{{\"text\", \"answer_start\"}}]}}, got {shown(gold)}")
    answers = []
    for index, answer in enumerate(gold["answers"]):
        where = f"{field}.answers[{index}]"
        if not isinstance(answer, Mapping) or not isinstance(answer.get("text"), str) or not _is_int(answer.get("answer_start")):
            raise DataError(f"{where}: expected {{\"text\": str, \"answer_start\": int}}, got {shown(answer)}")
        text, start = answer["text"], answer["answer_start"]
        if not text or context[start:start + len(text)] != text or start < 0:
            raise DataError(f"{where}: the text {shown(text)} is not at character {start} of the context")
        answers.append((text, start))
    if not answers and not allow_unanswerable:
        raise DataError(f"{field}: an unanswerable question (no answers), but the task's allow_unanswerable is false",
                        hint="set task.options.allow_unanswerable = true, or label the answer")
    return answers


# -- records ------------------------------------------------------------------------------------
def check_record(kind: str, record: Any) -> list[str]:
    """Problems with a ``StoreRecord`` for labelling ``kind`` (payload keys and types, JSON-ready); [] if none."""
    if not isinstance(record, StoreRecord):
        return [f"expected a contracts.StoreRecord, got {type(record).__name__}"]
    problems = []
    keys = PAYLOAD_KEYS.get(kind)
    payload = record.payload
    if keys is None:
        return [f"labelling kind '{kind}' has no store format; expected one of {', '.join(PAYLOAD_KEYS)}"]
    if not isinstance(payload, dict) or sorted(payload) != sorted(keys):
        return [f"payload: expected exactly the keys {', '.join(keys)} for {kind}, got {shown(payload)}"]
    if kind == "token_spans":
        if not isinstance(payload["tokens"], list) or not payload["tokens"] or not all(isinstance(t, str) for t in payload["tokens"]):
            problems.append(f"payload.tokens: expected a non-empty list of strings, got {shown(payload['tokens'])}")
    elif kind == "response":
        messages = payload["messages"]
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages):
            problems.append(f"payload.messages: expected a non-empty list of {{\"role\", \"content\"}} strings, got {shown(messages)}")
        if not isinstance(record.gold, (str, type(None))) or record.gold == "":
            problems.append(f"gold: expected the response (a non-empty string) or null, got {shown(record.gold)}")
    elif not all(isinstance(payload[key], str) and payload[key] for key in keys):
        problems.append(f"payload: expected non-empty strings in {', '.join(keys)}, got {shown(payload)}")
    try:
        json.dumps([payload, record.gold], allow_nan=False)
    except (TypeError, ValueError) as error:
        problems.append(f"not JSON-ready: {error}")
    return problems
