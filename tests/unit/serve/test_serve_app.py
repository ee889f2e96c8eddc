"""``builder serve``'s app in process (Starlette ``TestClient``) with a tiny classification bundle."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (pip install -e '.[serve]')")

from assistant_builder.serve.app import access_log  # noqa: E402
from assistant_builder.serve.engine import Engine, Job  # noqa: E402


def metric(client: Any, line_prefix: str, headers: dict[str, str] | None = None) -> float:
    """The value of the first /metrics sample whose line starts with ``line_prefix`` (0 when absent)."""
    text = client.get("/metrics", headers=headers or {}).text
    for line in text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- predict -------------------------------------------------------------------------------------


def test_single_and_batch_predictions_match_the_predictor(make_client: Any, serve_predictor: Any) -> None:
    client = make_client()
    texts = ["hello", "play some jazz", "what is the weather like today in paris please"]
    expected = serve_predictor.predict(texts)

    batch = client.post("/predict", json={"inputs": texts})
    assert batch.status_code == 200, batch.text
    body = batch.json()
    version = body["model"].pop("version")
    assert body["model"] == {"task": "classification", "variant": "fp32", "base_model": "tiny-bert"}
    assert len(version) == 12 and version == client.get("/info").json()["version"]
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in expected]
    for got, want in zip(body["predictions"], expected):
        assert got["score"] == pytest.approx(want["score"], abs=1e-6)
        assert len(got["top"]) == 2  # the bundle's task_options.top_k

    single = client.post("/predict", json={"input": {"text": "play some jazz"}})
    assert single.status_code == 200
    [prediction] = single.json()["predictions"]
    assert prediction["label"] == expected[1]["label"]
    assert prediction["score"] == pytest.approx(expected[1]["score"], abs=1e-6)


def test_top_k_per_request(make_client: Any, serve_bundle: dict) -> None:
    client = make_client()
    one = client.post("/predict", json={"inputs": ["hello"], "top_k": 1}).json()["predictions"][0]
    assert len(one["top"]) == 1
    every = client.post("/predict", json={"input": "hello", "top_k": 99}).json()["predictions"][0]
    assert [entry["label"] for entry in every["top"]][:1] == [one["label"]]
    assert sorted(entry["label"] for entry in every["top"]) == sorted(serve_bundle["labels"])


def test_engine_runs_requests_with_different_options_in_one_call(serve_predictor: Any) -> None:
    from assistant_builder.serve.payload import OptionsCache

    options = OptionsCache(serve_predictor)
    jobs = [Job(serve_predictor.parse(["hello", "play some jazz"]), options.get(1)),
            Job(serve_predictor.parse(["rain tomorrow"]), options.get(3))]
    first, second = Engine(serve_predictor).run(jobs)
    assert isinstance(first, list) and isinstance(second, list)
    assert [len(p["top"]) for p in first] == [1, 1] and len(second[0]["top"]) == 3
    assert first[1]["label"] == serve_predictor.predict(["play some jazz"])[0]["label"]
    assert second[0]["score"] == pytest.approx(serve_predictor.predict(["rain tomorrow"])[0]["score"], abs=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"{not json", 422, "invalid_json", r"request body: expected JSON, got a parse error at line 1 column 2"),
        (b"", 422, "invalid_json", r"expected a JSON object, got an empty body"),
        (b'["hello"]', 422, "invalid_input", r"request body: expected a JSON object .* got array"),
        (b"{}", 422, "invalid_input", r"inputs: expected exactly one of 'inputs' \(a list\) or 'input' \(one input\), got neither"),
        (b'{"inputs": ["a"], "input": "b"}', 422, "invalid_input", r"got both"),
        (b'{"inputs": "hello"}', 422, "invalid_input", r"inputs: expected an array of inputs, got string"),
        (b'{"inputs": []}', 422, "invalid_input", r"inputs: expected 1 to 4 inputs, got 0"),
        (b'{"inputs": ["a", "b", "c", "d", "e"]}', 422, "invalid_input", r"inputs: expected 1 to 4 inputs, got 5"),
        (b'{"inputs": ["hello", 42]}', 422, "invalid_input", r"inputs\[1\]: expected a string or an object with a 'text' string, got 42"),
        (b'{"inputs": ["hello", "   "]}', 422, "invalid_input", r"inputs\[1\]: expected non-empty text"),
        (b'{"input": {"txt": "hello"}}', 422, "invalid_input", r"^input: expected a string or an object with a 'text'"),
        (b'{"inputs": ["hello", "' + b"x" * 41 + b'"]}', 422, "invalid_input", r"inputs\[1\]: expected at most 40 characters, got 41"),
        (b'{"input": {"text": "' + b"x" * 41 + b'"}}', 422, "invalid_input", r"input\.text: expected at most 40 characters, got 41"),
        (b'{"inputs": ["hello"], "topk": 2}', 422, "invalid_input", r"topk: unknown field; expected only inputs, input, top_k"),
        (b'{"inputs": ["hello"], "top_k": "2"}', 422, "invalid_input", r'top_k: expected a positive integer, got "2"'),
        (b'{"inputs": ["hello"], "top_k": 0}', 422, "invalid_input", r"top_k: expected a positive integer, got 0"),
        (b'{"inputs": ["' + b"y" * 300 + b'"]}', 413, "body_too_large", r"request body: expected at most 256 bytes"),
    ],
)
def test_bad_payloads_name_the_field(make_client: Any, body: bytes, status: int, code: str, message: str) -> None:
    client = make_client(max_batch=4, max_text_chars=40, max_body_bytes=256)
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert re.search(message, error["message"]), error["message"]


def test_body_too_large_without_content_length_is_caught_while_streaming(make_client: Any) -> None:
    client = make_client(max_body_bytes=256)

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"inputs": ["'
        for _ in range(10):
            yield b"z" * 50
        yield b'"]}'

    response = client.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_unknown_route_and_method_are_json(make_client: Any) -> None:
    client = make_client()
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.get("/predict")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


# --- auth --------------------------------------------------------------------------------------------


def test_bearer_token_guards_every_route_but_health(make_client: Any) -> None:
    client = make_client(token="s3cret")
    good = {"Authorization": "Bearer s3cret"}
    assert client.get("/health").status_code == 200
    for method, path in [("POST", "/predict"), ("GET", "/info"), ("GET", "/metrics"), ("GET", "/openapi.json"),
                         ("GET", "/docs"), ("GET", "/nope")]:
        missing = client.request(method, path, json={"inputs": ["hello"]})
        assert missing.status_code == 401, path
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="assistant-builder"'
        assert missing.json()["error"]["message"] == "missing bearer token"
        wrong = client.request(method, path, json={"inputs": ["hello"]}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert client.post("/predict", json={"inputs": ["hello"]}, headers=good).status_code == 200
    assert client.get("/info", headers=good).status_code == 200
    assert client.post("/predict", json={"inputs": ["hello"]}, headers={"Authorization": "Basic s3cret"}).status_code == 401
    assert metric(client, 'assistant_builder_errors_total{route="/predict",kind="unauthorized"}', good) == 3


def test_no_token_means_open(make_client: Any) -> None:
    client = make_client()
    assert client.post("/predict", json={"inputs": ["hello"]}).status_code == 200
    assert client.get("/info").status_code == 200


# --- health, info, schema, docs, metrics ------------------------------------------------------------


def test_health_and_draining(make_client: Any) -> None:
    client = make_client()
    assert client.get("/health").json() == {"status": "ready"}
    client.app.state.serve.begin_drain()
    health = client.get("/health")
    assert health.status_code == 503 and health.json() == {"status": "draining"}
    refused = client.post("/predict", json={"inputs": ["hello"]})
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "shutting_down"


def test_info_fields(make_client: Any, serve_bundle: dict) -> None:
    info = make_client(max_batch=8).get("/info").json()
    assert info["task"] == "classification"
    assert info["labels"] == serve_bundle["labels"]
    assert info["base_model"] == "tiny-bert"
    assert info["variant"] == "fp32" and info["variants"] == ["fp32", "int8"]
    assert info["metrics"] == {}  # the fixture bundle was written without verification reports
    assert info["created"]
    assert info["limits"]["max_batch"] == 8


def test_openapi_and_docs(make_client: Any) -> None:
    client = make_client(token="t")
    headers = {"Authorization": "Bearer t"}
    document = json.loads(client.get("/openapi.json", headers=headers).text)
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/predict", "/health", "/info", "/metrics", "/openapi.json", "/docs", "/admin/reload",
                                      "/admin/rollback"}  # /feedback too with --feedback
    predict = document["paths"]["/predict"]["post"]
    assert set(predict["responses"]) >= {"200", "401", "413", "422", "503"}
    assert predict["requestBody"]["content"]["application/json"]["example"]["inputs"]
    example = predict["responses"]["200"]["content"]["application/json"]["example"]
    assert len(example["predictions"]) == 2 and example["model"]["task"] == "classification"
    assert document["paths"]["/health"]["get"]["security"] == []
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    page = client.get("/docs", headers=headers)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "POST /predict" in page.text and "curl" in page.text and "http" not in page.text.split("<body>")[0].lower()


def test_metrics_count_requests(make_client: Any) -> None:
    client = make_client()
    ok = 'assistant_builder_requests_total{route="/predict",status="200"}'
    bad = 'assistant_builder_requests_total{route="/predict",status="422"}'
    before_ok, before_bad = metric(client, ok), metric(client, bad)
    for _ in range(3):
        client.post("/predict", json={"inputs": ["hello", "play some jazz"]})
    client.post("/predict", json={"inputs": 1})
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain; version=0.0.4")
    assert metric(client, ok) == before_ok + 3
    assert metric(client, bad) == before_bad + 1
    assert metric(client, 'assistant_builder_errors_total{route="/predict",kind="client_error"}') == 1
    assert metric(client, 'assistant_builder_request_duration_seconds_count{route="/predict"}') == 4
    assert metric(client, 'assistant_builder_inference_batch_size_bucket{le="2"}') == 3
    assert metric(client, 'assistant_builder_inference_batch_size_sum') == 6
    assert metric(client, "assistant_builder_requests_in_flight") == 1  # the scrape itself
    assert metric(client, "assistant_builder_inference_queue_depth") == 0
    version = client.get("/info").json()["version"]
    assert f'assistant_builder_model_info{{task="classification",variant="fp32",version="{version}"}} 1' in text
    assert "# TYPE assistant_builder_request_duration_seconds histogram" in text


def test_one_json_log_line_per_request(make_client: Any) -> None:
    records: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(json.loads(record.getMessage()))

    handler = Collect()
    access_log.addHandler(handler)
    try:
        client = make_client()
        client.post("/predict", json={"inputs": ["hello", "hi"]})
        client.post("/predict", json={"inputs": [1]})
        client.get("/health")
    finally:
        access_log.removeHandler(handler)
    assert [(r["route"], r["status"], r["batch_size"]) for r in records] == [
        ("/predict", 200, 2), ("/predict", 422, None), ("/health", 200, None)]
    assert records[1]["error"] == "invalid_input"
    assert all(isinstance(r["latency_ms"], float) and r["method"] for r in records)


# --- concurrency ---------------------------------------------------------------------------------------


class GatedEngine(Engine):
    """Blocks every model call until ``gate`` is set; counts calls."""

    def __init__(self, predictor: Any) -> None:
        super().__init__(predictor)
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls = 0

    def run(self, jobs):  # type: ignore[no-untyped-def]
        self.calls += 1
        self.started.set()
        assert self.gate.wait(30), "test gate never opened"
        return super().run(jobs)


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_queue_full_answers_503_at_once_and_health_stays_up(make_client: Any, serve_predictor: Any) -> None:
    engine = GatedEngine(serve_predictor)
    client = make_client(engine=engine, threads=1, queue_size=1, max_queue_wait_ms=0)  # count-based shedding only
    scheduler = client.app.state.serve.scheduler
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(client.post, "/predict", json={"inputs": ["hello"]})
        assert engine.started.wait(10)
        waiting = pool.submit(client.post, "/predict", json={"inputs": ["play some jazz"]})
        wait_until(lambda: len(scheduler.pending) == 1)

        started = time.monotonic()
        rejected = client.post("/predict", json={"inputs": ["rain tomorrow"]})
        assert time.monotonic() - started < 5  # answered at once, not queued
        assert rejected.status_code == 503
        assert rejected.headers["Retry-After"] == "1"
        assert rejected.json()["error"]["code"] == "queue_full"
        assert client.get("/health").status_code == 200  # the event loop is free while the model runs
        assert metric(client, "assistant_builder_inference_queue_depth") == 1

        engine.gate.set()
        assert running.result(30).status_code == 200
        assert waiting.result(30).status_code == 200
    assert metric(client, 'assistant_builder_errors_total{route="/predict",kind="rejected"}') == 1
    assert client.post("/predict", json={"inputs": ["hello"]}).status_code == 200


def test_a_request_that_waited_too_long_gets_503_and_the_server_recovers(make_client: Any, serve_predictor: Any) -> None:
    engine = GatedEngine(serve_predictor)
    client = make_client(engine=engine, threads=1, queue_size=10, max_queue_wait_ms=200)
    scheduler = client.app.state.serve.scheduler
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(client.post, "/predict", json={"inputs": ["hello"]})
        assert engine.started.wait(10)
        late = pool.submit(client.post, "/predict", json={"inputs": ["play some jazz"]})
        wait_until(lambda: len(scheduler.pending) == 1)
        time.sleep(0.4)  # longer than max_queue_wait_ms while the model is busy
        engine.gate.set()
        assert running.result(30).status_code == 200
        answer = late.result(30)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    error = answer.json()["error"]
    assert error["code"] == "queue_timeout" and re.search(r"waited \d+ ms for the model, more than the 200 ms limit", error["message"])
    assert engine.calls == 1  # the stale request was never run
    assert metric(client, 'assistant_builder_requests_shed_total{reason="queue_timeout"}') == 1
    assert client.post("/predict", json={"inputs": ["hello"]}).status_code == 200


class SlowEngine(Engine):
    """Takes ``seconds`` per model call."""

    def __init__(self, predictor: Any, seconds: float) -> None:
        super().__init__(predictor)
        self.seconds = seconds
        self.started = threading.Event()

    def run(self, jobs):  # type: ignore[no-untyped-def]
        self.started.set()
        time.sleep(self.seconds)
        return super().run(jobs)


def test_a_request_is_refused_at_once_when_the_queue_ahead_would_take_too_long(make_client: Any, serve_predictor: Any) -> None:
    engine = SlowEngine(serve_predictor, 0.5)
    client = make_client(engine=engine, threads=1, queue_size=10, max_queue_wait_ms=300)
    scheduler = client.app.state.serve.scheduler
    assert client.post("/predict", json={"inputs": ["hello"]}).status_code == 200  # measures the model's speed
    assert scheduler.seconds_per_job == pytest.approx(0.5, abs=0.2)
    engine.started.clear()
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(client.post, "/predict", json={"inputs": ["hello"]})
        assert engine.started.wait(10)  # its model call is under way
        queued = pool.submit(client.post, "/predict", json={"inputs": ["rain tomorrow"]})
        wait_until(lambda: len(scheduler.pending) == 1)
        started = time.monotonic()
        refused = client.post("/predict", json={"inputs": ["play some jazz"]})
        assert time.monotonic() - started < 0.3  # refused at once, not after waiting
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "overloaded"
        assert "1 requests ahead would take about" in refused.json()["error"]["message"]
        assert running.result(30).status_code == 200
        queued.result(30)
    assert metric(client, 'assistant_builder_requests_shed_total{reason="overloaded"}') == 1


def test_micro_batching_groups_concurrent_requests(make_client: Any, serve_predictor: Any) -> None:
    engine = GatedEngine(serve_predictor)
    engine.gate.set()
    client = make_client(engine=engine, threads=1, micro_batch_ms=400, max_batch=64)
    texts = ["hello", "play some jazz", "rain tomorrow", "good morning there", "hi", "play music"]
    barrier = threading.Barrier(len(texts))

    def send(text: str) -> Any:
        barrier.wait(10)
        return client.post("/predict", json={"inputs": [text]})

    with ThreadPoolExecutor(len(texts)) as pool:
        responses = list(pool.map(send, texts))
    assert all(r.status_code == 200 for r in responses)
    expected = serve_predictor.predict(texts)
    for response, want in zip(responses, expected):
        assert response.json()["predictions"][0]["label"] == want["label"]
        assert response.json()["predictions"][0]["score"] == pytest.approx(want["score"], abs=1e-6)
    assert engine.calls < len(texts)  # at least two requests shared a model call
    calls = metric(client, "assistant_builder_inference_batch_requests_count")
    assert calls == engine.calls
    assert metric(client, 'assistant_builder_inference_batch_requests_bucket{le="1"}') < calls
    assert metric(client, "assistant_builder_inference_batch_size_sum") == len(texts)


def test_micro_batches_respect_max_batch(make_client: Any, serve_predictor: Any) -> None:
    engine = GatedEngine(serve_predictor)
    engine.gate.set()
    client = make_client(engine=engine, threads=1, micro_batch_ms=300, max_batch=3)
    barrier = threading.Barrier(4)

    def send(_: int) -> Any:
        barrier.wait(10)
        return client.post("/predict", json={"inputs": ["hello", "hi"]})

    with ThreadPoolExecutor(4) as pool:
        assert all(r.status_code == 200 for r in pool.map(send, range(4)))
    assert metric(client, 'assistant_builder_inference_batch_size_bucket{le="2"}') == 4  # never 2 + 2 > 3


def test_engine_splits_multi_feature_examples_and_sequence_outputs_per_request() -> None:
    """Tasks like qa encode one example into several windows; each request must get back only its own."""
    import numpy as np

    from assistant_builder.contracts import ComponentOptions

    class Windows:  # a stub task: two windows per example, token scores summed per example
        def encode(self, examples, tokenizer, labels, options, max_length):  # type: ignore[no-untyped-def]
            return [{"input_ids": [1] * (len(text) + window), "example_index": index}
                    for index, text in enumerate(examples) for window in (0, 1)]

        def decode(self, outputs, features, examples, labels, options):  # type: ignore[no-untyped-def]
            totals = [0.0] * len(examples)
            for feature, scores in zip(features, outputs["scores"]):
                assert len(scores) == len(feature["input_ids"])  # trimmed to the window's own length
                totals[feature["example_index"]] += float(scores.sum())
            return [{"text": text, "total": total} for text, total in zip(examples, totals)]

    class Stub:
        task, tokenizer, labels, max_length, pad_token_id = Windows(), None, [], 64, 0
        output_names, sequence_outputs, input_keys = ["scores"], ["scores"], ()

        @staticmethod
        def runner(batch):  # type: ignore[no-untyped-def]
            return {"scores": batch["attention_mask"].astype(np.float32)}

    engine = Engine(Stub(), model_batch_size=3)  # type: ignore[arg-type]
    results = engine.run([Job(["ab", "abcd"], ComponentOptions()), Job(["x"], ComponentOptions())])
    assert results == [[{"text": "ab", "total": 5.0}, {"text": "abcd", "total": 9.0}], [{"text": "x", "total": 3.0}]]


def test_model_failures_are_json_500_and_task_data_errors_422(make_client: Any, serve_predictor: Any) -> None:
    from assistant_builder.errors import DataError

    class Failing(Engine):
        def run(self, jobs):  # type: ignore[no-untyped-def]
            text = jobs[0].examples[0].text
            if text == "boom":
                raise RuntimeError("the model broke")
            return [DataError("inputs[0]: too many tokens for this task")]

    client = make_client(engine=Failing(serve_predictor))
    broken = client.post("/predict", json={"inputs": ["boom"]})
    assert broken.status_code == 500
    assert broken.json()["error"] == {"code": "internal_error", "message": "prediction failed: RuntimeError: the model broke"}
    rejected = client.post("/predict", json={"inputs": ["hello"]})
    assert rejected.status_code == 422 and rejected.json()["error"]["message"] == "inputs[0]: too many tokens for this task"
    assert metric(client, 'assistant_builder_errors_total{route="/predict",kind="server_error"}') == 1
    assert client.get("/health").status_code == 200


def test_admission_uses_the_cheapest_recent_cost_so_slow_overloaded_calls_do_not_starve_the_model() -> None:
    from assistant_builder.serve.engine import Scheduler
    from assistant_builder.serve.metrics import ServeMetrics

    scheduler = Scheduler(None, threads=2, queue_size=10, max_batch=8, micro_batch_ms=0, metrics=ServeMetrics(),  # type: ignore[arg-type]
                          max_queue_wait_ms=100)
    assert scheduler.expected_wait() == 0 and scheduler.seconds_per_job is None
    for cost in (0.004, 0.050, 0.080):  # calls slowed down by an overloaded event loop
        scheduler._record_cost(cost)
    assert scheduler.seconds_per_job == 0.004
    scheduler.pending.extend([Job([], None)] * 6)  # type: ignore[arg-type]
    assert scheduler.expected_wait() == pytest.approx(6 * 0.004 / 2)
    for _ in range(Scheduler.COST_WINDOW):  # the cheap call has left the window: the model really is slower now
        scheduler._record_cost(0.030)
    assert scheduler.seconds_per_job == 0.030
    scheduler.executor.shutdown()
