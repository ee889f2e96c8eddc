"""What a trained `ner` run's validation misses are, and how consistent the training labels are about them.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ner_misses.py snips RUN_DIR [RUN_DIR ...]

For each kept run (``bench/ner_datasets.py --keep-runs``), reads its ``validation_predictions.jsonl``
and the dataset's validation tags, and counts the gold entities each run missed by the product's
span-error kinds (``assistant_builder.toolkit.metrics.span_errors``), with ``wrong boundary``
split further: ``leading article`` when the predicted entity has the same type and end and differs
from the gold one only by one leading article (``the``, ``a``, ``an``) taken in or left out,
``same type`` for another boundary of the same type, ``other type`` when the type differs too.
Then, per entity type, how often the training labels put a leading ``the`` inside the entity and
how often just before it: a type where both are common has inconsistent boundaries the model can
only guess. Prints Markdown. Skips with a message when the data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ner_datasets import DATASETS, data_root  # noqa: E402

from assistant_builder.toolkit.metrics import span_errors  # noqa: E402
from assistant_builder.toolkit.readers import Sentence, read_conll, read_parallel  # noqa: E402
from assistant_builder.toolkit.tags import Span, spans_from_tags, to_iob2  # noqa: E402

ARTICLES = frozenset({"the", "a", "an"})
KINDS = ("wrong type", "leading article", "same type", "other type", "missed")


def read_split(path: Path, data_format: str) -> list[Sentence]:
    """The sentences of one split, tags in IOB2."""
    sentences = read_conll(path) if data_format == "conll" else read_parallel(path)[0]
    return [Sentence(s.tokens, tuple(to_iob2(s.tags, "iob2")[0]), s.lines) for s in sentences]


def boundary_kind(words: tuple[str, ...], gold: Span, predicted: Span) -> str:
    """``leading article``, ``same type`` or ``other type`` for a predicted entity overlapping ``gold``."""
    if predicted[2] != gold[2]:
        return "other type"
    if predicted[1] == gold[1] and abs(predicted[0] - gold[0]) == 1 and words[min(predicted[0], gold[0])].lower() in ARTICLES:
        return "leading article"
    return "same type"


def miss_counts(sentences: list[Sentence], predicted_tags: list[list[str]]) -> Counter[str]:
    """Gold entities not predicted exactly, by kind (``KINDS``)."""
    counts: Counter[str] = Counter()
    for sentence, tags in zip(sentences, predicted_tags, strict=True):
        for kind, gold, predicted in span_errors(spans_from_tags(sentence.tags), spans_from_tags(tags)):
            if kind == "wrong boundary":
                kind = boundary_kind(sentence.tokens, gold, predicted)
            if kind != "spurious":
                counts[kind] += 1
    return counts


def article_placement(sentences: list[Sentence]) -> tuple[Counter[str], Counter[str]]:
    """Per entity type: entities whose first word is ``the``, and entities right after a ``the``."""
    inside: Counter[str] = Counter()
    before: Counter[str] = Counter()
    for sentence in sentences:
        for start, _, entity_type in spans_from_tags(sentence.tags):
            if sentence.tokens[start].lower() == "the":
                inside[entity_type] += 1
            elif start > 0 and sentence.tokens[start - 1].lower() == "the":
                before[entity_type] += 1
    return inside, before


def run_settings(run: Path) -> str:
    """``seed, learning rate, batch size, epochs`` from the run's resolved recipe (the learning rate as the recipe set it)."""
    train = json.loads((run / "recipe.resolved.json").read_text())["train"]
    return f"{train['seed']}, {train['learning_rate'] or 'default'}, {train['batch_size']}, {train['epochs']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("runs", nargs="+", type=Path, help="run folders kept by bench/ner_datasets.py --keep-runs")
    parser.add_argument("--types", type=int, default=8, help="entity types to list in the training-label table")
    args = parser.parse_args(argv)
    spec, root = DATASETS[args.dataset], data_root()
    if not (root / spec["validation"]).exists():
        print(f"skipped: {root / spec['validation']} not found")
        return 0
    validation = read_split(root / spec["validation"], spec["format"])
    print(f"## {args.dataset}: validation misses by kind ({len(validation)} sentences)\n")
    print("| run | seed, encoder lr, batch, epochs | " + " | ".join(KINDS) + " | all |")
    print("|---|---|" + "---:|" * (len(KINDS) + 1))
    for run in args.runs:
        lines = (run / "validation_predictions.jsonl").read_text().splitlines()
        counts = miss_counts(validation, [json.loads(line)["tags"] for line in lines])
        print(f"| {run.name} | {run_settings(run)} | " + " | ".join(str(counts[k]) for k in KINDS) + f" | {sum(counts.values())} |")
    inside, before = article_placement(read_split(root / spec["train"], spec["format"]))
    print(f"\n## {args.dataset}: training entities with a leading 'the' inside vs just before\n")
    print("| type | 'the' inside | 'the' just before |")
    print("|---|---:|---:|")
    for entity_type in sorted(set(inside) | set(before), key=lambda t: -(inside[t] + before[t]))[: args.types]:
        print(f"| {entity_type} | {inside[entity_type]} | {before[entity_type]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
