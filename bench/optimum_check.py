"""Check that exported ONNX bundles load with Hugging Face Optimum and predict as our runtime does.

For each run directory given, every model variant of ``RUN/exports/onnx`` (``model.onnx``, and
``model.int8.onnx`` when exported) is loaded with ``optimum.onnxruntime.ORTModelFor<Task>`` and its
tokenizer with ``AutoTokenizer``, in a separate virtual environment: Optimum's ONNX package pins
transformers 4.57, while assistant-builder trains with transformers 5. Then, on the run's first
``--inputs`` validation examples, it compares with the torch-free runtime (``Predictor``):

* ``ids``: ``AutoTokenizer(bundle)`` gives the token ids our tokenizer gives (inputs that fit
  ``max_length``; ours truncates, transformers' pipelines do not by default);
* ``max |diff|``: the ORTModel's outputs (``logits`` / ``start_logits`` + ``end_logits``) on our
  features, against our runtime's outputs;
* ``decoded``: those ORTModel outputs decoded by the task plugin: the share of predictions equal
  to our runtime's (the same prediction key, scores within 1e-4);
* ``pipeline``: transformers' own pipeline (``text-classification``, ``token-classification``,
  ``question-answering``) run on the ORTModel: the share agreeing with ours (label; entities from
  first sub-token tags, repaired to IOB2 as we do; normalised answer; QA decoding rules differ).

A last row per run (``model/ (PyTorch)``, skip with ``--no-pytorch``) loads the run's PyTorch
folder with that environment's transformers 4.57 (``AutoModelFor*``; ``trust_remote_code`` for
classification's pooled head) and compares it the same way with our fp32 runtime: the model
folders load with transformers 4 as well as 5.

The environment (default ``/tmp/assistant-builder-optimum-venv``) is built on first use with
``pip install "optimum[onnxruntime]" "transformers==4.57.*" "torch==2.13.0"`` (Optimum imports
torch, so the CPU wheel is pinned) and reused afterwards. Exit codes: 0 all agree, 1 a
disagreement, 2 bad arguments, 3 the environment could not be built (e.g. no package index).

    .venv/bin/python bench/optimum_check.py runs/quickstart-* --inputs 32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

VENV = Path(tempfile.gettempdir()) / "assistant-builder-optimum-venv"
REQUIREMENTS = ["optimum[onnxruntime]", "transformers==4.57.*", "torch==2.13.0"]
ORT_CLASSES = {"classification": "ORTModelForSequenceClassification", "ner": "ORTModelForTokenClassification",
               "qa": "ORTModelForQuestionAnswering"}
EXIT_NO_ENV = 3

# Runs in the Optimum environment: no assistant-builder there. Reads a job (JSON file), writes results (JSON file).
CHILD = r"""
import json, sys
from importlib.metadata import version
import numpy as np
import torch
import optimum.onnxruntime as ort_models
from transformers import (AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                          AutoModelForTokenClassification, AutoTokenizer, pipeline)

job = json.load(open(sys.argv[1]))
bundle, task = job["bundle"], job["task"]
tokenizer = AutoTokenizer.from_pretrained(bundle)
pairs = task == "qa"
ids = [tokenizer(*text)["input_ids"] if pairs else tokenizer(text)["input_ids"] for text in job["texts"]]
results = {"ids": ids, "variants": {}}


def evaluate(loaded, tensors, **pipeline_args):
    outputs = {name: [] for name in job["output_names"]}
    with torch.no_grad():
        for feature in job["features"]:
            result = loaded(**{key: tensors([value]) for key, value in feature.items()})
            for name in outputs:
                outputs[name].append(np.asarray(getattr(result, name))[0].tolist())
    if task == "classification":
        ran = pipeline("text-classification", **pipeline_args)(job["texts"], top_k=1)
        ran = [r[0] if isinstance(r, list) else r for r in ran]
    elif task == "ner":
        ran = pipeline("token-classification", aggregation_strategy="none", ignore_labels=[], **pipeline_args)(job["texts"])
    else:
        answer = pipeline("question-answering", **pipeline_args)
        ran = [answer(question=q, context=c) for q, c in job["texts"]]
    return {"class": type(loaded).__name__, "config_labels": loaded.config.id2label, "outputs": outputs, "pipeline": ran}


for variant, file_name in job["variants"].items():
    model = getattr(ort_models, job["ort_class"]).from_pretrained(bundle, file_name=file_name)
    results["variants"][variant] = evaluate(model, lambda v: np.asarray(v, dtype=np.int64), model=model, tokenizer=tokenizer)
