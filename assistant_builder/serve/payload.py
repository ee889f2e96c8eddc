"""Validate a ``POST /predict`` or ``POST /generate`` body, with messages that name the field.

The body is ``{"inputs": [...]}`` (a batch) or ``{"input": ...}`` (one), plus optional ``top_k``
for tasks whose options have it and ``fallback_threshold`` for models with a fallback label. Each input goes through the task's own ``parse_input``, so the
server accepts exactly what ``builder predict`` accepts (a text or ``{"text": ...}`` for
classification, ``{"question", "context"}`` for qa); a ``DataError`` there becomes
``inputs[3]: expected ...``. ``parse_generate`` validates a ``/generate`` body the same way (see
``GENERATE_KEYS``): the prompt through the task's ``parse_input`` (``messages[2]: unknown role ...``),
the generation settings through ``GenerationSettings`` (``top_p: expected a number in (0, 1] ...``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from assistant_builder.contracts import ComponentOptions
from assistant_builder.errors import DataError
from assistant_builder.runtime.predictor import Predictor

ALLOWED_KEYS = ("inputs", "input", "top_k", "fallback_threshold")
#: fields of a ``POST /generate`` body: exactly one of ``prompt`` / ``messages``, the rest optional
GENERATE_KEYS = ("prompt", "messages", "max_new_tokens", "temperature", "top_p", "stop", "seed", "stream")
#: stop sequences one request may send, at most
MAX_STOPS = 16


class RequestError(Exception):
    """A request the server refuses: HTTP status, a short machine-readable code, and the message."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None,
                 headers: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        self.headers = dict(headers or {})
        #: more machine-readable fields of the error object (e.g. a refused reload's ``reason``)
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, **self.extra}
        if self.hint:
            error["hint"] = self.hint
        return {"error": error}


def invalid(message: str, hint: str | None = None) -> RequestError:
    return RequestError(422, "invalid_input", message, hint)


@dataclass(frozen=True)
class PredictRequest:
    """A validated request: parsed examples, the options to decode them with, and its shape."""

    examples: list[Any]
    options: ComponentOptions
    single: bool
    #: the raw inputs, in order (what ``POST /feedback`` re-parses and the store keeps)
    inputs: list[Any] = field(default_factory=list)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)


def _check_lengths(raw: Any, where: str, limit: int) -> None:
    """Every string in an input (and in an object's top-level fields) is at most ``limit`` characters."""
    if isinstance(raw, str):
        strings = [(where, raw)]
    elif isinstance(raw, dict):
        strings = [(f"{where}.{key}", value) for key, value in raw.items() if isinstance(value, str)]
    else:
        return
    for place, text in strings:
        if len(text) > limit:
            raise invalid(f"{place}: expected at most {limit} characters, got {len(text)}",
                          hint="split long documents, or start the server with a larger --max-text-chars")


def decode_json(body: bytes) -> Any:
    if not body.strip():
        raise RequestError(422, "invalid_json", "request body: expected a JSON object, got an empty body",
                           hint='send e.g. {"inputs": ["some text"]} with Content-Type: application/json')
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise RequestError(422, "invalid_json", "request body: expected UTF-8 JSON, got undecodable bytes") from None
    except json.JSONDecodeError as exc:
        raise RequestError(422, "invalid_json", f"request body: expected JSON, got a parse error at line {exc.lineno} "
                           f"column {exc.colno}: {exc.msg}", hint='send e.g. {"inputs": ["some text"]}') from None


