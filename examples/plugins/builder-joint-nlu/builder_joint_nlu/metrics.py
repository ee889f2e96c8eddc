"""Joint NLU metrics and the readable report.

* ``intent_accuracy`` and ``intent_macro_f1`` over the model's intents;
* ``slot_f1``, ``slot_precision``, ``slot_recall``: entity-level micro scores (seqeval, strict IOB2:
  a slot counts only if its words and its type both match);
* ``exact_match``: the share of utterances whose intent *and* every slot are right (the
  "sentence accuracy" / semantic frame accuracy of the JointBERT papers).

Torch-free; seqeval (which imports scikit-learn) is imported only when slots are scored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from assistant_builder.contracts import Evaluation
from builder_joint_nlu.tags import Span, spans

METRIC_NAMES = ("exact_match", "intent_accuracy", "intent_macro_f1", "slot_f1", "slot_precision", "slot_recall")


def slot_scores(gold: list[list[str]], predicted: list[list[str]]) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Micro precision/recall/F1 of slots and per-type scores (seqeval, strict IOB2)."""
    if not any(t != "O" for tags in [*gold, *predicted] for t in tags):
        return {"slot_precision": 0.0, "slot_recall": 0.0, "slot_f1": 0.0}, {}
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    table = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    micro = table["micro avg"]
    per_type = {
        name: {"precision": float(row["precision"]), "recall": float(row["recall"]), "f1": float(row["f1-score"]), "support": int(row["support"])}
        for name, row in table.items() if not name.endswith(" avg")
    }
    return {"slot_precision": float(micro["precision"]), "slot_recall": float(micro["recall"]), "slot_f1": float(micro["f1-score"])}, per_type


def intent_scores(gold: Sequence[str], predicted: Sequence[str], intents: Sequence[str]) -> tuple[dict[str, float], dict[str, dict[str, Any]], list[list[int]]]:
    """Accuracy, macro F1 over ``intents``, per-intent P/R/F1 and the confusion matrix (rows: gold)."""
    index = {intent: i for i, intent in enumerate(intents)}
    matrix = [[0] * len(intents) for _ in intents]
    for g, p in zip(gold, predicted):
        if g in index and p in index:
            matrix[index[g]][index[p]] += 1
    true_positive = Counter(g for g, p in zip(gold, predicted) if g == p)
    gold_counts, predicted_counts = Counter(gold), Counter(predicted)
    per_intent = {}
    for intent in intents:
        tp = true_positive[intent]
        precision = tp / predicted_counts[intent] if predicted_counts[intent] else 0.0
        recall = tp / gold_counts[intent] if gold_counts[intent] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[intent] = {"precision": precision, "recall": recall, "f1": f1, "support": gold_counts[intent]}
    present = [s["f1"] for name, s in per_intent.items() if s["support"] or predicted_counts[name]]
    accuracy = sum(true_positive.values()) / len(gold) if gold else 0.0
    return {"intent_accuracy": accuracy, "intent_macro_f1": sum(present) / len(present) if present else 0.0}, per_intent, matrix


def categorise(gold: Sequence[Span], predicted: Sequence[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """Slot errors of one utterance: ``wrong type``, ``wrong boundary``, ``missed`` or ``spurious``."""
    gold_set, predicted_set = set(gold), set(predicted)
    wrong_gold = [g for g in gold if g not in predicted_set]
    wrong_predicted = [p for p in predicted if p not in gold_set]
    explained: set[Span] = set()
    errors: list[tuple[str, Span | None, Span | None]] = []
    for g in wrong_gold:
        overlapping = [p for p in wrong_predicted if p[0] < g[1] and g[0] < p[1]]
        same_words = [p for p in overlapping if p[:2] == g[:2]]
        kind = "wrong type" if same_words else "wrong boundary" if overlapping else "missed"
        errors.append((kind, g, (same_words or overlapping or [None])[0]))
        explained.update(overlapping)
    errors.extend(("spurious", None, p) for p in wrong_predicted if p not in explained)
    return errors


def frame(example: Any, intent: str, tags: Sequence[str]) -> str:
    """``intent (type: words, ...)``: an utterance's meaning in one line."""
    slots = [f"{t}: {example.text[example.offsets[s][0]:example.offsets[e - 1][1]]}" for s, e, t in spans(tags)]
    return f"{intent} ({', '.join(slots)})" if slots else intent


def evaluate_joint(gold_intents: list[str], predicted_intents: list[str], gold_tags: list[list[str]], predicted_tags: list[list[str]],
                   scores: list[float], examples: Sequence[Any], intents: Sequence[str], slot_types: Sequence[str]) -> Evaluation:
    """Score predicted intents and IOB2 tag sequences against the gold ones (one per example)."""
    intent_metrics, per_intent, matrix = intent_scores(gold_intents, predicted_intents, intents)
    slot_metrics, per_type = slot_scores(gold_tags, predicted_tags)
    for slot_type in slot_types:
        per_type.setdefault(slot_type, {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0})
    exact = [gi == pi and list(gt) == list(pt) for gi, pi, gt, pt in zip(gold_intents, predicted_intents, gold_tags, predicted_tags)]
    metrics = {"exact_match": sum(exact) / len(exact) if exact else 0.0, **intent_metrics, **slot_metrics}
    errors, slot_errors = [], []
    for i, example in enumerate(examples):
        found = categorise(spans(gold_tags[i]), spans(predicted_tags[i]))
        slot_errors += [(kind, g, p) for kind, g, p in found]
        if exact[i]:
            continue
        wrong = [name for name, bad in (("intent", gold_intents[i] != predicted_intents[i]), ("slots", bool(found))) if bad]
        errors.append({"kind": " + ".join(wrong), "text": example.text, "source": example.source, "score": scores[i],
                       "gold": frame(example, gold_intents[i], gold_tags[i]), "predicted": frame(example, predicted_intents[i], predicted_tags[i])})
    counts = Counter(kind for kind, _, _ in slot_errors)
    error_counts = {kind: counts.get(kind, 0) for kind in ("wrong type", "wrong boundary", "missed", "spurious")}
    errors.sort(key=lambda e: -e["score"])
    details = {"labels": list(intents), "per_label": per_intent, "confusion_matrix": matrix, "slot_types": list(slot_types),
               "per_type": per_type, "error_counts": error_counts, "errors": errors[:200]}
    report = render_report(metrics, per_intent, per_type, intents, matrix, error_counts, errors, len(examples))
    return Evaluation(metrics, details, report)


def _cell(text: str, limit: int = 80) -> str:
    return text[:limit].replace("|", "\\|")


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
    lines += [f"| {_cell(e['text'])} | {e['kind']} | {_cell(e['gold'], 60)} | {_cell(e['predicted'], 60)} |" for e in errors[:20]]
    advice = {"intent": "add varied utterances of the most confused intents",
              "missed": "add utterances where the missed slot types appear in new contexts",
              "spurious": "add utterances where similar words are not slots (tagged O)",
              "wrong type": "check that similar values are tagged with one slot type consistently",
              "wrong boundary": "check that slot boundaries are tagged consistently (e.g. whether 'the' belongs to them)"}
    problems = {"intent": sum("intent" in e["kind"] for e in errors), **error_counts}
    lines += ["", "## What to try", ""]
    lines += [f"- {kind} ({n}): {advice[kind]}." for kind, n in sorted(problems.items(), key=lambda item: -item[1]) if n]
    return "\n".join(lines) + "\n"
