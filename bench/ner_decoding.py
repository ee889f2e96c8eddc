"""How the `ner` task reads tags from its scores (issue 17): ``decoder = "argmax"`` against
``"best_path"`` on the validation set of finished runs, with the product's own functions.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ner_decoding.py runs/<run> [runs/<run> ...] [--validation FILE]

Each run's saved model scores its validation file once (PyTorch, as ``builder run`` does for its
metrics); the same scores are then decoded with each decoder and scored with the task's own
``evaluate``. Also reported: in how many sentences the decoders chose different tags (only where
the argmax sequence is invalid IOB2). ``--validation`` replaces the validation file the run recorded
(for runs whose data lived in a temporary folder). Results go to ``--json-out`` (default
``bench/results/ner_decoding.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DECODERS = ("argmax", "best_path")


def score_run(run_dir: Path, validation: Path | None, registry: object) -> dict:
    from assistant_builder.contracts import evaluate_with_options
    from assistant_builder.engine.reexport import model_labels, saved_task_options
    from assistant_builder.engine.torch_runner import torch_runner
    from assistant_builder.inference import run_features
    from assistant_builder.recipe.loader import load_run_recipe
    from assistant_builder.batching import extra_inputs
    from assistant_builder.tokenization import load_tokenizer, pad_token_id

    recipe = load_run_recipe(run_dir, registry=registry).recipe
    task = registry.create("task", recipe.task.type)
    options = saved_task_options(run_dir, task, task.Options.model_validate(recipe.task.options))
    if validation is None:
        recorded = json.loads((run_dir / "provenance.json").read_text())["data"]
        validation = Path(recorded["validation"]["path"])
    data = recipe.data.model_copy(update={"train": validation, "validation": validation})
    examples = task.load_data(data, options).validation
    model_dir = run_dir / "model"
    labels = model_labels(model_dir)
    tokenizer = load_tokenizer(model_dir, recipe.model.max_length)
    pad_id = pad_token_id(tokenizer)
    features = task.encode(examples, tokenizer, labels, options, recipe.model.max_length)
    model = task.load_model(model_dir)
    outputs = run_features(torch_runner(model, task.output_names), features, pad_id, task.output_names, task.sequence_outputs,
                           input_keys=extra_inputs(task.model_input_names(options)))
    row: dict = {"run": run_dir.name, "sentences": len(examples)}
    tags = {}
    for decoder in DECODERS:
        decoded_with = options.model_copy(update={"decoder": decoder})
        started = time.perf_counter()
        predictions = task.decode(outputs, features, examples, labels, decoded_with)
        row[f"{decoder}_decode_s"] = round(time.perf_counter() - started, 3)
        metrics = evaluate_with_options(task, predictions, examples, labels, decoded_with).metrics
        row[decoder] = {k: metrics[k] for k in ("f1", "precision", "recall")}
        tags[decoder] = [list(p["tags"]) for p in predictions]
    # the decoders differ only where the argmax sequence was invalid IOB2
    row["changed_sentences"] = sum(1 for a, b in zip(*tags.values()) if a != b)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--validation", type=Path, help="validation file to score instead of the recorded one")
    parser.add_argument("--json-out", type=Path, default=RESULTS / "ner_decoding.json")
    args = parser.parse_args(argv)
    from assistant_builder.cli.common import load_registry

    registry = load_registry()
    rows = []
    for run_dir in args.runs:
        validation = args.validation or (run_dir / "valid.txt" if (run_dir / "valid.txt").is_file() else None)
        row = score_run(run_dir, validation, registry)
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": rows}, indent=2) + "\n")
    for decoder in DECODERS:
        values = [row[decoder]["f1"] for row in rows]
        print(f"{decoder}: mean F1 {sum(values) / len(values):.4f} over {len(values)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
