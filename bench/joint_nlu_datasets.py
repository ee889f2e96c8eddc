"""Joint intent + slot benchmarks (the builder-joint-nlu plugin's ``joint_nlu`` task) on ATIS and SNIPS,
through the product path (`builder run`).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/joint_nlu_datasets.py atis [--epochs 10]
    HF_HUB_OFFLINE=1 .venv/bin/python bench/joint_nlu_datasets.py snips [--epochs 4]

Needs the plugin installed (`pip install examples/plugins/builder-joint-nlu`). Writes a recipe into
a temporary folder that points at ``../shared/data/<dataset>/{train,valid}`` (the ``seq.in`` /
``seq.out`` / ``label`` layout), trains on train and evaluates on valid with the bundled MiniLM,
exports ONNX fp32 (verified: intent and slot spans agree with PyTorch), prints intent accuracy,
slot F1 (seqeval, strict IOB2), exact match (intent and every slot right) and wall time as
Markdown, and writes them to ``bench/results/joint_nlu_<dataset>.json``. Validation intents never
seen in training (ATIS has one: ``atis_airfare#atis_flight_time``) are scored as errors
(``unseen_labels = "count_as_wrong"``). Skips with a message when the data folder is absent.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

DATASETS = {"atis": {"epochs": 10}, "snips": {"epochs": 4}}
RESULTS = Path(__file__).resolve().parent / "results"


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def recipe_text(dataset: str, root: Path, args: argparse.Namespace) -> str:
    train = {"trainer": "full", "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
             "head_learning_rate": args.head_learning_rate, "warmup_ratio": 0.1, "early_stopping_patience": 0, "seed": args.seed,
             "num_threads": os.cpu_count() or 2}
    options = {"pooling": args.pooling, "slot_loss_weight": args.slot_loss_weight, "invalid_tags": "repair", "unseen_labels": "count_as_wrong"}
    lines = ["recipe_version = 1", f'name = "joint-{dataset}"', "[task]", 'type = "joint_nlu"', "[task.options]",
             *(f"{k} = {json.dumps(v)}" for k, v in options.items()),
             "[model]", 'base = "minilm-l6"', f"max_length = {args.max_length}",
             "[data]", f"train = {json.dumps(str(root / dataset / 'train'))}", f"validation = {json.dumps(str(root / dataset / 'valid'))}",
             'format = "seq"', "[train]", *(f"{k} = {json.dumps(v)}" for k, v in train.items()),
             "[export]", 'formats = ["onnx"]', "min_agreement = 0.99", "[output]", 'runs_dir = "runs"']
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--epochs", type=int, default=None, help="default: atis 10, snips 4")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--head-learning-rate", type=float, default=1e-3)
    parser.add_argument("--pooling", choices=["mean", "cls"], default="mean")
    parser.add_argument("--slot-loss-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-write", action="store_true", help="print only; do not write bench/results/joint_nlu_<dataset>.json")
    args = parser.parse_args(argv)
    args.epochs = args.epochs or DATASETS[args.dataset]["epochs"]

    root = data_root()
    if not (root / args.dataset / "train" / "seq.in").exists():
        print(f"SKIPPED: {root / args.dataset / 'train' / 'seq.in'} not found")
        return 0
    from assistant_builder.cli.main import main as builder

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix=f"bench-joint-{args.dataset}-") as tmp:
        recipe = Path(tmp) / "recipe.toml"
        recipe.write_text(recipe_text(args.dataset, root, args))
        start = time.perf_counter()
        code = builder(["run", str(recipe), "-q"])
        wall = time.perf_counter() - start
        if code != 0:
            return code
        (run_dir,) = (Path(tmp) / "runs").iterdir()
        summary = json.loads((run_dir / "summary.json").read_text())
        details = json.loads((run_dir / "metrics.json").read_text())
    m = summary["metrics"]
    export = summary["exports"][0]
    command = " ".join([Path(sys.executable).name, *sys.argv])
    result = {
        "dataset": args.dataset, "task": "joint_nlu", "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "settings": {k: v for k, v in vars(args).items() if k not in ("dataset", "no_write")},
        "intent_accuracy": m["intent_accuracy"], "slot_f1": m["slot_f1"], "exact_match": m["exact_match"],
        "slot_precision": m["slot_precision"], "slot_recall": m["slot_recall"], "intent_macro_f1": m["intent_macro_f1"],
        "best_epoch": summary["best_epoch"], "wall_seconds": round(wall, 1), "train_examples_per_second": round(summary["train_examples_per_second"], 1),
        "onnx_fp32_exact_match": export["exported_metric"], "onnx_fp32_agreement": export["agreement"],
        "history": details["history"], "per_type_f1": {k: round(v["f1"], 4) for k, v in sorted((details.get("per_type") or {}).items())},
    }
    print(f"## {args.dataset}: joint_nlu ({args.epochs} epochs, batch {args.batch_size}, lr {args.learning_rate}, "
          f"{args.pooling} pooling, max length {args.max_length})\n")
    print(f"Command: `{command}`\n")
    print("| intent accuracy | slot F1 | exact match | train ex/s | wall | ONNX fp32 exact match | agreement |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {m['intent_accuracy']:.4f} | {m['slot_f1']:.4f} | {m['exact_match']:.4f} | {summary['train_examples_per_second']:.0f} | "
          f"{wall / 60:.1f} min | {export['exported_metric']:.4f} | {export['agreement']:.2%} |")
    print("\nHistory: " + "; ".join(f"epoch {h['epoch']}: intent {h['intent_accuracy']:.4f}, slot F1 {h['slot_f1']:.4f}, "
                                    f"exact {h['exact_match']:.4f}" for h in details["history"]))
    print(f"Load average before/after: {result['load_average_before']} / {result['load_average_after']}")
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"joint_nlu_{args.dataset}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
