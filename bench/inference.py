"""Inference benchmark on SST-2 dev: PyTorch eager fp32 vs our TorchScript, ONNX fp32 and ONNX int8
exports (and, when given a Python with Optimum installed, Optimum's own ONNX export), all in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/inference.py [--run RUN_DIR] [--calls 300] [--repeats 3] \\
        [--optimum-python /tmp/optimum-venv/bin/python] [--json-out bench/results/inference.json]

Without ``--run`` it first fine-tunes MiniLM-L6 on SST-2 train through ``builder run`` (1 epoch,
exports ONNX fp32 + int8 and TorchScript, each verified) in a temporary folder.

Every system runs the product path of ``builder predict``: the runtime ``Predictor`` (parse ->
tokenise -> model -> decode into label + scores), only the model backend differs. Our ONNX
bundles are timed in a separate process that imports only the torch-free runtime, as deployed. Per system:
batch 1: median and p95 latency over ``--calls`` single-sentence calls (dev sentences in order,
warm-up excluded); batch 32: examples/s over all 872 dev sentences in length-sorted batches; the
dev accuracy of those predictions; and agreement with eager (same label). Systems alternate within
each repeat; the table shows the median over repeats (min in brackets). 2 threads everywhere.

Optimum's export is of ``BertForSequenceClassification`` on the same encoder (CLS pooler, random
head: our mean-pooling head is not an Optimum architecture), so it is timed but has no accuracy;
if our bundle loads with ``ORTModelForSequenceClassification``, that is timed and scored too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
THREADS = 2


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", REPO.parent / "shared" / "data"))


def read_dev() -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (data_root() / "sst2" / "dev.jsonl").read_text().splitlines() if line.strip()]
    return [r["text"] for r in rows], [str(r["label"]) for r in rows]


def train_run(work: Path, epochs: int) -> Path:
    """Fine-tune on SST-2 train with the product defaults; return the run directory."""
    sst2 = data_root() / "sst2"
    recipe = work / "sst2.toml"
    recipe.write_text(textwrap.dedent(f"""
        recipe_version = 1
        name = "bench-inference-sst2"

        [task]
        type = "classification"

        [task.options]
        label_field = "label"

        [data]
        train = "{sst2 / 'train.jsonl'}"
        validation = "{sst2 / 'dev.jsonl'}"

        [train]
        epochs = {epochs}
        num_threads = {THREADS}

        [export]
        formats = ["onnx", "torchscript"]
        max_metric_drop = 0.01
        min_agreement = 0.98      # int8 flips a few borderline sentences; accuracy is what the target bounds

        [export.options.onnx]
        quantize = true

        [output]
        runs_dir = "{work / 'runs'}"
    """))
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "assistant_builder.cli.main", "run", str(recipe), "-q"], check=True, cwd=REPO)
    print(f"trained in {time.monotonic() - started:.0f} s", file=sys.stderr)
    (run,) = (work / "runs").iterdir()
    return run


def make_predictors(run: Path) -> dict[str, Any]:
    """One runtime Predictor per backend, sharing task, tokenizer and decoding."""
    import torch

    from assistant_builder.contracts import ExportedArtifact
    from assistant_builder.engine.torch_runner import torch_runner
    from assistant_builder.registry import build_registry
    from assistant_builder.runtime import load_predictor

    torch.set_num_threads(THREADS)
    registry = build_registry()
    predictors: dict[str, Any] = {}
    fp32 = load_predictor(run, "fp32", threads=THREADS)
    model = fp32.task.load_model(run / "model").eval()
    eager = load_predictor(run, "fp32", threads=THREADS)
    eager.runner = torch_runner(model, eager.output_names)
    predictors["PyTorch eager fp32"] = eager
    script = run / "exports" / "torchscript" / "model.pt"
    if script.exists():
        scripted = load_predictor(run, "fp32", threads=THREADS)
        exporter = registry.create("exporter", "torchscript")
        scripted.runner = exporter.load_runner(ExportedArtifact("torchscript", "fp32", script), scripted.output_names)
        predictors["our TorchScript"] = scripted
    return predictors


RUNTIME_WORKER = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from bench.inference import read_dev, time_batch1, time_batch32
from assistant_builder.runtime import load_predictor
args = json.loads(sys.argv[2])
texts, _ = read_dev()
predictor = load_predictor(args["run"], args["variant"], threads=args["threads"])
latencies = time_batch1(predictor, texts, args["calls"])
throughput, labels = time_batch32(predictor, texts)
assert "torch" not in sys.modules
print("RUNTIMEJSON " + json.dumps({"latencies": latencies, "examples_per_s": throughput, "labels": labels}))
"""