if job.get("model_dir"):  # the run's PyTorch model folder, with this older transformers
    auto = {"classification": AutoModelForSequenceClassification, "ner": AutoModelForTokenClassification,
            "qa": AutoModelForQuestionAnswering}[task]
    remote = task == "classification"
    model = auto.from_pretrained(job["model_dir"], trust_remote_code=remote).eval()
    results["variants"]["pytorch"] = evaluate(model, lambda v: torch.tensor(v), model=job["model_dir"], trust_remote_code=remote)
results["versions"] = {name: version(name) for name in ("optimum", "optimum-onnx", "transformers", "onnxruntime", "torch")}
results["imported_assistant_builder"] = sorted(m for m in sys.modules if m.startswith("assistant_builder"))
json.dump(results, open(sys.argv[2], "w"), default=float)
"""


class EnvironmentBuildError(Exception):
    """The Optimum environment could not be built (main() exits with code 3)."""


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, *, quiet: bool = False) -> Path:
    """The Optimum environment's python, building the environment first if it is missing or incomplete."""
    python = venv_python(venv)
    if python.exists() and subprocess.run([str(python), "-c", "import optimum.onnxruntime, transformers"],
                                          capture_output=True).returncode == 0:
        return python
    if not quiet:
        print(f"building {venv}: pip install {' '.join(REQUIREMENTS)} (a few minutes, once)", file=sys.stderr)
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
             # short timeouts: without a reachable package index, fail in about a minute rather than retry for many
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--timeout", "30", "--retries", "1",
              *REQUIREMENTS]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip() and "is ignored" not in line]
            reason = lines[-1] if lines else f"exit code {done.returncode}"
            raise EnvironmentBuildError(f"could not build the Optimum environment in {venv}: `{' '.join(step[:4])} ...` failed: {reason}")
    return python



def validation_examples(run_dir: Path, predictor: Any, count: int) -> list[Any]:
    """The first ``count`` validation examples of the run (as the engine read them)."""
    from assistant_builder.recipe.loader import load_run_recipe

    recipe = load_run_recipe(run_dir).recipe
    data = predictor.task.load_data(recipe.data, predictor.task.Options.model_validate(recipe.task.options))
    return list(data.validation[:count])


def texts_of(task: str, examples: list[Any]) -> list[Any]:
    return [[e.question, e.context] if task == "qa" else e.text for e in examples]


def pipeline_agreement(task: str, ours: list[dict[str, Any]], theirs: list[Any], examples: list[Any]) -> float:
    """Share of examples where transformers' pipeline (on the ORTModel) predicts what our runtime predicts."""
    same = []
    if task == "classification":
        same = [o["label"] == t["label"] for o, t in zip(ours, theirs)]
    elif task == "ner":
        from assistant_builder_tasks.ner.tags import repair, spans

        for example, o, tokens in zip(examples, ours, theirs):
            by_start = {t["start"]: t["entity"] for t in tokens}
            tags = repair([by_start.get(start, "O") for start, _ in example.offsets])
            entities = [(label, example.offsets[a][0], example.offsets[b - 1][1]) for a, b, label in spans(tags)]
            same.append(entities == [(e["label"], e["start"], e["end"]) for e in o["entities"]])
    else:
        from assistant_builder_tasks.qa.metrics import normalize_answer

        same = [normalize_answer(o["answer"]) == normalize_answer(t["answer"]) for o, t in zip(ours, theirs)]
    return float(np.mean(same)) if same else float("nan")