class OptionsCache:
    """Task options per request override (``top_k``, ``fallback_threshold``), validated once against the task's ``Options``."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        fields = type(predictor.options).model_fields
        self.accepts_top_k = "top_k" in fields
        self.accepts_threshold = "fallback_threshold" in fields
        self._cache: dict[tuple[int | None, float | None], ComponentOptions] = {}

    def get(self, top_k: Any = None, fallback_threshold: Any = None) -> ComponentOptions:
        if top_k is None and fallback_threshold is None:
            return self.predictor.options
        update: dict[str, Any] = {}
        if top_k is not None:
            if not self.accepts_top_k:
                raise invalid(f"top_k: the '{self.predictor.task.name}' task has no top_k option; remove it")
            if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
                raise invalid(f"top_k: expected a positive integer, got {json.dumps(top_k)}")
            update["top_k"] = min(top_k, len(self.predictor.labels))  # more than the label count lists every label
        if fallback_threshold is not None:
            if not self.accepts_threshold or getattr(self.predictor.options, "fallback_label", None) is None:
                raise invalid(f"fallback_threshold: this '{self.predictor.task.name}' model has no fallback label to reject to; "
                              "remove it", hint="train with [task.options] fallback_label = \"out_of_scope\"")
            if not isinstance(fallback_threshold, (int, float)) or isinstance(fallback_threshold, bool):
                raise invalid(f"fallback_threshold: expected a number (an energy score; see GET /info), got {json.dumps(fallback_threshold)}")
            update["fallback_threshold"] = float(fallback_threshold)
        key = (update.get("top_k"), update.get("fallback_threshold"))
        if key not in self._cache:
            try:
                self._cache[key] = type(self.predictor.options).model_validate({**self.predictor.options.model_dump(), **update})
            except ValidationError as exc:
                raise invalid(f"{next(iter(update))}: {exc.errors()[0]['msg']}") from None
            if len(self._cache) > 256:  # per-request thresholds are free-form: keep the cache bounded
                self._cache.pop(next(iter(self._cache)))
        return self._cache[key]


def parse_predict(data: Any, predictor: Predictor, options: OptionsCache, *, max_batch: int,
                  max_text_chars: int) -> PredictRequest:
    """Validate a decoded JSON body; raise ``RequestError`` (422) naming the first bad field."""
    example = '{"inputs": ["some text", ...]} or {"input": "some text"}'
    if not isinstance(data, dict):
        raise invalid(f"request body: expected a JSON object such as {example}, got {_type_name(data)}")
    unknown = sorted(key for key in data if key not in ALLOWED_KEYS)
    if unknown:
        raise invalid(f"{unknown[0]}: unknown field; expected only {', '.join(ALLOWED_KEYS)}")
    if ("inputs" in data) == ("input" in data):
        found = "both" if "inputs" in data else "neither"
        raise invalid(f"inputs: expected exactly one of 'inputs' (a list) or 'input' (one input), got {found}",
                      hint=f"send {example}")
    single = "input" in data
    if single:
        raws, sources = [data["input"]], ["input"]
    else:
        raws = data["inputs"]
        if not isinstance(raws, list):
            raise invalid(f"inputs: expected an array of inputs, got {_type_name(raws)}",
                          hint='for one input send {"input": ...} or {"inputs": [...]}')
        if not 1 <= len(raws) <= max_batch:
            raise invalid(f"inputs: expected 1 to {max_batch} inputs, got {len(raws)}",
                          hint="split the batch into several requests" if raws else None)
        sources = [f"inputs[{index}]" for index in range(len(raws))]
    task_options = options.get(data.get("top_k"), data.get("fallback_threshold"))
    for raw, where in zip(raws, sources):
        _check_lengths(raw, where, max_text_chars)
    try:
        examples = predictor.parse(raws, sources)
    except DataError as exc:
        raise invalid(exc.message, exc.hint) from None
    return PredictRequest(examples, task_options, single, list(raws))


@dataclass(frozen=True)
class GenerateRequest:
    """A validated ``POST /generate`` body: the raw input (``{"prompt"}`` or ``{"messages"}``, as the store keeps
    it), its parsed conversation, the prompt's token ids, the generation settings, and whether to stream."""

    raw: dict[str, Any]
    example: Any
    prompt_ids: list[int]
    settings: Any
    stream: bool


