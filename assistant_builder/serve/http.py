"""Small HTTP pieces the route modules share: JSON responses, errors, bounded body reads, log details."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from assistant_builder.serve.payload import RequestError

#: scope key where handlers leave details for the request log line (batch size, error code).
LOG_KEY = "assistant_builder.serve"


def to_builtin(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays a task's ``decode`` may return."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ApiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=to_builtin).encode("utf-8")


def busy(code: str, message: str, retry_after: int = 1) -> RequestError:
    """503 with ``Retry-After``: the queue is full or too slow, or the server is starting or draining."""
    return RequestError(503, code, message, hint="retry after the number of seconds in Retry-After",
                        headers={"Retry-After": str(retry_after)})


def wrong_endpoint(route: str, task: str, generation: bool) -> RequestError:
    """404 for ``/predict`` on a generation model or ``/generate`` on an encoder model (``generation``: whether
    the serving ``task`` model generates), naming the route that model answers."""
    if generation:
        return RequestError(404, "wrong_endpoint", f"POST {route}: this server serves a generation model ('{task}'), which "
                            "answers POST /generate", hint='send {"prompt": "..."} or {"messages": [...]} to POST /generate')
    return RequestError(404, "wrong_endpoint", f"POST {route}: this server serves a '{task}' model, which answers POST /predict, "
                        "not text generation", hint='send {"inputs": [...]} to POST /predict (GET /info shows the model)')


def error_response(error: RequestError) -> JSONResponse:
    return ApiJSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def read_body(request: Request, limit: int) -> bytes:
    too_large = RequestError(413, "body_too_large", f"request body: expected at most {limit} bytes",
                             hint="send fewer or shorter inputs per request, or start the server with a larger "
                                  "--max-body-bytes", headers={"Connection": "close"})
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
