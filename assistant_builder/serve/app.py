"""The Starlette app: ``/predict``, ``/generate``, ``/feedback``, ``/admin/reload``, ``/admin/rollback``,
``/health``, ``/info``, ``/metrics``, ``/openapi.json`` and ``/docs``.

``create_app(settings, predictor=...)`` builds it around a loaded predictor (``builder serve``
with one worker loads the model before binding the port, so load errors are reported cleanly);
without one, the lifespan loads it (the ``--workers N`` factory, ``app_from_env``). The model is a
swappable ``ModelSlot`` (``serve/models.py``, ``serve/reload.py``): an encoder model answers
``/predict``, a generation model ``/generate`` (``serve/generate.py``), and each route points to the
other for the wrong kind; feedback and capture live in ``serve/capture.py`` and ``serve/feedback_api.py``. Imports starlette, the runtime and the core
only: never torch or transformers.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant_builder.errors import DataError
from assistant_builder.serve import admin, feedback_api, generate
from assistant_builder.serve.engine import Job, QueueFull
from assistant_builder.serve.generation import GENERATION
from assistant_builder.serve.http import LOG_KEY, ApiJSONResponse, busy, error_response, read_body, wrong_endpoint
from assistant_builder.serve.models import Model
from assistant_builder.serve.metrics import CONTENT_TYPE
from assistant_builder.serve.payload import RequestError, decode_json, parse_predict
from assistant_builder.serve.settings import ServeSettings
from assistant_builder.serve.state import ServeState

__all__ = ["LOG_KEY", "ApiJSONResponse", "ServeState", "create_app", "error_response", "read_body"]

ROUTES = ("/predict", "/generate", "/feedback", "/admin/reload", "/admin/rollback", "/health", "/info", "/metrics", "/openapi.json", "/docs")
OPEN_ROUTES = ("/health",)

access_log = logging.getLogger("assistant_builder.serve.access")
error_log = logging.getLogger("assistant_builder.serve")


def _configure_logging() -> None:
    """One JSON line per request on stderr (uvicorn's own access log is off)."""
    for logger in (access_log, error_log):
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


class Gate:
    """Outer ASGI middleware: bearer-token check, metrics, and one JSON log line per request."""

    def __init__(self, app: ASGIApp, state: ServeState) -> None:
        self.app = app
        self.state = state
        token = state.settings.token
        self.token = token.encode() if token else None

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self.token or b"")
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.state.metrics
        path = scope["path"]
        route = path if path in ROUTES else "other"
        details: dict[str, Any] = scope.setdefault(LOG_KEY, {})
        status = 500
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.in_flight.inc()
        try:
            if self.token is not None and path not in OPEN_ROUTES and not self._authorized(scope):
                given = any(name == b"authorization" for name, _ in scope.get("headers", []))
                challenge = 'Bearer realm="assistant-builder"' + (', error="invalid_token"' if given else "")
                details["error"] = "unauthorized"
                response = error_response(RequestError(
                    401, "unauthorized", "wrong bearer token" if given else "missing bearer token",
                    hint="send the header Authorization: Bearer TOKEN (the --token or ASSISTANT_BUILDER_TOKEN the "
                         "server was started with)", headers={"WWW-Authenticate": challenge}))
                await response(scope, receive, send_and_record)
            else:
                await self.app(scope, receive, send_and_record)
        finally:
            elapsed = time.perf_counter() - started
            metrics.in_flight.inc(amount=-1)
            metrics.requests.inc(route, str(status))
            metrics.latency.observe(elapsed, route)
            if status >= 400:
                kind = ("unauthorized" if status == 401 else "rejected" if status == 503
                        else "server_error" if status >= 500 else "client_error")
                metrics.errors.inc(route, kind)
            record = {"ts": round(time.time(), 3), "method": scope.get("method"), "route": path[:200], "status": status,
                      "latency_ms": round(elapsed * 1000, 2), "batch_size": details.get("batch_size")}
            if "tokens" in details:
                record["tokens"] = details["tokens"]
            if "error" in details:
                record["error"] = details["error"]
            access_log.info(json.dumps(record))


async def predict(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    details: dict[str, Any] = request.scope.setdefault(LOG_KEY, {})
    s = state.settings
    try:
        if state.status != "ready":
            raise busy("shutting_down" if state.status == "draining" else "not_ready", f"the server is {state.status}")
        slot = state.slot  # read once: this request runs and is answered with this model, even if a reload swaps it
        if slot.kind == GENERATION:
            raise wrong_endpoint("/predict", slot.task_name, generation=True)
        body = await read_body(request, s.max_body_bytes)
        assert state.scheduler is not None
        parsed = parse_predict(decode_json(body), slot.predictor, slot.options, max_batch=s.max_batch,
                               max_text_chars=s.max_text_chars)
        details["batch_size"] = len(parsed.examples)
        try:
            predictions = await state.scheduler.submit(Job(parsed.examples, parsed.options, engine=slot.engine))
            if state.feedback is not None:
                state.feedback.after_predict(slot, parsed.inputs, parsed.examples, predictions)
        except QueueFull as full:
            state.metrics.shed.inc(full.code)
            raise busy(full.code, full.message, full.retry_after) from None
    except RequestError as error:
        details["error"] = error.code
        return error_response(error)
    except DataError as exc:  # the task rejected an input while encoding it
        details["error"] = "invalid_input"
        return error_response(RequestError(422, "invalid_input", exc.message, exc.hint))
    except Exception as exc:  # noqa: BLE001 - a model or task failure: 500 with the reason, traceback in the log
        error_log.exception("prediction failed")
        details["error"] = "internal_error"
        return error_response(RequestError(500, "internal_error", f"prediction failed: {type(exc).__name__}: {exc}"))
    return ApiJSONResponse({"predictions": predictions, "model": slot.model})


async def health(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    return JSONResponse({"status": state.status}, status_code=200 if state.status == "ready" else 503)


async def info(request: Request) -> Response:
    return ApiJSONResponse(request.app.state.serve.info())


async def metrics(request: Request) -> Response:
    return Response(request.app.state.serve.metrics.render(), media_type=CONTENT_TYPE)


async def openapi(request: Request) -> Response:
    return ApiJSONResponse(request.app.state.serve.openapi)


async def docs(request: Request) -> Response:
    return HTMLResponse(request.app.state.serve.docs)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    hint = f"routes: {', '.join(ROUTES)}" if exc.status_code in (404, 405) else None
    error = RequestError(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}", hint,
                         headers=exc.headers)
    request.scope.setdefault(LOG_KEY, {})["error"] = code
    return error_response(error)


def create_app(settings: ServeSettings, *, predictor: Model | None = None, engine: Any = None) -> Starlette:
    """The ASGI app; ``app.state.serve`` is its ``ServeState``. Run it inside a lifespan (uvicorn, TestClient)."""
    _configure_logging()
    state = ServeState(settings, predictor, engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.prepare()
        try:
            yield
        finally:
            state.begin_drain()
            await state.shutdown()

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/generate", generate.generate, methods=["POST"]),
        Route("/feedback", feedback_api.feedback, methods=["POST"]),
        Route("/admin/reload", admin.reload, methods=["POST"]),
        Route("/admin/rollback", admin.rollback, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/info", info, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Gate, state=state)], lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error})
    app.state.serve = state
    return app


def app_from_env() -> Starlette:
    """App factory for uvicorn worker processes: settings from ``ASSISTANT_BUILDER_SERVE_SETTINGS``.

    Each worker process loads its own copy of the model (memory grows with ``--workers``).
    """
    return create_app(ServeSettings.from_env())
