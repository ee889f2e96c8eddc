"""The OpenAPI document (written by hand as a dict) and a self-contained ``/docs`` HTML page.

An encoder model's document has ``POST /predict``; a generation model's has ``POST /generate``
instead (``info["kind"] == "generation"``).

No CDN assets: the page is plain HTML that lists each route with example requests and responses,
so it works on machines without internet access.
"""

from __future__ import annotations

import html
import json
from typing import Any

from assistant_builder import __version__

#: example request bodies per task; unknown tasks get the generic text example.
EXAMPLE_INPUTS: dict[str, dict[str, Any]] = {
    "classification": {"inputs": ["wake me up at 7 tomorrow", "play some jazz"], "top_k": 2},
    "ner": {"inputs": ["remind me to call mom tomorrow at 5 pm"]},
    "qa": {"input": {"question": "When does the shop open?", "context": "The shop opens at 9 am and closes at 6 pm."}},
}
GENERIC_INPUT: dict[str, Any] = {"inputs": ["some text"]}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "examples": ["invalid_input"]},
        "message": {"type": "string", "examples": ["inputs[3]: expected non-empty text, got an empty string"]},
        "hint": {"type": "string"},
    }}},
}


def example_request(task: str) -> dict[str, Any]:
    return EXAMPLE_INPUTS.get(task, GENERIC_INPUT)


def _json_content(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"application/json": content}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json_content({"$ref": "#/components/schemas/Error"})}


#: example correction per task (``POST /feedback``), besides ``correct``
EXAMPLE_CORRECTIONS: dict[str, dict[str, Any]] = {
    "classification": {"label": "set_alarm"},
    "ner": {"entities": [{"start": 22, "end": 30, "label": "date"}]},
    "qa": {"answer": {"start": 18, "end": 22}},
    "generation": {"response": "Hold the power button for ten seconds, then set it up again in the app."},
}

#: example ``POST /generate`` body and answer
GENERATE_EXAMPLE: dict[str, Any] = {"messages": [{"role": "user", "content": "How do I reset my lamp?"}], "max_new_tokens": 64}
GENERATE_ANSWER: dict[str, Any] = {"completion": "Hold the power button for ten seconds until the ring blinks.", "tokens": 14,
                                   "finish_reason": "eos", "model_version": "3fa2c1d04b5e", "id": "3fa2c1d0-1a"}


