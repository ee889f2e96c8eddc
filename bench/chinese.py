"""Chinese end to end on the shared data, through the product path (`builder run`, `builder predict`).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/chinese.py                       # every dataset, both models
    HF_HUB_OFFLINE=1 .venv/bin/python bench/chinese.py --datasets cais_slots --models char --json-out r.json

Datasets (``../shared/data``): CLUENER2020 (``cluener``: NER, JSONL text + character spans), CAIS
(``cais_intents``: classification; ``cais_slots``: slots as JSONL spans) and XQuAD-zh (``xquad_zh``:
the data check only: there is no Chinese QA training set). Models:

* ``minilm``: the bundled all-MiniLM-L6-v2 (English, uncased WordPiece; many Chinese characters are
  ``[UNK]`` to it, which the data check's vocabulary figure reports);
* ``char``: a bert-base-chinese-style model built here (one WordPiece token per character of the
  training data, random init: no pretrained Chinese encoder installs on these machines), the
  layout a user's own Chinese model (``model.base = "bert-base-chinese"``) has.

For every (dataset, model), alternating, it writes a recipe, runs `builder run` (int8 export
verified), then `builder predict --input` on the validation texts as plain text, and reports the
run's validation metric, the same metric recomputed from the plain-text predictions (entities are
compared as ``(start, end, label)`` character spans of the user's text), the unknown-character share
from `RUN/data_check.json`, and the wall time. Skips with a message when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILDER = str(ROOT / ".venv" / "bin" / "builder")

DATASETS: dict[str, dict[str, Any]] = {
    "cluener": {"task": "ner", "train": "cluener/train.jsonl", "validation": "cluener/dev.jsonl"},
    "cais_slots": {"task": "ner", "train": "cais/train_slots.jsonl", "validation": "cais/valid_slots.jsonl"},
    "cais_intents": {"task": "classification", "train": "cais/train.jsonl", "validation": "cais/valid.jsonl"},
}


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", ROOT.parent / "shared" / "data"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_char_model(directory: Path, texts: list[str], hidden: int, layers: int) -> Path:
    """A bert-base-chinese-style folder: one vocabulary entry per character seen in ``texts``."""
    sys.path.insert(0, str(ROOT))
    from assistant_builder.conformance.tiny_model import make_tiny_bert
    characters = sorted({c for text in texts for c in text if not c.isspace()})
    return make_tiny_bert(directory, hidden_size=hidden, layers=layers, heads=max(1, hidden // 64), max_positions=256,
                          extra_words=characters)


def recipe(name: str, spec: dict[str, Any], train: Path, validation: Path, base: str, model_kind: str, args: argparse.Namespace) -> str:
    lines = ["recipe_version = 1", f'name = "{name}"', "[task]", f'type = "{spec["task"]}"', "[model]", f"base = {json.dumps(base)}",
             f"max_length = {args.max_length}", "[data]", f"train = {json.dumps(str(train))}",
             f"validation = {json.dumps(str(validation))}", "[train]", f"seed = {args.seed}",
             f"num_threads = {args.threads}"]
    epochs = args.epochs_char if model_kind == "char" else args.epochs_minilm
    if epochs:
        lines.append(f"epochs = {epochs}")
    if model_kind == "char":  # random init: the embeddings must learn, at a from-scratch learning rate
        lines += ["freeze_word_embeddings = false", f"learning_rate = {args.char_lr}", f"head_learning_rate = {args.char_lr}"]
    lines += ["[export]", 'formats = ["onnx"]', "[export.options.onnx]", "quantize = true", "[output]", 'runs_dir = "runs"']
    return "\n".join(lines) + "\n"


def drop_nested(record: dict[str, Any]) -> int:
    """Drop the spans of ``record`` that the product refuses with a located error: a span inside an earlier,
    longer one (CLUENER train line 1,507 nests a company in a book title), or one that shares a word with an
    earlier span (dev line 1,251: 'Moon' and 'Nada' inside the one word 'MoonvsNada'). Returns how many."""
    sys.path.insert(0, str(ROOT))
    from assistant_builder.toolkit.alignment import char_span_words, split_words

    offsets = split_words(record["text"])[1]
    kept: list[dict[str, Any]] = []
    taken: set[int] = set()
    for entity in sorted(record["entities"], key=lambda e: (e["start"], -e["end"])):
        words = set(char_span_words(offsets, entity["start"], entity["end"]))
        if (kept and entity["start"] < kept[-1]["end"]) or words & taken:
            continue
        kept.append(entity)
        taken |= words
    dropped = len(record["entities"]) - len(kept)
    record["entities"] = kept
    return dropped


def entity_f1(gold: list[dict[str, Any]], predicted: list[list[dict[str, Any]]]) -> float:
    gold_set = {(i, e["start"], e["end"], e["label"]) for i, record in enumerate(gold) for e in record["entities"]}
    found = {(i, e["start"], e["end"], e["label"]) for i, entities in enumerate(predicted) for e in entities}
    return 2 * len(gold_set & found) / (len(gold_set) + len(found)) if gold_set or found else 1.0


def one(dataset: str, model_kind: str, root: Path, work: Path, args: argparse.Namespace, char_models: dict[str, Path]) -> dict[str, Any]:
    spec = DATASETS[dataset]
    folder = work / f"{dataset}-{model_kind}"
    folder.mkdir(parents=True, exist_ok=True)
    base = "minilm-l6" if model_kind == "minilm" else str(char_models[dataset.split("_")[0]])
    train = root / spec["train"]
    records = read_jsonl(train)[:args.train_limit or None]  # the first N training lines (the same for both models)
    dropped = sum(drop_nested(record) for record in records) if spec["task"] == "ner" else 0
    if args.train_limit or dropped:
        train = folder / "train.jsonl"
        train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    validation = root / spec["validation"]
    held_out = read_jsonl(validation)
    dropped_validation = sum(drop_nested(record) for record in held_out) if spec["task"] == "ner" else 0
    if dropped_validation:
        validation = folder / "validation.jsonl"
        validation.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in held_out), encoding="utf-8")
    (folder / "recipe.toml").write_text(recipe(f"{dataset}-{model_kind}", spec, train, validation, base, model_kind, args), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run([BUILDER, "run", str(folder / "recipe.toml"), "-q"], env=env, capture_output=True, text=True)
    train_s = time.perf_counter() - started
    result: dict[str, Any] = {"dataset": dataset, "model": model_kind, "exit": done.returncode, "run_s": round(train_s, 1),
                              "train_examples": len(records), "spans_dropped": {"train": dropped, "validation": dropped_validation}}
    if done.returncode not in (0, 1):
        result["error"] = done.stderr[-2000:]
        return result
    (run_dir,) = (folder / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    result["metric"] = metrics["metric"]
    result["validation"] = metrics["metrics"][metrics["metric"]]
    summary = json.loads((run_dir / "summary.json").read_text())
    result["epochs_run"] = summary.get("epochs_run")
    result["train_examples_per_second"] = summary.get("train_examples_per_second")
    result["exports"] = {e["variant"]: {"metric": e.get("exported_metric"), "agreement": e.get("agreement"), "status": e.get("status")}
                         for e in summary["exports"]}
    check = json.loads((run_dir / "data_check.json").read_text())
    vocabulary = check.get("vocabulary") or {}
    result["unknown_share"] = {split: figures.get("unknown_share") for split, figures in (vocabulary.get("splits") or {}).items()}
    gold = read_jsonl(validation)
    inputs = folder / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n" for r in gold), encoding="utf-8")
    started = time.perf_counter()
    predicted = subprocess.run([BUILDER, "predict", str(run_dir), "--variant", "fp32", "--input", str(inputs)], env=env,
                               capture_output=True, text=True)
    result["predict_s"] = round(time.perf_counter() - started, 1)
    if predicted.returncode:
        result["predict_error"] = predicted.stderr[-2000:]
        return result
    lines = [json.loads(line) for line in predicted.stdout.splitlines()]
    if spec["task"] == "ner":
        for line, record in zip(lines, gold):
            assert all(record["text"][e["start"]:e["end"]] == e["text"] for e in line["entities"]), line
        result["plain_text"] = round(entity_f1(gold, [line["entities"] for line in lines]), 4)
    else:
        result["plain_text"] = round(sum(line["label"] == record["label"] for line, record in zip(lines, gold)) / len(gold), 4)
    result["run_dir"] = str(run_dir)
    return result


def xquad_check(root: Path, work: Path) -> dict[str, Any]:
    """The data check's vocabulary figure for XQuAD-zh (question + context) under MiniLM."""
    folder = work / "xquad_zh"
    folder.mkdir(parents=True, exist_ok=True)
    path = root / "xquad_zh" / "xquad.zh.json"
    (folder / "recipe.toml").write_text("recipe_version = 1\nname = \"xquad-zh\"\n[task]\ntype = \"qa\"\n[data]\n"
                                        f"train = {json.dumps(str(path))}\nvalidation = {json.dumps(str(path))}\n", encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run([BUILDER, "data", "check", str(folder / "recipe.toml"), "--json"], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - started
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    vocabulary = report.get("vocabulary") or {}
    return {"dataset": "xquad_zh", "model": "minilm", "check_s": round(seconds, 1),
            "unknown_share": {s: f.get("unknown_share") for s, f in (vocabulary.get("splits") or {}).items()},
            "notes": report.get("notes"), "error": None if report else done.stderr[-1000:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="cais_slots,cais_intents,cluener")
    parser.add_argument("--models", default="char,minilm")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs-minilm", type=int, default=0, help="0: the product default")
    parser.add_argument("--epochs-char", type=int, default=10)
    parser.add_argument("--char-lr", type=float, default=1e-3)
    parser.add_argument("--char-hidden", type=int, default=256)
    parser.add_argument("--char-layers", type=int, default=4)
    parser.add_argument("--train-limit", type=int, default=0, help="train on the first N training lines (0: all)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default=None, help="keep run folders here (default: a temporary folder)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    root = data_root()
    if not (root / "cais").is_dir():
        print(f"skipped: no Chinese data in {root}")
        return 0
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-chinese-"))
    datasets, models = args.datasets.split(","), args.models.split(",")
    char_models: dict[str, Path] = {}
    if "char" in models:
        for corpus in sorted({d.split("_")[0] for d in datasets}):
            texts = [r["text"] for d, s in DATASETS.items() if d.split("_")[0] == corpus for r in read_jsonl(root / s["train"])]
            char_models[corpus] = build_char_model(work / f"char-model-{corpus}", texts, args.char_hidden, args.char_layers)
    results = [xquad_check(root, work)] if (root / "xquad_zh").is_dir() else []
    print(json.dumps(results[-1], ensure_ascii=False) if results else "", flush=True)
    for dataset in datasets:
        for model_kind in models:  # the two models alternate within each dataset
            results.append(one(dataset, model_kind, root, work, args, char_models))
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    print("\n| dataset | model | validation | from plain text | int8 | unknown (train / validation chars) | run s | predict s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "validation" not in r:
            continue
        share = " / ".join(f"{100 * (r['unknown_share'].get(s) or 0):.1f}%" for s in ("train", "validation"))
        int8 = r["exports"].get("int8", {})
        print(f"| {r['dataset']} | {r['model']} | {r['metric']} {r['validation']:.4f} | {r['plain_text']:.4f} | "
              f"{(int8.get('metric') or 0):.4f} ({int8.get('status')}) | {share} | {r['run_s']} | {r['predict_s']} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return max((r.get("exit", 0) for r in results), default=0)


if __name__ == "__main__":
    sys.exit(main())
