"""``builder serve`` on a generation bundle: ``POST /generate`` (JSON and server-sent events), its errors,
auth, load shedding, a client that goes away, feedback back into training data, and reloads.

One generation run per module: a tiny random Llama (``make_tiny_causal_lm``) "trained" for 0 epochs
and exported to ONNX fp32 by the real ``builder run``. Its greedy answers are gibberish that never
ends on its own, which makes ``max_new_tokens`` and stop sequences easy to check.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.serve.generation import GenerationEngine

SSE = {"Accept": "text/event-stream"}
PROMPT = "How do I reset my lamp?"
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Why is the ring red?"}]


def _conversation(question: str, answer: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


@pytest.fixture(scope="module")
def gen_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ``generation`` run (exports/onnx with a verified fp32 causal LM)."""
    from assistant_builder.cli.main import main
    from assistant_builder.conformance.tiny_causal_lm import make_tiny_causal_lm
    from assistant_builder.testing import recipe_toml

    root = tmp_path_factory.mktemp("gen-serve")
    lm = make_tiny_causal_lm(root / "lm")
    pairs = [("How do I reset my lamp?", "Hold the button for ten seconds."), ("Can I dim it?", "Yes, slide round the ring."),
             ("Is it safe?", "Yes, the shade stays cool."), ("What is the warranty?", "Two years.")]
    for name, rows in (("train.jsonl", pairs), ("valid.jsonl", pairs[:2])):
        (root / name).write_text("".join(json.dumps(_conversation(q, a)) + "\n" for q, a in rows))
    recipe = {"recipe_version": 1, "name": "gen-serve",
              "task": {"type": "generation", "options": {"eval_samples": 0, "compare_base": False, "max_new_tokens": 8}},
              "model": {"base": str(lm), "max_length": 256}, "data": {"train": "train.jsonl", "validation": "valid.jsonl"},
              "train": {"trainer": "lora", "epochs": 0, "batch_size": 8, "min_steps": 0}, "export": {"formats": ["onnx"]},
              "output": {"runs_dir": "runs"}}
    (root / "recipe.toml").write_text(recipe_toml(recipe))
    assert main(["run", str(root / "recipe.toml"), "-q"]) == 0
    (run,) = (root / "runs").iterdir()
    return run


@pytest.fixture(scope="module")
def gen_model(gen_run: Path) -> Any:
    from assistant_builder.serve.models import load_model

    return load_model(gen_run)


@pytest.fixture
def gen_client(gen_run: Path, gen_model: Any) -> Iterator[Callable[..., Any]]:
    """``gen_client(engine=None, **settings)``: a started ``TestClient`` serving the generation run."""
    from starlette.testclient import TestClient

    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.settings import ServeSettings

    opened: list[Any] = []

    def make(engine: Any = None, **overrides: Any) -> Any:
        client = TestClient(create_app(ServeSettings(path=str(gen_run), **{"threads": 1, **overrides}), predictor=gen_model,
                                       engine=engine))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


def events(text: str) -> list[tuple[str, Any]]:
    """``(event, data)`` of each server-sent event (event ``message`` when unnamed)."""
    found = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        event = next((line[len("event: "):] for line in lines if line.startswith("event: ")), "message")
        [data] = [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]
        found.append((event, data))
    return found


def metric(client: Any, name: str, headers: dict[str, str] | None = None) -> float:
    for line in client.get("/metrics", headers=headers).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# --- answers ---------------------------------------------------------------------------------------------