def _generate_operation(info: dict[str, Any], max_text_chars: int, max_body_bytes: int, busy: dict[str, Any],
                        responses: Any) -> dict[str, Any]:
    defaults = info.get("generation") or {}
    message = {"type": "object", "required": ["role", "content"], "properties": {
        "role": {"type": "string", "enum": ["system", "user", "assistant"]}, "content": {"type": "string"}}}
    body = {
        "type": "object",
        "description": "Exactly one of `prompt` (a text, or a list of messages) or `messages` (a conversation ending with the "
                       f"user's turn). Strings are at most {max_text_chars} characters. Unset settings are the model's "
                       f"defaults (GET /info `generation`: {json.dumps(defaults)}). `stream`: answer as server-sent events; "
                       "default: true when the Accept header names text/event-stream, else false.",
        "properties": {
            "prompt": {"oneOf": [{"type": "string"}, {"type": "array", "items": message}]},
            "messages": {"type": "array", "minItems": 1, "items": message},
            "max_new_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "description": "0: greedy"},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 16}],
                     "description": "the answer ends before the first of these"},
            "seed": {"type": ["integer", "null"], "description": "sampling seed (same seed, same answer)"},
            "stream": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
    answer = {"type": "object", "required": ["completion", "tokens", "finish_reason", "model_version", "id"], "properties": {
        "completion": {"type": "string"}, "tokens": {"type": "integer"},
        "finish_reason": {"type": "string", "enum": ["eos", "stop", "length"]}, "model_version": {"type": "string"},
        "id": {"type": ["string", "null"], "description": "the prediction_id for POST /feedback (null without --feedback)"}}}
    stream = ('data: {"text": "Hold the"}\n\ndata: {"text": " power button"}\n\n...\n\nevent: done\n'
              f"data: {json.dumps(GENERATE_ANSWER)}\n\n")
    ok = {"description": "the answer: one JSON object, or (stream) text/event-stream: a `data: {\"text\": ...}` event per "
                         "piece, then `event: done` with the same fields as the JSON answer (`event: error` if it fails mid-stream)",
          "content": {**_json_content(answer, GENERATE_ANSWER), "text/event-stream": {"schema": {"type": "string"}, "example": stream}}}
    return {"post": {
        "summary": f"Generate an answer with the loaded {info.get('task', '')} model (streamed as server-sent events, or one JSON object)",
        "operationId": "generate",
        "requestBody": {"required": True, "content": _json_content(body, GENERATE_EXAMPLE)},
        "responses": responses(ok, ("413", _error(f"body larger than {max_body_bytes} bytes")),
                               ("422", _error("invalid JSON or field; the message names it, e.g. messages[2].role or top_p")),
                               ("503", busy)),
    }}


def _feedback_operations(task: str, fields: tuple[str, ...], responses: Any) -> dict[str, Any]:
    example = {"prediction_id": "3fa2c1d0-1a", **EXAMPLE_CORRECTIONS.get(task, {"correct": True})}
    body = {"type": "object", "required": ["prediction_id"], "additionalProperties": False,
            "description": "`correct: true` (the prediction was right), `correct: false` (wrong, right answer unknown: queued "
                           f"for review), or the right answer in one of: {', '.join(fields) or 'none'}.",
            "properties": {"prediction_id": {"type": "string"}, "correct": {"type": "boolean"}, **{f: {} for f in fields}}}
    return {"post": {
        "summary": "Record whether a prediction was right, or the right answer, in the labelling store (answered after the commit)",
        "operationId": "feedback",
        "requestBody": {"required": True, "content": _json_content(body, example)},
        "responses": responses(
            {"description": "recorded: item id and status (labelled, review)", "content": _json_content({"type": "object"})},
            ("404", _error("unknown prediction_id")), ("413", _error("body too large")),
            ("422", _error("invalid field; the message names it (and the allowed labels)")),
            ("503", _error("the store could not be written; nothing was recorded"))),
    }}


def _admin_operations(responses: Any) -> dict[str, Any]:
    reload_body = {"type": "object", "required": ["path"], "properties": {"path": {"type": "string"}}, "additionalProperties": False}
    refused = _error("refused (the old model keeps serving): reason load_failed, verification_failed, task_changed, "
                     "labels_changed, smoke_failed, regression; or reload_in_progress")
    return {
        "/admin/reload": {"post": {
            "summary": "Load a run or bundle in the background, check it, and swap it in without failing a request (token needed)",
            "operationId": "reload",
            "requestBody": {"required": True, "content": _json_content(reload_body, {"path": "runs/my-run-20260101-120000"})},
            "responses": responses({"description": "swapped (or unchanged: same version)"}, ("403", _error("no token configured")),
                                   ("409", refused), ("422", _error("invalid body"))),
        }},
        "/admin/rollback": {"post": {
            "summary": "Swap back to the model served before the last swap (token needed)",
            "operationId": "rollback",
            "responses": responses({"description": "rolled back"}, ("403", _error("no token configured")),
                                   ("409", _error("no previous model"))),
        }},
    }


def build_openapi(info: dict[str, Any], *, max_batch: int, max_text_chars: int, max_body_bytes: int,
                  auth: bool, example_response: Any = None, feedback_fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document for this server and its loaded model (``feedback_fields``: with ``--feedback``)."""
    task = info.get("task", "")
    request_schema = {
        "type": "object",
        "description": "Exactly one of `inputs` (a batch) or `input` (one input). Each input is what the task's "
                       f"parse_input accepts (task '{task}'). Strings are at most {max_text_chars} characters.",
        "properties": {
            "inputs": {"type": "array", "minItems": 1, "maxItems": max_batch, "items": {}},
            "input": {},
            "top_k": {"type": "integer", "minimum": 1, "description": "labels with scores to list (tasks with a top_k option)"},
            "fallback_threshold": {"type": "number", "description": "classification models with a fallback label: reject (label = "
                                   "the fallback, in_scope false) when the energy score in_scope_score is below this; default: "
                                   "the threshold in GET /info `decision_rule`"},
        },
        "additionalProperties": False,
    }
    predict_response = {
        "type": "object",
        "required": ["predictions", "model"],
        "properties": {
            "predictions": {"type": "array", "items": {"type": "object"}, "description": "one per input, in order"},
            "model": {"type": "object", "properties": {"task": {"type": "string"}, "variant": {"type": "string"},
                                                        "base_model": {"type": ["string", "null"]}, "version": {"type": "string"}}},
        },
    }
    busy = {**_error("the queue is full, or the server is starting or shutting down; retry after `Retry-After` seconds"),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}}}
    unauthorized = _error("missing or wrong bearer token") if auth else None

    def responses(ok: dict[str, Any], *others: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        result = {"200": ok, **dict(others)}
        if unauthorized:
            result["401"] = unauthorized
        return result

    operations = {
        "/predict": {"post": {
            "summary": f"Predict with the loaded {task} model",
            "operationId": "predict",
            "requestBody": {"required": True, "content": _json_content(request_schema, example_request(task))},
            "responses": responses(
                {"description": "predictions, one per input", "content": _json_content(predict_response, example_response)},
                ("413", _error(f"body larger than {max_body_bytes} bytes")),
                ("422", _error("invalid JSON, fields or inputs; the message names the field, e.g. inputs[3]")),
                ("503", busy)),
        }},
        "/health": {"get": {
            "summary": "Readiness: 200 when ready, 503 while starting or shutting down (no token needed)",
            "operationId": "health", "security": [],
            "responses": {"200": {"description": "ready", "content": _json_content({"type": "object"}, {"status": "ready"})},
                          "503": {"description": "not ready", "content": _json_content({"type": "object"}, {"status": "draining"})}},
        }},
        "/info": {"get": {
            "summary": "The loaded model: task, labels, base model, variant, verification metrics, export date",
            "operationId": "info",
            "responses": responses({"description": "model information", "content": _json_content({"type": "object"}, info)}),
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics (text exposition format)",
            "operationId": "metrics",
            "responses": responses({"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}),
        }},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": responses({"description": "OpenAPI 3.1 document"})}},
        "/docs": {"get": {"summary": "Human-readable API page", "operationId": "docs",
                          "responses": responses({"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}})}},
        **_admin_operations(responses),
    }
    if info.get("kind") == "generation":
        del operations["/predict"]
        operations = {"/generate": _generate_operation(info, max_text_chars, max_body_bytes, busy, responses), **operations}
    if feedback_fields is not None:
        operations["/feedback"] = _feedback_operations(task, feedback_fields, responses)
        predict_response["properties"]["predictions"]["description"] += "; each carries a prediction_id for POST /feedback"
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": f"assistant-builder: {task} model", "version": __version__,
                 "description": f"Serves the exported ONNX bundle {info.get('bundle', '')} ({info.get('variant', '')})."},
        "paths": operations,
        "components": {"schemas": {"Error": _ERROR}},
    }
    if auth:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def render_docs(document: dict[str, Any]) -> str:
    """A plain HTML page listing every route with its summary, example request and example response."""
    esc = html.escape
    auth = "security" in document
    sections = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            parts = [f"<h2><code>{method.upper()} {esc(path)}</code></h2>", f"<p>{esc(operation.get('summary', ''))}</p>"]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "example" in body:
                example = json.dumps(body["example"], indent=2, ensure_ascii=False)
                header = ' -H "Authorization: Bearer $TOKEN"' if auth else ""
                parts.append(f"<h3>Example request</h3><pre>{esc(example)}</pre>")
                parts.append(f"<pre>curl -s{header} -H 'Content-Type: application/json' "
                             f"-d '{esc(json.dumps(body['example'], ensure_ascii=False))}' http://HOST:PORT{esc(path)}</pre>")
            rows = []
            for status, response in operation.get("responses", {}).items():
                rows.append(f"<tr><td>{esc(status)}</td><td>{esc(response.get('description', ''))}</td></tr>")
                example = response.get("content", {}).get("application/json", {}).get("example")
                if status == "200" and example is not None:
                    parts.append(f"<h3>Example response</h3><pre>{esc(json.dumps(example, indent=2, ensure_ascii=False))}</pre>")
            parts.append("<table><tr><th>status</th><th>meaning</th></tr>" + "".join(rows) + "</table>")
            sections.append("<section>" + "".join(parts) + "</section>")
    title = esc(document["info"]["title"])
    note = "<p>Every route except <code>/health</code> needs <code>Authorization: Bearer TOKEN</code>.</p>" if auth else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
            "pre{background:#f4f4f4;padding:.6rem;overflow:auto}td,th{padding:.2rem .8rem;text-align:left}"
            f"</style></head><body><h1>{title}</h1><p>{esc(document['info']['description'])}</p>{note}"
            "<p>Machine-readable schema: <a href='/openapi.json'>/openapi.json</a>. Errors are "
            "<code>{\"error\": {\"code\", \"message\", \"hint\"}}</code>.</p>"
            + "".join(sections) + "</body></html>")
