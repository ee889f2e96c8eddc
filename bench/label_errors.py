"""Does `builder data check --label-errors` find flipped labels, and does dropping them help?

    HF_HUB_OFFLINE=1 /work/cpuq .venv/bin/python bench/label_errors.py --json-out bench/results/label_errors.json

A seeded subset of CLINC150's in-scope intents (``--intents`` intents drawn at random, ``--per-intent``
training examples each, from ``../shared/data/clinc150/train.jsonl``; every validation example of
those intents from ``val.jsonl``) is copied into a temporary folder, and ``--flip`` of the training
labels are changed to another intent of the subset, at random. Then, through the product:

1. ``builder data check RECIPE --label-errors --json``: precision and recall of the flagged set
   against the flipped lines;
2. ``builder run`` (product training defaults; no export, which does not change the accuracy) on
   the clean copy, the flipped copy, and the flipped copy minus the flagged examples: validation
   accuracy of each, and the share of the accuracy the flips cost that dropping the flagged
   examples recovers.

No dataset text is written into the repository: the copies live in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data/clinc150")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def recipe(folder: Path, name: str, train: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f'recipe_version = 1\nname = "{name}"\n[task]\ntype = "classification"\n[data]\ntrain = "{train}"\n'
                    f'validation = "valid.jsonl"\n[export]\nformats = []\n[output]\nruns_dir = "runs"\n')
    return path


def builder(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("builder")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def train_accuracy(folder: Path, name: str, train: str) -> tuple[float, float]:
    started = time.perf_counter()
    result = builder("run", str(recipe(folder, name, train)), "-q")
    if result.returncode != 0:
        raise SystemExit(f"builder run {name} failed:\n{result.stderr[-3000:]}")
    (run,) = sorted((folder / "runs").glob(f"{name}-*"))
    return json.loads((run / "metrics.json").read_text())["metrics"]["accuracy"], time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=40)
    parser.add_argument("--per-intent", type=int, default=50)
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-training", action="store_true", help="only measure precision and recall")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    train_all = [r for r in read(SHARED / "train.jsonl") if r["label"] != "oos"]
    valid_all = [r for r in read(SHARED / "val.jsonl") if r["label"] != "oos"]
    intents = sorted(rng.sample(sorted({r["label"] for r in train_all}), args.intents))
    chosen = set(intents)
    train = []
    for intent in intents:
        rows = [r for r in train_all if r["label"] == intent]
        train += rng.sample(rows, min(args.per_intent, len(rows)))
    rng.shuffle(train)
    valid = [r for r in valid_all if r["label"] in chosen]
    flipped_lines = set(rng.sample(range(1, len(train) + 1), round(args.flip * len(train))))
    noisy = [dict(r, label=rng.choice([i for i in intents if i != r["label"]])) if n in flipped_lines else r
             for n, r in enumerate(train, start=1)]
    out: dict = {"dataset": "clinc150 in-scope", "intents": args.intents, "per_intent": args.per_intent, "train": len(train),
                 "validation": len(valid), "flipped": len(flipped_lines), "seed": args.seed,
                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version()}
    with tempfile.TemporaryDirectory(prefix="label-errors-bench-") as tmp:
        folder = Path(tmp)
        write(folder / "clean.jsonl", train)
        write(folder / "noisy.jsonl", noisy)
        write(folder / "valid.jsonl", valid)
        started = time.perf_counter()
        result = builder("data", "check", str(recipe(folder, "noisy", "noisy.jsonl")), "--label-errors", "--json", "--fail-on", "never")
        if result.returncode != 0:
            raise SystemExit(f"builder data check failed:\n{result.stderr[-3000:]}")
        search = json.loads(result.stdout)["label_errors"]
        flagged = {int(issue["where"].rsplit(":", 1)[1]) for issue in search["issues"]}
        hits = len(flagged & flipped_lines)
        out.update({"check_seconds": round(time.perf_counter() - started, 1), "flagged": len(flagged), "true_positives": hits,
                    "precision": round(hits / max(1, len(flagged)), 4), "recall": round(hits / len(flipped_lines), 4),
                    "out_of_fold_accuracy": search["out_of_fold_accuracy"], "search_seconds": search["seconds"]})
        print(json.dumps(out), file=sys.stderr, flush=True)
        if not args.skip_training:
            write(folder / "cleaned.jsonl", [r for n, r in enumerate(noisy, start=1) if n not in flagged])
            for name in ("clean", "noisy", "cleaned"):
                accuracy, seconds = train_accuracy(folder, name, f"{name}.jsonl")
                out[f"accuracy_{name}"] = round(accuracy, 4)
                out[f"train_seconds_{name}"] = round(seconds, 1)
                print(f"{name}: accuracy {accuracy:.4f} ({seconds:.0f} s)", file=sys.stderr, flush=True)
            cost = out["accuracy_clean"] - out["accuracy_noisy"]
            out["recovered_share"] = round((out["accuracy_cleaned"] - out["accuracy_noisy"]) / cost, 3) if cost > 0 else None
    print(json.dumps(out, indent=1))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
