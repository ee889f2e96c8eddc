"""Load benchmark for ``builder serve``: N concurrent clients for D seconds against a loopback server.

Starts ``builder serve BUNDLE`` itself on a free 127.0.0.1 port (once per ``--server-args``
configuration), waits for ``/health``, runs ``--clients`` asyncio + httpx clients that each POST
``/predict`` in a loop for ``--duration`` seconds, samples the server's RSS (the process and its
children, from ``/proc/PID/status``) every ``--rss-interval`` seconds, then stops the server with
SIGTERM and prints one Markdown table: requests/s, examples/s, p50/p95/p99 latency, status counts
(503s separately), transport errors, RSS start/peak/end, and the server's exit code.

Loopback only, bounded (duration <= 600 s, clients <= 256) and self-stopping. The clients run in
this process on the same machine, so they take CPU from the server: pin them apart with
``--server-cpus 1 --client-cpus 0`` (Linux), or read the numbers as a lower bound.

    .venv/bin/python bench/load_serve.py --bundle runs/quickstart-*/ --clients 8 --duration 30 \\
        --server-args "" --server-args "--micro-batch-ms 5" --json-out bench/serve_results.json

Smoke test (seconds, not a measurement):
    .venv/bin/python bench/load_serve.py --clients 4 --duration 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # never anything but loopback
TEXTS = [
    "wake me up at 7 tomorrow", "play some jazz", "what's the weather like in paris tonight",
    "add milk and eggs to my shopping list", "turn off the lights in the kitchen", "set a timer for ten minutes",
    "remind me to call mom when i get home", "how do you say good morning in spanish", "cancel my alarm",
    "send a message to john saying i'll be ten minutes late for the meeting", "hi there", "what's on my calendar today",
]


def default_bundle() -> Path | None:
    runs = sorted((REPO / "runs").glob("quickstart-*/exports/onnx/manifest.json"))
    return runs[-1].parent if runs else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tree_rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` plus its descendants (``--workers`` children), from /proc."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def client_loop(client: httpx.AsyncClient, url: str, end: float, batch: int, seed: int, out: dict[str, Any]) -> None:
    i = seed
    while time.monotonic() < end:
        texts = [TEXTS[(i + k) % len(TEXTS)] for k in range(batch)]
        i += batch
        started = time.perf_counter()
        try:
            response = await client.post(url, json={"inputs": texts})
        except httpx.HTTPError as exc:
            out["errors"][type(exc).__name__] = out["errors"].get(type(exc).__name__, 0) + 1
            await asyncio.sleep(0.05)
            continue
        elapsed = time.perf_counter() - started
        out["status"][response.status_code] = out["status"].get(response.status_code, 0) + 1
        if response.status_code == 200:
            out["latencies"].append(elapsed)
            out["examples"] += batch
        elif response.status_code == 503:
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")) / 10)  # back off a little


async def sample_rss(pid: int, stop: asyncio.Event, interval: float, samples: list[tuple[float, int]]) -> None:
    start = time.monotonic()
    while not stop.is_set():
        samples.append((round(time.monotonic() - start, 2), tree_rss_bytes(pid)))
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass


async def drive(base: str, pid: int, args: argparse.Namespace, headers: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"status": {}, "errors": {}, "latencies": [], "examples": 0}
    samples: list[tuple[float, int]] = []
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(limits=limits, timeout=args.request_timeout, headers=headers, trust_env=False) as client:
        for text in TEXTS[: args.warmup]:  # first calls pay for lazy initialisation
            await client.post(f"{base}/predict", json={"inputs": [text]})
        sampler = asyncio.create_task(sample_rss(pid, stop, args.rss_interval, samples))
        started = time.monotonic()
        end = started + args.duration
        await asyncio.gather(*(client_loop(client, f"{base}/predict", end, args.batch, n * 7, out) for n in range(args.clients)))
        wall = time.monotonic() - started
        stop.set()
        await sampler
        metrics = (await client.get(f"{base}/metrics")).text
    ok = out["status"].get(200, 0)
    lat = [x * 1000 for x in out["latencies"]]
    rss = [value for _, value in samples]
    return {
        "wall_s": round(wall, 2), "requests": sum(out["status"].values()), "ok": ok,
        "requests_per_s": round(ok / wall, 1), "examples_per_s": round(out["examples"] / wall, 1),
        "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95), "p99_ms": percentile(lat, 99),
        "mean_ms": statistics.fmean(lat) if lat else None,
        "status": {str(k): v for k, v in sorted(out["status"].items())}, "rejected_503": out["status"].get(503, 0),
        "transport_errors": out["errors"],
        "rss_mib": {"start": round(rss[0] / 2**20, 1) if rss else None, "peak": round(max(rss) / 2**20, 1) if rss else None,
                    "end": round(rss[-1] / 2**20, 1) if rss else None},
        "rss_samples": [(t, round(v / 2**20, 1)) for t, v in samples],
        "batch_calls": _metric(metrics, "assistant_builder_inference_batch_requests_count"),
    }


WRK_SCRIPT = r"""
-- POST /predict with rotating texts; count status codes per thread and print one JSON summary line.
local texts = TEXTS_PLACEHOLDER
local threads = {}
local i = 0
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function request()
  i = i + 1
  local batch = {}
  for k = 0, BATCH_PLACEHOLDER - 1 do table.insert(batch, string.format("%q", texts[((i + k) % #texts) + 1])) end
  return wrk.format("POST", "/predict", HEADERS_PLACEHOLDER, '{"inputs": [' .. table.concat(batch, ", ") .. ']}')
end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do parts[status] = (parts[status] or 0) + n end
  end
  local status = {}
  for code, n in pairs(parts) do table.insert(status, string.format('"%d": %d', code, n)) end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "mean_us": %.1f, '
    .. '"max_us": %d, "status": {%s}, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean,
    latency.max, table.concat(status, ", "), e.connect, e.read, e.write, e.timeout))
end
"""


def drive_wrk(base: str, pid: int, args: argparse.Namespace, headers: dict[str, str]) -> dict[str, Any]:
    """Load from ``wrk`` (C, one thread, keep-alive connections): far less CPU than Python clients,
    so on 2 shared cores the server gets most of the machine. Latency covers every response."""
    import shutil
    import tempfile
    import threading

    if shutil.which("wrk") is None:
        raise SystemExit("--generator wrk needs the wrk binary (Debian: apt-get install wrk)")
    for text in TEXTS[: args.warmup]:
        httpx.post(f"{base}/predict", json={"inputs": [text]}, headers=headers, timeout=30, trust_env=False)
    lua_headers = "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in {"Content-Type": "application/json", **headers}.items()) + "}"
    script = (WRK_SCRIPT.replace("TEXTS_PLACEHOLDER", "{" + ", ".join(json.dumps(t) for t in TEXTS) + "}")
              .replace("BATCH_PLACEHOLDER", str(args.batch)).replace("HEADERS_PLACEHOLDER", lua_headers))
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not stop.is_set():
            samples.append((round(time.monotonic() - start, 2), tree_rss_bytes(pid)))
            stop.wait(args.rss_interval)

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        completed = subprocess.run(["wrk", "-t1", f"-c{args.clients}", f"-d{int(args.duration)}s",
                                    f"--timeout={int(args.request_timeout)}s", "-s", handle.name, f"{base}/predict"],
                                   capture_output=True, text=True, timeout=args.duration + 60, check=False)
    finally:
        stop.set()
        sampler.join()
        os.unlink(handle.name)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary (exit {completed.returncode}): {completed.stdout}{completed.stderr}")
    w = json.loads(line[len("WRKJSON "):])
    wall = w["duration_us"] / 1e6
    status = {str(k): v for k, v in sorted(w["status"].items())}
    ok = status.get("200", 0)
    metrics = httpx.get(f"{base}/metrics", headers=headers, timeout=10, trust_env=False).text
    rss = [value for _, value in samples]
    return {
        "generator": "wrk", "wall_s": round(wall, 2), "requests": w["requests"], "ok": ok,
        "requests_per_s": round(ok / wall, 1), "examples_per_s": round(ok * args.batch / wall, 1),
        "p50_ms": w["p50_us"] / 1000, "p95_ms": w["p95_us"] / 1000, "p99_ms": w["p99_us"] / 1000, "mean_ms": w["mean_us"] / 1000,
        "status": status, "rejected_503": status.get("503", 0),
        "transport_errors": {k: v for k, v in w["errors"].items() if v},
        "rss_mib": {"start": round(rss[0] / 2**20, 1) if rss else None, "peak": round(max(rss) / 2**20, 1) if rss else None,
                    "end": round(rss[-1] / 2**20, 1) if rss else None},
        "rss_samples": [(t, round(v / 2**20, 1)) for t, v in samples],
        "batch_calls": _metric(metrics, "assistant_builder_inference_batch_requests_count"),
    }


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def run_config(bundle: Path, server_args: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "assistant_builder.cli.main", "serve", str(bundle), "--host", HOST, "--port", str(port),
               *shlex.split(server_args)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    headers = {"Authorization": f"Bearer {env['ASSISTANT_BUILDER_TOKEN']}"} if env.get("ASSISTANT_BUILDER_TOKEN") else {}
    log = open(args.server_log, "a", encoding="utf-8") if args.server_log else subprocess.DEVNULL  # noqa: SIM115
    pin = (lambda: os.sched_setaffinity(0, args.server_cpus)) if args.server_cpus else None
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log, preexec_fn=pin)  # noqa: PLW1509
    try:
        deadline = time.monotonic() + args.startup_timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"server exited with {process.returncode} before it was ready: {shlex.join(command)}")
            try:
                if httpx.get(f"{base}/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"server not ready after {args.startup_timeout} s: {shlex.join(command)}")
            time.sleep(0.1)
        drive_once = (lambda a: drive_wrk(base, process.pid, a, headers)) if args.generator == "wrk" else (
            lambda a: asyncio.run(drive(base, process.pid, a, headers)))
        result = drive_once(args)
        if args.recovery_duration:  # the same server, right after: does it answer normally again?
            calm = argparse.Namespace(**{**vars(args), "clients": args.recovery_clients, "duration": args.recovery_duration})
            result["recovery"] = {"clients": args.recovery_clients, **drive_once(calm)}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log is not subprocess.DEVNULL:
            log.close()
    return {"server_args": server_args, "exit_code": process.returncode, **result}


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    def f(value: Any) -> str:
        return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)

    lines = [f"generator={args.generator} clients={args.clients} duration={args.duration}s inputs/request={args.batch} "
             f"machine={platform.machine()} cores={os.cpu_count()} server cpus={sorted(args.server_cpus or []) or 'all'} "
             f"client cpus={sorted(args.client_cpus or []) or 'all'}", "",
             "| server args | req/s | examples/s | p50 ms | p95 ms | p99 ms | ok | 503 | other status | transport errors "
             "| model calls | RSS start/peak/end MiB | exit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for r in results:
        rows.append(r)
        if "recovery" in r:
            rows.append({**r["recovery"], "server_args": f"{r['server_args']} (then {r['recovery']['clients']} clients)",
                         "exit_code": r["exit_code"]})
    for r in rows:
        other = {k: v for k, v in r["status"].items() if k not in ("200", "503")}
        rss = r["rss_mib"]
        lines.append(f"| `{r['server_args'] or '(defaults)'}` | {f(r['requests_per_s'])} | {f(r['examples_per_s'])} "
                     f"| {f(r['p50_ms'])} | {f(r['p95_ms'])} | {f(r['p99_ms'])} | {r['ok']} | {r['rejected_503']} "
                     f"| {other or '-'} | {r['transport_errors'] or '-'} | {f(r['batch_calls'])} "
                     f"| {f(rss['start'])}/{f(rss['peak'])}/{f(rss['end'])} | {r['exit_code']} |")
    return "\n".join(lines)


def _cpus(text: str) -> set[int]:
    """``"0"``, ``"0,2"`` or ``"2-3"`` -> a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None,
                        help="run directory or ONNX bundle (default: the newest runs/quickstart-*/exports/onnx)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (1-256, default 8)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per configuration (<= 600, default 10)")
    parser.add_argument("--batch", type=int, default=1, help="inputs per request (default 1)")
    parser.add_argument("--server-args", action="append", default=None, metavar="ARGS",
                        help='extra `builder serve` arguments for one configuration, e.g. "--micro-batch-ms 5"; repeat to compare')
    parser.add_argument("--warmup", type=int, default=4, help="requests before measuring (default 4)")
    parser.add_argument("--rss-interval", type=float, default=0.5, help="seconds between RSS samples (default 0.5)")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    parser.add_argument("--server-log", type=Path, default=None, help="append the server's stderr (JSON request lines) here")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--server-cpus", type=_cpus, default=None, metavar="LIST", help="pin the server to these CPUs, e.g. 1 or 2-3")
    parser.add_argument("--recovery-clients", type=int, default=8, help="clients of the recovery phase (default 8)")
    parser.add_argument("--recovery-duration", type=float, default=0.0,
                        help="after the main phase, load the same server with --recovery-clients for this many seconds (default 0: no)")
    parser.add_argument("--generator", choices=("httpx", "wrk"), default="httpx",
                        help="load generator: Python asyncio + httpx clients in this process (default), or the wrk binary "
                             "(C, far less CPU; latency then covers all responses, 503s included)")
    parser.add_argument("--client-cpus", type=_cpus, default=None, metavar="LIST", help="pin the load clients to these CPUs, e.g. 0")
    args = parser.parse_args(argv)
    if args.client_cpus:
        os.sched_setaffinity(0, args.client_cpus)
    if not 1 <= args.clients <= 256 or not 0 < args.duration <= 600 or not 1 <= args.batch <= 1024:
        parser.error("expected 1 <= --clients <= 256, 0 < --duration <= 600 and 1 <= --batch <= 1024")
    bundle = args.bundle or default_bundle()
    if bundle is None or not bundle.exists():
        print("SKIPPED: no bundle; pass --bundle or run `builder run recipes/quickstart.toml` first")
        return 0
    results = [run_config(bundle, server_args, args) for server_args in (args.server_args or [""])]
    print(table(results, args))
    if args.json_out:
        args.json_out.write_text(json.dumps({"bundle": str(bundle), "clients": args.clients, "duration": args.duration,
                                             "batch": args.batch, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
