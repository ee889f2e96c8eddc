"""Calibrated confidence of the classifier (issue 15): the calibration methods compared on the
validation outputs of one product run, each measured out of fold.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/calibration.py sst2
    HF_HUB_OFFLINE=1 .venv/bin/python bench/calibration.py clinc --epochs 2
    HF_HUB_OFFLINE=1 .venv/bin/python bench/calibration.py sst2 --run-dir runs/sst2-calibration-<timestamp>

``sst2``: ``../shared/data/sst2/train.jsonl`` (6,920) and ``dev.jsonl`` (872). ``clinc``:
``../shared/data/clinc150/train.jsonl`` without its ``oos`` examples (15,000) and the in-scope part of
``val.jsonl`` (3,000). One run through the product path (the engine's ``run``) with the product
defaults, ``calibration = "temperature"``, ``top_k`` = every label (so that the validation predictions
hold the whole distribution: logits up to a constant are ``T * log p``) and export off; ``--epochs``
overrides ``train.epochs``. ``--run-dir`` reuses such a run instead of training.

On those logits each method is fitted and measured on the validation set (``in-sample``) and out of
fold (10 folds, each example calibrated by a fit without it; mean, spread and worst over
``--shuffles`` fold assignments): ``none`` (T = 1), ``temperature``, and ``temperature+isotonic``
with each ``--bins`` value, and what the default ``calibration = "auto"`` (5 bins) picks on the whole
validation set, all with the product's own functions. ECE: 15 equal-width bins, as the
run report gives it. Data files go to a temporary folder, never into the repository; results to
``--json-out`` (default ``bench/results/calibration_<dataset>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def dataset_rows(dataset: str) -> tuple[list[dict], list[dict]]:
    root = data_root()
    if dataset == "sst2":
        return read_jsonl(root / "sst2" / "train.jsonl"), read_jsonl(root / "sst2" / "dev.jsonl")
    return ([r for r in read_jsonl(root / "clinc150" / "train.jsonl") if r["label"] != "oos"],
            [r for r in read_jsonl(root / "clinc150" / "val.jsonl") if r["label"] != "oos"])


def train_run(work: Path, dataset: str, args: argparse.Namespace) -> Path:
    """One product run on the dataset; returns its run directory."""
    from assistant_builder.cli.common import load_registry
    from assistant_builder.engine.run import run
    from assistant_builder.recipe.loader import load_recipe

    train, valid = dataset_rows(dataset)
    for name, rows in (("train.jsonl", train), ("valid.jsonl", valid)):
        (work / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    labels = len({r["label"] for r in train})
    lines = ["recipe_version = 1", f'name = "calibration-{dataset}"', "[task]", 'type = "classification"', "[task.options]",
             'text_field = "text"', 'label_field = "label"', f"top_k = {labels}", 'calibration = "temperature"',
             "[model]", 'base = "minilm-l6"', "[data]", f"train = {json.dumps(str(work / 'train.jsonl'))}",
             f"validation = {json.dumps(str(work / 'valid.jsonl'))}", "[train]",
             f"seed = {args.seed}", *([f"epochs = {args.epochs}"] if args.epochs else []), "[export]", "formats = []",
             "[output]", f'runs_dir = "{work / "runs"}"']
    (work / "recipe.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    registry = load_registry()
    return Path(run(load_recipe(str(work / "recipe.toml"), [], registry=registry), registry).run_dir)


def validation_logits(run_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Logits (up to a per-row constant), gold class ids and labels of a run's validation predictions."""
    options = json.loads((run_dir / "task_options.json").read_text())
    id2label = json.loads((run_dir / "model" / "config.json").read_text())["id2label"]
    labels = [id2label[str(i)] for i in range(len(id2label))]
    predictions = read_jsonl(run_dir / "validation_predictions.jsonl")
    if any(len(p["top"]) < len(labels) for p in predictions):
        raise SystemExit(f"{run_dir}: the predictions list fewer labels than {len(labels)}; train with top_k = every label")
    index = {label: i for i, label in enumerate(labels)}
    probabilities = np.full((len(predictions), len(labels)), 1e-300)
    for row, prediction in enumerate(predictions):
        for entry in prediction["top"]:
            probabilities[row, index[entry["label"]]] = max(entry["score"], 1e-300)
    gold = validation_gold(run_dir, len(predictions))
    keep = np.array([g in index for g in gold])
    gold_ids = np.array([index[g] for g, k in zip(gold, keep) if k])
    return options["temperature"] * np.log(probabilities[keep]), gold_ids, labels


