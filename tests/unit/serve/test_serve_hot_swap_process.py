"""``builder serve`` as a real process: a hot swap under 16 concurrent clients (no failed request,
predictions switch to the new model), SIGHUP, and feedback that survives ``kill -9``."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
TOKEN = {"Authorization": "Bearer t"}


def _load(name: str) -> Any:
    """A sibling module by path (tests run in importlib mode)."""
    spec = importlib.util.spec_from_file_location(f"_hot_swap_{name[:-3]}", HERE / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load("test_serve_process.py")


def start(path: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "assistant_builder.cli.main", "serve", str(path), "--port", str(port), "--token", "t", *extra]
    return subprocess.Popen(command, cwd=REPO, env=helpers._env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_reload_under_16_concurrent_clients_fails_no_request(task_runs: dict, tiny_model_dir: Path, tmp_path: Path) -> None:
    second = _load("conftest.py").build_run("classification", tmp_path / "second", tiny_model_dir, seed=11)
    port = helpers.free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(task_runs["classification"], port, "--feedback", str(tmp_path / "fb.labels.sqlite"), "--capture", "all",
                    "--threads", "2")
    results: list[tuple[float, float, int, str | None]] = []  # (sent, answered, status, model version)
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client_loop(n: int) -> None:
        with httpx.Client(timeout=30, headers=TOKEN, trust_env=False) as client:
            i = 0
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(f"{base}/predict", json={"input": f"play some music {n} {i}"})
                except httpx.HTTPError as error:
                    with lock:
                        errors.append(f"{type(error).__name__}: {error}")
                    continue
                version = response.json()["model"]["version"] if response.status_code == 200 else None
                with lock:
                    results.append((sent, time.monotonic(), response.status_code, version))
                i += 1

    try:
        helpers.wait_ready(process, base)
        with httpx.Client(timeout=60, headers=TOKEN, trust_env=False) as admin:
            old = admin.get(f"{base}/info").json()["version"]
            with ThreadPoolExecutor(16) as pool:
                for n in range(16):
                    pool.submit(client_loop, n)
                deadline = time.monotonic() + 30
                while len(results) < 100:  # load is on
                    assert time.monotonic() < deadline and not errors, errors[:3]
                    time.sleep(0.05)
                asked = time.monotonic()
                reload = admin.post(f"{base}/admin/reload", json={"path": str(second)})
                swapped_by = time.monotonic()
                after = len(results)
                deadline = time.monotonic() + 30
                while len(results) < after + 100:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                stop.set()
            assert reload.status_code == 200, reload.text
            new = reload.json()["to"]["version"]
            assert reload.json()["result"] == "swapped" and new != old
            # SIGHUP reloads the path the server was started with: back to the first model
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while admin.get(f"{base}/info").json()["version"] != old:
                assert time.monotonic() < deadline, "SIGHUP did not reload"
                time.sleep(0.05)
            metrics = admin.get(f"{base}/metrics").text
    finally:
        stop.set()
        _, stderr = helpers.stop(process)
    assert not errors, errors[:5]
    assert {status for _, _, status, _ in results} == {200}, "a request failed during the reload"
    assert {v for _, answered, _, v in results if answered < asked} == {old}
    assert {v for sent, _, _, v in results if sent > swapped_by} == {new}  # once swapped, only the new model answers
    assert any(v == new for *_, v in results)
    assert 'assistant_builder_model_reloads_total{result="swapped",reason=""} 2' in metrics
    assert '"origin": "sighup"' in stderr and "Traceback" not in stderr


def test_acknowledged_feedback_survives_kill_9(task_runs: dict, tmp_path: Path) -> None:
    store = tmp_path / "fb.labels.sqlite"
    port = helpers.free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(task_runs["classification"], port, "--feedback", str(store), "--capture", "all")
    acknowledged: dict[str, str] = {}
    lock = threading.Lock()
    labels = ["alarm", "music", "weather"]

    def send(n: int) -> None:
        with httpx.Client(timeout=10, headers=TOKEN, trust_env=False) as client:
            for i in range(1000):
                try:
                    prediction = client.post(f"{base}/predict", json={"input": f"text {n} {i}"}).json()["predictions"][0]
                    label = labels[(n + i) % 3]
                    answer = client.post(f"{base}/feedback", json={"prediction_id": prediction["prediction_id"], "label": label})
                except (httpx.HTTPError, ValueError, KeyError):
                    return  # the server was killed
                if answer.status_code == 200:
                    with lock:
                        acknowledged[prediction["prediction_id"]] = label

    try:
        helpers.wait_ready(process, base)
        threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 40:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)  # in the middle of the traffic
        with lock:
            before_kill = dict(acknowledged)
        for thread in threads:
            thread.join(20)
    finally:
        helpers.stop(process)
    assert process.returncode == -signal.SIGKILL
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    recorded = dict(db.execute("SELECT e.prediction_id, i.gold FROM serve_events e JOIN items i ON i.id = e.item_id "
                               "WHERE e.kind = 'feedback' AND i.status = 'labelled'").fetchall())
    missing = {pid for pid in acknowledged if pid not in recorded}
    assert not missing, f"{len(missing)} acknowledged feedback requests were lost"
    assert all(recorded[pid] == f'"{label}"' for pid, label in acknowledged.items())
    assert len(before_kill) >= 40
