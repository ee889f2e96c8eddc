"""The ``response`` labelling kind (the ``generation`` task): conversations in, TRL records out.

An item's payload is the prompt, ``{"messages": [{"role", "content"}, ...]}`` (the conversation up
to the answer); its gold is the response text (``contracts.StoreRecord``). Imports read the
records the generation task trains from, with the recipe's field names (``ResponseFields``):

* ``{"messages": [...]}``: ending with an assistant message, that message is the gold and the
  messages before it the prompt; ending with a user or system message, an unlabelled prompt.
* ``{"prompt": str | [messages], "completion": str | [assistant messages]}``: the prompt (a string
  is one user message) and the last completion message as the gold (earlier ones join the
  prompt); a ``prompt`` without a ``completion`` is an unlabelled prompt.
* plain text (``.txt``): one user prompt per line, unlabelled.

CSV cells may hold the JSON list of messages. Exports write one ``{"messages": [...prompt,
{"role": "assistant", "content": gold}]}`` per labelled item: JSONL, or CSV with that one column
holding the JSON list, which ``builder run`` of the generation task reads unchanged. Every problem is
a ``DataError`` starting with ``file:line`` and the field. Standard library only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from assistant_builder.errors import DataError

ROLES = ("system", "user", "assistant")
_RECORD_HINT = ('each record is {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]} '
                'or {"prompt": "...", "completion": "..."} (completion optional: an unlabelled prompt)')

Row = tuple[dict[str, Any], Any, str, "str | None"]  # payload, gold, source, given id


@dataclass(frozen=True)
class ResponseFields:
    """Column names of a conversation record (the generation task's ``messages_field``, ``prompt_field``, ``completion_field``)."""

    messages: str = "messages"
    prompt: str = "prompt"
    completion: str = "completion"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ResponseFields:
        """The field names of a recipe's ``[task.options]`` (defaults where it sets none)."""
        return cls(str(options.get("messages_field") or "messages"), str(options.get("prompt_field") or "prompt"),
                   str(options.get("completion_field") or "completion"))


def _cell(value: Any, at: str, strict: bool) -> Any:
    """A CSV cell holding a JSON list, parsed (a ``prompt``/``completion`` cell that is not one stays text)."""
    if not (isinstance(value, str) and value.lstrip().startswith("[")):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        if not strict:
            return value
        raise DataError(f"{at}: malformed JSON list of messages ({error.msg} at column {error.colno})", hint=_RECORD_HINT) from None


def parse_messages(value: Any, at: str) -> list[dict[str, str]]:
    """``value`` as a list of ``{"role", "content"}`` messages, or a ``DataError`` at ``at`` (``file:line: field``)."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{at}: expected a non-empty list of {{\"role\", \"content\"}} messages, got {value!r:.80}", hint=_RECORD_HINT)
    messages = []
    for number, item in enumerate(value, start=1):
        where = f"{at}[{number}]"
        if not isinstance(item, Mapping):
            raise DataError(f"{where}: expected an object with \"role\" and \"content\", got {item!r:.80}")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise DataError(f"{where}: unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise DataError(f"{where}: expected \"content\" to be a string, got {content!r:.80}")
        if role == "assistant" and not content.strip():
            raise DataError(f"{where}: empty assistant message; expected the answer the model should learn")
        messages.append({"role": role, "content": content})
    return messages


def _split(messages: list[dict[str, str]], at: str) -> tuple[dict[str, Any], str | None]:
    """Payload (the prompt) and gold (the last assistant message, or None for an open prompt)."""
    gold = messages[-1]["content"] if messages[-1]["role"] == "assistant" else None
    prompt = messages[:-1] if gold is not None else messages
    if not any(m["role"] != "assistant" for m in prompt):
        raise DataError(f"{at}: no user or system message before the response; expected the prompt the response answers")
    return {"messages": prompt}, gold


def record_to_item(record: Mapping[str, Any], where: str, fields: ResponseFields = ResponseFields()) -> tuple[dict[str, Any], str | None]:
    """One imported record as ``(payload, gold_or_None)`` (see the module docstring for the shapes)."""
    present = lambda name: name in record and record[name] not in (None, "")  # noqa: E731 - a CSV cell may be empty
    if present(fields.messages):
        at = f"{where}: {fields.messages}"
        return _split(parse_messages(_cell(record[fields.messages], at, strict=True), at), at)
    if present(fields.prompt):
        at = f"{where}: {fields.prompt}"
        prompt = _cell(record[fields.prompt], at, strict=False)
        if isinstance(prompt, str):
            if not prompt.strip():
                raise DataError(f"{at}: empty prompt; expected the text the model answers")
            messages = [{"role": "user", "content": prompt}]
        else:
            messages = parse_messages(prompt, at)
            if messages[-1]["role"] == "assistant":
                raise DataError(f"{at}: the prompt ends with an assistant message; expected it to end with the message to answer "
                                f"(put the answer in '{fields.completion}')")
        if not present(fields.completion):
            return _split(messages, at)
        at = f"{where}: {fields.completion}"
        completion = _cell(record[fields.completion], at, strict=False)
        if isinstance(completion, str):
            if not completion.strip():
                raise DataError(f"{at}: empty completion; expected the answer the model should learn")
            answers = [{"role": "assistant", "content": completion}]
        else:
            answers = parse_messages(completion, at)
            if any(m["role"] != "assistant" for m in answers):
                raise DataError(f"{at}: expected assistant messages only, got roles {', '.join(m['role'] for m in answers)}")
        return _split(messages + answers, at)
    if present(fields.completion):
        raise DataError(f"{where}: missing field '{fields.prompt}'; a completion needs the prompt it answers")
    found = ", ".join(sorted(map(str, record))) or "none"
    text = " (a plain 'text' record has no response to label)" if "text" in record else ""
    raise DataError(f"{where}: expected a field '{fields.messages}', or '{fields.prompt}' (and '{fields.completion}'); found {found}{text}",
                    hint="set task.options.messages_field (prompt_field, completion_field) to your column names")


def response_rows(records: Iterable[tuple[int, Mapping[str, Any]]], name: str, fields: ResponseFields) -> Iterator[Row]:
    """Store rows of ``(line number, record)`` pairs read from the file called ``name``."""
    for number, record in records:
        payload, gold = record_to_item(record, f"{name}:{number}", fields)
        yield payload, gold, f"{name}:{number}", None


def prompt_rows(lines: Iterable[tuple[int, str]], name: str) -> Iterator[Row]:
    """Plain text: each non-empty line a user prompt, unlabelled."""
    for number, line in lines:
        if line.strip():
            yield {"messages": [{"role": "user", "content": line.strip()}]}, None, f"{name}:{number}", None


def training_record(payload: Mapping[str, Any], gold: Any, where: str, messages_field: str = "messages") -> dict[str, Any]:
    """The TRL record of a labelled item: the prompt's messages and the response as the last assistant message."""
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(gold, str) or not gold.strip():
        raise DataError(f"{where}: expected payload {{\"messages\": [...]}} and a non-empty response string as gold, got payload keys "
                        f"{sorted(payload)} and gold {gold!r:.80}", hint="fix or skip the item in `builder tui`")
    prompt = parse_messages(messages, f"{where}: payload.messages")
    return {messages_field: [*prompt, {"role": "assistant", "content": gold}]}


def render(records: list[dict[str, Any]], csv_delimiter: str | None, messages_field: str = "messages") -> str:
    """The export's text: JSON lines, or (``csv_delimiter``) a CSV with one column of JSON message lists."""
    if csv_delimiter is None:
        return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=csv_delimiter, lineterminator="\n")
    writer.writerow([messages_field])
    writer.writerows([json.dumps(record[messages_field], ensure_ascii=False)] for record in records)
    return buffer.getvalue()