def test_streamed_pieces_join_to_the_json_answer_which_is_the_runtimes(gen_client: Any, gen_model: Any) -> None:
    client = gen_client()
    body = {"messages": MESSAGES, "max_new_tokens": 20}
    plain = client.post("/generate", json=body)
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("application/json")
    answer = plain.json()
    assert set(answer) == {"completion", "tokens", "finish_reason", "model_version", "id"}
    assert answer["id"] is None and answer["model_version"] == client.get("/info").json()["version"]
    streamed = client.post("/generate", json=body, headers=SSE)
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.headers["cache-control"] == "no-cache"
    found = events(streamed.text)
    pieces = [data["text"] for event, data in found[:-1] if event == "message"]
    assert len(pieces) == len(found) - 1 > 1
    assert found[-1] == ("done", answer)
    assert "".join(pieces) == answer["completion"] != ""
    # what `builder predict` answers with the same runtime, prompt and settings
    expected = gen_model.assistant.answer({"messages": MESSAGES}, gen_model.assistant.settings(max_new_tokens=20))
    assert (answer["completion"], answer["tokens"], answer["finish_reason"]) == (expected.completion, expected.tokens, "length")
    # "stream" in the body wins over the Accept header
    assert events(client.post("/generate", json={**body, "stream": True}).text)[-1] == ("done", answer)
    assert client.post("/generate", json={**body, "stream": False}, headers=SSE).json() == answer


def test_max_new_tokens_and_the_bundle_default(gen_client: Any) -> None:
    client = gen_client()
    short = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 3}).json()
    assert short["tokens"] == 3 and short["finish_reason"] == "length"
    default = client.post("/generate", json={"prompt": PROMPT}).json()
    assert default["tokens"] == 8 == client.get("/info").json()["generation"]["max_new_tokens"]  # task.options.max_new_tokens
    assert default["completion"].startswith(short["completion"])


def test_a_stop_sequence_ends_the_answer_before_it(gen_client: Any) -> None:
    client = gen_client()
    full = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 30}).json()["completion"]
    words = full.split()
    stop = next(w for w in words[1:] if w not in words[0] and full.find(w) > len(words[0]))  # a later word
    expected = full[:full.find(stop)].strip()
    answer = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 30, "stop": [stop, "never appears"]}).json()
    assert answer["completion"] == expected and answer["finish_reason"] == "stop" and answer["tokens"] < 30
    found = events(client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 30, "stop": stop}, headers=SSE).text)
    assert "".join(d["text"] for e, d in found if e == "message") == expected
    assert found[-1][1]["finish_reason"] == "stop"


def test_info_metrics_openapi_and_log_describe_a_generation_model(gen_client: Any, gen_run: Path) -> None:
    client = gen_client(token="t")
    auth = {"Authorization": "Bearer t"}
    info = client.get("/info", headers=auth).json()
    assert info["task"] == "generation" and info["kind"] == "generation" and info["endpoint"] == "/generate"
    assert info["variant"] == "fp32" and info["metrics"]["passed"] is True
    assert info["generation"] == {"max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0, "stop": [], "system_prompt": None,
                                  "max_length": 256}
    assert info["serving"]["run"] == str(gen_run) and info["serving"]["kind"] == "generation"
    tokens = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 4}, headers=auth).json()["tokens"]
    client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 2}, headers={**auth, **SSE})
    assert metric(client, "assistant_builder_generated_tokens_total", auth) == tokens + 2
    assert metric(client, 'assistant_builder_generations_total{finish_reason="length"}', auth) == 2
    assert metric(client, 'assistant_builder_requests_total{route="/generate",status="200"}', auth) == 2
    assert metric(client, 'assistant_builder_request_duration_seconds_count{route="/generate"}', auth) == 2
    version = info["version"]
    assert f'assistant_builder_model_info{{task="generation",variant="fp32",version="{version}"}} 1' in client.get(
        "/metrics", headers=auth).text
    document = client.get("/openapi.json", headers=auth).json()
    assert "/generate" in document["paths"] and "/predict" not in document["paths"]
    operation = document["paths"]["/generate"]["post"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert set(operation["responses"]) >= {"200", "401", "413", "422", "503"}
    assert "POST /generate" in client.get("/docs", headers=auth).text


def test_the_access_log_counts_the_tokens(gen_client: Any) -> None:
    import logging

    from assistant_builder.serve.app import access_log

    records: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(json.loads(record.getMessage()))

    handler = Collect()
    access_log.addHandler(handler)
    try:
        client = gen_client()
        client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 3}, headers=SSE)
        client.post("/generate", json={"prompt": ""})
    finally:
        access_log.removeHandler(handler)
    assert [(r["route"], r["status"], r.get("tokens"), r.get("error")) for r in records] == [
        ("/generate", 200, 3, None), ("/generate", 422, None, "invalid_input")]