def _number(data: Mapping[str, Any], key: str, integer: bool = False) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise invalid(f"{key}: expected {'an integer' if integer else 'a number'}, got {_type_name(value)} {json.dumps(value)[:40]}")
    return value


def _stops(value: Any, limit: int) -> tuple[str, ...] | None:
    if value is None:
        return None
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list):
        raise invalid(f"stop: expected a string or a list of strings, got {_type_name(value)}")
    if len(stops) > MAX_STOPS:
        raise invalid(f"stop: expected at most {MAX_STOPS} stop sequences, got {len(stops)}")
    for index, stop in enumerate(stops):
        if not isinstance(stop, str) or not stop:
            raise invalid(f"stop[{index}]: expected a non-empty string, got {json.dumps(stop)[:40]}")
        if len(stop) > limit:
            raise invalid(f"stop[{index}]: expected at most {limit} characters, got {len(stop)}")
    return tuple(stops)


def parse_generate(data: Any, model: Any, *, max_text_chars: int, accept: str = "") -> GenerateRequest:
    """Validate a decoded ``POST /generate`` body against ``model`` (a ``GenerationModel``); raise ``RequestError``
    (422) naming the first bad field. ``stream``: the body's ``stream``, else whether ``accept`` (the request's
    Accept header) asks for ``text/event-stream``."""
    example = '{"prompt": "How do I reset it?"} or {"messages": [{"role": "user", "content": "..."}]}'
    if not isinstance(data, dict):
        raise invalid(f"request body: expected a JSON object such as {example}, got {_type_name(data)}")
    unknown = sorted(key for key in data if key not in GENERATE_KEYS)
    if unknown:
        raise invalid(f"{unknown[0]}: unknown field; expected only {', '.join(GENERATE_KEYS)}")
    if ("prompt" in data) == ("messages" in data):
        found = "both" if "prompt" in data else "neither"
        raise invalid(f"prompt: expected exactly one of 'prompt' (a text) or 'messages' (a conversation), got {found}",
                      hint=f"send {example}")
    where = "prompt" if "prompt" in data else "messages"
    value = data[where]
    if not (isinstance(value, list) or (where == "prompt" and isinstance(value, str))):
        expected = "a text (or a list of messages)" if where == "prompt" else 'a list of {"role", "content"} messages'
        raise invalid(f"{where}: expected {expected}, got {_type_name(value)}", hint=f"send {example}")
    if isinstance(value, str):
        _check_lengths(value, where, max_text_chars)
    else:
        for number, message in enumerate(value, start=1):
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                _check_lengths(message["content"], f"{where}[{number}].content", max_text_chars)
    raw = {where: value}
    try:
        [parsed] = model.parse([raw], [where])
    except DataError as exc:
        message = exc.message.removeprefix(f"{where}: ") if exc.message.startswith(f"{where}: {where}") else exc.message
        raise invalid(message, exc.hint) from None
    try:
        prompt_ids = model.prompt_ids(raw, where)
    except DataError as exc:  # too long for the model
        raise invalid(exc.message, exc.hint) from None
    changes = {"max_new_tokens": _number(data, "max_new_tokens", integer=True), "temperature": _number(data, "temperature"),
               "top_p": _number(data, "top_p"), "seed": _number(data, "seed", integer=True),
               "stop": _stops(data.get("stop"), max_text_chars)}
    try:
        settings = model.settings_for(prompt_ids, **changes)
    except ValueError as exc:
        first = str(exc).removeprefix("invalid generation settings: ").split("; ")[0]
        raise invalid(first, hint="GET /info shows the model's defaults (generation)") from None
    stream = data.get("stream")
    if stream is None:
        stream = "text/event-stream" in accept.lower()
    elif not isinstance(stream, bool):
        raise invalid(f"stream: expected true or false, got {json.dumps(stream)[:40]}")
    return GenerateRequest(raw, parsed, prompt_ids, settings, stream)
