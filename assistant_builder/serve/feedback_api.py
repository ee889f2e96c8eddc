"""``POST /feedback``: a user says whether a prediction was right, and what the right answer is.

Bodies (``prediction_id`` from a ``/predict`` response of this server, the ``id`` of a ``/generate``
answer, or of a captured prediction):

* ``{"prediction_id": ..., "correct": true}``: the prediction was right; recorded as its label.
* ``{"prediction_id": ..., "correct": false}``: wrong, right answer unknown; the input goes to the
  labelling queue for review (``builder tui``), with the prediction as the suggestion.
* ``{"prediction_id": ..., FIELD: ...}`` with one of the task's ``feedback_fields``: the right
  answer in the task's own shape (``label`` for classification, ``entities`` for ner, ``answer``
  for qa, ``response`` for generation: the answer it should have given; ``"correct": false`` may
  accompany it); validated by ``task.feedback_gold``.

Answered 200 ``{"prediction_id", "item_id", "status", "gold", "store"}`` only after the store's
transaction committed. Errors change nothing: 404 ``feedback_off`` (no ``--feedback``) or
``unknown_prediction``; 413 for a body over ``FEEDBACK_MAX_BYTES``; 422 ``invalid_json`` /
``invalid_feedback`` naming the field (and the allowed labels); 401 without the token (the gate);
503 ``store_unavailable`` when the store cannot be written.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from assistant_builder.errors import DataError
from assistant_builder.labelling.serve_store import Feedback, KnownPrediction
from assistant_builder.serve.capture import Remembered, json_ready
from assistant_builder.serve.models import ModelRef
from assistant_builder.serve.http import LOG_KEY, ApiJSONResponse, error_response, read_body
from assistant_builder.serve.payload import RequestError, decode_json

#: largest ``POST /feedback`` body (or ``--max-body-bytes``, if smaller)
FEEDBACK_MAX_BYTES = 64 * 1024


def invalid(message: str, hint: str | None = None) -> RequestError:
    return RequestError(422, "invalid_feedback", message, hint)


def parse_feedback(data: Any, answer_fields: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The prediction id and the correction (the body without ``prediction_id``); 422 naming the bad field."""
    example = '{"prediction_id": "...", "correct": true}'
    if not isinstance(data, dict):
        raise invalid(f"request body: expected a JSON object such as {example}, got {type(data).__name__}")
    allowed = ("prediction_id", "correct", *answer_fields)
    unknown = sorted(key for key in data if key not in allowed)
    if unknown:
        raise invalid(f"{unknown[0]}: unknown field; expected {', '.join(allowed)}")
    prediction_id = data.get("prediction_id")
    if not isinstance(prediction_id, str) or not prediction_id:
        raise invalid(f"prediction_id: expected the prediction_id string of a /predict response, got {json.dumps(prediction_id)}",
                      hint=f"send e.g. {example}")
    answers = [key for key in answer_fields if key in data]
    correct = data.get("correct")
    if "correct" in data and not isinstance(correct, bool):
        raise invalid(f"correct: expected true or false, got {json.dumps(correct)}")
    if len(answers) > 1:
        raise invalid(f"{answers[1]}: expected one of {', '.join(answer_fields)}, got both {answers[0]} and {answers[1]}")
    if answers and correct is True:
        raise invalid(f"correct: true says the prediction was right, but {answers[0]} gives another answer; send one of them")
    if not answers and "correct" not in data:
        fields = " or ".join(["correct", *answer_fields])
        raise invalid(f"expected {fields}, got neither", hint=f"send {example}, or the right answer, e.g. "
                                                             f'{{"prediction_id": "...", "{(answer_fields or ("label",))[0]}": ...}}')
    return prediction_id, {key: value for key, value in data.items() if key != "prediction_id"}


def _ref_for(state: Any, known: KnownPrediction) -> ModelRef:
    """The model that made a prediction found in the store: the serving or previous one with its
    version, else the serving one (same task; its labels then validate the feedback)."""
    for slot in (state.slot, state.previous):
        if slot is not None and slot.version == known.model_version:
            return slot.ref  # type: ignore[no-any-return]
    return state.slot.ref  # type: ignore[no-any-return]


async def feedback(request: Request) -> Response:
    state = request.app.state.serve
    details: dict[str, Any] = request.scope.setdefault(LOG_KEY, {})
    service = state.feedback
    try:
        if service is None:
            raise RequestError(404, "feedback_off", "POST /feedback: this server records no feedback",
                               hint="start it with --feedback STORE.labels.sqlite (or a recipe, whose labelling store is used)")
        body = await read_body(request, min(state.settings.max_body_bytes, FEEDBACK_MAX_BYTES))
        task = state.slot.ref.task
        prediction_id, correction = parse_feedback(decode_json(body), tuple(task.feedback_fields))
        try:
            found = await service.lookup(prediction_id)
        except Exception as exc:  # noqa: BLE001 - the store cannot be read now
            raise RequestError(503, "store_unavailable", f"the store {service.store} could not be read: {type(exc).__name__}: {exc}",
                               hint="retry after Retry-After seconds", headers={"Retry-After": "1"}) from None
        if found is None:
            raise RequestError(404, "unknown_prediction", f"prediction_id: no prediction {json.dumps(prediction_id)} is known to this server",
                               hint=f"use a prediction_id from a /predict response (or the id of a /generate answer); the server remembers the last {service.memory.size} "
                                    "predictions, and the captured ones (--capture)")
        ref = found.ref if isinstance(found, Remembered) else _ref_for(state, found)
        record = _feedback_record(prediction_id, found, correction, ref)
        try:
            item_id, status = await service.record(record)
        except Exception as exc:  # noqa: BLE001 - nothing was acknowledged; the client may retry
            raise RequestError(503, "store_unavailable", f"the feedback could not be written to {service.store}: {type(exc).__name__}: {exc}",
                               hint="retry after Retry-After seconds", headers={"Retry-After": "1"}) from None
    except RequestError as error:
        details["error"] = error.code
        return error_response(error)
    return ApiJSONResponse({"prediction_id": prediction_id, "item_id": item_id, "status": status, "gold": record.gold,
                            "model_version": ref.version, "store": str(service.store)})


def _feedback_record(prediction_id: str, found: Remembered | KnownPrediction, correction: dict[str, Any], ref: ModelRef) -> Feedback:
    """Validate the correction with the task that made the prediction; 422 naming the field."""
    task = ref.task
    prediction = {k: v for k, v in found.prediction.items() if k != "prediction_id"}
    try:
        example = task.parse_input(found.raw_input)
        payload = task.to_store(example).payload
        answers = [key for key in task.feedback_fields if key in correction]
        if not answers and correction.get("correct") is False:
            kind, gold = "wrong", None
        else:
            kind = "feedback"
            gold = json_ready(task.feedback_gold(example, prediction, correction, list(ref.labels), ref.options))
    except DataError as exc:
        raise invalid(exc.message, exc.hint) from None
    return Feedback(prediction_id, found.raw_input, payload, json_ready(prediction), gold, kind, json_ready(correction),
                    ref.version, time.time())
