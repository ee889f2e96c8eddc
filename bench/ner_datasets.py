"""NER / slot-filling benchmarks on the shared datasets, through the product path (`builder run`).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ner_datasets.py conll2003 [--trainer lora] [--epochs 3]
    HF_HUB_OFFLINE=1 .venv/bin/python bench/ner_datasets.py snips

Writes a recipe into a temporary folder that points at ``../shared/data/<dataset>`` (train file,
evaluated on its validation file), runs it with the bundled MiniLM, exports ONNX fp32 (verified:
span agreement with PyTorch), and prints the entity-level micro F1, per-type F1, training speed and
wall time as Markdown. Skips with a message when the data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DATASETS = {
    "conll2003": {"train": "conll2003/train.txt", "validation": "conll2003/valid.txt", "format": "conll"},
    "snips": {"train": "snips/train/seq.in", "validation": "snips/valid/seq.in", "format": "seq"},
    "atis": {"train": "atis/train/seq.in", "validation": "atis/valid/seq.in", "format": "seq"},
}


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--trainer", choices=["full", "lora"], default="full")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the trainer's (full 1e-4, lora 2e-3)")
    args = parser.parse_args(argv)

    spec = DATASETS[args.dataset]
    root = data_root()
    if not (root / spec["train"]).exists():
        print(f"SKIPPED: {root / spec['train']} not found")
        return 0
    from assistant_builder.cli.main import main as builder

    with tempfile.TemporaryDirectory(prefix=f"bench-{args.dataset}-") as tmp:
        train = {"trainer": args.trainer, "epochs": args.epochs, "batch_size": args.batch_size, "early_stopping_patience": 0,
                 "seed": 42, "num_threads": os.cpu_count() or 2}
        if args.learning_rate:
            train["learning_rate"] = args.learning_rate
        lines = ["recipe_version = 1", f'name = "{args.dataset}"', "[task]", 'type = "ner"', "[task.options]",
                 'invalid_tags = "repair"', "[model]", 'base = "minilm-l6"', f"max_length = {args.max_length}",
                 "[data]", f'train = "{root / spec["train"]}"', f'validation = "{root / spec["validation"]}"',
                 f'format = "{spec["format"]}"', "[train]", *(f"{k} = {json.dumps(v)}" for k, v in train.items()),
                 "[export]", 'formats = ["onnx"]', "min_agreement = 0.995", "[output]", 'runs_dir = "runs"']
        recipe = Path(tmp) / "recipe.toml"
        recipe.write_text("\n".join(lines) + "\n")
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
    print(f"## {args.dataset} ({args.trainer}, {args.epochs} epochs, batch {args.batch_size}, max length {args.max_length})\n")
    print(f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print("| entity F1 | precision | recall | token accuracy | train ex/s | wall | ONNX fp32 F1 | span agreement |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {m['f1']:.4f} | {m['precision']:.4f} | {m['recall']:.4f} | {m['token_accuracy']:.4f} | "
          f"{summary['train_examples_per_second']:.0f} | {wall / 60:.1f} min | {export['exported_metric']:.4f} | {export['agreement']:.2%} |")
    per_type = details.get("per_type") or {}
    if per_type:
        print("\nPer type F1: " + ", ".join(f"{k} {v.get('f1', 0):.3f}" for k, v in sorted(per_type.items())))
    print("History: " + "; ".join(f"epoch {h['epoch']}: F1 {h['f1']:.4f}" for h in details["history"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
