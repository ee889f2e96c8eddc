"""Benchmark: our trainer vs a plain ``transformers.Trainer`` on SST-2 (one command, one table).

Trains the bundled all-MiniLM-L6-v2 for exactly one epoch (``EPOCHS``) on (a seeded subset of) SST-2
train with

* **ours**: the real product path: a temporary recipe (TOML) over temporary JSONL files, run by
  ``assistant_builder.engine.run(load_recipe(...), build_registry())`` (``--trainer full|lora``).
  The recipe sets ``train.min_steps = 0``: the product's default (600 steps, for small data) would
  raise one epoch of 3,000 examples (94 steps) to ~6.4 epochs, six times the Trainer's work;
* **trainer-defaults**: ``AutoModelForSequenceClassification`` + ``Trainer``, tokenised as the HF
  ``run_glue`` example does by default (truncate and pad to 128 tokens);
* **trainer-grouped** (``--baselines defaults,group_by_length``): the same Trainer with dynamic
  padding (``DataCollatorWithPadding``) and ``train_sampling_strategy="group_by_length"``;

then evaluates each on the SST-2 dev set and prints a Markdown table (examples/s min/median over
``--repeats``, dev accuracy, peak RSS, ratio vs Trainer defaults). Every system runs in its own
subprocess (this script re-invoked with ``--only SYSTEM``), alternating across repeats, so peak RSS
is per system and no run warms caches for another.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/train_sst2.py --repeats 3 \\
        --baselines defaults,group_by_length --json-out bench/sst2_results.json

Smoke test (seconds, not a measurement):
    HF_HUB_OFFLINE=1 .venv/bin/python bench/train_sst2.py --train-examples 256 --eval-examples 128
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = {"ours": "ours", "defaults": "trainer-defaults", "group_by_length": "trainer-grouped"}
BATCH_SIZE, MAX_LENGTH, EPOCHS, WARMUP_RATIO, WEIGHT_DECAY = 32, 128, 1, 0.1, 0.01
DEFAULT_LR = {"full": 1e-4, "lora": 2e-3}
BASELINE_DEFAULT_LR = 1e-4  # the baseline is always full fine-tuning


def data_root() -> Path:
    env = os.environ.get("ASSISTANT_BUILDER_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_data(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(train subset, dev rows, size of the full train set). Subset: first N after a seeded shuffle."""
    folder = data_root() / "sst2"
    train = read_jsonl(folder / "train.jsonl")
    dev = read_jsonl(folder / "dev.jsonl")
    order = list(range(len(train)))
    random.Random(args.seed).shuffle(order)
    subset = [train[i] for i in order[: args.train_examples]]
    return subset, dev[: args.eval_examples] if args.eval_examples else dev, len(train)


def fingerprint(rows: list[dict[str, Any]]) -> str:
    return hashlib.sha1("\n".join(f"{r['label']}\t{r['text']}" for r in rows).encode()).hexdigest()[:12]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --------------------------------------------------------------------------- ours (product path)

