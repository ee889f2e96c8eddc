"""Out-of-scope rejection on CLINC150 (issue 15) through the product path: a recipe with
``fallback_label = "oos"``, trained and evaluated by the engine's ``run``.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/oos_clinc.py --variants with-oos no-oos

Variants (run alternately when several seeds are given):

* ``with-oos``: ``../shared/data/clinc150/train.jsonl`` as published (15,000 in-scope + 100 ``oos``):
  ``oos`` is trained as a class;
* ``no-oos``: the same without its 100 ``oos`` training examples: out-of-scope only at evaluation.

Validation: the shared ``val.jsonl`` (3,000 in-scope + 100 ``oos``), on which the product fits
its threshold (100 >= 10 ``oos`` examples: max out-of-scope F1 within 0.01 of the no-rejection
in-scope accuracy) and its temperature. ``--per-intent N`` subsamples the training data (faster,
not the benchmark). For each run the table gives, on validation:

* ``energy (product)``: the product's rule, as the run's summary reports it;
* ``msp``: the maximum calibrated in-scope probability (``top[0].score`` of each validation
  prediction) with a threshold chosen by the same objective (``toolkit.outofscope.fit_threshold``);
* ``none``: no rejection (a trained ``oos`` class still answers ``oos`` when it is the top class);

plus AUROC and ECE before/after calibration. Data files go to a temporary folder, never into the
repository; results to ``bench/results/oos_clinc.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def training_rows(rows: list[dict], variant: str, per_intent: int | None, seed: int) -> list[dict]:
    chosen, counts = [], {}
    rng = random.Random(seed)
    rows = rows[:]
    rng.shuffle(rows)
    for row in rows:
        if row["label"] == "oos" and variant == "no-oos":
            continue
        if per_intent is not None and row["label"] != "oos":
            if counts.get(row["label"], 0) >= per_intent:
                continue
            counts[row["label"]] = counts.get(row["label"], 0) + 1
        chosen.append(row)
    return chosen


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps({"text": r["text"], "label": r["label"]}) + "\n" for r in rows), encoding="utf-8")


def recipe_text(variant: str, seed: int, args: argparse.Namespace) -> str:
    train = {"seed": seed, **({"epochs": args.epochs} if args.epochs else {})}
    return "\n".join([
        "recipe_version = 1", f'name = "oos-{variant}-s{seed}"', "[task]", 'type = "classification"',
        "[task.options]", 'fallback_label = "oos"',
        "[model]", 'base = "minilm-l6"', "max_length = 64",
        "[data]", f'train = "{variant}.train.jsonl"', 'validation = "valid.jsonl"',
        "[train]", *(f"{k} = {json.dumps(v)}" for k, v in train.items()),
        "[export]", "formats = []", "[output]", 'runs_dir = "runs"']) + "\n"


def msp_rule(run_dir: Path, gold: list[str]) -> dict:
    """Max calibrated in-scope probability as the in-scope score, threshold by the product's objective."""
    from assistant_builder.toolkit.outofscope import auroc, fit_threshold

    predictions = [json.loads(line) for line in (run_dir / "validation_predictions.jsonl").read_text().splitlines()]
    scores = [p["top"][0]["score"] for p in predictions]
    correct = [p["top"][0]["label"] == g for p, g in zip(predictions, gold)]
    oos = [g == "oos" for g in gold]
    fit = fit_threshold(scores, correct, oos)
    return {"threshold": fit.threshold, **{k: v for k, v in fit.scores.to_dict().items() if k != "threshold"},
            "auroc": auroc([s for s, o in zip(scores, oos) if not o], [s for s, o in zip(scores, oos) if o])}


def run_one(work: Path, variant: str, seed: int, args: argparse.Namespace, gold: list[str]) -> dict:
    from assistant_builder.cli.common import load_registry
    from assistant_builder.engine.run import run
    from assistant_builder.recipe.loader import load_recipe

    recipe = work / f"{variant}-{seed}.toml"
    recipe.write_text(recipe_text(variant, seed, args))
    registry = load_registry()
    start = time.perf_counter()
    result = run(load_recipe(str(recipe), [], registry=registry), registry)
    rule = result.summary["decision_rule"]
    rejection = rule["rejection"]
    energy = {k: rejection[k] for k in ("threshold", "in_scope_accuracy", "kept", "oos_precision", "oos_recall", "oos_f1", "auroc")}
    predictions = [json.loads(line) for line in (result.run_dir / "validation_predictions.jsonl").read_text().splitlines()]
    inside = [(p, g) for p, g in zip(predictions, gold) if g != "oos"]
    none = {"in_scope_accuracy": sum(p["top"][0]["label"] == g for p, g in inside) / len(inside)}
    return {"variant": variant, "seed": seed, "energy": energy, "msp": msp_rule(result.run_dir, gold), "none": none,
            "calibration": rule["calibration"], "metrics": result.metrics, "epochs_run": result.summary["epochs_run"],
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=("with-oos", "no-oos"), default=["with-oos", "no-oos"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--per-intent", type=int, default=None, help="subsample N training examples per intent (default: all 100)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the product's")
    args = parser.parse_args(argv)
    clinc = data_root() / "clinc150"
    if not (clinc / "train.jsonl").exists():
        print(f"skipped: {clinc} not found (set ASSISTANT_BUILDER_DATA)", file=sys.stderr)
        return 0
    train_rows, valid_rows = read_jsonl(clinc / "train.jsonl"), read_jsonl(clinc / "val.jsonl")
    gold = [r["label"] for r in valid_rows]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-oos-") as tmp:
        work = Path(tmp)
        write_jsonl(work / "valid.jsonl", valid_rows)
        for index, seed in enumerate(args.seeds):
            order = args.variants if index % 2 == 0 else list(reversed(args.variants))
            for variant in order:
                write_jsonl(work / f"{variant}.train.jsonl", training_rows(train_rows, variant, args.per_intent, seed))
                results.append(run_one(work, variant, seed, args, gold))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print("| variant | seed | method | threshold | in-scope acc | oos precision | oos recall | oos F1 | AUROC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for method in ("energy", "msp"):
            m = r[method]
            threshold = "none" if m["threshold"] is None else f"{m['threshold']:.4f}"
            print(f"| {r['variant']} | {r['seed']} | {method}{' (product)' if method == 'energy' else ''} | {threshold} | "
                  f"{m['in_scope_accuracy']:.4f} | {m['oos_precision']:.3f} | {m['oos_recall']:.3f} | {m['oos_f1']:.3f} | {m['auroc']:.4f} |")
        print(f"| {r['variant']} | {r['seed']} | none | | {r['none']['in_scope_accuracy']:.4f} | | | | |")
        c = r["calibration"]
        print(f"| {r['variant']} | {r['seed']} | ECE {c['ece_before']} -> {c['ece_after']} (T = {c['temperature']}) | | | | | | |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "oos_clinc.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
