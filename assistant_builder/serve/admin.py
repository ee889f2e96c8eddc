"""``POST /admin/reload`` and ``POST /admin/rollback``: swap the served model without a restart.

Both need the server to have a bearer token (``--token`` or ``$ASSISTANT_BUILDER_TOKEN``): a reload
makes the server open files on its disk, so without a token they answer 403 ``admin_disabled``.
(The gate answers 401 to a request without the right token.) SIGHUP and ``--watch`` reload
without HTTP. Bodies and answers:

* ``POST /admin/reload`` ``{"path": RUN_OR_BUNDLE}`` -> 200 ``{"result": "swapped" | "unchanged",
  "from", "to", "reload_ms", "checks"}`` once the new model answers; 409 ``reload_refused`` with the
  ``reason`` and why (the old model keeps serving); 409 ``reload_in_progress``; 422 for a bad body.
* ``POST /admin/rollback`` -> 200 ``{"result": "rolled_back", ...}``; 409 ``no_previous_model``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from assistant_builder.serve.http import LOG_KEY, ApiJSONResponse, error_response, read_body
from assistant_builder.serve.payload import RequestError, decode_json
from assistant_builder.serve.reload import ReloadRefused

ADMIN_MAX_BYTES = 16 * 1024


def _guard(state: Any) -> None:
    if not state.settings.token:
        raise RequestError(403, "admin_disabled", "admin routes are off: the server was started without a token",
                           hint="restart with --token (or $ASSISTANT_BUILDER_TOKEN) to reload over HTTP, or send the server SIGHUP")
    if state.settings.workers > 1:
        raise RequestError(409, "not_supported", f"with --workers {state.settings.workers} each worker has its own model; "
                           "a reload would reach one of them", hint="serve with --workers 1 to reload, or restart the server")


def _refusal(refused: ReloadRefused) -> RequestError:
    if refused.reason in ("reload_in_progress", "no_previous_model"):
        return RequestError(refused.status, refused.reason, refused.message, extra={"reason": refused.reason})
    return RequestError(refused.status, "reload_refused", refused.message, hint="the model that was serving still serves",
                        extra={"reason": refused.reason})


async def reload(request: Request) -> Response:
    state = request.app.state.serve
    try:
        _guard(state)
        data = decode_json(await read_body(request, ADMIN_MAX_BYTES))
        if not isinstance(data, dict) or sorted(data) != ["path"] or not isinstance(data["path"], str) or not data["path"].strip():
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise RequestError(422, "invalid_input", f"path: expected {{\"path\": \"RUN_DIR_OR_BUNDLE\"}} (a string, nothing else), "
                               f"got {json.dumps(data if not isinstance(data, dict) else found)[:100]}")
        try:
            outcome = await state.reloader.reload(data["path"], origin="api")
        except ReloadRefused as refused:
            raise _refusal(refused) from None
    except RequestError as error:
        request.scope.setdefault(LOG_KEY, {})["error"] = error.code
        return error_response(error)
    return ApiJSONResponse(outcome)


async def rollback(request: Request) -> Response:
    state = request.app.state.serve
    try:
        _guard(state)
        try:
            outcome = await state.reloader.rollback()
        except ReloadRefused as refused:
            raise _refusal(refused) from None
    except RequestError as error:
        request.scope.setdefault(LOG_KEY, {})["error"] = error.code
        return error_response(error)
    return ApiJSONResponse(outcome)
