"""The ``generation`` task's examples and readers: TRL ``SFTTrainer`` dataset formats, unchanged.

One record is one of (field names configurable, ``GenerationFields``):

* ``{"messages": [{"role", "content"}, ...]}``: a conversation; the loss covers every assistant message.
* ``{"prompt": str, "completion": str}``: the prompt becomes a user message, the completion an
  assistant message.
* ``{"prompt": [messages], "completion": [messages]}``: conversational prompt and completion.
* ``{"text": str}``: plain text; the loss covers every token.

Roles are ``system``, ``user`` and ``assistant``. JSONL, CSV (a cell may hold the JSON list of
messages) and Parquet are read through ``assistant_builder.datasources``; every problem is a
``DataError`` that starts with ``file:line``. Torch-free.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.datasources import read_records
from assistant_builder.errors import DataError
from assistant_builder.labelling.responses import ROLES  # noqa: F401 - one list of roles for training data and the store
from assistant_builder.labelling.responses import parse_messages as checked_messages

KINDS = ("messages", "prompt_completion", "text")
_CELL_HINT = 'a cell holds e.g. [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]'
_INPUT_HINT = 'e.g. "How do I reset it?", {"prompt": "How do I reset it?"} or {"messages": [{"role": "user", "content": "..."}]}'


@dataclass(frozen=True)
class Message:
    """One turn: ``role`` is one of ``ROLES``, ``content`` its text."""

    role: str
    content: str


@dataclass(frozen=True)
class Conversation:
    """One example: ``messages`` (kinds ``messages`` and ``prompt_completion``) or ``text`` (kind ``text``)."""

    messages: tuple[Message, ...]
    kind: str
    source: str = ""
    text: str | None = None

    @property
    def prompt(self) -> tuple[Message, ...]:
        """The messages before the last assistant message (all of them when it does not end with one)."""
        if self.messages and self.messages[-1].role == "assistant":
            return self.messages[:-1]
        return self.messages

    @property
    def completion(self) -> str | None:
        """The last assistant message's text (the reference answer); ``None`` for plain text or an open prompt."""
        if self.messages and self.messages[-1].role == "assistant":
            return self.messages[-1].content
        return None

    @property
    def reference(self) -> str | None:
        """The answer generated text is scored against: ``completion``."""
        return self.completion


@dataclass(frozen=True)
class GenerationFields:
    """Column names of the four fields a record may have."""

    messages: str = "messages"
    prompt: str = "prompt"
    completion: str = "completion"
    text: str = "text"


def _json_list(value: Any, at: str, strict: bool = True) -> Any:
    """A CSV/Parquet cell holding a JSON list of messages, parsed; anything else unchanged.

    ``strict`` (a messages column, where text is never valid): malformed JSON is a ``DataError``.
    Otherwise (a prompt or completion, which may be text such as ``"[Urgent] my order..."``) a
    string is parsed only if it is a JSON list of objects, and kept as text if not.
    """
    if not (isinstance(value, str) and value.lstrip().startswith("[")):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        if not strict:
            return value
        raise DataError(f"{at}: malformed JSON list of messages ({error.msg} at column {error.colno})", hint=_CELL_HINT) from None
    if not strict and not (isinstance(parsed, list) and parsed and all(isinstance(item, Mapping) for item in parsed)):
        return value
    return parsed


def _at(where: str, field: str) -> str:
    return f"{where}: {field}" if where else field


def parse_messages(value: Any, where: str, field: str) -> list[Message]:
    """A list of ``{"role", "content"}`` dicts (or a JSON string of one) as ``Message``s.

    Roles must be one of ``ROLES`` (``tool`` and others are refused), contents strings, assistant
    contents not blank: the checks of the labelling store's ``labelling.responses.parse_messages``
    (one rule for what a conversation is, in training data and in the store). Errors are
    ``DataError``s that start with ``where: field`` (just ``field`` when ``where`` is empty).
    """
    at = _at(where, field)
    return [Message(m["role"], m["content"]) for m in checked_messages(_json_list(value, at), at)]