# --- refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, message", [
    (b"[1]", "request body: expected a JSON object"),
    (b"{", "request body: expected JSON, got a parse error"),
    ({}, "prompt: expected exactly one of 'prompt' (a text) or 'messages' (a conversation), got neither"),
    ({"prompt": "hi", "messages": MESSAGES}, "prompt: expected exactly one of 'prompt' (a text) or 'messages' (a conversation), got both"),
    ({"prompt": "hi", "top_k": 3}, "top_k: unknown field; expected only prompt, messages, max_new_tokens"),
    ({"prompt": 3}, "prompt: expected a text (or a list of messages), got int"),
    ({"prompt": "  "}, "prompt: expected a non-empty prompt"),
    ({"prompt": "x" * 2001}, "prompt: expected at most 2000 characters, got 2001"),
    ({"prompt": "reset " * 300}, "prompt: the prompt is"),
    ({"messages": "hi"}, "messages: expected a list of {\"role\", \"content\"} messages, got string"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]}, "messages[2]: unknown role 'tool'"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
     "messages: the conversation ends with an assistant message"),
    ({"messages": [{"role": "user", "content": "x" * 2001}]}, "messages[1].content: expected at most 2000 characters"),
    ({"prompt": "hi", "max_new_tokens": 0}, "max_new_tokens: expected an integer >= 1, got 0"),
    ({"prompt": "hi", "max_new_tokens": "5"}, "max_new_tokens: expected an integer, got string"),
    ({"prompt": "hi", "temperature": True}, "temperature: expected a number, got boolean"),
    ({"prompt": "hi", "temperature": -1}, "temperature: expected a number from 0 (greedy) to 100, got -1"),
    ({"prompt": "hi", "top_p": 0}, "top_p: expected a number in (0, 1], got 0"),
    ({"prompt": "hi", "seed": 1.5}, "seed: expected an integer, got float"),
    ({"prompt": "hi", "stop": ["ok", ""]}, "stop[1]: expected a non-empty string"),
    ({"prompt": "hi", "stop": {"a": 1}}, "stop: expected a string or a list of strings, got object"),
    ({"prompt": "hi", "stream": "yes"}, "stream: expected true or false, got \"yes\""),
])
def test_bad_payloads_are_422_naming_the_field(gen_client: Any, body: Any, message: str) -> None:
    client = gen_client()
    response = client.post("/generate", content=body) if isinstance(body, bytes) else client.post("/generate", json=body, headers=SSE)
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/json"), response.text
    assert response.json()["error"]["code"] in ("invalid_input", "invalid_json")
    assert response.json()["error"]["message"].startswith(message), response.json()


def test_predict_on_a_generation_model_points_to_generate_and_back(gen_client: Any, make_client: Any) -> None:
    refused = gen_client().post("/predict", json={"inputs": ["hello"]})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "wrong_endpoint"
    assert "POST /generate" in refused.json()["error"]["message"]
    encoder = make_client()
    back = encoder.post("/generate", json={"prompt": "hello"})
    assert back.status_code == 404 and back.json()["error"]["code"] == "wrong_endpoint"
    assert "POST /predict" in back.json()["error"]["message"] and "'classification' model" in back.json()["error"]["message"]
    assert encoder.get("/info").json()["endpoint"] == "/predict"


