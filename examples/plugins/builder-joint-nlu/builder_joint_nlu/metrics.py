"""Joint NLU metrics and the readable report.

* ``intent_accuracy`` and ``intent_macro_f1`` over the model's intents (the macro average over
  the intents that occur in gold or predictions);
* ``slot_f1``, ``slot_precision``, ``slot_recall``: entity-level micro scores (seqeval, strict IOB2:
  a slot counts only if its words and its type both match);
* ``exact_match``: the share of utterances whose intent *and* every slot are right (the
  "sentence accuracy" / semantic frame accuracy of the JointBERT papers).

The scores and the slot error categories are assistant-builder's toolkit
(``assistant_builder.toolkit.metrics``). Torch-free; seqeval and scikit-learn are imported only
when predictions are scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant_builder.contracts import Evaluation
from assistant_builder.toolkit.alignment import span_text
from assistant_builder.toolkit.metrics import classification_scores, count_span_errors, entity_scores, markdown_cell, span_errors
from assistant_builder.toolkit.tags import spans_from_tags

METRIC_NAMES = ("exact_match", "intent_accuracy", "intent_macro_f1", "slot_f1", "slot_precision", "slot_recall")


def frame(example: Any, intent: str, tags: Sequence[str]) -> str:
    """``intent (type: words, ...)``: an utterance's meaning in one line."""
    slots = [f"{t}: {span_text(example.text, example.offsets, s, e)}" for s, e, t in spans_from_tags(tags)]
    return f"{intent} ({', '.join(slots)})" if slots else intent


def evaluate_joint(gold_intents: list[str], predicted_intents: list[str], gold_tags: list[list[str]], predicted_tags: list[list[str]],
                   scores: list[float], examples: Sequence[Any], intents: Sequence[str], slot_types: Sequence[str]) -> Evaluation:
    """Score predicted intents and IOB2 tag sequences against the gold ones (one per example)."""
    intent_result = classification_scores(gold_intents, predicted_intents, intents)
    per_intent, matrix = intent_result.per_label, intent_result.confusion_matrix
    micro, per_type = entity_scores(gold_tags, predicted_tags, slot_types)
    exact = [gi == pi and list(gt) == list(pt) for gi, pi, gt, pt in zip(gold_intents, predicted_intents, gold_tags, predicted_tags)]
    metrics = {"exact_match": sum(exact) / len(exact) if exact else 0.0, "intent_accuracy": intent_result.accuracy,
               "intent_macro_f1": intent_result.present_macro_f1, **{f"slot_{name}": value for name, value in micro.items()}}
    errors, slot_errors = [], []
    for i, example in enumerate(examples):
        found = span_errors(spans_from_tags(gold_tags[i]), spans_from_tags(predicted_tags[i]))
        slot_errors += found
        if exact[i]:
            continue
        wrong = [name for name, bad in (("intent", gold_intents[i] != predicted_intents[i]), ("slots", bool(found))) if bad]
        errors.append({"kind": " + ".join(wrong), "text": example.text, "source": example.source, "score": scores[i],
                       "gold": frame(example, gold_intents[i], gold_tags[i]), "predicted": frame(example, predicted_intents[i], predicted_tags[i])})
    error_counts = count_span_errors([kind for kind, _, _ in slot_errors])
    errors.sort(key=lambda e: -e["score"])
    details = {"labels": list(intents), "per_label": per_intent, "confusion_matrix": matrix, "slot_types": list(slot_types),
               "per_type": per_type, "error_counts": error_counts, "errors": errors[:200]}
    report = render_report(metrics, per_intent, per_type, intents, matrix, error_counts, errors, len(examples))
    return Evaluation(metrics, details, report)


def render_report(metrics: dict[str, float], per_intent: dict[str, dict[str, Any]], per_type: dict[str, dict[str, Any]],
                  intents: Sequence[str], matrix: list[list[int]], error_counts: dict[str, int], errors: list[dict[str, Any]],
                  total: int) -> str:
    """Markdown: headline metrics, per-intent and per-slot-type tables, confusions, slot errors, failed utterances."""
    lines = ["# Joint intent + slot report", "",
             f"{total} validation utterances, {len(intents)} intents, {len(per_type)} slot types. An utterance is an exact match "
             "when its intent and every slot (words and type) are right.", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in metrics.items()]
    lines += ["", "## Intents", "", "| intent | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name in sorted(per_intent, key=lambda n: (per_intent[n]["f1"], n)):
        s = per_intent[name]
        lines.append(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |")
    pairs = sorted(((intents[g], intents[p], n) for g, row in enumerate(matrix) for p, n in enumerate(row) if g != p and n), key=lambda x: -x[2])
    lines += ["", "Most confused intents (gold → predicted): " + (", ".join(f"{g} → {p} ({n})" for g, p, n in pairs[:8]) or "none")]
    lines += ["", "## Slot types", "", "| slot type | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name in sorted(per_type, key=lambda n: (per_type[n]["f1"], n)):
        s = per_type[name]
        lines.append(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |")
    lines += ["", "Slot errors: " + ", ".join(f"{kind} {n}" for kind, n in error_counts.items())]
    lines += ["", "## Utterances that are not an exact match (most confident intent first)", ""]
    if not errors:
        lines.append("None: every validation utterance has the right intent and slots.")
        return "\n".join(lines) + "\n"
    lines += ["| utterance | wrong | gold | predicted |", "|---|---|---|---|"]
    lines += [f"| {markdown_cell(e['text'])} | {e['kind']} | {markdown_cell(e['gold'], 60)} | {markdown_cell(e['predicted'], 60)} |" for e in errors[:20]]
    advice = {"intent": "add varied utterances of the most confused intents",
              "missed": "add utterances where the missed slot types appear in new contexts",
              "spurious": "add utterances where similar words are not slots (tagged O)",
              "wrong type": "check that similar values are tagged with one slot type consistently",
              "wrong boundary": "check that slot boundaries are tagged consistently (e.g. whether 'the' belongs to them)"}
    problems = {"intent": sum("intent" in e["kind"] for e in errors), **error_counts}
    lines += ["", "## What to try", ""]
    lines += [f"- {kind} ({n}): {advice[kind]}." for kind, n in sorted(problems.items(), key=lambda item: -item[1]) if n]
    return "\n".join(lines) + "\n"
