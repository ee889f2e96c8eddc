"""Training-data scale: peak RSS of `builder run` on 10k vs 100k+ examples (CLINC150 train repeated).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/scale.py [--sizes 10000,100000] [--steps 30]

For each size, writes that many training examples (CLINC150's 15,000 training sentences, shuffled once, cycled;
text only, no new data), runs the product path (`builder run`, bundled MiniLM, batch 32, max length
128) in a subprocess, lets it train ``--steps`` optimiser steps after loading, tokenising and
building the model, then interrupts it with SIGINT (the run writes a checkpoint and exits) and reads
the process's peak RSS from ``wait4``. Loading and tokenising every example happens before the
first step, so the peak covers the whole dataset in memory; training memory per step does not
depend on the dataset size. Reports the peak RSS per size and the growth from the smallest to the
largest (issue 7 target: < 1 GB from 10k to 100k).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", REPO.parent / "shared" / "data"))


def write_examples(path: Path, size: int) -> None:
    source = [line for line in (data_root() / "clinc150" / "train.jsonl").read_text().splitlines() if line.strip()]
    random.Random(0).shuffle(source)  # the file is grouped by intent: every size must see every intent
    with open(path, "w", encoding="utf-8") as handle:
        for line in itertools.islice(itertools.cycle(source), size):
            handle.write(line + "\n")


def steps_done(run_root: Path) -> int:
    logs = list(run_root.glob("*/metrics.jsonl"))
    if not logs:
        return 0
    steps = [json.loads(line).get("step", 0) for line in logs[0].read_text().splitlines() if '"event": "step"' in line]
    return max(steps, default=0)


def measure(size: int, steps: int, work: Path) -> dict[str, float]:
    folder = work / f"n{size}"
    folder.mkdir()
    write_examples(folder / "train.jsonl", size)
    recipe = folder / "recipe.toml"
    recipe.write_text(textwrap.dedent(f"""
        recipe_version = 1
        name = "scale-{size}"

        [task]
        type = "classification"

        [data]
        train = "train.jsonl"
        validation = "{data_root() / 'clinc150' / 'val.jsonl'}"

        [train]
        epochs = 1
        checkpoint_every_steps = 1000000

        [export]
        formats = []

        [output]
        runs_dir = "runs"
    """))
    started = time.monotonic()
    log = open(folder / "stderr.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "assistant_builder.cli.main", "run", str(recipe), "-q"], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    first_step, usage, status = None, None, 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:  # ended by itself (an error, or training finished)
            break
        done = steps_done(folder / "runs")
        if done and first_step is None:
            first_step = time.monotonic() - started
        if done >= steps:
            process.send_signal(signal.SIGINT)
            _, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.5)
    process.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    stderr = (folder / "stderr.log").read_text()
    if steps_done(folder / "runs") < steps:
        raise SystemExit(f"run of {size} examples ended before {steps} steps (status {status}):\n{stderr[-2000:]}")
    return {"examples": size, "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "seconds_to_first_step": round(first_step or 0, 1),
            "steps": steps_done(folder / "runs")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated training set sizes")
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps to train before interrupting")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (data_root() / "clinc150" / "train.jsonl").exists():
        print(f"SKIPPED: {data_root() / 'clinc150'} not found (set ASSISTANT_BUILDER_DATA)")
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        results = [measure(size, args.steps, Path(tmp)) for size in sizes]
    print("| training examples | peak RSS MiB | seconds to first step | steps |\n|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['examples']:,} | {r['peak_rss_mib']:.0f} | {r['seconds_to_first_step']:.0f} | {r['steps']} |")
    growth = results[-1]["peak_rss_mib"] - results[0]["peak_rss_mib"]
    print(f"\npeak RSS growth from {results[0]['examples']:,} to {results[-1]['examples']:,} examples: {growth:.0f} MiB")
    if args.json_out:
        args.json_out.write_text(json.dumps({"results": results, "growth_mib": growth}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