def check_run(run_dir: Path, python: Path, count: int, with_pytorch: bool = True) -> list[dict[str, Any]]:
    """Compare every variant of ``run_dir``'s bundle in Optimum with our runtime; one row per variant.

    With ``with_pytorch``, also the run's ``model/`` folder loaded with that environment's
    transformers (row ``pytorch``), against our runtime's fp32 outputs.
    """
    from assistant_builder.inference import run_features
    from assistant_builder.runtime.bundle import read_bundle
    from assistant_builder.runtime.predictor import OnnxRunner, Predictor

    bundle = read_bundle(run_dir)
    task_name = bundle.manifest["task"]
    rows = []
    predictor = Predictor(bundle, "fp32")
    task, examples = predictor.task, validation_examples(run_dir, predictor, count)
    features = task.encode(examples, predictor.tokenizer, predictor.labels, predictor.options, predictor.max_length)
    texts = texts_of(task_name, examples)
    job = {"bundle": str(bundle.directory.resolve()), "task": task_name, "ort_class": ORT_CLASSES[task_name], "texts": texts,
           "variants": dict(bundle.manifest["models"]), "output_names": list(predictor.output_names),
           "model_dir": str((run_dir / "model").resolve()) if with_pytorch and (run_dir / "model" / "config.json").is_file() else None,
           "features": [{"input_ids": list(f["input_ids"]), "attention_mask": [1] * len(f["input_ids"]),
                         "token_type_ids": list(f.get("token_type_ids") or [0] * len(f["input_ids"]))} for f in features]}
    with tempfile.TemporaryDirectory(prefix="optimum-check-") as scratch:
        job_path, out_path = Path(scratch) / "job.json", Path(scratch) / "out.json"
        job_path.write_text(json.dumps(job))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
               "HF_MODULES_CACHE": str(Path(scratch) / "modules"),
               "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)
        done = subprocess.run([str(python), "-c", CHILD, str(job_path), str(out_path)], env=env, capture_output=True, text=True,
                              cwd=scratch, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{run_dir}: Optimum could not load or run the bundle:\n{done.stderr[-4000:]}")
        result = json.loads(out_path.read_text())
    assert not result["imported_assistant_builder"], result["imported_assistant_builder"]
    encoded = [predictor.tokenizer.encode(*t) if task_name == "qa" else predictor.tokenizer.encode(t) for t in texts]
    fits = [i for i, e in enumerate(encoded) if len(e.ids) < predictor.max_length]
    same_ids = sum(encoded[i].ids == result["ids"][i] for i in fits)
    for variant, theirs in result["variants"].items():
        runner = OnnxRunner(bundle.model_path("fp32" if variant == "pytorch" else variant), predictor.output_names)
        # one feature per batch, as in the Optimum run: int8 graphs quantise activations per batch
        ours_out = run_features(runner, features, predictor.pad_token_id, predictor.output_names, predictor.sequence_outputs,
                                batch_size=1)
        ours = task.decode(ours_out, features, examples, predictor.labels, predictor.options)
        their_out = {n: [np.asarray(v, dtype=np.float32) for v in values] for n, values in theirs["outputs"].items()}
        diff = max((float(np.max(np.abs(a - b))) for n in ours_out for a, b in zip(ours_out[n], their_out[n])), default=0.0)
        decoded = task.decode(their_out, features, examples, predictor.labels, predictor.options)
        agree = [task.prediction_key(a) == task.prediction_key(b) and abs(a.get("score", 0.0) - b.get("score", 0.0)) <= 1e-4
                 for a, b in zip(ours, decoded)]
        labels_ok = [theirs["config_labels"][str(i)] for i in range(len(predictor.labels))] == predictor.labels if predictor.labels else True
        file = "model/ (PyTorch)" if variant == "pytorch" else bundle.manifest["models"][variant]
        rows.append({"run": run_dir.name, "task": task_name, "variant": variant, "file": file,
                     "ort_class": theirs["class"], "inputs": len(examples), "features": len(features),
                     "ids_same": f"{same_ids}/{len(fits)}", "max_abs_diff": diff, "decoded_agreement": float(np.mean(agree)),
                     "pipeline_agreement": pipeline_agreement(task_name, ours, theirs["pipeline"], examples),
                     "config_labels_match": labels_ok, "versions": result["versions"]})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    header = "| run | task | file | loaded as | inputs (features) | same token ids | max \\|diff\\| | decoded agree | pipeline agree | labels |"
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['run']} | {r['task']} | {r['file']} | {r['ort_class']} | {r['inputs']} ({r['features']}) | {r['ids_same']} | "
                     f"{r['max_abs_diff']:.2e} | {r['decoded_agreement']:.1%} | {r['pipeline_agreement']:.1%} | "
                     f"{'ok' if r['config_labels_match'] else 'DIFFER'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, help="run directories (with exports/onnx)")
    parser.add_argument("--venv", type=Path, default=VENV, help=f"the Optimum environment (default {VENV})")
    parser.add_argument("--inputs", type=int, default=16, help="validation examples per run (default 16)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--no-pytorch", action="store_true", help="skip loading RUN/model with the environment's transformers")
    parser.add_argument("--setup-only", action="store_true", help="build the environment and stop")
    args = parser.parse_args(argv)
    if not args.runs and not args.setup_only:
        parser.error("give at least one run directory (or --setup-only)")
    try:
        python = ensure_venv(args.venv)
    except EnvironmentBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_ENV
    if args.setup_only:
        print(python)
        return 0
    rows = [row for run in args.runs for row in check_run(run, python, args.inputs, not args.no_pytorch)]
    print(render(rows))
    versions = rows[0]["versions"] if rows else {}
    print("\nOptimum environment: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    ok = all(r["decoded_agreement"] == 1.0 and r["config_labels_match"] and r["ids_same"].split("/")[0] == r["ids_same"].split("/")[1]
             and (r["variant"] == "int8" or r["max_abs_diff"] < 1e-4) for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
