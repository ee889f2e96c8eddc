"""NER metrics: strict entity-level P/R/F1 (seqeval, IOB2), token accuracy, span errors, the report.

Span errors compare each sentence's gold and predicted entity sets (exact matches are correct):

* wrong type: a predicted entity has exactly the gold entity's words but another type;
* wrong boundary: a predicted entity overlaps the gold entity with different words (its type may
  differ too: the report shows both);
* missed: no predicted entity overlaps the gold entity;
* spurious: a predicted entity overlaps no gold entity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from assistant_builder.contracts import Evaluation
from assistant_builder_tasks.ner.tags import Span, spans

METRIC_NAMES = ("f1", "precision", "recall", "token_accuracy")
ERROR_KINDS = ("wrong type", "wrong boundary", "missed", "spurious")


def categorise(gold: Sequence[Span], predicted: Sequence[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """The span errors of one sentence as ``(kind, gold span or None, predicted span or None)``."""
    gold_set, predicted_set = set(gold), set(predicted)
    wrong_gold = [g for g in gold if g not in predicted_set]
    wrong_predicted = [p for p in predicted if p not in gold_set]
    explained: set[Span] = set()
    errors: list[tuple[str, Span | None, Span | None]] = []
    for g in wrong_gold:
        same_words = [p for p in wrong_predicted if p[:2] == g[:2]]
        overlapping = [p for p in wrong_predicted if p[0] < g[1] and g[0] < p[1]]
        if same_words:
            errors.append(("wrong type", g, same_words[0]))
        elif overlapping:
            errors.append(("wrong boundary", g, overlapping[0]))
        else:
            errors.append(("missed", g, None))
        explained.update(overlapping)
    errors.extend(("spurious", None, p) for p in wrong_predicted if p not in explained)
    return errors


def _span_text(example: Any, span: Span | None) -> str:
    if span is None:
        return ""
    start, end = example.offsets[span[0]][0], example.offsets[span[1] - 1][1]
    return example.text[start:end]


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Micro precision/recall/F1 and per-type scores, strict IOB2 matching (seqeval)."""
    if not any(t != "O" for tags in [*gold, *predicted] for t in tags):
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}, {}
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    table = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    micro = table["micro avg"]
    per_type = {
        name: {"precision": float(row["precision"]), "recall": float(row["recall"]), "f1": float(row["f1-score"]), "support": int(row["support"])}
        for name, row in table.items() if not name.endswith(" avg")
    }
    return {"precision": float(micro["precision"]), "recall": float(micro["recall"]), "f1": float(micro["f1-score"])}, per_type


def evaluate_tags(gold: list[list[str]], predicted: list[list[str]], examples: Sequence[Any], types: Sequence[str]) -> Evaluation:
    """Score predicted IOB2 tag sequences against gold ones (one list per example)."""
    micro, per_type = entity_scores(gold, predicted)
    for entity_type in types:
        per_type.setdefault(entity_type, {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0})
    words = sum(len(tags) for tags in gold)
    correct = sum(g == p for gold_tags, predicted_tags in zip(gold, predicted) for g, p in zip(gold_tags, predicted_tags))
    metrics = {**micro, "token_accuracy": correct / words if words else 0.0}
    errors = []
    for example, gold_tags, predicted_tags in zip(examples, gold, predicted):
        for kind, g, p in categorise(spans(gold_tags), spans(predicted_tags)):
            errors.append({"kind": kind, "text": example.text, "source": example.source,
                           "gold": {"label": g[2], "text": _span_text(example, g)} if g else None,
                           "predicted": {"label": p[2], "text": _span_text(example, p)} if p else None})
    counts = {kind: sum(e["kind"] == kind for e in errors) for kind in ERROR_KINDS}
    gold_entities = sum(len(spans(tags)) for tags in gold)
    details = {"per_type": per_type, "entity_types": list(types), "gold_entities": gold_entities,
               "error_counts": counts, "errors": errors[:200]}
    return Evaluation(metrics, details, render_report(metrics, per_type, counts, errors, len(gold), gold_entities))


def _pattern(error: dict[str, Any]) -> str:
    gold, predicted = error["gold"], error["predicted"]
    if error["kind"] == "missed":
        return f"missed {gold['label']}"
    if error["kind"] == "spurious":
        return f"spurious {predicted['label']}"
    if error["kind"] == "wrong type":
        return f"wrong type: {gold['label']} → {predicted['label']}"
    return f"wrong boundary: {gold['label']}" + ("" if gold["label"] == predicted["label"] else f" → {predicted['label']}")


def _cell(text: str, limit: int = 80) -> str:
    return text[:limit].replace("|", "\\|")


def render_report(metrics: dict[str, float], per_type: dict[str, dict[str, Any]], counts: dict[str, int],
                  errors: list[dict[str, Any]], sentences: int, gold_entities: int) -> str:
    """Markdown: headline metrics, per-type table, span error counts, most frequent errors with examples."""
    lines = ["# NER report", "", f"{sentences} validation sentences, {gold_entities} gold entities, {len(per_type)} entity types.",
             "Entity scores are strict: an entity counts only if its words and its type both match.", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in metrics.items()]
    lines += ["", "## Per entity type", "", "| type | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name in sorted(per_type, key=lambda n: (per_type[n]["f1"], n)):
        s = per_type[name]
        lines.append(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |")
    lines += ["", "## Span errors", "", "| kind | count |", "|---|---|"]
    lines += [f"| {kind} | {n} |" for kind, n in counts.items()]
    lines += ["", "## Most frequent span errors", ""]
    if not errors:
        lines.append("None: every validation entity is found with the right words and type.")
        return "\n".join(lines) + "\n"
    patterns = Counter(_pattern(e) for e in errors)
    first_example = {}
    for error in errors:
        first_example.setdefault(_pattern(error), error)
    for pattern, n in patterns.most_common(12):
        example = first_example[pattern]
        parts = [f"gold \"{example['gold']['text']}\"" if example["gold"] else "", f"predicted \"{example['predicted']['text']}\"" if example["predicted"] else ""]
        lines.append(f"- {pattern}: {n} (e.g. {', '.join(p for p in parts if p)} in \"{_cell(example['text'])}\")")
    lines += ["", "## Examples", "", "| sentence | error | gold | predicted |", "|---|---|---|---|"]
    for error in errors[:15]:
        gold = f"{_cell(error['gold']['text'], 30)} ({error['gold']['label']})" if error["gold"] else "-"
        predicted = f"{_cell(error['predicted']['text'], 30)} ({error['predicted']['label']})" if error["predicted"] else "-"
        lines.append(f"| {_cell(error['text'])} | {error['kind']} | {gold} | {predicted} |")
    advice = {"missed": "add examples where these entities appear in varied contexts",
              "spurious": "add sentences where similar words are not entities (tagged O)",
              "wrong type": "check that similar entities are tagged with one type consistently",
              "wrong boundary": "check that entity boundaries are tagged consistently (e.g. whether 'the' or 'at' belong to them)"}
    lines += ["", "## What to try", ""]
    lines += [f"- {kind} ({n}): {advice[kind]}." for kind, n in sorted(counts.items(), key=lambda item: -item[1]) if n]
    return "\n".join(lines) + "\n"
