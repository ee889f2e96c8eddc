"""How long `builder data check` takes, and how much memory, on N synthetic classification examples.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/data_check_scale.py --examples 1000000 --json-out bench/results/data_check_1m.json

Writes N seeded synthetic intent-like requests (90% train, 10% validation, 150 labels; short texts
built from a word list, about 1% exact duplicates, 0.5% label conflicts, 0.5% leakage, 0.1% empty
texts, 0.1% over max_length, one rare label) into a temporary folder, then runs the real
`builder data check RECIPE --json` in a fresh process and records its wall time and peak RSS
(the child's ru_maxrss) and CPU time (user + system: wall time on a shared machine depends on
the other jobs running; the load average is recorded too). No dataset text: everything is generated here. Checks that each planted
problem was found.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("set wake alarm timer remind weather rain play music song add list buy milk send text call calendar meeting lights turn off "
         "dim translate spanish hello thanks tomorrow today tonight morning evening please me my the a for at in on to of "
         "minutes hours new york london paris john mom dad kitchen bedroom jazz rock news").split()


def generate(directory: Path, n: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    labels = [f"intent_{i:03d}" for i in range(150)]
    planted = {"duplicate": 0, "label_conflict": 0, "leakage": 0, "empty_input": 0, "length": 0}
    train_rows: list[str] = []
    valid_rows: list[str] = []
    n_valid = n // 10
    for i in range(n):
        label = labels[i % 149] if i != n_valid + 7 else labels[149]  # labels[149]: seen once (rare_label)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + f" {i}"
        roll = rng.random()
        rows = valid_rows if i < n_valid else train_rows
        if roll < 0.001:
            text = "   "
            planted["empty_input"] += 1
        elif roll < 0.002:
            text = " ".join(rng.choice(WORDS) for _ in range(160))
            planted["length"] += 1
        rows.append(json.dumps({"text": text, "label": label}))
        if i >= n_valid and 0.002 <= roll < 0.012:  # an exact copy later in train
            train_rows.append(json.dumps({"text": text, "label": label}))
            planted["duplicate"] += 1
        elif i >= n_valid and 0.012 <= roll < 0.017:  # the same text with another label
            train_rows.append(json.dumps({"text": text, "label": labels[(labels.index(label) + 1) % 149]}))
            planted["label_conflict"] += 1
        elif i < n_valid and 0.017 <= roll < 0.067:  # a validation text also in train (5% of validation = 0.5% of all)
            train_rows.append(json.dumps({"text": text, "label": label}))
            planted["leakage"] += 1
    (directory / "train.jsonl").write_text("\n".join(train_rows) + "\n")
    (directory / "valid.jsonl").write_text("\n".join(valid_rows) + "\n")
    (directory / "recipe.toml").write_text('recipe_version = 1\nname = "scale"\n[task]\ntype = "classification"\n'
                                           '[data]\ntrain = "train.jsonl"\nvalidation = "valid.jsonl"\n')
    planted["train"], planted["validation"] = len(train_rows), len(valid_rows)
    return planted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    builder = Path(sys.executable).with_name("builder")
    with tempfile.TemporaryDirectory(prefix="data-check-scale-") as tmp:
        folder = Path(tmp)
        planted = generate(folder, args.examples, args.seed)
        size = sum(p.stat().st_size for p in folder.glob("*.jsonl"))
        started = time.perf_counter()
        result = subprocess.run([str(builder), "data", "check", str(folder / "recipe.toml"), "--json", "--fail-on", "never"],
                                capture_output=True, text=True)
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        load = __import__("os").getloadavg()[0]
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return 1
    report = json.loads(result.stdout)
    found = {c["check"]: c["count"] for c in report["checks"]}
    rows = {"examples": planted["train"] + planted["validation"], "train": planted["train"], "validation": planted["validation"],
            "data_mb": round(size / 2**20, 1), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "check_s": report["seconds"], "peak_rss_mb": round(peak_mb),
            "load_average_1min": round(load, 2),
            "planted": planted, "found": found, "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs",
            "python": platform.python_version()}
    for check in ("duplicate", "label_conflict", "leakage", "empty_input", "length"):
        if found.get(check, 0) < planted[check] * 0.95:
            print(f"check {check}: planted {planted[check]}, found {found.get(check, 0)}", file=sys.stderr)
            rows["ok"] = False
    rows.setdefault("ok", True)
    print(json.dumps(rows, indent=1))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if rows["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
