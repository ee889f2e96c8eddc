"""How ``--capture uncertain`` thresholds behave on real models: what share of requests they keep,
and what share of the model's errors is among them.

For each run given (a quickstart, slots or qa run), predicts its validation set with the exported
ONNX model and, for classification, also a set of requests no intent covers (``OUT_OF_SCOPE``),
then prints, per threshold, the share of predictions whose ``task.prediction_confidence`` is below
it (what would be captured), and the share of wrong predictions among the captured ones and of all
wrong predictions captured (recall). A good default keeps a small share of the traffic but most
of the errors.

    .venv/bin/python bench/capture_thresholds.py runs/quickstart-* runs/slots-* runs/qa-*
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: requests none of the quickstart's 12 intents covers: a model should be unsure of them
OUT_OF_SCOPE = ["what's the capital of peru", "order me a large pizza", "how many calories are in an apple", "book a taxi to the airport",
                "who won the football match yesterday", "what is 17 times 23", "tell me a joke", "find a recipe for lasagne",
                "how do I reset my password", "what's the stock price of apple", "open the garage door", "call an ambulance",
                "recommend a good book", "how far is the moon", "transfer 50 euros to anna", "what time does the bank close"]


def rows(run: Path) -> tuple[str, list[tuple[float | None, bool]]]:
    """``(task, [(confidence, wrong)])`` over the run's validation set (and out-of-scope requests)."""
    from assistant_builder.registry import build_registry
    from assistant_builder.recipe.loader import load_run_recipe
    from assistant_builder.runtime import load_predictor

    registry = build_registry()
    loaded = load_run_recipe(run, registry=registry)
    recipe = loaded.recipe
    task = registry.create("task", recipe.task.type)
    options = task.Options.model_validate(recipe.task.options)
    data = task.load_data(recipe.data, options)
    predictor = load_predictor(run)
    predictions = predictor.predict_examples(data.validation)
    out: list[tuple[float | None, bool]] = []
    for example, prediction in zip(data.validation, predictions):
        gold = task.to_store(example).gold
        guess = task.prediction_gold(example, prediction)
        if task.name == "qa":  # wrong = not an exact match (SQuAD normalisation) of any gold answer
            from assistant_builder_tasks.qa.metrics import normalize_answer

            answer = normalize_answer(guess["answers"][0]["text"]) if guess["answers"] else ""
            wrong = answer not in {normalize_answer(a["text"]) for a in gold["answers"]}
        else:
            wrong = gold != guess
        out.append((task.prediction_confidence(prediction), wrong))
    if task.name == "classification":
        for prediction in predictor.predict(OUT_OF_SCOPE):
            out.append((task.prediction_confidence(prediction), True))  # no right label exists
    return task.name, out


def table(task: str, data: list[tuple[float | None, bool]]) -> list[str]:
    errors = sum(1 for _, wrong in data if wrong)
    lines = [f"{task}: {len(data)} predictions, {errors} wrong ({errors / len(data):.1%}); "
             f"{sum(1 for c, _ in data if c is None)} without a confidence", "",
             "| threshold | captured | wrong among captured | wrong ones captured |", "|---:|---:|---:|---:|"]
    for threshold in THRESHOLDS:
        kept = [wrong for c, wrong in data if c is not None and c < threshold]
        caught = sum(kept)
        lines.append(f"| {threshold:.1f} | {len(kept) / len(data):.1%} | {caught / len(kept) if kept else 0:.1%} "
                     f"| {caught / errors if errors else 0:.1%} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for run in args.runs:
        task, data = rows(run)
        results[str(run)] = {"task": task, "rows": data}
        print("\n".join(table(task, data)), end="\n\n")
    if args.json_out:
        args.json_out.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
