"""Small-data defaults (issue 14, item 5): CLINC150 with N training examples per intent, previous
defaults against the new ones, through the product path (the engine's ``run`` on a recipe).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python bench/small_data.py --per-intent 5 --seeds 42 43

Training data: N examples per in-scope intent drawn (seeded by the run's seed) from
``../shared/data/clinc150/train.jsonl``; validation: the in-scope examples of ``val.jsonl`` (3,000,
20 per intent; ``--validation-per-intent M`` keeps M per intent to make evaluation cheaper). The
data files are written to a temporary folder, never into the repository. Configurations, run
alternately per seed (old, new; then new, old for the next seed):

* ``old``: ``train.min_steps = 0``, ``train.head_learning_rate = 1e-3``, early stopping kept on
  whatever the validation size (``train.early_stopping_min_per_label = 0``);
* ``new``: the product defaults (``min_steps = 600``, classification head 3e-3, early stopping off
  below 5 validation examples per label).

Both: bundled MiniLM, ``train.epochs`` 6, export off. Prints in-scope accuracy per run and the mean
per configuration as Markdown, and writes ``--json-out`` (default ``bench/results/small_data.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = {
    "old": {"min_steps": 0, "head_learning_rate": 1e-3, "early_stopping_min_per_label": 0.0},
    "new": {},
}


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def per_label(rows: list[dict], count: int | None, seed: int) -> list[dict]:
    """``count`` rows of each in-scope label (all when ``count`` is None), seeded; ``oos`` dropped."""
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        if row["label"] != "oos":
            by_label.setdefault(row["label"], []).append(row)
    rng = random.Random(seed)
    chosen = []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        chosen += group if count is None else group[:count]
    rng.shuffle(chosen)
    return chosen


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps({"text": r["text"], "label": r["label"]}) + "\n" for r in rows), encoding="utf-8")


def keep_run(run_dir: Path, keep: Path | None, validation: Path | None = None) -> None:
    """Copy a finished run directory (without its checkpoints) into ``keep``, with its validation file
    as ``valid.txt`` when the data lived in a temporary folder; nothing when ``keep`` is ``None``."""
    if keep is None:
        return
    target = keep / run_dir.name
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("checkpoints"), dirs_exist_ok=True)
    if validation is not None:
        shutil.copyfile(validation, target / "valid.txt")


def recipe_text(config: str, seed: int, args: argparse.Namespace) -> str:
    train = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": seed, **CONFIGS[config]}
    if args.num_threads:
        train["num_threads"] = args.num_threads
    return "\n".join([
        "recipe_version = 1", f'name = "small-{config}-s{seed}"', "[task]", 'type = "classification"',
        "[model]", 'base = "minilm-l6"', "max_length = 64",
        "[data]", 'train = "train.jsonl"', 'validation = "valid.jsonl"',
        "[train]", *(f"{k} = {json.dumps(v)}" for k, v in train.items()),
        "[export]", "formats = []", "[output]", 'runs_dir = "runs"']) + "\n"


def run_one(work: Path, config: str, seed: int, args: argparse.Namespace) -> dict:
    from assistant_builder.cli.common import load_registry
    from assistant_builder.engine.run import run
    from assistant_builder.recipe.loader import load_recipe

    recipe = work / f"{config}-{seed}.toml"
    recipe.write_text(recipe_text(config, seed, args))
    registry = load_registry()
    start = time.perf_counter()
    result = run(load_recipe(str(recipe), [], registry=registry), registry)
    return {"config": config, "seed": seed, "accuracy": result.metrics["accuracy"], "epochs_run": result.summary["epochs_run"],
            "stopped_early": result.summary["stopped_early"], "train_adjustments": result.summary.get("train_adjustments", []),
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-intent", type=int, default=5)
    parser.add_argument("--validation-per-intent", type=int, default=None, help="default: all 20 per intent")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["old", "new"])
    parser.add_argument("--json-out", type=Path, default=RESULTS / "small_data.json")
    args = parser.parse_args(argv)
    clinc = data_root() / "clinc150"
    if not (clinc / "train.jsonl").exists():
        print(f"skipped: {clinc} not found (set ASSISTANT_BUILDER_DATA)", file=sys.stderr)
        return 0
    train_rows, valid_rows = read_jsonl(clinc / "train.jsonl"), read_jsonl(clinc / "val.jsonl")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-small-data-") as tmp:
        work = Path(tmp)
        for index, seed in enumerate(args.seeds):
            write_jsonl(work / "train.jsonl", per_label(train_rows, args.per_intent, seed))
            write_jsonl(work / "valid.jsonl", per_label(valid_rows, args.validation_per_intent, 0))
            order = args.configs if index % 2 == 0 else list(reversed(args.configs))
            for config in order:
                results.append(run_one(work, config, seed, args))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print("| config | seed | in-scope accuracy | epochs run | stopped early | seconds |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['seed']} | {r['accuracy']:.4f} | {r['epochs_run']} | {r['stopped_early']} | {r['seconds']} |")
    for config in args.configs:
        values = [r["accuracy"] for r in results if r["config"] == config]
        print(f"| {config} mean | | {statistics.fmean(values):.4f} | | | |")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                                         "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
