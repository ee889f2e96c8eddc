"""Serving latency while ``builder serve --learn`` trains an update (issue 28), against no update.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/learn_latency.py --clients 16 --feedback 200 --priorities idle low

In a temporary folder, from ``../shared/data/clinc150``: a parent run on ``--per-intent`` examples
of every intent (default 20; all 150 in-scope intents + ``oos``), validated on ``--valid-per-intent``
rows of each (default 5), whose recipe lists an (empty) labelling store in ``data.extra``; then one
server, ``builder serve PARENT --feedback RECIPE --learn --learn-after N --learn-check 1
--learn-threads T --learn-priority P`` on a free loopback port, and ``--clients`` asyncio + httpx clients POSTing
``/predict`` (one never-repeated text each) the whole time, through three phases:

1. **before**: ``--window`` seconds of load, no update;
2. **during**: the bench sends ``--feedback`` corrections (``/predict`` then ``/feedback`` with the
   right label, for further CLINC150 training examples the parent did not see), which reaches
   ``--learn-after``; the server starts the update and the phase lasts until ``/info`` shows it
   finished (and the model swapped), polled every 0.5 s;
3. **after**: ``--window`` seconds more, on the updated model.

Requests are assigned to a phase by their start time (the feedback requests are not counted).
Reported per phase: requests/s, p50 / p99 latency (ms), errors; and the update (seconds, result).
Aim (issue 28): p99 during an update within 20% of the p99 without one. The clients share the 2
cores with the server and the update (pinned to the last ``--learn-threads`` cores).

``--priorities`` lists the ``--learn-priority`` values to compare (default: ``idle low``): one server
per value, in that order, from the same parent, each with a fresh (empty) store and no earlier
update, so each gets its own before / during / after.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("feedback_serve", HERE / "feedback_serve.py")
assert _spec is not None and _spec.loader is not None
feedback_serve = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(feedback_serve)
load_serve = feedback_serve.load_serve

ROOT = HERE.parent
RESULTS = HERE / "results"
BUILDER = str(ROOT / ".venv" / "bin" / "builder")


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", ROOT.parent / "shared" / "data"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def split(rows: list[dict], per_intent: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(the first ``per_intent`` rows of each intent, every other row), in a seeded order."""
    rng = random.Random(seed)
    rows = rows[:]
    rng.shuffle(rows)
    seen: dict[str, int] = {}
    first, rest = [], []
    for row in rows:
        keep = row["label"] == "oos" or seen.get(row["label"], 0) < per_intent
        seen[row["label"]] = seen.get(row["label"], 0) + 1
        (first if keep else rest).append(row)
    return first, rest


async def load(client: httpx.AsyncClient, url: str, stop: asyncio.Event, seed: int, out: list[tuple[float, float, int]]) -> None:
    i = 0
    while not stop.is_set():
        text = f"{load_serve.TEXTS[(seed + i) % len(load_serve.TEXTS)]} {seed * 1_000_000 + i}"
        i += 1
        started = time.monotonic()
        try:
            status = (await client.post(url, json={"inputs": [text]})).status_code
        except httpx.HTTPError:
            status = -1
            await asyncio.sleep(0.05)
        out.append((started, (time.monotonic() - started) * 1000, status))


async def send_feedback(client: httpx.AsyncClient, base: str, rows: list[dict]) -> int:
    sent = 0
    for start in range(0, len(rows), 32):
        chunk = rows[start:start + 32]
        predictions = (await client.post(f"{base}/predict", json={"inputs": [r["text"] for r in chunk]})).json()["predictions"]
        for row, prediction in zip(chunk, predictions):
            answer = await client.post(f"{base}/feedback", json={"prediction_id": prediction["prediction_id"], "label": row["label"]})
            sent += answer.status_code == 200
    return sent


