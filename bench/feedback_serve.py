"""Benchmark for the feedback loop of ``builder serve``: capture off vs on, and hot reloads under load.

Part 1, capture cost: the configurations (default: no ``--feedback``; ``--feedback --capture
uncertain``; ``--feedback --capture all``) run alternately, ``--rounds`` times each, every run a
fresh server on a free loopback port with a fresh store, loaded by ``--clients`` asyncio + httpx
clients for ``--duration`` seconds. Every request is a text not sent before (a number is appended),
so ``--capture all`` writes a new store item per request. Reported per run and as the median of
the rounds: requests/s, p50/p99 latency, errors, and the capture counters from ``/metrics``.

Part 2, reloads: one server (``--feedback``, ``--capture uncertain``, a token), the same load for
``--reload-duration`` seconds, and a ``POST /admin/reload`` every ``--reload-every`` seconds,
alternating between the bundle and a copy of it whose manifest differs (another version id; same
weights, so the same loading cost as a retrained run of the same size). Reported: every response
status and transport error during the phase, and each reload's time from request to swap
(``reload_ms`` measured by the server, and the client's round trip).

    .venv/bin/python bench/feedback_serve.py --clients 16 --duration 20 --rounds 3 --json-out bench/results/feedback_serve.json

Loopback only, bounded, self-stopping; the clients share the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("load_serve", HERE / "load_serve.py")
assert _spec is not None and _spec.loader is not None
load_serve = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_serve)

HOST, REPO, TEXTS = load_serve.HOST, load_serve.REPO, load_serve.TEXTS
TOKEN = "bench-token"
CONFIGS = {"capture off": [], "capture uncertain": ["--capture", "uncertain"], "capture all": ["--capture", "all"]}


def start_server(bundle: Path, port: int, extra: list[str], log: Any) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "assistant_builder.cli.main", "serve", str(bundle), "--host", HOST, "--port", str(port), *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ASSISTANT_BUILDER_TOKEN": TOKEN}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log)


def wait_ready(process: subprocess.Popen[bytes], base: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{base}/health", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server not ready in time")


def stop_server(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


async def client_loop(client: httpx.AsyncClient, url: str, end: float, seed: int, out: dict[str, Any]) -> None:
    i = 0
    while time.monotonic() < end:
        text = f"{TEXTS[(seed + i) % len(TEXTS)]} {seed * 100_000 + i}"  # never the same text twice
        i += 1
        started = time.perf_counter()
        try:
            response = await client.post(url, json={"inputs": [text]})
        except httpx.HTTPError as exc:
            out["errors"][type(exc).__name__] = out["errors"].get(type(exc).__name__, 0) + 1
            await asyncio.sleep(0.05)
            continue
        out["status"][response.status_code] = out["status"].get(response.status_code, 0) + 1
        if response.status_code == 200:
            out["latencies"].append(time.perf_counter() - started)


async def reloader(client: httpx.AsyncClient, base: str, paths: list[Path], end: float, every: float, out: list[dict[str, Any]]) -> None:
    n = 0
    while time.monotonic() + every < end:
        await asyncio.sleep(every)
        path = paths[n % len(paths)]
        n += 1
        started = time.perf_counter()
        response = await client.post(f"{base}/admin/reload", json={"path": str(path)}, timeout=120)
        record = {"status": response.status_code, "client_ms": round((time.perf_counter() - started) * 1000, 1)}
        if response.status_code == 200:
            body = response.json()
            record.update(result=body["result"], reload_ms=body["reload_ms"], to=body["to"]["version"])
        else:
            record["error"] = response.text[:300]
        out.append(record)


async def drive(base: str, clients: int, duration: float, reload_paths: list[Path] | None = None,
                reload_every: float = 5.0) -> dict[str, Any]:
    out: dict[str, Any] = {"status": {}, "errors": {}, "latencies": []}
    reloads: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers, trust_env=False) as client:
        for text in TEXTS[:4]:
            await client.post(f"{base}/predict", json={"inputs": [text]})
        started = time.monotonic()
        end = started + duration
        tasks = [client_loop(client, f"{base}/predict", end, n + 1, out) for n in range(clients)]
        if reload_paths:
            tasks.append(reloader(client, base, reload_paths, end, reload_every, reloads))
        await asyncio.gather(*tasks)
        wall = time.monotonic() - started
        metrics = (await client.get(f"{base}/metrics")).text
    lat = [x * 1000 for x in out["latencies"]]
    ok = out["status"].get(200, 0)
    captured = {result: _metric(metrics, f'assistant_builder_captured_predictions_total{{result="{result}"}}')
                for result in ("stored", "duplicate", "dropped", "failed")}
    return {"wall_s": round(wall, 2), "ok": ok, "requests_per_s": round(ok / wall, 1),
            "p50_ms": load_serve.percentile(lat, 50), "p99_ms": load_serve.percentile(lat, 99),
            "status": {str(k): v for k, v in sorted(out["status"].items())}, "transport_errors": out["errors"],
            "captured": captured, "reloads": reloads}


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def one_server(bundle: Path, extra: list[str], args: argparse.Namespace, work: Path, reload_paths: list[Path] | None = None,
               duration: float | None = None) -> dict[str, Any]:
    port = load_serve.free_port()
    base = f"http://{HOST}:{port}"
    with open(work / "server.log", "ab") as log:
        process = start_server(bundle, port, extra, log)
        try:
            wait_ready(process, base)
            result = asyncio.run(drive(base, args.clients, duration or args.duration, reload_paths, args.reload_every))
        finally:
            result_code = stop_server(process)
    return {**result, "exit_code": result_code}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="run directory (default: the newest runs/quickstart-*)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per capture run (<= 300)")
    parser.add_argument("--rounds", type=int, default=3, help="times each capture configuration runs, alternating (<= 10)")
    parser.add_argument("--reload-duration", type=float, default=30.0, help="seconds of load in the reload phase (0: skip it)")
    parser.add_argument("--reload-every", type=float, default=5.0, help="seconds between reloads in the reload phase")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.duration <= 300 or not 1 <= args.rounds <= 10 or args.reload_duration > 300:
        parser.error("expected 1 <= --clients <= 256, 0 < --duration <= 300, 1 <= --rounds <= 10, --reload-duration <= 300")
    runs = sorted(REPO.glob("runs/quickstart-*/exports/onnx/manifest.json"))
    bundle = args.bundle or (runs[-1].parents[2] if runs else None)
    if bundle is None:
        print("SKIPPED: no quickstart run; run `builder run recipes/quickstart.toml` first")
        return 0
    work = Path(tempfile.mkdtemp(prefix="feedback-bench-"))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    try:
        for round_number in range(args.rounds):
            for name, extra in CONFIGS.items():
                store = work / f"round{round_number}-{name.replace(' ', '-')}.labels.sqlite"
                server_args = extra and ["--feedback", str(store), *extra]
                result = one_server(bundle, server_args, args, work)
                results[name].append(result)
                print(f"round {round_number + 1} {name:<18} {result['requests_per_s']:>7.1f} req/s  p50 {result['p50_ms']:.1f} ms  "
                      f"p99 {result['p99_ms']:.1f} ms  status {result['status']}  errors {result['transport_errors'] or 0}  "
                      f"captured {result['captured']}", flush=True)
        reload_phase = None
        if args.reload_duration:
            copy = work / "copy-run"
            shutil.copytree(bundle, copy, ignore=shutil.ignore_patterns("checkpoints", "model"))
            manifest = copy / "exports" / "onnx" / "manifest.json"
            data = json.loads(manifest.read_text())
            data["created"] = f"{data.get('created')} (bench copy)"
            manifest.write_text(json.dumps(data))
            reload_phase = one_server(bundle, ["--feedback", str(work / "reload.labels.sqlite"), "--capture", "uncertain"], args, work,
                                      reload_paths=[copy, bundle], duration=args.reload_duration)
            swaps = [r for r in reload_phase["reloads"] if r.get("result") == "swapped"]
            print(f"reload phase: {reload_phase['requests_per_s']} req/s, status {reload_phase['status']}, transport errors "
                  f"{reload_phase['transport_errors'] or 0}, {len(swaps)} swaps of {len(reload_phase['reloads'])} reloads, "
                  f"request->swap ms {[r['reload_ms'] for r in swaps]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"clients={args.clients} duration={args.duration}s rounds={args.rounds} machine={platform.machine()} cores={os.cpu_count()}")
    print("| configuration | req/s (median) | p50 ms | p99 ms (median) | non-2xx | transport errors | captured stored / dropped |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, runs_of in results.items():
        rps = statistics.median(r["requests_per_s"] for r in runs_of)
        p50 = statistics.median(r["p50_ms"] for r in runs_of)
        p99 = statistics.median(r["p99_ms"] for r in runs_of)
        bad = sum(v for r in runs_of for k, v in r["status"].items() if not k.startswith("2"))
        errors = sum(sum(r["transport_errors"].values()) for r in runs_of)
        stored = sum(r["captured"]["stored"] for r in runs_of)
        dropped = sum(r["captured"]["dropped"] for r in runs_of)
        print(f"| {name} | {rps:.1f} | {p50:.1f} | {p99:.1f} | {bad} | {errors} | {stored:.0f} / {dropped:.0f} |")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"bundle": str(bundle), "clients": args.clients, "duration": args.duration,
                                             "rounds": args.rounds, "capture": results, "reload": reload_phase}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