def validation_gold(run_dir: Path, count: int) -> list[str]:
    """Gold labels of the validation file the run's resolved recipe names (absolute, or relative to here), in order."""
    recipe = json.loads((run_dir / "recipe.resolved.json").read_text())
    path = Path(recipe["data"]["validation"])
    options = recipe["task"].get("options", {})
    gold = [str(r[options.get("label_field", "label")]) for r in read_jsonl(path)]
    if len(gold) != count:
        raise SystemExit(f"{path}: {len(gold)} examples, the run predicted {count}")
    return gold


def compare(logits: np.ndarray, gold: np.ndarray, bins: list[int], shuffles: int) -> list[dict]:
    from assistant_builder.toolkit.calibration import expected_calibration_error, out_of_fold_probabilities
    from assistant_builder_tasks.classification.fallback import calibrated_probabilities, fit_calibration

    def ece(probabilities: np.ndarray) -> float:
        return expected_calibration_error(probabilities.max(axis=1), probabilities.argmax(axis=1) == gold)

    methods = [("none", "none", 5), ("temperature", "temperature", 5)]
    methods += [(f"temperature+isotonic, {b} bins", "temperature+isotonic", b) for b in bins]
    from assistant_builder_tasks.classification.fallback import choose_calibration

    chosen, why = choose_calibration("auto", logits, gold, 5)
    methods.append((f"auto (product default: {chosen})", chosen, 5))
    print(why, file=sys.stderr)
    rows = []
    for name, method, b in methods:
        def fit(train_logits: np.ndarray, train_gold: np.ndarray, method: str = method, b: int = b):
            fitted = fit_calibration(method, train_logits, train_gold, b)
            return lambda held_out: calibrated_probabilities(held_out, fitted.get("temperature", 1.0), fitted.get("confidence_map"))

        in_sample = ece(fit(logits, gold)(logits))
        out_of_fold = [ece(out_of_fold_probabilities(logits, gold, fit, folds=10, seed=s)) for s in range(shuffles)]
        rows.append({"method": name, "ece_in_sample": round(in_sample, 4), "ece_out_of_fold_mean": round(statistics.fmean(out_of_fold), 4),
                     "ece_out_of_fold_sd": round(statistics.pstdev(out_of_fold), 4), "ece_out_of_fold_max": round(max(out_of_fold), 4)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=["sst2", "clinc"])
    parser.add_argument("--run-dir", type=Path, default=None, help="reuse this run (trained with top_k = every label)")
    parser.add_argument("--epochs", type=int, default=None, help="train.epochs (default: the product's)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bins", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--shuffles", type=int, default=30)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    needed = data_root() / ("sst2/dev.jsonl" if args.dataset == "sst2" else "clinc150/val.jsonl")
    if args.run_dir is None and not needed.exists():
        print(f"skipped: {needed} not found (set ASSISTANT_BUILDER_DATA)", file=sys.stderr)
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        run_dir = args.run_dir or train_run(Path(tmp), args.dataset, args)
        seconds = round(time.perf_counter() - start, 1)
        logits, gold, labels = validation_logits(run_dir)
        metrics = json.loads((run_dir / "metrics.json").read_text())
    accuracy = float((logits.argmax(axis=1) == gold).mean())
    rows = compare(logits, gold, args.bins, args.shuffles)
    print(f"{args.dataset}: {len(gold)} validation examples, {len(labels)} labels, accuracy {accuracy:.4f}, "
          f"best epoch {metrics.get('best_epoch')} of {metrics.get('epochs_run')}, T {metrics['decision_rule']['calibration']['temperature']}")
    print("| method | ECE in-sample | ECE out of fold (mean ± sd) | worst of the shuffles |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['ece_in_sample']:.4f} | {r['ece_out_of_fold_mean']:.4f} ± {r['ece_out_of_fold_sd']:.4f} | "
              f"{r['ece_out_of_fold_max']:.4f} |")
    out = args.json_out or RESULTS / f"calibration_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                               "validation_examples": len(gold), "labels": len(labels), "accuracy": round(accuracy, 4),
                               "train_seconds": seconds if args.run_dir is None else None, "best_epoch": metrics.get("best_epoch"),
                               "epochs_run": metrics.get("epochs_run"), "methods": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