def run_ours(args: argparse.Namespace, train: list[dict[str, Any]], dev: list[dict[str, Any]]) -> dict[str, Any]:
    import torch

    from assistant_builder.callbacks import Callback
    from assistant_builder.engine import run as run_engine
    from assistant_builder.recipe.loader import load_recipe
    from assistant_builder.registry import build_registry

    class TrainClock(Callback):
        """Wall-clock from the first training step to the last (excludes evaluation/checkpoints)."""

        start = last_step = 0.0

        def on_train_start(self, event: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, event: Any) -> None:
            self.last_step = time.perf_counter()

    torch.set_num_threads(args.threads)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.trainer]
    work = Path(tempfile.mkdtemp(prefix="bench-sst2-ours-"))
    try:
        for name, rows in (("train.jsonl", train), ("dev.jsonl", dev)):
            (work / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        head_lr = f"head_learning_rate = {args.head_lr!r}\n" if args.head_lr is not None else ""
        recipe = (
            'recipe_version = 1\nname = "bench-sst2"\n\n[task]\ntype = "classification"\n\n'
            f'[model]\nbase = "minilm-l6"\nmax_length = {MAX_LENGTH}\n\n'
            '[data]\ntrain = "train.jsonl"\nvalidation = "dev.jsonl"\n\n'
            f'[train]\ntrainer = "{args.trainer}"\nepochs = {EPOCHS}\nbatch_size = {BATCH_SIZE}\nlearning_rate = {lr!r}\n{head_lr}'
            'min_steps = 0\n'  # equal work: exactly EPOCHS epochs, as the Trainer baselines (the default 600 would add epochs)
            f'warmup_ratio = {WARMUP_RATIO}\nweight_decay = {WEIGHT_DECAY}\nearly_stopping_patience = 0\nseed = {args.seed}\n'
            f'precision = "fp32"\ndevice = "cpu"\nnum_threads = {args.threads}\n\n'
            '[export]\nformats = []\n\n[output]\nruns_dir = "runs"\n'
        )
        (work / "recipe.toml").write_text(recipe, encoding="utf-8")
        registry = build_registry()
        loaded = load_recipe(work / "recipe.toml", registry=registry)
        clock = TrainClock()
        began = time.perf_counter()
        result = run_engine(loaded, registry, [clock])
        total = time.perf_counter() - began
        summary = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))
        train_seconds = clock.last_step - clock.start
        return {
            "examples_per_second": summary["train_examples_per_second"],
            "wall_examples_per_second": len(train) / train_seconds if train_seconds > 0 else None,
            "train_seconds_wall": train_seconds, "total_seconds": total,
            "dev_accuracy": summary["metrics"]["accuracy"], "learning_rate": lr,
            "head_learning_rate": loaded.recipe.train.head_learning_rate or lr, "recipe": recipe,
        }
    finally:
        if not args.keep_temp:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- transformers.Trainer