async def drive(base: str, args: argparse.Namespace, feedback_rows: list[dict]) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.clients + 4, max_keepalive_connections=args.clients + 4)
    headers = {"Authorization": f"Bearer {feedback_serve.TOKEN}"}
    samples: list[tuple[float, float, int]] = []
    marks: dict[str, float] = {}
    async with httpx.AsyncClient(limits=limits, timeout=60, headers=headers, trust_env=False) as client, \
            httpx.AsyncClient(timeout=60, headers=headers, trust_env=False) as control:
        for text in load_serve.TEXTS[:4]:
            await client.post(f"{base}/predict", json={"inputs": [text]})
        stop = asyncio.Event()
        clients = [asyncio.create_task(load(client, f"{base}/predict", stop, n + 1, samples)) for n in range(args.clients)]
        marks["before"] = time.monotonic()
        await asyncio.sleep(args.window)
        marks["during"] = time.monotonic()
        sent = await send_feedback(control, base, feedback_rows)
        learn: dict[str, Any] = {}
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            learn = (await control.get(f"{base}/info")).json()["learn"]
            if learn["running"] and "update_started" not in marks:
                marks["update_started"] = time.monotonic()
            if learn["history"]:
                break
            await asyncio.sleep(0.5)
        marks["after"] = time.monotonic()
        await asyncio.sleep(args.window)
        marks["end"] = time.monotonic()
        stop.set()
        await asyncio.gather(*clients)
    phases = {}
    for name, (low, high) in {"before": (marks["before"], marks["during"]), "during": (marks["during"], marks["after"]),
                              "after": (marks["after"], marks["end"])}.items():
        inside = [(lat, status) for start, lat, status in samples if low <= start < high]
        ok = [lat for lat, status in inside if status == 200]
        phases[name] = {"seconds": round(high - low, 1), "requests": len(inside), "ok": len(ok),
                        "requests_per_s": round(len(ok) / max(high - low, 1e-9), 1),
                        "p50_ms": load_serve.percentile(ok, 50), "p99_ms": load_serve.percentile(ok, 99),
                        "errors": len(inside) - len(ok)}
    attempt = (learn.get("history") or [{}])[0]
    return {"phases": phases, "feedback_sent": sent, "update": {k: attempt.get(k) for k in ("result", "seconds", "run", "learned", "reasons")},
            "update_started_after_s": round(marks["update_started"] - marks["during"], 1) if "update_started" in marks else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--per-intent", type=int, default=20)
    parser.add_argument("--valid-per-intent", type=int, default=5)
    parser.add_argument("--feedback", type=int, default=200, help="corrections sent (= --learn-after)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--window", type=float, default=30.0, help="seconds of load before and after the update")
    parser.add_argument("--learn-threads", type=int, default=1)
    parser.add_argument("--priorities", nargs="+", choices=("idle", "low"), default=["idle", "low"])
    parser.add_argument("--timeout", type=float, default=900.0, help="longest wait for the update")
    parser.add_argument("--out", default=str(RESULTS / "learn_latency.json"))
    args = parser.parse_args(argv)
    clinc = data_root() / "clinc150"
    if not (clinc / "train.jsonl").exists():
        print(f"SKIPPED: {clinc} not found (set ASSISTANT_BUILDER_DATA)")
        return 0
    parent_rows, rest = split(read_jsonl(clinc / "train.jsonl"), args.per_intent, args.seed)
    valid_rows, _ = split(read_jsonl(clinc / "val.jsonl"), args.valid_per_intent, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-learn-") as tmp:
        work = Path(tmp)
        write_jsonl(work / "train.jsonl", parent_rows)
        write_jsonl(work / "valid.jsonl", valid_rows)
        from assistant_builder.labelling.serve_store import FeedbackStore

        FeedbackStore(work / "bench.labels.sqlite").close()
        (work / "bench.toml").write_text(
            'recipe_version = 1\nname = "bench"\n[task]\ntype = "classification"\n[task.options]\nfallback_label = "oos"\n'
            '[data]\ntrain = "train.jsonl"\nvalidation = "valid.jsonl"\nextra = ["bench.labels.sqlite"]\n'
            '[export]\nformats = ["onnx"]\n[export.options.onnx]\nquantize = false\n[output]\nruns_dir = "runs"\n')
        started = time.perf_counter()
        subprocess.run([BUILDER, "run", str(work / "bench.toml"), "-q"], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                       stdout=subprocess.DEVNULL)
        [parent] = sorted((work / "runs").iterdir())
        parent_seconds = round(time.perf_counter() - started, 1)
        runs: list[dict[str, Any]] = []
        for priority in args.priorities:
            store = work / "bench.labels.sqlite"
            store.unlink()
            FeedbackStore(store).close()
            for old in (work / "runs").iterdir():  # only the parent: each server starts from it alone
                if old != parent:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
            port = load_serve.free_port()
            base = f"http://{load_serve.HOST}:{port}"
            extra = ["--feedback", str(work / "bench.toml"), "--capture", "none", "--learn", "--learn-after", str(args.feedback),
                     "--learn-check", "1", "--learn-threads", str(args.learn_threads), "--learn-priority", priority]
            with open(work / "server.log", "ab") as log:
                process = feedback_serve.start_server(parent, port, extra, log)
                try:
                    feedback_serve.wait_ready(process, base)
                    result = asyncio.run(drive(base, args, [r for r in rest if r["label"] != "oos"][:args.feedback]))
                finally:
                    code = feedback_serve.stop_server(process)
            log_file = work / "runs" / "learn.log"
            learn_log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            runs.append({"priority": priority, **result, "server_exit_code": code,
                         **({"learn_log_tail": learn_log} if result["update"].get("result") != "swapped" else {})})
    results = {"args": vars(args), "parent_examples": len(parent_rows), "parent_seconds": parent_seconds, "runs": runs}
    rows = ["| priority | phase | seconds | requests/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
    for run in runs:
        for name, p in run["phases"].items():
            rows.append(f"| {run['priority']} | {name} | {p['seconds']} | {p['requests_per_s']} | {p['p50_ms']:.1f} | "
                        f"{p['p99_ms']:.1f} | {p['errors']} |")
    print("\n".join(rows))
    for run in runs:
        print(run["priority"], json.dumps(run["update"]))
    RESULTS.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
