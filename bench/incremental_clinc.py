"""Incremental deployment on CLINC150 (issue 28): a warm-start update (``builder run --from``)
against a full retrain, as labelled feedback arrives in batches.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/incremental_clinc.py --systems update retrain

Simulation (seeded by ``--seed``), in a temporary folder, from ``../shared/data/clinc150``:

* **parent**: 120 of the 150 in-scope intents, drawn at random, are the "initial" ones. The parent
  trains on ``--initial-per-intent`` examples of each (default 50) plus the 100 ``oos`` training
  examples; its validation is ``val.jsonl``'s rows of those intents and ``oos``.
* **feedback**: ``--batches`` batches (default 3) of ``--batch-size`` examples (default 200). A batch is
  ``--new-share`` of new-intent examples (default 0.5) and the rest further examples of the initial
  intents, each drawn round-robin over the intents (in seeded order), so every batch spreads over as
  many intents as it can. The new-intent pool holds ``--new-per-intent`` examples per new intent
  (default 20); when a pool runs out the other fills the batch. No ``oos`` arrives as feedback (the
  parent trained on all of it).
* **how feedback reaches the recipe**: appended to the recipe's ``data.train`` JSONL file (the
  cumulative training data), not a ``data.extra`` labelling store: a store item must carry a label
  the training file already has (``Task.from_store`` checks it against ``TaskData.labels``), so a new
  intent cannot arrive through a store alone. Training lines the parent did not train on are what
  is "new" for an update.
* **after each batch**, both systems, the first alternating per batch: ``update``: ``builder run
  stream.toml --from <latest kept run>`` (the parent at first; a refused update leaves it as it was);
  ``retrain``: ``builder run stream.toml`` from scratch on the same cumulative data. Both validate on
  the full ``val.jsonl`` (all 150 intents + ``oos``) less any intent no training line has yet (the
  product refuses such a validation label); the update's gate uses the parent's validation set, as
  the parent run recorded it.

Per batch and system: **seconds to live** (from the system's start, right after the batch was written
and never while the other system runs, to the new model answering one prediction through
``assistant_builder.runtime.load_predictor``: process start, training, export, verification, load);
accuracy on the new intents' validation rows (from ``RUN/validation_predictions.jsonl``); in-scope
accuracy and oos recall on the validation set (``metrics.json``); **forgetting**: the parent's accuracy
on the initial intents' validation rows minus this model's; whether the update gate kept it
(``RUN/update.json``). A Markdown table on stdout, everything in ``bench/results/incremental_clinc.json``.

Export: ``--export-formats`` (default ``onnx``, which the predictor needs), int8 quantisation off to
save time. ``--epochs N`` sets ``train.epochs = N`` and ``train.min_steps = 0`` for the full runs
(parent and retrain; default: the product's); updates train for ``update.epochs`` (product default).
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
RESULTS = ROOT / "bench" / "results"
BUILDER = str(ROOT / ".venv" / "bin" / "builder")
INITIAL_INTENTS = 120


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", ROOT.parent / "shared" / "data"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict], mode: str = "w") -> None:
    with path.open(mode, encoding="utf-8") as out:
        out.writelines(json.dumps({"text": r["text"], "label": r["label"]}) + "\n" for r in rows)


def round_robin(groups: list[list[dict]]) -> list[dict]:
    """The first example of every group, then the second of every group, ..."""
    return [group[i] for i in range(max(map(len, groups), default=0)) for group in groups if i < len(group)]


def plan_stream(train_rows: list[dict], args: argparse.Namespace) -> tuple[set[str], set[str], list[dict], list[list[dict]]]:
    """(initial intents, new intents, the parent's training rows, the feedback batches)."""
    rng = random.Random(args.seed)
    intents = sorted({r["label"] for r in train_rows} - {"oos"})
    initial = rng.sample(intents, INITIAL_INTENTS)
    new = [i for i in intents if i not in initial]
    rng.shuffle(new)
    by_intent: dict[str, list[dict]] = {}
    for row in train_rows:
        by_intent.setdefault(row["label"], []).append(row)
    for rows in by_intent.values():
        rng.shuffle(rows)
    parent = [r for i in initial for r in by_intent[i][:args.initial_per_intent]] + by_intent.get("oos", [])
    new_pool = round_robin([by_intent[i][:args.new_per_intent] for i in new])
    old_pool = round_robin([by_intent[i][args.initial_per_intent:] for i in initial])
    batches = []
    for _ in range(args.batches):
        n_new = min(len(new_pool), max(args.batch_size - len(old_pool), round(args.batch_size * args.new_share)))
        batch = new_pool[:n_new] + old_pool[:args.batch_size - n_new]
        new_pool, old_pool = new_pool[n_new:], old_pool[args.batch_size - n_new:]
        rng.shuffle(batch)
        batches.append(batch)
    return set(initial), set(new), parent, batches


def recipe_text(name: str, validation: str, args: argparse.Namespace) -> str:
    train = {"seed": args.seed, **({"epochs": args.epochs, "min_steps": 0} if args.epochs is not None else {})}
    return "\n".join([
        "recipe_version = 1", f'name = "{name}"', "[task]", 'type = "classification"',
        "[task.options]", 'fallback_label = "oos"', "[model]", 'base = "minilm-l6"', "max_length = 64",
        "[data]", 'train = "train.jsonl"', f'validation = "{validation}"',
        "[train]", *(f"{k} = {json.dumps(v)}" for k, v in train.items()),
        "[export]", f"formats = {json.dumps(args.export_formats)}", "[export.options.onnx]", "quantize = false",
        "[output]", 'runs_dir = "runs"']) + "\n"


def accuracy(predictions: list[dict], gold: list[str], keep: set[str]) -> float | None:
    pairs = [(p["label"], g) for p, g in zip(predictions, gold) if g in keep]
    return round(sum(p == g for p, g in pairs) / len(pairs), 4) if pairs else None


def build(work: Path, recipe: str, runs: str, from_run: Path | None, overrides: list[str] = ()) -> tuple[int, Path, float | None, str]:
    """Run ``builder run`` into ``work/runs``; (exit code, run dir, seconds to a live prediction or None, stderr tail)."""
    from assistant_builder.runtime import load_predictor

    started = time.perf_counter()
    command = [BUILDER, "run", str(work / recipe), f"output.runs_dir={runs}", *overrides, "-q",
               *(["--from", str(from_run)] if from_run else [])]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    found = sorted((work / runs).iterdir()) if (work / runs).is_dir() else []
    if done.returncode not in (0, 3) or not found:
        raise SystemExit(f"{' '.join(command)} failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
    live = None
    if done.returncode == 0:
        load_predictor(found[-1]).predict(["what is the weather like tomorrow"])
        live = round(time.perf_counter() - started, 1)
    return done.returncode, found[-1], live, done.stderr[-1500:]


def measure(run_dir: Path, gold: list[str], initial: set[str], new: set[str], parent_initial: float | None) -> dict[str, Any]:
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    predictions = read_jsonl(run_dir / "validation_predictions.jsonl")
    initial_accuracy = accuracy(predictions, gold, initial)
    update = json.loads((run_dir / "update.json").read_text()) if (run_dir / "update.json").is_file() else None
    gate = (update or {}).get("gate") or {}
    return {"run_dir": run_dir.name, "new_intent_accuracy": accuracy(predictions, gold, new), "initial_intent_accuracy": initial_accuracy,
            "in_scope_accuracy": metrics.get("in_scope_accuracy"), "oos_recall": metrics.get("oos_recall"),
            "accuracy": metrics.get("accuracy"),
            "forgetting": None if parent_initial is None or initial_accuracy is None else round(parent_initial - initial_accuracy, 4),
            "kept": gate.get("passed") if update else None, "gate_reasons": gate.get("reasons", []) if update else [],
            "gate": {k: gate.get(k) for k in ("metric", "parent_validation", "held_out_new")} if update else None,
            "plan": {k: v for k, v in (update or {}).get("plan", {}).items() if not k.endswith("_inputs")} or None}


def table(results: dict[str, Any]) -> str:
    """The Markdown table of ``results`` (as written to the JSON file)."""
    fmt = lambda v, digits=4: "" if v is None else f"{v:.{digits}f}"  # noqa: E731
    p = results["parent"]
    lines = ["| batch | system | seconds to live | new-intent acc | in-scope acc | oos recall | forgetting | kept |",
             "|---|---|---|---|---|---|---|---|",
             f"| 0 | parent | {fmt(p['seconds_to_live'], 1)} | | {fmt(p['in_scope_accuracy'])} | {fmt(p['oos_recall'])} | | |"]
    for entry in results["batches"]:
        for system, r in entry["systems"].items():
            kept = "" if r["kept"] is None else ("yes" if r["kept"] else "no: " + "; ".join(r["gate_reasons"]))
            lines.append(f"| {entry['batch']} | {system} | {fmt(r['seconds_to_live'], 1) or 'refused'} | {fmt(r['new_intent_accuracy'])} | "
                         f"{fmt(r['in_scope_accuracy'])} | {fmt(r['oos_recall'])} | {fmt(r['forgetting'])} | {kept} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--initial-per-intent", type=int, default=50)
    parser.add_argument("--new-per-intent", type=int, default=20)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--new-share", type=float, default=0.5, help="share of new-intent examples in a batch")
    parser.add_argument("--systems", nargs="+", default=["update", "retrain"],
                        help="update, retrain, and any --variant's name, run in this order (reversed every other batch)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=KEY=VALUE,KEY=VALUE",
                        help="an update with other [update] settings, its own line of updates: e.g. e4r2=epochs=4,replay=2; "
                             "name it in --systems")
    parser.add_argument("--epochs", type=int, default=None, help="full runs (parent, retrain): exactly N epochs (default: the product's)")
    parser.add_argument("--export-formats", nargs="+", default=["onnx"])
    parser.add_argument("--out", default=str(RESULTS / "incremental_clinc.json"), help="results JSON")
    parser.add_argument("--update-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="[update] settings for the update runs, e.g. epochs=4 replay=2 (default: the product's)")
    args = parser.parse_args(argv)
    variants = {"update": list(args.update_set)}
    for text in args.variant:
        name, _, settings = text.partition("=")
        if not name or not settings or name in ("update", "retrain"):
            parser.error(f"--variant {text!r}: expected NAME=KEY=VALUE[,KEY=VALUE...] with a new name")
        variants[name] = settings.split(",")
    unknown = [s for s in args.systems if s != "retrain" and s not in variants]
    if unknown:
        parser.error(f"--systems: {', '.join(unknown)}: expected update, retrain or a --variant's name")
    if "onnx" not in args.export_formats:
        parser.error("--export-formats must include onnx (the torch-free predictor loads it)")
    clinc = data_root() / "clinc150"
    if not (clinc / "train.jsonl").exists() or not (clinc / "val.jsonl").exists():
        print(f"SKIPPED: {clinc} not found (set ASSISTANT_BUILDER_DATA)")
        return 0
    initial, new, parent_rows, batches = plan_stream(read_jsonl(clinc / "train.jsonl"), args)
    valid_rows = read_jsonl(clinc / "val.jsonl")
    results: dict[str, Any] = {"args": vars(args), "initial_intents": sorted(initial), "new_intents": sorted(new), "batches": []}
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        work = Path(tmp)
        write_jsonl(work / "train.jsonl", parent_rows)
        parent_valid = [r for r in valid_rows if r["label"] in initial or r["label"] == "oos"]
        write_jsonl(work / "valid_initial.jsonl", parent_valid)
        (work / "parent.toml").write_text(recipe_text("parent", "valid_initial.jsonl", args))
        (work / "stream.toml").write_text(recipe_text("stream", "valid.jsonl", args))
        code, parent, live, _ = build(work, "parent.toml", "runs/parent", None)
        parent_gold = [r["label"] for r in parent_valid]
        parent_initial = accuracy(read_jsonl(parent / "validation_predictions.jsonl"), parent_gold, initial)
        results["parent"] = {**measure(parent, parent_gold, initial, new, parent_initial), "seconds_to_live": live,
                             "training_examples": len(parent_rows)}
        print(json.dumps(results["parent"]), file=sys.stderr, flush=True)
        latest = {name: parent for name in variants}
        seen = {r["label"] for r in parent_rows}
        for number, batch in enumerate(batches, start=1):
            write_jsonl(work / "train.jsonl", batch, mode="a")
            seen |= {r["label"] for r in batch}
            valid = [r for r in valid_rows if r["label"] in seen or r["label"] == "oos"]
            write_jsonl(work / "valid.jsonl", valid)
            gold = [r["label"] for r in valid]
            entry = {"batch": number, "examples": len(batch), "new_intent_examples": sum(r["label"] in new for r in batch),
                     "new_intents_seen": len(seen & new), "validation_examples": len(valid), "systems": {}}
            order = args.systems if number % 2 == 1 else list(reversed(args.systems))
            for system in order:
                updating = system in variants
                code, run_dir, live, tail = build(work, "stream.toml", f"runs/{system}-b{number}", latest[system] if updating else None,
                                                  [f"update.{s}" for s in variants[system]] if updating else [])
                entry["systems"][system] = {**measure(run_dir, gold, initial, new, parent_initial), "seconds_to_live": live,
                                            "exit_code": code, **({"stderr_tail": tail} if code else {})}
                if updating and code == 0:
                    latest[system] = run_dir
                print(json.dumps({"batch": number, system: entry["systems"][system]}), file=sys.stderr, flush=True)
            results["batches"].append(entry)
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