def run_trainer(args: argparse.Namespace, variant: str, train: list[dict[str, Any]], dev: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, default_data_collator, set_seed)

    from assistant_builder.basemodels import resolve_base_model

    torch.set_num_threads(args.threads)
    lr = args.baseline_lr if args.baseline_lr is not None else (args.lr if args.lr is not None and args.trainer == "full" else BASELINE_DEFAULT_LR)
    model_path = str(resolve_base_model("minilm-l6"))
    began = time.perf_counter()
    set_seed(args.seed)  # run_glue seeds before the model is built
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    grouped = variant == "group_by_length"

    def encode(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        enc = tokenizer([r["text"] for r in rows], padding=False if grouped else "max_length", max_length=MAX_LENGTH, truncation=True)
        return [{**{k: enc[k][i] for k in enc.keys()}, "label": int(r["label"])} for i, r in enumerate(rows)]

    train_set, dev_set = encode(train), encode(dev)
    out = Path(tempfile.mkdtemp(prefix="bench-sst2-trainer-"))
    try:
        training_args = TrainingArguments(
            output_dir=str(out), per_device_train_batch_size=BATCH_SIZE, per_device_eval_batch_size=64, learning_rate=lr,
            num_train_epochs=EPOCHS, warmup_steps=WARMUP_RATIO,  # v5: a float < 1 is a ratio (warmup_ratio is gone)
            weight_decay=WEIGHT_DECAY, seed=args.seed, report_to=[], save_strategy="no", eval_strategy="no",
            logging_steps=50, use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
            train_sampling_strategy="group_by_length" if grouped else "random",  # v5 name of group_by_length=True
        )
        collator = DataCollatorWithPadding(tokenizer) if grouped else default_data_collator
        trainer = Trainer(model=model, args=training_args, train_dataset=train_set, data_collator=collator, processing_class=tokenizer)
        t0 = time.perf_counter()
        metrics = trainer.train().metrics
        wall = time.perf_counter() - t0
        predictions = trainer.predict(dev_set).predictions
        gold = np.array([r["label"] for r in dev_set])
        return {
            "examples_per_second": len(train_set) / metrics["train_runtime"],
            "wall_examples_per_second": len(train_set) / wall, "train_seconds_wall": wall,
            "train_runtime": metrics["train_runtime"], "trainer_train_samples_per_second": metrics.get("train_samples_per_second"),
            "train_loss": metrics.get("train_loss"), "total_seconds": time.perf_counter() - began,
            "dev_accuracy": float((np.argmax(predictions, axis=-1) == gold).mean()), "learning_rate": lr,
            "optim": getattr(training_args.optim, "value", str(training_args.optim)), "warmup_steps": training_args.get_warmup_steps(trainer.state.max_steps),
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run_one(args: argparse.Namespace) -> int:
    """Child mode (``--only``): train one system, write one JSON result."""
    train, dev, _ = load_data(args)
    load = os.getloadavg()[0]
    if args.only == "ours":
        result = run_ours(args, train, dev)
    else:
        variant = next(k for k, v in SYSTEMS.items() if v == args.only)
        result = run_trainer(args, variant, train, dev)
    result.update(system=args.only, peak_rss_mb=peak_rss_mb(), train_examples=len(train), dev_examples=len(dev),
                  train_fingerprint=fingerprint(train), loadavg_start=load, loadavg_end=os.getloadavg()[0])
    line = json.dumps(result)
    if args.result_file:
        Path(args.result_file).write_text(line, encoding="utf-8")
    print("BENCH_RESULT " + line, flush=True)
    return 0


# --------------------------------------------------------------------------- orchestration

def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = {}
    for package in ("torch", "transformers", "accelerate", "peft"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": usable, "python": platform.python_version(),
            "platform": platform.platform(), **versions}


def child_command(args: argparse.Namespace, system: str, result_file: Path) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--only", system, "--result-file", str(result_file),
               "--train-examples", str(args.train_examples), "--eval-examples", str(args.eval_examples),
               "--trainer", args.trainer, "--threads", str(args.threads), "--seed", str(args.seed)]
    for flag, value in (("--lr", args.lr), ("--baseline-lr", args.baseline_lr), ("--head-lr", args.head_lr)):
        if value is not None:
            command += [flag, repr(value)]
    return command + (["--keep-temp"] if args.keep_temp else [])


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    speeds = [r["examples_per_second"] for r in runs]
    accuracies = [r["dev_accuracy"] for r in runs]
    return {"ex_s_min": min(speeds), "ex_s_median": statistics.median(speeds),
            "wall_ex_s_median": statistics.median(r["wall_examples_per_second"] for r in runs),
            "dev_accuracy_median": statistics.median(accuracies), "dev_accuracy_min": min(accuracies),
            "dev_accuracy_max": max(accuracies), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "runs": runs}


def render(report: dict[str, Any]) -> str:
    cfg, systems = report["config"], report["systems"]
    m = report["machine"]
    lines = [
        "## SST-2: our trainer vs transformers.Trainer", "",
        f"Command: `{report['command']}`", "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs, torch {m['torch']}, "
        f"transformers {m['transformers']}, Python {m['python']}; load average {report['loadavg_start']:.2f} -> {report['loadavg_end']:.2f}", "",
        f"Setup: all-MiniLM-L6-v2, {EPOCHS} epoch(s) for every system (ours with train.min_steps = 0: equal work), "
        f"batch {BATCH_SIZE}, max length {MAX_LENGTH}, fp32, {cfg['threads']} threads, seed {cfg['seed']}, "
        f"warmup 10%, weight decay {WEIGHT_DECAY}, {cfg['repeats']} repeat(s) per system (alternating). "
        f"Train: {cfg['train_examples_used']} of {cfg['train_examples_available']} SST-2 train sentences "
        f"({'seeded subset' if cfg['subset'] else 'full train set, seeded order'}); "
        f"dev: {cfg['dev_examples_used']} of {cfg['dev_examples_available']}"
        f"{'' if cfg['dev_examples_used'] == cfg['dev_examples_available'] else ' (SMOKE TEST: dev truncated)'}.", "",
        "| system | ex/s min | ex/s median | wall ex/s median | dev accuracy | peak RSS MB | ratio vs Trainer defaults |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in systems.items():
        acc = f"{s['dev_accuracy_median']:.4f}" if s["dev_accuracy_min"] == s["dev_accuracy_max"] else \
            f"{s['dev_accuracy_median']:.4f} ({s['dev_accuracy_min']:.4f}-{s['dev_accuracy_max']:.4f})"
        ratio = f"{s['ratio_vs_trainer_defaults']:.2f}x" if s.get("ratio_vs_trainer_defaults") else "n/a"
        lines.append(f"| {s['label']} | {s['ex_s_min']:.1f} | {s['ex_s_median']:.1f} | {s['wall_ex_s_median']:.1f} | {acc} | {s['peak_rss_mb']:.0f} | {ratio} |")
    lines += ["", "Notes:", *[f"- {note}" for note in report["notes"]]]
    return "\n".join(lines)


def orchestrate(args: argparse.Namespace) -> int:
    folder = data_root() / "sst2"
    if not (folder / "train.jsonl").is_file() or not (folder / "dev.jsonl").is_file():
        print(f"SKIPPED: SST-2 not found at {folder} (expected train.jsonl and dev.jsonl; set ASSISTANT_BUILDER_DATA "
              "to the folder holding sst2/)")
        return 0
    baselines = [b.strip() for b in (args.baselines or args.baseline_variant).split(",") if b.strip()]
    unknown = [b for b in baselines if b not in ("defaults", "group_by_length")]
    if unknown:
        print(f"error: unknown baseline(s) {unknown}; expected defaults and/or group_by_length", file=sys.stderr)
        return 2
    systems = ["ours"] + [SYSTEMS[b] for b in baselines]
    train, dev, available = load_data(args)
    dev_available = len(read_jsonl(folder / "dev.jsonl"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    load_start = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    with tempfile.TemporaryDirectory(prefix="bench-sst2-") as tmp:
        for repeat in range(args.repeats):
            order = systems if repeat % 2 == 0 else systems[::-1]  # alternate who goes first
            for system in order:
                result_file = Path(tmp) / f"{system}-{repeat}.json"
                print(f"[bench] repeat {repeat + 1}/{args.repeats}: {system} ...", file=sys.stderr, flush=True)
                try:
                    done = subprocess.run(child_command(args, system, result_file), stdout=sys.stderr, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    print(f"error: {system} ran past --timeout {args.timeout:g}s and was stopped", file=sys.stderr)
                    return 1
                if done.returncode != 0 or not result_file.exists():
                    print(f"error: {system} failed (exit {done.returncode}); its output is above", file=sys.stderr)
                    return 1
                runs[system].append({**json.loads(result_file.read_text(encoding="utf-8")), "repeat": repeat})
    fingerprints = {r["train_fingerprint"] for rs in runs.values() for r in rs}
    label = {"ours": f"ours ({args.trainer})", "trainer-defaults": "Trainer defaults (pad to 128)",
             "trainer-grouped": "Trainer group_by_length (dynamic padding)"}
    summary = {s: {"label": label[s], **summarise(rs)} for s, rs in runs.items()}
    reference = summary.get("trainer-defaults")
    for s in summary.values():
        s["ratio_vs_trainer_defaults"] = s["ex_s_median"] / reference["ex_s_median"] if reference else None
    ours_run, trainer_run = runs["ours"][0], next((rs[0] for k, rs in runs.items() if k != "ours"), None)
    notes = [
        "ex/s = training examples / training seconds, evaluation excluded. ours: `train_examples_per_second` from the run's "
        "summary.json; 'wall ex/s' cross-checks it with a callback clock (first step start to last step end). "
        "Trainer: examples / `train_runtime` of `trainer.train()`; 'wall ex/s' times the `train()` call.",
        f"learning rates: ours encoder {ours_run['learning_rate']:g}, head {ours_run['head_learning_rate']:g}"
        f"{' (product default head_learning_rate; pass --head-lr to change)' if args.head_lr is None else ''}, "
        f"torch AdamW (fused), {int(WARMUP_RATIO * -(-len(train) // BATCH_SIZE))} warmup steps (int of 10%)"
        + (f"; Trainer {trainer_run['learning_rate']:g} for every weight, optimiser {trainer_run['optim']}, "
           f"{trainer_run['warmup_steps']} warmup steps (ceil of 10%)" if trainer_run else "") + ".",
        "models: ours = BertModel + mean pooling + dropout + linear head (the classification task), with the product's "
        "training defaults (train.freeze_word_embeddings = true, train.attention_dropout = 0; LoRA adapter dropout 0); Trainer = "
        "BertForSequenceClassification (CLS token + checkpoint pooler + linear head).",
        "batching: ours pads per batch and groups by length (train.group_by_length = true, the product default); "
        "Trainer defaults pad every example to 128 tokens, as run_glue does unless --pad_to_max_length False.",
        f"same training examples for every system: {'yes' if len(fingerprints) == 1 else 'NO: ' + ', '.join(sorted(fingerprints))} "
        f"(sha1 prefix {sorted(fingerprints)[0]}).",
        "each system runs in its own subprocess; peak RSS is that process's ru_maxrss (max over repeats).",
    ]
    report = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]), "machine": machine(),
        "loadavg_start": load_start, "loadavg_end": os.getloadavg()[0],
        "config": {"trainer": args.trainer, "baselines": baselines, "repeats": args.repeats, "threads": args.threads,
                   "seed": args.seed, "batch_size": BATCH_SIZE, "max_length": MAX_LENGTH, "epochs": EPOCHS,
                   "train_examples_requested": args.train_examples, "train_examples_used": len(train),
                   "train_examples_available": available, "subset": len(train) < available,
                   "dev_examples_used": len(dev), "dev_examples_available": dev_available,
                   "data": str(folder)},
        "systems": summary, "notes": notes,
    }
    print(render(report))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nJSON: {args.json_out}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-examples", type=int, default=8000, help="first N train examples after a seeded shuffle (default 8000; capped at the set's size)")
    parser.add_argument("--eval-examples", type=int, default=0, help="first N dev examples (smoke tests only; default 0 = the full dev set)")
    parser.add_argument("--trainer", choices=("full", "lora"), default="full", help="our trainer to benchmark")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-4 for full and the baseline, 2e-3 for lora)")
    parser.add_argument("--baseline-lr", type=float, default=None, help="Trainer learning rate (default: --lr with --trainer full, else 1e-4)")
    parser.add_argument("--head-lr", type=float, default=None, help="ours: train.head_learning_rate (default: the product default, 1e-3)")
    parser.add_argument("--baseline-variant", choices=("defaults", "group_by_length"), default="defaults", help="Trainer baseline to run")
    parser.add_argument("--baselines", default=None, help="comma-separated baselines to run, e.g. defaults,group_by_length (overrides --baseline-variant)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per system, alternating; the table shows min/median")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per system (default 2)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json-out", default=None, help="also write the full report as JSON here")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per system run")
    parser.add_argument("--keep-temp", action="store_true", help="keep ours' temporary recipe, data and run directory")
    parser.add_argument("--only", choices=sorted(SYSTEMS.values()), help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_examples < 1 or args.repeats < 1 or args.eval_examples < 0:
        parser.error("--train-examples and --repeats must be >= 1 and --eval-examples >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_one(args) if args.only else orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
