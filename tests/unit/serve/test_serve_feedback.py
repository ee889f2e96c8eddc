"""``builder serve --feedback``: prediction ids, ``POST /feedback`` for the three tasks (and every bad
input), and ``--capture`` (uncertain, all, none, out of scope, --capture-max, a full writer queue)."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.labelling.serve_store import FeedbackStore

INPUTS = {
    "classification": "wake me up at 7",
    "ner": "call mom at 5 pm",
    "qa": {"question": "when does it open", "context": "The shop opens at 9 am and closes at 6 pm."},
}


def predict(client: Any, task: str, **body: Any) -> dict[str, Any]:
    response = client.post("/predict", json={"input": INPUTS[task], **body})
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]


def store_of(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "fb.labels.sqlite", durable=False)


def counts(tmp_path: Path) -> tuple[int, int, int]:
    with store_of(tmp_path) as store:
        return (store.db.execute("SELECT count(*) FROM items").fetchone()[0],
                store.db.execute("SELECT count(*) FROM history").fetchone()[0],
                store.db.execute("SELECT count(*) FROM serve_events").fetchone()[0])


def metric(client: Any, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_without_feedback_predictions_carry_no_id_and_feedback_is_404(task_client: Any) -> None:
    client = task_client("classification", feedback=None)
    assert "prediction_id" not in predict(client, "classification")
    response = client.post("/feedback", json={"prediction_id": "x", "correct": True})
    assert response.status_code == 404 and response.json()["error"]["code"] == "feedback_off"
    assert "/feedback" not in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("task, correction, expected_gold", [
    ("classification", {"label": "music"}, "music"),
    ("ner", {"entities": [{"start": 5, "end": 8, "label": "person"}, {"start": 12, "end": 16, "label": "time"}]},
     [{"start": 1, "end": 2, "label": "person"}, {"start": 3, "end": 5, "label": "time"}]),
    ("qa", {"answer": {"start": 18, "end": 22, "text": "9 am"}}, {"answers": [{"text": "9 am", "answer_start": 18}]}),
])
def test_a_correction_is_committed_as_a_labelled_item_with_the_input(task_client: Any, tmp_path: Path, task: str,
                                                                     correction: dict, expected_gold: Any) -> None:
    client = task_client(task, capture="none")
    prediction = predict(client, task)
    response = client.post("/feedback", json={"prediction_id": prediction["prediction_id"], **correction})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "labelled" and body["gold"] == expected_gold
    assert body["model_version"] == client.get("/info").json()["version"]
    with store_of(tmp_path) as store:  # another connection sees it: committed before the answer
        item = store.item(body["item_id"])
        assert item.gold == expected_gold and item.status == "labelled" and item.source == "serve"
        assert item.suggestion == {k: v for k, v in prediction.items() if k != "prediction_id"}  # the model's guess
        [event] = store.events(prediction["prediction_id"])
        assert event["kind"] == "feedback" and event["input"] == INPUTS[task] and event["correction"] == correction
        assert store.history(1)[0].kind == "feedback"
        assert store.db.execute("SELECT count(*) FROM undo_stack").fetchone()[0] == 0  # not undoable from the TUI
    assert metric(client, 'assistant_builder_feedback_total{status="labelled"}') == 1


@pytest.mark.parametrize("task", ["classification", "ner", "qa"])
def test_correct_true_records_the_prediction_and_correct_false_queues_it_for_review(task_client: Any, tmp_path: Path,
                                                                                    task: str) -> None:
    client = task_client(task, capture="none")
    right = predict(client, task)
    ok = client.post("/feedback", json={"prediction_id": right["prediction_id"], "correct": True})
    assert ok.status_code == 200, ok.text
    task_object = client.app.state.serve.slot.ref.task
    example = task_object.parse_input(INPUTS[task])
    assert ok.json()["gold"] == task_object.prediction_gold(example, {k: v for k, v in right.items() if k != "prediction_id"})
    wrong = client.post("/feedback", json={"prediction_id": right["prediction_id"], "correct": False})
    assert wrong.status_code == 200 and wrong.json()["status"] == "review"
    with store_of(tmp_path) as store:
        item = store.item(wrong.json()["item_id"])
        assert item.status == "review" and "marked wrong" in (item.note or "")
        assert store.next_item(source="serve").id == item.id  # at the head of the queue, with the suggestion
        assert item.suggestion is not None


@pytest.mark.parametrize("task, body, status, code, message", [
    ("classification", {"prediction_id": "nope", "label": "music"}, 404, "unknown_prediction", "prediction_id: no prediction"),
    ("classification", {"label": "jazz"}, 422, "invalid_feedback", "label: expected one of the model's labels (alarm, music, weather)"),
    ("classification", {"label": 3}, 422, "invalid_feedback", "label: expected one of"),
    ("classification", {"entities": []}, 422, "invalid_feedback", "entities: unknown field; expected prediction_id, correct, label"),
    ("classification", {"label": "music", "correct": True}, 422, "invalid_feedback", "correct: true says the prediction was right"),
    ("classification", {"correct": "yes"}, 422, "invalid_feedback", "correct: expected true or false"),
    ("classification", {}, 422, "invalid_feedback", "expected correct or label"),
    ("classification", {"prediction_id": 7, "correct": True}, 422, "invalid_feedback", "prediction_id: expected the prediction_id"),
    ("ner", {"entities": [{"start": 5, "end": 40, "label": "person"}]}, 422, "invalid_feedback",
     "entities[0].end: expected start < end <= 16 (the text's length), got 40"),
    ("ner", {"entities": [{"start": -1, "end": 3, "label": "person"}]}, 422, "invalid_feedback", "entities[0].start: expected 0 <= start"),
    ("ner", {"entities": [{"start": 5, "end": 8, "label": "place"}]}, 422, "invalid_feedback",
     "entities[0].label: expected one of the model's labels (person, time)"),
    ("ner", {"entities": [{"start": 0, "end": 8, "label": "person"}, {"start": 5, "end": 11, "label": "time"}]}, 422,
     "invalid_feedback", "overlap"),
    ("ner", {"entities": [{"start": 5, "end": 8, "label": "person", "text": "dad"}]}, 422, "invalid_feedback", "entities[0].text"),
    ("qa", {"answer": {"start": 18, "end": 99}}, 422, "invalid_feedback", "answer.end: expected start < end <= 42 (the context's length)"),
    ("qa", {"answer": None}, 422, "invalid_feedback", "answer: null (unanswerable) is not allowed"),
    ("qa", {"answer": "9 am"}, 422, "invalid_feedback", "answer: expected {\"start\": int, \"end\": int}"),
])
def test_bad_feedback_gets_a_located_error_and_changes_nothing(task_client: Any, tmp_path: Path, task: str, body: dict,
                                                               status: int, code: str, message: str) -> None:
    client = task_client(task, capture="none")
    prediction = predict(client, task)
    before = counts(tmp_path)
    response = client.post("/feedback", json={"prediction_id": prediction["prediction_id"], **body})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and message in error["message"], error
    assert counts(tmp_path) == before


def test_malformed_oversized_and_unauthorised_feedback(task_client: Any, tmp_path: Path) -> None:
    client = task_client("classification", capture="none", token="s3cret")
    headers = {"Authorization": "Bearer s3cret"}
    prediction = client.post("/predict", json={"input": "play jazz"}, headers=headers).json()["predictions"][0]
    before = counts(tmp_path)
    body = {"prediction_id": prediction["prediction_id"], "label": "music"}
    assert client.post("/feedback", json=body).status_code == 401
    assert client.post("/feedback", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    broken = client.post("/feedback", content=b'{"prediction_id": ', headers={**headers, "Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "invalid_json"
    huge = client.post("/feedback", json={**body, "label": "x" * 70_000}, headers=headers)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"
    assert counts(tmp_path) == before
    assert client.post("/feedback", json=body, headers=headers).status_code == 200


def test_capture_uncertain_stores_low_confidence_predictions_with_their_suggestion(task_client: Any, tmp_path: Path) -> None:
    # the random tiny model is unsure of everything (margins ~0.03): threshold 0.5 captures, 0.01 does not
    client = task_client("classification", capture="uncertain", capture_threshold=0.5)
    texts = ["wake me up at 7", "play some music", "will it rain tomorrow"]
    predictions = client.post("/predict", json={"inputs": texts}).json()["predictions"]
    wait_for(lambda: metric(client, 'assistant_builder_captured_predictions_total{result="stored"}') == 3)
    with store_of(tmp_path) as store:
        items = list(store.items())
        assert [i.payload["text"] for i in items] == texts and {i.status for i in items} == {"todo"}
        for item, prediction in zip(items, predictions):
            assert item.source == "serve" and item.suggestion["label"] == prediction["label"]
            assert item.margin == pytest.approx(prediction["top"][0]["score"] - prediction["top"][1]["score"])
            assert "captured by builder serve" in item.note and client.get("/info").json()["version"] in item.note
        events = store.events()
        assert [e["kind"] for e in events] == ["capture"] * 3 and all(e["time"] > 0 and e["model_version"] for e in events)
    # the same inputs again: already in the store, counted as duplicates
    client.post("/predict", json={"inputs": texts})
    wait_for(lambda: metric(client, 'assistant_builder_captured_predictions_total{result="duplicate"}') == 3)


def test_capture_threshold_none_and_all(task_client: Any, tmp_path: Path) -> None:
    sure = task_client("classification", capture="uncertain", capture_threshold=0.0)
    sure.post("/predict", json={"inputs": ["wake me up at 7", "play some music"]})
    everything = task_client("classification", capture="all", feedback=str(tmp_path / "all.labels.sqlite"))
    everything.post("/predict", json={"inputs": ["wake me up at 7", "play some music"]})
    nothing = task_client("classification", capture="none", feedback=str(tmp_path / "none.labels.sqlite"))
    nothing.post("/predict", json={"inputs": ["wake me up at 7", "play some music"]})
    wait_for(lambda: metric(everything, 'assistant_builder_captured_predictions_total{result="stored"}') == 2)
    for client in (sure, nothing):
        client.app.state.serve.feedback.writer.call(lambda store: None).result(5)  # the writer has nothing queued
    assert counts(tmp_path)[0] == 0
    with FeedbackStore(tmp_path / "none.labels.sqlite") as store:
        assert store.db.execute("SELECT count(*) FROM items").fetchone()[0] == 0  # --capture none keeps no traffic
        assert store.db.execute("SELECT count(*) FROM serve_events").fetchone()[0] == 0


def test_an_out_of_scope_prediction_counts_as_uncertain(task_client: Any, tmp_path: Path) -> None:
    client = task_client("classification", capture="uncertain", capture_threshold=0.0)  # nothing else is uncertain
    service = client.app.state.serve.feedback
    slot = client.app.state.serve.slot
    task = slot.ref.task
    predictions = [{"label": "alarm", "score": 0.99, "top": [{"label": "alarm", "score": 0.99}, {"label": "music", "score": 0.01}],
                    "in_scope": False},
                   {"label": "alarm", "score": 0.99, "top": [{"label": "alarm", "score": 0.99}, {"label": "music", "score": 0.01}]}]
    service.after_predict(slot, ["xyzzy", "wake me"], [task.parse_input("xyzzy"), task.parse_input("wake me")], predictions)
    wait_for(lambda: metric(client, 'assistant_builder_captured_predictions_total{result="stored"}') == 1)
    with store_of(tmp_path) as store:
        [item] = store.items()
        assert item.payload == {"text": "xyzzy"} and item.margin == 0.0 and "out of scope" in item.note


def test_capture_max_drops_the_oldest_waiting_captures_but_never_labelled_ones(task_client: Any, tmp_path: Path) -> None:
    client = task_client("classification", capture="all", capture_max=2)
    first = predict(client, "classification")
    assert client.post("/feedback", json={"prediction_id": first["prediction_id"], "label": "alarm"}).status_code == 200
    for text in ("one", "two", "three", "four"):
        client.post("/predict", json={"input": text})
    wait_for(lambda: metric(client, 'assistant_builder_captured_predictions_total{result="evicted"}') >= 2)
    client.app.state.serve.feedback.writer.call(lambda store: None).result(5)
    with store_of(tmp_path) as store:
        texts = {i.payload["text"]: i.status for i in store.items()}
        assert texts == {INPUTS["classification"]: "labelled", "three": "todo", "four": "todo"}
        assert store.progress().total == 3 and store.waiting_captures() == 2


def test_a_full_capture_queue_drops_captures_and_never_blocks_a_prediction(task_client: Any, tmp_path: Path) -> None:
    client = task_client("classification", capture="all", capture_queue=2)
    writer = client.app.state.serve.feedback.writer
    gate, busy = threading.Event(), threading.Event()
    blocked = writer.call(lambda store: (busy.set(), gate.wait(10)))  # the writer thread is busy until the gate opens
    assert busy.wait(10)
    try:
        started = time.perf_counter()
        for n in range(8):
            assert client.post("/predict", json={"input": f"text {n}"}).status_code == 200
        assert time.perf_counter() - started < 5
        assert metric(client, 'assistant_builder_captured_predictions_total{result="dropped"}') >= 5
        assert metric(client, "assistant_builder_capture_queue_depth") == 2
    finally:
        gate.set()
    blocked.result(5)
    wait_for(lambda: metric(client, 'assistant_builder_captured_predictions_total{result="stored"}') == 2)


def test_feedback_on_a_captured_prediction_the_server_no_longer_remembers(task_client: Any, tmp_path: Path) -> None:
    client = task_client("ner", capture="all", feedback_window=1)
    text = "call mom at 5 pm"
    old = client.post("/predict", json={"input": text}).json()["predictions"][0]
    client.post("/predict", json={"input": "remind john tomorrow"})  # pushes the first out of memory
    wait_for(lambda: metric(client, 'assistant_builder_captured_predictions_total{result="stored"}') == 2)
    assert client.app.state.serve.feedback.memory.get(old["prediction_id"]) is None
    response = client.post("/feedback", json={"prediction_id": old["prediction_id"],
                                              "entities": [{"start": 5, "end": 8, "label": "person"}]})
    assert response.status_code == 200, response.text
    with store_of(tmp_path) as store:
        item = store.item(response.json()["item_id"])
        assert item.payload == {"tokens": ["call", "mom", "at", "5", "pm"]} and item.gold == [{"start": 1, "end": 2, "label": "person"}]
        assert [e["kind"] for e in store.events(old["prediction_id"])] == ["capture", "feedback"]


def test_ids_are_unique_and_info_describes_feedback(task_client: Any, tmp_path: Path) -> None:
    client = task_client("qa", capture="uncertain")
    body = {"inputs": [INPUTS["qa"]] * 3}
    ids = [p["prediction_id"] for p in client.post("/predict", json=body).json()["predictions"]]
    assert len(set(ids)) == 3 and all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", i) for i in ids)
    info = client.get("/info").json()
    assert info["feedback"]["store"] == str(tmp_path / "fb.labels.sqlite") and info["feedback"]["capture"] == "uncertain"
    assert info["feedback"]["capture_threshold"] == 0.5 and info["serving"]["version"] == info["version"]
    document = client.get("/openapi.json").json()
    assert set(document["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {
        "prediction_id", "correct", "answer"}
    json.dumps(document)


def test_a_task_without_the_feedback_contract_cannot_serve_with_feedback(serve_bundle: dict, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant_builder.contracts import Task
    from assistant_builder.errors import BuilderError
    from assistant_builder.runtime import load_predictor
    from assistant_builder.serve.settings import ServeSettings
    from assistant_builder.serve.state import preflight

    predictor = load_predictor(serve_bundle["run"], "fp32")
    monkeypatch.setattr(type(predictor.task), "to_store", Task.to_store)
    with pytest.raises(BuilderError, match="does not implement the feedback contract"):
        preflight(ServeSettings(path=str(serve_bundle["run"]), feedback=str(tmp_path / "x.labels.sqlite")), predictor)
    with pytest.raises(BuilderError, match=r"expected a labelling store \(\*\.labels\.sqlite\) or a recipe"):
        monkeypatch.undo()
        preflight(ServeSettings(path=str(serve_bundle["run"]), feedback=str(tmp_path / "x.db")), predictor)


def test_feedback_settings_are_checked_all_at_once() -> None:
    from assistant_builder.errors import BuilderError
    from assistant_builder.serve.settings import ServeSettings

    with pytest.raises(BuilderError) as caught:
        ServeSettings(path="x", workers=2, feedback="s.labels.sqlite", capture="some", capture_threshold=1.5, capture_max=-1)
    message = caught.value.message
    for part in ("capture: expected one of none, uncertain, all, got 'some'", "capture_threshold: expected a confidence between 0 and 1",
                 "capture_max: expected a non-negative integer", "workers: --feedback and --watch need one worker process"):
        assert part in message, message