def parse_record(row: Mapping[str, Any], where: str, fields: GenerationFields) -> Conversation:
    """One record as a ``Conversation`` (see the module docstring for the accepted shapes)."""
    present = lambda name: name in row and row[name] is not None  # noqa: E731 - a CSV/Parquet cell may be empty
    if present(fields.messages):
        messages = parse_messages(row[fields.messages], where, fields.messages)
        if not any(m.role == "assistant" for m in messages):
            raise DataError(f"{where}: {fields.messages}: no assistant message; expected at least one answer to learn")
        return Conversation(tuple(messages), "messages", where)
    if present(fields.prompt) or present(fields.completion):
        if not (present(fields.prompt) and present(fields.completion)):
            missing = fields.completion if present(fields.prompt) else fields.prompt
            raise DataError(f"{where}: missing field '{missing}'; a prompt-completion record needs both '{fields.prompt}' and "
                            f"'{fields.completion}'")
        prompt = _json_list(row[fields.prompt], f"{where}: {fields.prompt}", strict=False)
        completion = _json_list(row[fields.completion], f"{where}: {fields.completion}", strict=False)
        if isinstance(prompt, str):
            if not prompt.strip():
                raise DataError(f"{where}: {fields.prompt}: empty prompt; expected the text the model answers")
            prompt_messages = [Message("user", prompt)]
        else:
            prompt_messages = parse_messages(prompt, where, fields.prompt)
        if isinstance(completion, str):
            if not completion.strip():
                raise DataError(f"{where}: {fields.completion}: empty completion; expected the answer the model should learn")
            completion_messages = [Message("assistant", completion)]
        else:
            completion_messages = parse_messages(completion, where, fields.completion)
            if any(m.role != "assistant" for m in completion_messages):
                raise DataError(f"{where}: {fields.completion}: expected assistant messages only, got roles "
                                f"{', '.join(m.role for m in completion_messages)}")
        return Conversation(tuple(prompt_messages + completion_messages), "prompt_completion", where)
    if present(fields.text):
        text = row[fields.text]
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: {fields.text}: expected non-empty text, got {text!r:.80}")
        return Conversation((), "text", where, text)
    found = ", ".join(sorted(map(str, row))) or "none"
    raise DataError(f"{where}: expected a field '{fields.messages}', '{fields.prompt}' + '{fields.completion}', or "
                    f"'{fields.text}'; found {found}", hint="set task.options.messages_field (prompt_field, completion_field, "
                                                           "text_field) to your column names")


def load_conversations(path: Path, file_format: str, fields: GenerationFields, split: str = "train") -> list[Conversation]:
    """Every record of ``path`` as a ``Conversation``; an empty file is a ``DataError``."""
    conversations = [parse_record(record.row, record.where, fields) for record in read_records(Path(path), file_format, split)]
    if not conversations:
        raise DataError(f"{path}: no examples; expected records with '{fields.messages}', '{fields.prompt}' + "
                        f"'{fields.completion}' or '{fields.text}'")
    return conversations


def load_split(data: Any, fields: GenerationFields) -> tuple[list[Conversation], list[Conversation], dict[str, Path]]:
    """Train and validation conversations as the recipe's ``[data]`` says (a seeded held-out split when no validation file)."""
    train = load_conversations(data.train, data.format, fields, data.dataset_train_split)
    if data.validation is not None:
        validation = load_conversations(data.validation, data.format, fields, data.dataset_validation_split)
        return train, validation, {"train": Path(data.train), "validation": Path(data.validation)}
    if len(train) < 2:
        raise DataError(f"{data.train}: {len(train)} example; expected at least 2 to hold out validation data",
                        hint="add examples, or give data.validation")
    order = list(range(len(train)))
    random.Random(data.split_seed).shuffle(order)
    held = set(order[: max(1, round(len(train) * data.validation_split))])
    return ([e for i, e in enumerate(train) if i not in held], [e for i, e in enumerate(train) if i in held],
            {"train": Path(data.train), "validation": Path(data.train)})


def parse_generation_input(raw: Any) -> Conversation:
    """One runtime input: a string (a user message), ``{"prompt": str | messages}`` or ``{"messages": [...]}``,
    which must end with a user or system message (the model answers it)."""
    if isinstance(raw, str):
        if not raw.strip():
            raise DataError("expected a non-empty prompt", hint=_INPUT_HINT)
        return Conversation((Message("user", raw),), "messages", "input")
    if not isinstance(raw, Mapping):
        raise DataError(f"expected a prompt string or an object with \"prompt\" or \"messages\", got {raw!r:.80}", hint=_INPUT_HINT)
    value = raw.get("messages") if raw.get("messages") is not None else raw.get("prompt")
    if isinstance(value, str):
        return parse_generation_input(value)
    if value is None:
        raise DataError(f"expected a field \"prompt\" or \"messages\", got keys {', '.join(sorted(map(str, raw))) or 'none'}",
                        hint=_INPUT_HINT)
    field = "messages" if raw.get("messages") is not None else "prompt"
    messages = parse_messages(value, "", field)
    if messages[-1].role == "assistant":
        raise DataError(f"{field}: the conversation ends with an assistant message; expected it to end with the user's "
                        "message the model should answer", hint=_INPUT_HINT)
    return Conversation(tuple(messages), "messages", "input")


def as_rows(conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
    """Conversations back as TRL-style records (``messages`` or ``text``), e.g. for an export of the labelling store."""
    return [{"text": c.text} if c.kind == "text" else {"messages": [{"role": m.role, "content": m.content} for m in c.messages]}
            for c in conversations]
