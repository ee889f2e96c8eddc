"""Extractive QA benchmark through the product path: train on a subset of SQuAD v1.1 train
(``../shared/data/squad/train.json``), evaluate on XQuAD-en (``../shared/data/xquad_en``).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/qa_datasets.py --train-questions 4000 --epochs 2

Prints EM / F1 (official SQuAD v1.1 scoring, as fractions), the training-set size, speed and wall
time. Skips with a message when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def subset(squad: dict, questions: int) -> tuple[dict, int]:
    """The first ``questions`` questions of the file (whole paragraphs), in file order."""
    articles, count = [], 0
    for article in squad["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            if count >= questions:
                break
            paragraphs.append(paragraph)
            count += len(paragraph["qas"])
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
        if count >= questions:
            break
    return {"version": "1.1", "data": articles}, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-questions", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--min-steps", type=int, default=0, help="train.min_steps (default 0 here, so --epochs is what runs; "
                        "the product default 600 would raise 3,000 questions to 6 epochs)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=64)
    parser.add_argument("--trainer", choices=["full", "lora"], default="full")
    parser.add_argument("--no-quantize", dest="quantize", action="store_false", help="export fp32 only (default: fp32 + int8)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    root = data_root()
    train_file, valid_file = root / "squad" / "train.json", root / "xquad_en" / "xquad.en.json"
    if not (train_file.exists() and valid_file.exists()):
        print(f"SKIPPED: {train_file} or {valid_file} not found")
        return 0
    from assistant_builder.cli.main import main as builder

    with tempfile.TemporaryDirectory(prefix="bench-qa-") as tmp:
        data, count = subset(json.loads(train_file.read_text(encoding="utf-8")), args.train_questions)
        (Path(tmp) / "train.json").write_text(json.dumps(data), encoding="utf-8")
        lines = ["recipe_version = 1", 'name = "squad-xquad"', "[task]", 'type = "qa"', "[task.options]", f"stride = {args.stride}",
                 "[model]", 'base = "minilm-l6"', f"max_length = {args.max_length}", "[data]", 'train = "train.json"',
                 f'validation = "{valid_file}"', 'format = "squad"', "[train]", f'trainer = "{args.trainer}"', f"epochs = {args.epochs}",
                 f"min_steps = {args.min_steps}", "batch_size = 32", "early_stopping_patience = 0", "seed = 42", f"num_threads = {args.threads}", "[export]",
                 'formats = ["onnx"]', "[export.options.onnx]", f"quantize = {'true' if args.quantize else 'false'}",
                 "[output]", 'runs_dir = "runs"']
        (Path(tmp) / "recipe.toml").write_text("\n".join(lines) + "\n")
        start = time.perf_counter()
        code = builder(["run", str(Path(tmp) / "recipe.toml"), "-q"])
        wall = time.perf_counter() - start
        if code != 0:
            return code
        (run_dir,) = (Path(tmp) / "runs").iterdir()
        summary = json.loads((run_dir / "summary.json").read_text())
        history = json.loads((run_dir / "metrics.json").read_text())["history"]
    m = summary["metrics"]
    exports = {e["variant"]: e for e in summary["exports"]}
    print(f"## QA: SQuAD v1.1 train subset -> XQuAD-en ({args.trainer}, {args.epochs} epochs, max length {args.max_length})\n")
    print(f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print("| train questions | EM | F1 | train ex/s | wall | export | F1 | drop | answer-token agreement | same answer | batch-1 ms | verdict |")
    print("|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for variant, e in exports.items():
        kept = len((e.get("details") or {}).get("fp32_nodes") or [])
        print(f"| {count} | {m['exact_match']:.4f} | {m['f1']:.4f} | {summary['train_examples_per_second']:.0f} | {wall / 60:.1f} min | "
              f"onnx/{variant}{f' ({kept} fp32 nodes)' if kept else ''} | {e['exported_metric']:.4f} | {e['metric_drop']:+.4f} | "
              f"{e['agreement']:.2%} | {e.get('example_agreement') or e['agreement']:.2%} | {e['latency_batch1_ms_p50']:.1f} | {e.get('status')} |")
    if args.json_out:
        args.json_out.write_text(json.dumps({"command": sys.argv, "summary": summary, "history": history}, indent=1))
    print("History: " + "; ".join(f"epoch {h['epoch']}: EM {h['exact_match']:.4f} F1 {h['f1']:.4f}" for h in history))
    return 0


if __name__ == "__main__":
    sys.exit(main())