def test_a_token_is_needed_but_not_for_health(gen_client: Any) -> None:
    client = gen_client(token="s3cret")
    assert client.get("/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}):
        missing = client.post("/generate", json={"prompt": PROMPT}, headers={**headers, **SSE})
        assert missing.status_code == 401 and missing.headers["content-type"].startswith("application/json")
    ok = client.post("/generate", json={"prompt": PROMPT}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["tokens"] == 8


class GatedEngine(GenerationEngine):
    """Holds every generation until ``gate`` is set."""

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self.gate, self.started = threading.Event(), threading.Event()

    def generate(self, job: Any) -> dict[str, Any]:
        self.started.set()
        assert self.gate.wait(30), "test gate never opened"
        return super().generate(job)


def test_a_full_queue_is_shed_with_503_and_health_answers_while_generating(gen_client: Any, gen_model: Any) -> None:
    engine = GatedEngine(gen_model)
    client = gen_client(engine=engine, threads=1, queue_size=1, max_queue_wait_ms=0)
    scheduler = client.app.state.serve.scheduler
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(client.post, "/generate", json={"prompt": PROMPT}, headers=SSE)
        assert engine.started.wait(10)
        waiting = pool.submit(client.post, "/generate", json={"prompt": PROMPT})
        wait_until(lambda: len(scheduler.pending) == 1)
        for headers in (SSE, {}):  # refused before a stream starts: a JSON error either way
            rejected = client.post("/generate", json={"prompt": PROMPT}, headers=headers)
            assert rejected.status_code == 503 and rejected.headers["Retry-After"] == "1"
            assert rejected.headers["content-type"].startswith("application/json")
            assert rejected.json()["error"]["code"] == "queue_full"
        assert client.get("/health").json() == {"status": "ready"}  # the event loop is free while the model runs
        engine.gate.set()
        assert events(running.result(30).text)[-1][1]["tokens"] == 8
        assert waiting.result(30).json()["tokens"] == 8
    assert metric(client, 'assistant_builder_requests_shed_total{reason="queue_full"}') == 2
    assert metric(client, 'assistant_builder_errors_total{route="/generate",kind="rejected"}') == 2


class MeteredEngine(GenerationEngine):
    """Each token waits for a permit; records the answers it finished."""

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self.permits = threading.Semaphore(0)
        self.answers: list[dict[str, Any]] = []
        self.done = threading.Event()

    def token_ids(self, job: Any) -> Iterator[int]:
        for token in super().token_ids(job):
            assert self.permits.acquire(timeout=10), "no permit for the next token"
            yield token

    def generate(self, job: Any) -> dict[str, Any]:
        answer = super().generate(job)
        self.answers.append(answer)
        self.done.set()
        return answer


def test_a_client_that_goes_away_mid_stream_stops_its_generation(gen_client: Any, gen_model: Any) -> None:
    engine = MeteredEngine(gen_model)
    client = gen_client(engine=engine)
    for _ in range(3):
        engine.permits.release()
    with client.stream("POST", "/generate", json={"prompt": PROMPT, "max_new_tokens": 100}, headers=SSE) as response:
        assert response.status_code == 200
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
        assert json.loads(first[len("data: "):])["text"]
    for _ in range(200):  # plenty for the 100 tokens asked for: only the disconnect can stop it early
        engine.permits.release()
    assert engine.done.wait(10)
    [answer] = engine.answers
    assert answer["finish_reason"] == "cancelled" and answer["tokens"] <= 4
    assert metric(client, 'assistant_builder_generations_total{finish_reason="cancelled"}') == 1
    assert client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 2}).json()["tokens"] == 2  # the server goes on


# --- feedback ---------------------------------------------------------------------------------------------


