"""``[train.augment]`` on and off (issue 14, item 3), through the product path, on small subsamples.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python bench/augment.py ner --sentences 200 --seeds 42 43
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python bench/augment.py classification --per-intent 5 --seeds 42

``ner``: the first ``--sentences`` sentences of ``../shared/data/conll2003/train.txt`` (seeded
shuffle of the sentences) for training, the first ``--validation-sentences`` of ``valid.txt`` for
validation; entity F1. ``classification``: CLINC150, ``--per-intent`` training examples per
in-scope intent, the in-scope validation examples (``--validation-per-intent`` of each); accuracy.
Subsampled files are written to a temporary folder, never into the repository. Per seed the
configurations run alternately (off, on; then on, off): ``off`` is the product defaults,
``on`` adds ``[train.augment] copies = --copies`` (default 1; NER: mention and label-wise token
replacement; classification: deletion and swap). Bundled MiniLM, export off. Prints Markdown and
writes ``bench/results/augment_<task>.json``; ``--keep-runs DIR`` keeps
each run directory (for ``bench/ner_decoding.py``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_data import data_root, keep_run, per_label, read_jsonl, write_jsonl  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def conll_sentences(path: Path) -> list[str]:
    """Sentences of a CoNLL file as blocks of lines, ``-DOCSTART-`` dropped."""
    blocks = [b for b in path.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    return [b.strip("\n") for b in blocks if not b.lstrip().startswith("-DOCSTART-")]


def write_data(task: str, work: Path, seed: int, args: argparse.Namespace) -> dict[str, str]:
    root = data_root()
    if task == "ner":
        train = conll_sentences(root / "conll2003" / "train.txt")
        random.Random(seed).shuffle(train)
        (work / "train.txt").write_text("\n\n".join(train[: args.sentences]) + "\n", encoding="utf-8")
        valid = conll_sentences(root / "conll2003" / "valid.txt")[: args.validation_sentences]
        (work / "valid.txt").write_text("\n\n".join(valid) + "\n", encoding="utf-8")
        return {"train": "train.txt", "validation": "valid.txt"}
    clinc = root / "clinc150"
    write_jsonl(work / "train.jsonl", per_label(read_jsonl(clinc / "train.jsonl"), args.per_intent, seed))
    write_jsonl(work / "valid.jsonl", per_label(read_jsonl(clinc / "val.jsonl"), args.validation_per_intent, 0))
    return {"train": "train.jsonl", "validation": "valid.jsonl"}


def recipe_text(task: str, config: str, seed: int, data: dict[str, str], args: argparse.Namespace) -> str:
    lines = ["recipe_version = 1", f'name = "augment-{task}-{config}-s{seed}"', "[task]", f'type = "{task}"',
             "[model]", 'base = "minilm-l6"', "max_length = 64", "[data]", *(f"{k} = {json.dumps(v)}" for k, v in data.items()),
             "[train]", f"seed = {seed}", *([f"num_threads = {args.num_threads}"] if args.num_threads else [])]
    if config == "on":
        lines += ["[train.augment]", f"copies = {args.copies}", f"probability = {args.probability}"]
    return "\n".join([*lines, "[export]", "formats = []", "[output]", 'runs_dir = "runs"']) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=["ner", "classification"])
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--validation-sentences", type=int, default=500)
    parser.add_argument("--per-intent", type=int, default=5)
    parser.add_argument("--validation-per-intent", type=int, default=None)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--probability", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--json-out", type=Path, default=None, help="default: bench/results/augment_<task>.json")
    parser.add_argument("--configs", nargs="+", choices=["off", "on"], default=["off", "on"],
                        help="configurations to run (default both; one alone splits a table over processes)")
    parser.add_argument("--keep-runs", type=Path, default=None, help="copy each run directory (without checkpoints) here")
    args = parser.parse_args(argv)
    needed = data_root() / ("conll2003/train.txt" if args.task == "ner" else "clinc150/train.jsonl")
    if not needed.exists():
        print(f"skipped: {needed} not found (set ASSISTANT_BUILDER_DATA)", file=sys.stderr)
        return 0
    from assistant_builder.cli.common import load_registry
    from assistant_builder.engine.run import run
    from assistant_builder.recipe.loader import load_recipe

    metric = "f1" if args.task == "ner" else "accuracy"
    registry = load_registry()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-augment-") as tmp:
        work = Path(tmp)
        for index, seed in enumerate(args.seeds):
            data = write_data(args.task, work, seed, args)
            for config in [c for c in (("off", "on") if index % 2 == 0 else ("on", "off")) if c in args.configs]:
                recipe = work / f"{config}-{seed}.toml"
                recipe.write_text(recipe_text(args.task, config, seed, data, args))
                start = time.perf_counter()
                result = run(load_recipe(str(recipe), [], registry=registry), registry)
                keep_run(Path(result.run_dir), args.keep_runs, work / data["validation"])
                results.append({"config": config, "seed": seed, metric: result.metrics[metric],
                                "augmented_examples": result.summary.get("augmented_examples", 0),
                                "epochs_run": result.summary["epochs_run"], "seconds": round(time.perf_counter() - start, 1)})
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(f"| augment | seed | {metric} | augmented examples | epochs run | seconds |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['seed']} | {r[metric]:.4f} | {r['augmented_examples']} | {r['epochs_run']} | {r['seconds']} |")
    for config in args.configs:
        print(f"| {config} mean | | {statistics.fmean(r[metric] for r in results if r['config'] == config):.4f} | | | |")
    out = args.json_out or RESULTS / f"augment_{args.task}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                               "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
