"""NER metrics: strict entity-level P/R/F1 (seqeval, IOB2), token accuracy, span errors, the report.

The scores and the span error categories are the toolkit's (``assistant_builder.toolkit.metrics``):
wrong type, wrong boundary, missed, spurious. This module assembles them into the task's
``Evaluation`` and renders the Markdown report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from assistant_builder.contracts import Evaluation
from assistant_builder.toolkit.alignment import span_text
from assistant_builder.toolkit.metrics import count_span_errors, entity_scores, markdown_cell, span_errors, token_accuracy
from assistant_builder.toolkit.tags import Span, spans_from_tags

METRIC_NAMES = ("f1", "precision", "recall", "token_accuracy")


def _span_text(example: Any, span: Span | None) -> str:
    return "" if span is None else span_text(example.text, example.offsets, span[0], span[1])


def evaluate_tags(gold: list[list[str]], predicted: list[list[str]], examples: Sequence[Any], types: Sequence[str]) -> Evaluation:
    """Score predicted IOB2 tag sequences against gold ones (one list per example)."""
    micro, per_type = entity_scores(gold, predicted, types)
    metrics = {**micro, "token_accuracy": token_accuracy(gold, predicted)}
    errors = []
    for example, gold_tags, predicted_tags in zip(examples, gold, predicted):
        for kind, g, p in span_errors(spans_from_tags(gold_tags), spans_from_tags(predicted_tags)):
            errors.append({"kind": kind, "text": example.text, "source": example.source,
                           "gold": {"label": g[2], "text": _span_text(example, g)} if g else None,
                           "predicted": {"label": p[2], "text": _span_text(example, p)} if p else None})
    counts = count_span_errors([e["kind"] for e in errors])
    gold_entities = sum(len(spans_from_tags(tags)) for tags in gold)
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
        lines.append(f"- {pattern}: {n} (e.g. {', '.join(p for p in parts if p)} in \"{markdown_cell(example['text'])}\")")
    lines += ["", "## Examples", "", "| sentence | error | gold | predicted |", "|---|---|---|---|"]
    for error in errors[:15]:
        gold = f"{markdown_cell(error['gold']['text'], 30)} ({error['gold']['label']})" if error["gold"] else "-"
        predicted = f"{markdown_cell(error['predicted']['text'], 30)} ({error['predicted']['label']})" if error["predicted"] else "-"
        lines.append(f"| {markdown_cell(error['text'])} | {error['kind']} | {gold} | {predicted} |")
    advice = {"missed": "add examples where these entities appear in varied contexts",
              "spurious": "add sentences where similar words are not entities (tagged O)",
              "wrong type": "check that similar entities are tagged with one type consistently",
              "wrong boundary": "check that entity boundaries are tagged consistently (e.g. whether 'the' or 'at' belong to them)"}
    lines += ["", "## What to try", ""]
    lines += [f"- {kind} ({n}): {advice[kind]}." for kind, n in sorted(counts.items(), key=lambda item: -item[1]) if n]
    return "\n".join(lines) + "\n"