def time_runtime(run: Path, variant: str, calls: int) -> dict[str, Any]:
    """Our ONNX bundle timed the way it is deployed: a process with the torch-free runtime only.

    (In the same process as the PyTorch systems, torch's OpenMP threads keep spinning after each
    PyTorch call and take CPU from ONNX Runtime's threads.)"""
    payload = json.dumps({"run": str(run), "variant": variant, "threads": THREADS, "calls": calls})
    result = subprocess.run([sys.executable, "-c", RUNTIME_WORKER, str(REPO), payload], capture_output=True, text=True,
                            timeout=1800, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("RUNTIMEJSON ")), None)
    if line is None:
        raise SystemExit(f"runtime worker failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(line[len("RUNTIMEJSON "):])


def time_batch1(predictor: Any, texts: list[str], calls: int) -> list[float]:
    for text in texts[:10]:
        predictor.predict([text])
    latencies = []
    for i in range(calls):
        text = texts[i % len(texts)]
        started = time.perf_counter()
        predictor.predict([text])
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def time_batch32(predictor: Any, texts: list[str]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    predictions = predictor.predict(texts, batch_size=32)
    return len(texts) / (time.perf_counter() - started), [p["label"] for p in predictions]


OPTIMUM_SCRIPT = r"""
import json, os, sys, time, statistics
os.environ["HF_HUB_OFFLINE"] = "1"
import numpy as np
from transformers import AutoTokenizer
from optimum.onnxruntime import ORTModelForSequenceClassification
import onnxruntime as ort
args = json.loads(sys.argv[1])
texts, gold, threads = args["texts"], args["gold"], args["threads"]
options = ort.SessionOptions(); options.intra_op_num_threads = threads; options.inter_op_num_threads = 1
def measure(model, tokenizer, labelled):
    def call(batch):
        enc = tokenizer(batch, return_tensors="np", padding=True, truncation=True, max_length=128)
        logits = model(**enc).logits
        return np.asarray(logits).argmax(-1)
    for t in texts[:10]: call([t])
    lat = []
    for i in range(args["calls"]):
        s = time.perf_counter(); call([texts[i % len(texts)]]); lat.append((time.perf_counter() - s) * 1000)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    s = time.perf_counter(); preds = {}
    for start in range(0, len(order), 32):
        idx = order[start:start + 32]
        for i, p in zip(idx, call([texts[i] for i in idx])): preds[i] = int(p)
    eps = len(texts) / (time.perf_counter() - s)
    acc = None
    if labelled:
        id2label = model.config.id2label
        acc = sum(id2label[preds[i]] == gold[i] for i in range(len(texts))) / len(texts)
    return {"latencies": lat, "examples_per_s": eps, "accuracy": acc}
out = {}
export_dir = args["workdir"] + "/optimum-export"
if not os.path.exists(export_dir + "/model.onnx"):
    model = ORTModelForSequenceClassification.from_pretrained(args["base"], export=True, session_options=options, provider="CPUExecutionProvider")
    model.save_pretrained(export_dir); AutoTokenizer.from_pretrained(args["base"]).save_pretrained(export_dir)
model = ORTModelForSequenceClassification.from_pretrained(export_dir, session_options=options, provider="CPUExecutionProvider")
out["Optimum export (BertForSequenceClassification)"] = measure(model, AutoTokenizer.from_pretrained(export_dir), False)
try:
    ours = ORTModelForSequenceClassification.from_pretrained(args["bundle"], session_options=options, provider="CPUExecutionProvider")
    out["Optimum ORTModel on our ONNX fp32 bundle"] = measure(ours, AutoTokenizer.from_pretrained(args["bundle"]), True)
except Exception as exc:
    out["error_loading_our_bundle"] = f"{type(exc).__name__}: {exc}"
print("OPTIMUMJSON " + json.dumps(out))
"""


def run_optimum(python: str, run: Path, texts: list[str], gold: list[str], calls: int, workdir: Path) -> dict[str, Any]:
    from assistant_builder.basemodels import resolve_base_model

    payload = {"texts": texts, "gold": gold, "calls": calls, "threads": THREADS, "workdir": str(workdir),
               "base": str(resolve_base_model("minilm-l6", REPO)), "bundle": str(run / "exports" / "onnx")}
    result = subprocess.run([python, "-c", OPTIMUM_SCRIPT, json.dumps(payload)], capture_output=True, text=True, timeout=1800,
                            check=False)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("OPTIMUMJSON ")), None)
    if line is None:
        print(f"Optimum run failed (exit {result.returncode}):\n{result.stderr[-3000:]}", file=sys.stderr)
        return {}
    return json.loads(line[len("OPTIMUMJSON "):])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summarise(name: str, rounds: list[dict[str, Any]], gold: list[str], reference: list[str] | None) -> dict[str, Any]:
    medians = [statistics.median(r["latencies"]) for r in rounds]
    p95s = [percentile(r["latencies"], 95) for r in rounds]
    throughputs = [r["examples_per_s"] for r in rounds]
    labels = rounds[-1].get("labels")
    accuracy = rounds[-1].get("accuracy")
    if labels is not None:
        accuracy = sum(p == g for p, g in zip(labels, gold)) / len(gold)
    agreement = sum(p == q for p, q in zip(labels, reference)) / len(reference) if labels is not None and reference else None
    return {"system": name, "batch1_median_ms": statistics.median(medians), "batch1_median_ms_min": min(medians),
            "batch1_p95_ms": statistics.median(p95s), "batch32_examples_per_s": statistics.median(throughputs),
            "batch32_examples_per_s_max": max(throughputs), "accuracy": accuracy, "agreement_with_eager": agreement,
            "repeats": len(rounds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="a finished SST-2 run directory (default: train one)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--calls", type=int, default=300, help="batch-1 calls per system per repeat (>= 200)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--optimum-python", default=None, help="a Python interpreter with optimum[onnxruntime] installed")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (data_root() / "sst2" / "dev.jsonl").exists():
        print(f"SKIPPED: {data_root() / 'sst2'} not found (set ASSISTANT_BUILDER_DATA)")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts, gold = read_dev()
    work = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    run = args.run or train_run(work, args.epochs)
    predictors = make_predictors(run)
    variants = json.loads((run / "exports" / "onnx" / "manifest.json").read_text())["models"]
    runtime_systems = {f"our ONNX {variant} (torch-free runtime process)": variant for variant in ("fp32", "int8") if variant in variants}
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in [*predictors, *runtime_systems]}
    for repeat in range(args.repeats):
        for name in rounds:
            if name in predictors:
                latencies = time_batch1(predictors[name], texts, args.calls)
                throughput, labels = time_batch32(predictors[name], texts)
                rounds[name].append({"latencies": latencies, "examples_per_s": throughput, "labels": labels})
            else:
                rounds[name].append(time_runtime(run, runtime_systems[name], args.calls))
            last = rounds[name][-1]
            print(f"repeat {repeat + 1}: {name}: batch-1 median {statistics.median(last['latencies']):.2f} ms, "
                  f"batch-32 {last['examples_per_s']:.0f} ex/s", file=sys.stderr)
    reference = rounds["PyTorch eager fp32"][-1]["labels"]
    results = [summarise(name, r, gold, reference) for name, r in rounds.items()]
    if args.optimum_python:
        optimum_rounds: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.repeats):
            for name, value in run_optimum(args.optimum_python, run, texts, gold, args.calls, work).items():
                if isinstance(value, dict):
                    optimum_rounds.setdefault(name, []).append(value)
                else:
                    print(f"{name}: {value}", file=sys.stderr)
        results += [summarise(name, r, gold, None) for name, r in optimum_rounds.items()]

    lines = [f"run: {run}", f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {THREADS} threads; "
             f"{len(texts)} SST-2 dev sentences; batch-1 over {args.calls} calls x {args.repeats} repeats", "",
             "| system | batch-1 median ms (min) | batch-1 p95 ms | batch-32 ex/s (max) | dev accuracy | same label as eager |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        agree = "-" if r["agreement_with_eager"] is None else f"{r['agreement_with_eager'] * 100:.2f}%"
        lines.append(f"| {r['system']} | {r['batch1_median_ms']:.2f} ({r['batch1_median_ms_min']:.2f}) | {r['batch1_p95_ms']:.2f} "
                     f"| {r['batch32_examples_per_s']:.0f} ({r['batch32_examples_per_s_max']:.0f}) | {acc} | {agree} |")
    print("\n".join(lines))
    if args.json_out:
        args.json_out.write_text(json.dumps({"run": str(run), "calls": args.calls, "repeats": args.repeats, "results": results},
                                            indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
