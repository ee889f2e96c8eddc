"""NER / slot-filling benchmarks on the shared datasets, through the product path (`builder run`).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ner_datasets.py conll2003                       # product defaults, int8 on
    HF_HUB_OFFLINE=1 .venv/bin/python bench/ner_datasets.py conll2003 --word-shape on,off --seeds 42,43,44 --json-out r.json
    HF_HUB_OFFLINE=1 .venv/bin/python bench/ner_datasets.py snips --set train.epochs=8

Writes a recipe into a temporary folder that points at ``../shared/data/<dataset>`` (train file,
evaluated on its validation file) and runs it with the bundled MiniLM and the product defaults
(unless ``--epochs`` or ``--set`` say otherwise), exporting ONNX fp32 and, with ``--quantize``
(the default), int8, each verified with the product's default gates. For every configuration
(``--word-shape`` values x ``--seeds``, run alternately) it prints entity F1, the exports' F1,
agreement with PyTorch (entities and sentences), verdicts and batch-1 latency, as Markdown, and
the mean and spread over seeds. The process exits with the first non-zero exit code of a run.
Skips with a message when the data folder is absent.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_data import keep_run  # noqa: E402

DATASETS = {
    "conll2003": {"train": "conll2003/train.txt", "validation": "conll2003/valid.txt", "format": "conll"},
    "snips": {"train": "snips/train/seq.in", "validation": "snips/valid/seq.in", "format": "seq"},
    "atis": {"train": "atis/train/seq.in", "validation": "atis/valid/seq.in", "format": "seq"},
    "wnut17": {"train": "wnut17/wnut17train.conll", "validation": "wnut17/emerging.dev.conll", "format": "conll"},
}


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def toml_value(text: str) -> str:
    """An override value as TOML: numbers and booleans as they are, anything else quoted."""
    try:
        json.loads(text)
        return text
    except ValueError:
        return json.dumps(text)


def recipe_text(name: str, spec: dict[str, str], root: Path, args: argparse.Namespace, word_shape: str, seed: int) -> str:
    sections: dict[str, dict[str, str]] = {
        "task": {"type": '"ner"'}, "task.options": {"word_shape": json.dumps(word_shape)},
        "model": {"base": '"minilm-l6"', "max_length": str(args.max_length)},
        "data": {"train": json.dumps(str(root / spec["train"])), "validation": json.dumps(str(root / spec["validation"])),
                 "format": json.dumps(spec["format"])},
        "train": {"trainer": json.dumps(args.trainer), "seed": str(seed), "num_threads": str(args.threads)},
        "export": {"formats": '["onnx"]'}, "export.options.onnx": {"quantize": "true" if args.quantize else "false"},
        "output": {"runs_dir": '"runs"'},
    }
    if args.epochs:
        sections["train"]["epochs"] = str(args.epochs)
    for item in args.set:
        key, _, value = item.partition("=")
        table, _, field = key.rpartition(".")
        sections.setdefault(table, {})[field] = toml_value(value)
    lines = ["recipe_version = 1", f'name = "{name}"']
    for table, values in sections.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {v}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def run_one(name: str, spec: dict[str, str], root: Path, args: argparse.Namespace, word_shape: str, seed: int) -> dict[str, Any]:
    from assistant_builder.cli.main import main as builder

    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        recipe = Path(tmp) / "recipe.toml"
        recipe.write_text(recipe_text(name, spec, root, args, word_shape, seed))
        start = time.perf_counter()
        code = builder(["run", str(recipe), "-q"])
        wall = time.perf_counter() - start
        result: dict[str, Any] = {"word_shape": word_shape, "seed": seed, "exit_code": code, "wall_s": wall}
        if code != 0:
            return result
        (run_dir,) = (Path(tmp) / "runs").iterdir()
        keep_run(run_dir, args.keep_runs)
        summary = json.loads((run_dir / "summary.json").read_text())
        details = json.loads((run_dir / "metrics.json").read_text())
        options = json.loads((run_dir / "task_options.json").read_text())
    result.update(metrics=summary["metrics"], word_shape_used=options.get("word_shape"), epochs_run=summary["epochs_run"],
                  best_epoch=summary["best_epoch"], train_examples_per_second=summary["train_examples_per_second"],
                  history=[{"epoch": h["epoch"], "f1": h["f1"]} for h in details["history"]],
                  per_type={k: v.get("f1", 0.0) for k, v in (details.get("per_type") or {}).items()},
                  exports={e["variant"]: {k: e.get(k) for k in ("exported_metric", "metric_drop", "agreement", "example_agreement",
                                                              "status", "failures", "latency_batch1_ms_p50", "size_bytes", "details")}
                           for e in summary["exports"]})
    return result


def export_cell(export: dict[str, Any] | None) -> str:
    if not export:
        return "-"
    return (f"{export['exported_metric']:.4f}, {export['agreement']:.2%} ent. / {export['example_agreement']:.2%} sent., "
            f"{export['latency_batch1_ms_p50']:.1f} ms, {export['status']}"
            + (f" ({len(export['details'].get('fp32_nodes', []))} fp32 nodes)" if export.get("details", {}).get("fp32_nodes") else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--trainer", choices=["full", "lora"], default="full")
    parser.add_argument("--epochs", type=int, default=None, help="default: the product's (train.epochs)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seeds", default="42", help="comma-separated seeds")
    parser.add_argument("--word-shape", default="auto", help="comma-separated values of task.options.word_shape (auto, on, off)")
    parser.add_argument("--no-quantize", dest="quantize", action="store_false", help="export fp32 only")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE", help="any other recipe key, e.g. train.learning_rate=2e-4")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--keep-runs", type=Path, default=None, help="copy each run directory (without checkpoints) here")
    args = parser.parse_args(argv)

    spec = DATASETS[args.dataset]
    root = data_root()
    if not (root / spec["train"]).exists():
        print(f"SKIPPED: {root / spec['train']} not found")
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    shapes = args.word_shape.split(",")
    results = []
    for seed in seeds:  # configurations alternate within each seed
        for shape in shapes:
            result = run_one(args.dataset, spec, root, args, shape, seed)
            results.append(result)
            print(json.dumps({k: v for k, v in result.items() if k not in ("history", "per_type")}), file=sys.stderr, flush=True)
            if args.json_out:
                args.json_out.write_text(json.dumps({"command": sys.argv, "results": results}, indent=1))
    print(f"## {args.dataset} ({args.trainer}, epochs {args.epochs or 'product default'}, max length {args.max_length}"
          + (f", {' '.join(args.set)}" if args.set else "") + ")\n")
    print(f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print("| word_shape | seed | exit | entity F1 | precision | recall | epochs (best) | train ex/s | wall | ONNX fp32 | ONNX int8 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        if r["exit_code"] != 0:
            print(f"| {r['word_shape']} | {r['seed']} | {r['exit_code']} | | | | | | {r['wall_s'] / 60:.1f} min | | |")
            continue
        m = r["metrics"]
        print(f"| {r['word_shape']} ({r['word_shape_used']}) | {r['seed']} | 0 | {m['f1']:.4f} | {m['precision']:.4f} | {m['recall']:.4f} | "
              f"{r['epochs_run']} ({r['best_epoch']}) | {r['train_examples_per_second']:.0f} | {r['wall_s'] / 60:.1f} min | "
              f"{export_cell(r['exports'].get('fp32'))} | {export_cell(r['exports'].get('int8'))} |")
    if len(seeds) > 1:
        print("\n| word_shape | mean F1 | stdev | min | max |\n|---|---:|---:|---:|---:|")
        for shape in shapes:
            scores = [r["metrics"]["f1"] for r in results if r["word_shape"] == shape and r["exit_code"] == 0]
            if len(scores) > 1:
                print(f"| {shape} | {statistics.mean(scores):.4f} | {statistics.stdev(scores):.4f} | {min(scores):.4f} | {max(scores):.4f} |")
    for r in results:
        if r["exit_code"] == 0 and r["per_type"]:
            print(f"\n{r['word_shape']} seed {r['seed']}: per type F1 " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(r["per_type"].items()))
                  + "; by epoch " + ", ".join(f"{h['f1']:.4f}" for h in r["history"]))
    return next((r["exit_code"] for r in results if r["exit_code"] != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