def test_feedback_on_an_answer_becomes_a_training_conversation(gen_client: Any, gen_model: Any, tmp_path: Path) -> None:
    from assistant_builder.contracts import TaskData
    from assistant_builder.engine.extra_data import add_extra_data
    from assistant_builder.labelling.serve_store import FeedbackStore

    store = tmp_path / "fb.labels.sqlite"
    client = gen_client(feedback=str(store), capture="none")
    done = events(client.post("/generate", json={"messages": MESSAGES, "max_new_tokens": 5}, headers=SSE).text)[-1]
    assert done[0] == "done" and isinstance(done[1]["id"], str)
    corrected = "The lamp lost its network; it reconnects within a minute."
    feedback = client.post("/feedback", json={"prediction_id": done[1]["id"], "response": corrected})
    assert feedback.status_code == 200, feedback.text
    assert feedback.json()["status"] == "labelled" and feedback.json()["gold"] == corrected
    confirmed = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 4}).json()
    assert client.post("/feedback", json={"prediction_id": confirmed["id"], "correct": True}).json()["gold"] == confirmed["completion"]
    bad = client.post("/feedback", json={"prediction_id": confirmed["id"], "response": " "})
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("response: expected the answer")
    with FeedbackStore(store, durable=False) as opened:
        items = {item.gold: item for item in opened.items()}
    assert items[corrected].payload == {"messages": MESSAGES} and items[corrected].source == "serve"
    assert items[confirmed["completion"]].payload == {"messages": [{"role": "user", "content": PROMPT}]}

    task = gen_model.task
    data, report = add_extra_data(task, TaskData([], [], []), [store], gen_model.options, tmp_path / "run")
    assert report["stores"][0]["added"] == 2
    by_answer = {example.completion: example for example in data.train}
    conversation = by_answer[corrected]
    assert [(m.role, m.content) for m in conversation.messages] == [(m["role"], m["content"]) for m in MESSAGES] + [
        ("assistant", corrected)]
    assert [(m.role, m.content) for m in by_answer[confirmed["completion"]].messages] == [
        ("user", PROMPT), ("assistant", confirmed["completion"])]


# --- start-up and reloads ------------------------------------------------------------------------------------


def _copy_run(run: Path, target: Path, **manifest_changes: Any) -> Path:
    shutil.copytree(run, target)
    manifest_path = target / "exports" / "onnx" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(manifest_changes)
    manifest_path.write_text(json.dumps(manifest))
    return target


def test_builder_serve_refuses_a_run_whose_export_failed_verification(gen_run: Path, tmp_path: Path, monkeypatch: Any,
                                                                      capsys: Any) -> None:
    import assistant_builder.serve.server as server
    from assistant_builder.cli.main import main

    manifest = json.loads((gen_run / "exports" / "onnx" / "manifest.json").read_text())
    failed = {**manifest["verification"]["fp32"], "passed": False, "failures": ["agreement 50.00% < 90.00%"]}
    broken = _copy_run(gen_run, tmp_path / "broken", verification={"fp32": failed})
    monkeypatch.setattr(server, "serve", lambda settings: pytest.fail("an unverified run was served"))
    assert main(["serve", str(broken)]) == 2
    assert "failed it (fp32 model: agreement 50.00% < 90.00%)" in capsys.readouterr().err


def test_a_reload_swaps_to_another_generation_run_and_refuses_an_encoder(gen_client: Any, gen_run: Path, serve_bundle: dict,
                                                                         tmp_path: Path) -> None:
    from assistant_builder.serve.regression import RegressionSet
    from assistant_builder.serve.settings import ServeError

    auth = {"Authorization": "Bearer t"}
    client = gen_client(token="t")
    old = client.get("/info", headers=auth).json()["version"]
    newer = _copy_run(gen_run, tmp_path / "newer", created="2099-01-01T00:00:00+0000")
    swapped = client.post("/admin/reload", json={"path": str(newer)}, headers=auth)
    assert swapped.status_code == 200, swapped.text
    assert swapped.json()["result"] == "swapped" and "smoke prediction ok" in swapped.json()["checks"]
    answer = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 2}, headers=auth).json()
    assert answer["model_version"] == swapped.json()["to"]["version"] != old
    encoder = _copy_run(serve_bundle["run"], tmp_path / "encoder", verification={"fp32": {"passed": True}, "int8": {"passed": True}})
    refused = client.post("/admin/reload", json={"path": str(encoder)}, headers=auth)
    assert refused.status_code == 409 and refused.json()["error"]["reason"] == "task_changed"
    assert client.get("/info", headers=auth).json()["version"] == answer["model_version"]  # the generation model still serves
    with pytest.raises(ServeError, match="not supported for a generation model"):
        RegressionSet.load(tmp_path / "cases.jsonl", client.app.state.serve.slot)
