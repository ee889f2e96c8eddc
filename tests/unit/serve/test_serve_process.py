"""``builder serve`` as a real process on a loopback port: concurrent load, SIGTERM, workers, import hygiene."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

for _module in ("httpx", "starlette", "uvicorn"):
    pytest.importorskip(_module, reason="the serve extra is not installed (pip install -e '.[serve]')")

import httpx  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
FORBIDDEN = ("torch", "transformers", "peft", "onnx", "accelerate", "sklearn")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("ASSISTANT_BUILDER_TOKEN", None)
    return env


def start_server(bundle: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "assistant_builder.cli.main", "serve", str(bundle), "--port", str(port), *extra]
    return subprocess.Popen(command, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(process: subprocess.Popen[str], base: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}: {process.communicate()[1][-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready in time")


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        process.kill()
    return process.communicate(timeout=30)


def gauge(client: httpx.Client, base: str, name: str) -> float:
    for line in client.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_sigterm_lets_in_flight_requests_finish_then_exits_0(serve_bundle: dict) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # A long micro-batch window keeps the requests in flight long enough to signal in between.
    process = start_server(serve_bundle["bundle"], port, "--micro-batch-ms", "2500", "--max-batch", "64")
    try:
        wait_ready(process, base)
        texts = serve_bundle["texts"]
        with httpx.Client(limits=httpx.Limits(max_connections=40), timeout=60, trust_env=False) as client, ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(client.post, f"{base}/predict", json={"inputs": [texts[i % len(texts)]]})
                       for i in range(20)]
            deadline = time.monotonic() + 20
            while gauge(client, base, "assistant_builder_requests_in_flight") < 21:  # 20 predictions + this scrape
                assert time.monotonic() < deadline, "requests never got in flight"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            responses = [future.result(timeout=60) for future in futures]
        assert [r.status_code for r in responses] == [200] * 20
        assert all(len(r.json()["predictions"]) == 1 for r in responses)
        assert process.wait(timeout=60) == 0
        with pytest.raises(httpx.TransportError):  # the port is closed after shutdown
            httpx.get(f"{base}/health", timeout=2, trust_env=False)
    finally:
        _, stderr = stop(process)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    predicts = [line for line in lines if line["route"] == "/predict"]
    assert len(predicts) == 20 and all(line["status"] == 200 and line["batch_size"] == 1 for line in predicts)
    assert "serving classification model (int8)" in stderr
    assert "Traceback" not in stderr


def test_workers_share_the_port_and_stop_cleanly(serve_bundle: dict) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_server(serve_bundle["run"], port, "--workers", "2", "--token", "tok", "--variant", "fp32")
    try:
        wait_ready(process, base, timeout=120)
        headers = {"Authorization": "Bearer tok"}
        with httpx.Client(timeout=30, headers=headers, trust_env=False) as client:
            for _ in range(4):
                response = client.post(f"{base}/predict", json={"inputs": ["hello", "play some jazz"]})
                assert response.status_code == 200, response.text
                assert response.json()["model"]["variant"] == "fp32"
            assert client.get(f"{base}/info").status_code == 200
        assert httpx.get(f"{base}/info", timeout=10, trust_env=False).status_code == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        stop(process)


def test_bad_path_and_busy_port_fail_with_a_message(serve_bundle: dict, tmp_path: Path) -> None:
    missing = subprocess.run([sys.executable, "-m", "assistant_builder.cli.main", "serve", str(tmp_path / "nope")],
                             cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert "does not exist; expected a run directory or an exported ONNX bundle" in missing.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "assistant_builder.cli.main", "serve", str(serve_bundle["bundle"]),
                                 "--port", str(port)], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"could not serve on 127.0.0.1:{port}" in result.stderr


def test_serving_process_never_imports_torch(serve_bundle: dict) -> None:
    """Run the real `builder serve` code path; a thread predicts, records sys.modules, then sends SIGTERM."""
    port = free_port()
    script = textwrap.dedent(f"""
        import json, os, signal, sys, threading, time, urllib.request
        from assistant_builder.cli.main import main

        report = {{}}
        def probe():
            base = "http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    urllib.request.urlopen(base + "/health", timeout=1).read()
                    break
                except Exception:
                    time.sleep(0.1)
            request = urllib.request.Request(base + "/predict", data=json.dumps({{"inputs": ["hello"]}}).encode(),
                                             headers={{"Content-Type": "application/json"}})
            report["labels"] = [p["label"] for p in json.load(urllib.request.urlopen(request, timeout=30))["predictions"]]
            for path in ("/info", "/metrics", "/docs", "/openapi.json"):
                urllib.request.urlopen(base + path, timeout=30).read()
            report["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=probe, daemon=True).start()
        code = main(["serve", sys.argv[1], "--port", "{port}"])
        print(json.dumps({{"code": code, **report}}))
    """)
    result = subprocess.run([sys.executable, "-c", script, str(serve_bundle["run"])], cwd=REPO, env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    assert len(report["labels"]) == 1
    assert report["loaded"] == [], f"the serving process imported {report['loaded']}"


def test_cli_help_lists_serve_without_loading_the_server() -> None:
    script = ("import sys; from assistant_builder.cli.main import build_parser; build_parser(); "
              "print(sorted(m for m in ('starlette', 'uvicorn', 'onnxruntime', 'numpy', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_serve_settings_and_sizes() -> None:
    from assistant_builder.serve.settings import ServeError, ServeSettings, parse_size

    assert parse_size("1MB") == 1_000_000 and parse_size("512KiB") == 524_288 and parse_size("2048") == 2048
    with pytest.raises(ValueError, match="expected a size such as"):
        parse_size("lots")
    settings = ServeSettings(path="x", token="secret", micro_batch_ms=5)
    assert ServeSettings.from_env({"ASSISTANT_BUILDER_SERVE_SETTINGS": settings.to_env()}) == settings
    assert settings.describe()["token"] == "set"
    with pytest.raises(ServeError, match="queue_size: expected a positive integer, got 0"):
        ServeSettings(path="x", queue_size=0)
