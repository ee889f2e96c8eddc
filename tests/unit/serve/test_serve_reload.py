"""Hot swap in process: ``POST /admin/reload`` and ``/admin/rollback`` for the three tasks, every
refusal (with the old model still serving), in-flight requests finishing on the old model,
``--regression``, ``--watch`` and feedback validated against the model that made the prediction."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.serve.engine import Engine

TOKEN = {"Authorization": "Bearer t"}
INPUTS = {"classification": "wake me up at 7", "ner": "call mom at 5 pm",
          "qa": {"question": "when does it open", "context": "The shop opens at 9 am and closes at 6 pm."}}


def _conftest() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_serve_conftest", Path(__file__).with_name("conftest.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_run = _conftest().build_run


@pytest.fixture(scope="session")
def second_runs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    """Another model per task (seed 1), plus classification variants that must be refused."""
    root = tmp_path_factory.mktemp("second-runs")
    runs = {name: build_run(name, root / f"{name}-b", tiny_model_dir, seed=1) for name in ("classification", "ner", "qa")}
    runs["unverified"] = build_run("classification", root / "unverified", tiny_model_dir, seed=2, verified=False)
    runs["relabelled"] = build_run("classification", root / "relabelled", tiny_model_dir, seed=3, labels=["alarm", "music", "timer"])
    runs["extended"] = build_run("classification", root / "extended", tiny_model_dir, seed=4, labels=["alarm", "music", "weather", "timer"])
    refused = build_run("classification", root / "refused-update", tiny_model_dir, seed=5)
    (refused / "update.json").write_text(json.dumps({"parent": "p", "gate": {"passed": False, "reasons": ["it forgot: accuracy fell"]}}))
    runs["refused-update"] = refused
    return runs


def version(client: Any) -> str:
    return client.get("/info", headers=TOKEN).json()["version"]


def predict(client: Any, task: str) -> dict[str, Any]:
    response = client.post("/predict", json={"input": INPUTS[task]}, headers=TOKEN)
    assert response.status_code == 200, response.text
    return response.json()


def metric(client: Any, name: str) -> float:
    for line in client.get("/metrics", headers=TOKEN).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("task", ["classification", "ner", "qa"])
def test_reload_swaps_the_model_and_rollback_swaps_back(task_client: Any, task_runs: dict, second_runs: dict, task: str) -> None:
    client = task_client(task, token="t", capture="none")
    old = version(client)
    before = predict(client, task)
    response = client.post("/admin/reload", json={"path": str(second_runs[task])}, headers=TOKEN)
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["result"] == "swapped" and outcome["from"]["version"] == old and outcome["reload_ms"] > 0
    assert any("verification of fp32 passed" in c for c in outcome["checks"])
    new = outcome["to"]["version"]
    assert new != old and version(client) == new and predict(client, task)["model"]["version"] == new
    info = client.get("/info", headers=TOKEN).json()
    assert info["serving"]["run"] == str(second_runs[task]) and info["previous"]["version"] == old
    assert f'version="{new}"' in client.get("/metrics", headers=TOKEN).text and f'version="{old}"' not in client.get(
        "/metrics", headers=TOKEN).text
    # feedback on a prediction the old model made is still accepted (validated with the old model's labels)
    assert client.post("/feedback", json={"prediction_id": before["predictions"][0]["prediction_id"], "correct": True},
                       headers=TOKEN).json()["model_version"] == old
    again = client.post("/admin/reload", json={"path": str(second_runs[task])}, headers=TOKEN)
    assert again.status_code == 200 and again.json()["result"] == "unchanged"
    back = client.post("/admin/rollback", headers=TOKEN)
    assert back.status_code == 200 and back.json()["result"] == "rolled_back" and version(client) == old
    assert metric(client, 'assistant_builder_model_reloads_total{result="swapped",reason=""}') == 1
    assert metric(client, 'assistant_builder_model_reload_seconds_count') == 1


@pytest.mark.parametrize("which, reason, message", [
    ("unverified", "verification_failed", "the export verification of its fp32 model did not pass (agreement 50.00% < 99.00%)"),
    ("relabelled", "labels_changed", "its labels differ from the serving model's: added timer; removed weather"),
    ("ner", "task_changed", "is a 'ner' model; the server serves 'classification'"),
    ("refused-update", "update_refused", "is an update its gate refused (it forgot: accuracy fell)"),
    ("missing", "load_failed", "could not be loaded"),
])
def test_a_refused_reload_leaves_the_old_model_and_says_why(task_client: Any, second_runs: dict, tmp_path: Path, which: str,
                                                            reason: str, message: str, caplog: pytest.LogCaptureFixture) -> None:
    client = task_client("classification", token="t", capture="none")
    old = version(client)
    path = str(tmp_path / "nowhere") if which == "missing" else str(second_runs[which])
    response = client.post("/admin/reload", json={"path": path}, headers=TOKEN)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "reload_refused" and error["reason"] == reason and message in error["message"], error
    assert version(client) == old and predict(client, "classification")["model"]["version"] == old
    assert metric(client, f'assistant_builder_model_reloads_total{{result="refused",reason="{reason}"}}') == 1
    assert client.get("/info", headers=TOKEN).json()["reload"]["last"]["reason"] == reason
    assert client.post("/admin/rollback", headers=TOKEN).json()["error"]["code"] == "no_previous_model"


def test_allow_label_change_accepts_a_new_label_set(task_client: Any, second_runs: dict) -> None:
    client = task_client("classification", token="t", capture="none", allow_label_change=True)
    response = client.post("/admin/reload", json={"path": str(second_runs["relabelled"])}, headers=TOKEN)
    assert response.status_code == 200 and any("allowed" in c for c in response.json()["checks"])
    assert client.get("/info", headers=TOKEN).json()["labels"] == ["alarm", "music", "timer"]


def test_a_model_with_new_labels_added_swaps_in_without_allow_label_change(task_client: Any, second_runs: dict) -> None:
    """A superset of the serving labels (new intents an update learned) is not a label change to refuse."""
    client = task_client("classification", token="t", capture="none")
    response = client.post("/admin/reload", json={"path": str(second_runs["extended"])}, headers=TOKEN)
    assert response.status_code == 200, response.text
    assert "labels extended (+1: timer)" in response.json()["checks"]
    assert client.get("/info", headers=TOKEN).json()["labels"] == ["alarm", "music", "weather", "timer"]


def test_admin_routes_need_a_token_and_a_valid_body(task_client: Any, second_runs: dict) -> None:
    open_client = task_client("classification", capture="none")
    refused = open_client.post("/admin/reload", json={"path": str(second_runs["classification"])})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_disabled"
    client = task_client("classification", token="t", capture="none")
    assert client.post("/admin/reload", json={"path": str(second_runs["classification"])}).status_code == 401
    for body in ({}, {"path": 3}, {"path": "x", "force": True}, []):
        bad = client.post("/admin/reload", json=body, headers=TOKEN)
        assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("path: expected"), bad.text


class GatedEngine(Engine):
    """Blocks every model call until ``gate`` is set (``entered`` is set while one waits)."""

    def __init__(self, predictor: Any) -> None:
        super().__init__(predictor)
        self.gate, self.entered = threading.Event(), threading.Event()

    def run(self, jobs: Any) -> Any:
        self.entered.set()
        assert self.gate.wait(20)
        return super().run(jobs)


def test_in_flight_requests_finish_on_the_old_model(task_runs: dict, second_runs: dict) -> None:
    from starlette.testclient import TestClient

    from assistant_builder.runtime import load_predictor
    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.settings import ServeSettings

    predictor = load_predictor(task_runs["classification"], threads=1)
    engine = GatedEngine(predictor)
    settings = ServeSettings(path=str(task_runs["classification"]), token="t", threads=2, intra_op_threads=1)
    with TestClient(create_app(settings, predictor=predictor, engine=engine)) as client:
        old = version(client)
        results: dict[str, Any] = {}
        waiting = threading.Thread(target=lambda: results.update(r=client.post("/predict", json={"input": "play jazz"}, headers=TOKEN)))
        waiting.start()
        assert engine.entered.wait(10)
        swapped = client.post("/admin/reload", json={"path": str(second_runs["classification"])}, headers=TOKEN)
        assert swapped.status_code == 200, swapped.text  # the swap does not wait for the request in flight
        new = swapped.json()["to"]["version"]
        assert predict(client, "classification")["model"]["version"] == new  # new requests: new model (not gated)
        engine.gate.set()
        waiting.join(20)
        assert results["r"].status_code == 200 and results["r"].json()["model"]["version"] == old


def test_regression_set_refuses_a_worse_model(task_client: Any, task_runs: dict, second_runs: dict, tmp_path: Path) -> None:
    from assistant_builder.runtime import load_predictor

    texts = ["wake me up at 7", "play some music", "will it rain tomorrow", "set an alarm", "play jazz", "is it cold"]
    served = load_predictor(task_runs["classification"]).predict(texts)
    candidate = load_predictor(second_runs["classification"]).predict(texts)
    assert [p["label"] for p in served] != [p["label"] for p in candidate]
    # the pinned answers are what the serving model says: it scores 1.0, the other model less
    regression = tmp_path / "pinned.jsonl"
    regression.write_text("".join(json.dumps({"input": t, "label": p["label"]}) + "\n" for t, p in zip(texts, served)))
    client = task_client("classification", token="t", capture="none", regression=str(regression), max_regression=0.0)
    response = client.post("/admin/reload", json={"path": str(second_runs["classification"])}, headers=TOKEN)
    assert response.status_code == 409 and response.json()["error"]["reason"] == "regression", response.text
    assert "serving model 1.0000" in response.json()["error"]["message"]
    lenient = task_client("classification", token="t", capture="none", regression=str(regression), max_regression=1.0,
                          feedback=str(tmp_path / "other.labels.sqlite"))
    ok = lenient.post("/admin/reload", json={"path": str(second_runs["classification"])}, headers=TOKEN)
    assert ok.status_code == 200 and any(c.startswith("regression set (6 cases): accuracy") for c in ok.json()["checks"])


def test_a_bad_regression_file_fails_at_start_with_every_line_located(task_runs: dict, tmp_path: Path) -> None:
    from assistant_builder.errors import BuilderError
    from assistant_builder.runtime import load_predictor
    from assistant_builder.serve.settings import ServeSettings
    from assistant_builder.serve.state import preflight

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "label": "nope"}\n{"text": "b"}\n{"input": "c", "label": "music"}\n')
    settings = ServeSettings(path=str(task_runs["classification"]), regression=str(bad))
    with pytest.raises(BuilderError) as caught:
        preflight(settings, load_predictor(task_runs["classification"]))
    message = caught.value.message
    assert f"{bad}:1: label: expected one of the model's labels" in message and f"{bad}:2: expected an object with" in message


def test_watch_reloads_a_newer_finished_run_of_the_same_recipe(task_client: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = build_run("classification", runs / "test-1", tiny_model_dir, seed=4)
    client = task_client("classification", path=first, token="t", capture="none", watch=str(runs), watch_interval=0.05)
    old = version(client)
    other_recipe = build_run("classification", runs / "other-1", tiny_model_dir, seed=5, recipe="other")
    unverified = build_run("classification", runs / "test-2", tiny_model_dir, seed=6, verified=False)
    for run in (other_recipe, unverified):
        os.utime(run / "summary.json", (time.time() + 5, time.time() + 5))
    deadline = time.monotonic() + 10
    while metric(client, 'assistant_builder_model_reloads_total{result="refused",reason="verification_failed"}') < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert version(client) == old  # the other recipe's run is ignored, the unverified one refused (once)
    newer = build_run("classification", runs / "test-3", tiny_model_dir, seed=7)
    os.utime(newer / "summary.json", (time.time() + 10, time.time() + 10))
    deadline = time.monotonic() + 10
    while client.get("/info", headers=TOKEN).json()["serving"]["run"] != str(newer):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert metric(client, 'assistant_builder_model_reloads_total{result="refused",reason="verification_failed"}') == 1
    assert client.post("/admin/rollback", headers=TOKEN).status_code == 200
    time.sleep(0.3)  # several scans: the run rolled back from is not swapped in again
    assert version(client) == old


def test_sighup_reloads_the_served_path(task_client: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    run = build_run("classification", tmp_path / "run", tiny_model_dir, seed=8)
    client = task_client("classification", path=run, token="t", capture="none")
    old = version(client)
    (run / "exports").rename(tmp_path / "old-exports")
    build_run("classification", tmp_path / "rebuilt", tiny_model_dir, seed=9)
    (tmp_path / "rebuilt" / "exports").rename(run / "exports")  # re-exported in place
    state = client.app.state.serve
    client.portal.call(state.on_sighup)  # what the SIGHUP handler runs on the server's loop
    assert version(client) != old and client.get("/info", headers=TOKEN).json()["reload"]["last"]["origin"] == "sighup"
