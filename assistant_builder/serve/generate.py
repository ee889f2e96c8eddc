"""``POST /generate``: a generation model's answer, streamed as server-sent events or as one JSON object.

Body: exactly one of ``"prompt"`` (a text, or a list of messages) or ``"messages"`` (a conversation
ending with the user's turn), plus optional ``max_new_tokens``, ``temperature``, ``top_p``, ``stop``
(a string or up to 16), ``seed`` and ``stream`` (``serve/payload.py``: ``parse_generate``; a bad
field is a 422 naming it). Unset settings are the bundle's defaults (``GET /info``: ``generation``).

Streaming rule: ``"stream"`` in the body decides; without it, the answer is streamed when the
request's ``Accept`` header names ``text/event-stream``, else it is one JSON object. A stream is
``text/event-stream`` with one ``data: {"text": PIECE}`` event per text piece (joined, the pieces
are exactly the ``completion``), then ``event: done`` with ``{"completion", "tokens",
"finish_reason", "model_version", "id"}``, the fields the JSON answer has. ``id`` is the
``prediction_id`` that ``POST /feedback`` takes (``{"prediction_id": id, "response": "..."}``);
``null`` without ``--feedback``. A failure after the stream started is an ``event: error`` with
``{"error": {...}}``.

The request joins the scheduler's bounded queue like a ``/predict`` request (``serve/engine.py``):
refused at once with 503 + ``Retry-After`` when the queue is full or too slow, and 503 when it
waited longer than ``--max-queue-wait-ms``; at most ``--threads`` answers are generated at once, in
worker threads, so the event loop keeps answering ``/health``. A stream's headers are sent when its
generation starts, so every refusal is still a JSON error. When the client goes away (mid-stream,
or while a JSON answer is generated or queued) its generation stops before the next token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from assistant_builder.errors import DataError
from assistant_builder.serve.engine import QueueFull
from assistant_builder.serve.generation import GENERATION, GenerationJob
from assistant_builder.serve.http import LOG_KEY, ApiJSONResponse, busy, error_response, read_body, to_builtin, wrong_endpoint
from assistant_builder.serve.payload import GenerateRequest, RequestError, decode_json, parse_generate

error_log = logging.getLogger("assistant_builder.serve")

#: headers of a stream: no caching, and no buffering by a proxy in front (nginx)
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: Any, event: str | None = None) -> str:
    """One server-sent event: an optional ``event:`` line and one ``data:`` line of JSON (newlines escaped)."""
    line = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=to_builtin)
    return (f"event: {event}\n" if event else "") + f"data: {line}\n\n"


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response that calls ``on_close`` however it ends (finished, failed, or the
    client went away and Starlette cancelled it), so the generation behind it stops."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        super().__init__(content, headers=STREAM_HEADERS)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone away (the body was read already: the next message is the disconnect)."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # noqa: BLE001 - the connection broke: the client is gone all the same
        return


async def _wait(request: Request, *waits: asyncio.Future[Any]) -> bool:
    """Wait until one of ``waits`` is done; False when the client went away first."""
    watcher = asyncio.ensure_future(_disconnected(request.receive))
    try:
        done, _ = await asyncio.wait({watcher, *waits}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    return any(w in done for w in waits)


async def _next_event(job: GenerationJob, future: asyncio.Future[Any]) -> tuple[str, Any] | None:
    """The worker's next event, or None once the generation is over and every event was read (the worker's
    events are queued before its result: the future resolves after them)."""
    assert job.events is not None
    while job.events.empty():
        if future.done():
            return None
        getter = asyncio.ensure_future(job.events.get())
        try:
            done, _ = await asyncio.wait({getter, future}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter in done:
            return getter.result()
    return job.events.get_nowait()


def _close(job: GenerationJob, future: asyncio.Future[Any]) -> None:
    """Stop the job however its request ended: the worker stops before its next token, a queued job is skipped."""
    job.cancelled.set()
    if not future.done():
        future.cancel()
    elif not future.cancelled():
        future.exception()  # retrieved: never logged as "exception was never retrieved"


def _failure(error: BaseException, state: Any) -> RequestError:
    """The API error for a generation that failed (or was shed) before it was answered."""
    if isinstance(error, QueueFull):
        state.metrics.shed.inc(error.code)
        return busy(error.code, error.message, error.retry_after)
    if isinstance(error, DataError):
        return RequestError(422, "invalid_input", error.message, error.hint)
    if isinstance(error, asyncio.CancelledError):
        return RequestError(503, "cancelled", "the generation was cancelled (the server is shutting down)",
                            headers={"Retry-After": "1"})
    error_log.error("generation failed", exc_info=error)
    return RequestError(500, "internal_error", f"generation failed: {type(error).__name__}: {error}")


def _result(future: asyncio.Future[Any]) -> BaseException | dict[str, Any]:
    if future.cancelled():
        return asyncio.CancelledError()
    error = future.exception()
    return error if error is not None else future.result()[0]


async def generate(request: Request) -> Response:
    state = request.app.state.serve
    details: dict[str, Any] = request.scope.setdefault(LOG_KEY, {})
    s = state.settings
    try:
        if state.status != "ready":
            raise busy("shutting_down" if state.status == "draining" else "not_ready", f"the server is {state.status}")
        slot = state.slot  # read once: this request is answered by this model, even if a reload swaps it
        if slot.kind != GENERATION:
            raise wrong_endpoint("/generate", slot.task_name, generation=False)
        body = await read_body(request, s.max_body_bytes)
        parsed = parse_generate(decode_json(body), slot.predictor, max_text_chars=s.max_text_chars,
                                accept=request.headers.get("accept", ""))
        details["batch_size"] = 1
        job = GenerationJob([parsed.example], slot.predictor.options, engine=slot.engine, prompt_ids=parsed.prompt_ids,
                            settings=parsed.settings, events=asyncio.Queue(), loop=asyncio.get_running_loop(), metrics=state.metrics)
        try:
            future = state.scheduler.enqueue(job)
        except QueueFull as full:
            state.metrics.shed.inc(full.code)
            raise busy(full.code, full.message, full.retry_after) from None
        if parsed.stream:
            started = asyncio.ensure_future(job.events.get())  # type: ignore[union-attr]
            try:
                present = await _wait(request, started, future)
            finally:
                if not started.done():
                    started.cancel()
            if not present or not started.done():  # the client left, or it failed before it started
                return _ended(job, future, state, details, present)
            return EventStream(_stream(state, slot, parsed, job, future, details), lambda: _close(job, future))
        present = await _wait(request, future)
        if not present:
            return _ended(job, future, state, details, present)
        outcome = _result(future)
        if isinstance(outcome, BaseException):
            raise _failure(outcome, state)
        return ApiJSONResponse(_finish(state, slot, parsed, outcome, details))
    except RequestError as error:
        details["error"] = error.code
        return error_response(error)


def _ended(job: GenerationJob, future: asyncio.Future[Any], state: Any, details: dict[str, Any], present: bool) -> Response:
    """The answer to a request whose generation never started: the client left (499, sent to nobody), or its job failed."""
    if not present:
        _close(job, future)
        details["error"] = "client_closed"
        return error_response(RequestError(499, "client_closed", "the client closed the connection before the answer"))
    outcome = _result(future)
    error = _failure(outcome if isinstance(outcome, BaseException) else RuntimeError("no answer"), state)
    details["error"] = error.code
    return error_response(error)


def _finish(state: Any, slot: Any, parsed: GenerateRequest, answer: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """The final fields of an answer; with ``--feedback`` it is remembered (and maybe captured) under its ``id``."""
    prediction = dict(answer)
    if state.feedback is not None:
        state.feedback.after_predict(slot, [parsed.raw], [parsed.example], [prediction])
    details["tokens"] = answer["tokens"]
    return {**answer, "model_version": slot.version, "id": prediction.get("prediction_id")}


async def _stream(state: Any, slot: Any, parsed: GenerateRequest, job: GenerationJob, future: asyncio.Future[Any],
                  details: dict[str, Any]) -> AsyncIterator[str]:
    while (event := await _next_event(job, future)) is not None:
        kind, value = event
        if kind == "text":
            yield sse({"text": value})
    outcome = _result(future)
    if isinstance(outcome, BaseException):
        error = _failure(outcome, state)
        details["error"] = error.code
        yield sse(error.body(), event="error")
        return
    yield sse(_finish(state, slot, parsed, outcome, details), event="done")
