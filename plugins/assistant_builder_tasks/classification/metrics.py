"""Classification metrics (the toolkit's ``classification_scores``, scikit-learn) and the readable report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from assistant_builder.contracts import Evaluation
from assistant_builder.toolkit.calibration import expected_calibration_error
from assistant_builder.toolkit.metrics import classification_scores
from assistant_builder.toolkit.outofscope import auroc

METRIC_NAMES = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "ece",
                "in_scope_accuracy", "oos_precision", "oos_recall", "oos_f1", "oos_auroc")


def evaluate_labels(gold: Sequence[str], predicted: Sequence[str], scores: Sequence[float], texts: Sequence[str],
                    labels: Sequence[str], fallback_label: str | None = None,
                    in_scope_scores: Sequence[float | None] = ()) -> Evaluation:
    """Accuracy, macro/weighted F1, ECE, per-label P/R/F1, confusion matrix, and a Markdown report.

    With ``fallback_label``: the fallback label is scored as one more label, and the metrics add
    ``in_scope_accuracy`` (over gold in-scope examples; a rejection is an error) and, when some gold
    labels are the fallback label, ``oos_precision`` / ``oos_recall`` / ``oos_f1`` of the rejections
    and ``oos_auroc`` of ``in_scope_scores`` (when every prediction has one).
    """
    labels = list(labels)
    scored = [*labels, fallback_label] if fallback_label and fallback_label not in labels else labels
    result = classification_scores(gold, predicted, scored)
    metrics = {
        "accuracy": result.accuracy,
        "macro_f1": result.macro_f1,
        "weighted_f1": result.weighted_f1,
        "macro_precision": result.macro_precision,
        "macro_recall": result.macro_recall,
    }
    in_scope = [i for i, g in enumerate(gold) if g != fallback_label]
    if in_scope:  # confidence vs correctness of the in-scope answers
        metrics["ece"] = expected_calibration_error([scores[i] for i in in_scope], [gold[i] == predicted[i] for i in in_scope])
    if fallback_label:
        metrics.update(out_of_scope_metrics(gold, predicted, fallback_label, in_scope_scores))
    per_label, matrix = result.per_label, result.confusion_matrix
    errors = [
        {"text": t, "gold": g, "predicted": p, "score": float(s)}
        for t, g, p, s in zip(texts, gold, predicted, scores) if g != p
    ]
    errors.sort(key=lambda e: -e["score"])
    details = {"per_label": per_label, "labels": scored, "confusion_matrix": matrix, "errors": errors[:200]}
    if fallback_label:
        details["rejected"] = [{"text": t, "gold": g} for t, g, p in zip(texts, gold, predicted) if p == fallback_label][:200]
    return Evaluation(metrics, details, render_report(metrics, per_label, scored, matrix, errors, len(gold)))


def out_of_scope_metrics(gold: Sequence[str], predicted: Sequence[str], fallback_label: str,
                         in_scope_scores: Sequence[float | None] = ()) -> dict[str, float]:
    """``in_scope_accuracy``; with gold fallback examples also ``oos_precision/recall/f1`` and ``oos_auroc``."""
    inside = [(g, p) for g, p in zip(gold, predicted) if g != fallback_label]
    metrics = {"in_scope_accuracy": sum(g == p for g, p in inside) / len(inside) if inside else 0.0}
    n_oos = sum(g == fallback_label for g in gold)
    if n_oos:
        rejected = sum(p == fallback_label for p in predicted)
        caught = sum(g == p == fallback_label for g, p in zip(gold, predicted))
        precision = caught / rejected if rejected else 0.0
        recall = caught / n_oos
        metrics.update(oos_precision=precision, oos_recall=recall,
                       oos_f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        if in_scope_scores and all(s is not None for s in in_scope_scores) and inside:
            metrics["oos_auroc"] = auroc([s for g, s in zip(gold, in_scope_scores) if g != fallback_label],
                                         [s for g, s in zip(gold, in_scope_scores) if g == fallback_label])
    return metrics


def _confused_pairs(labels: list[str], matrix: list[list[int]]) -> list[tuple[str, str, int]]:
    pairs = [(labels[i], labels[j], matrix[i][j]) for i in range(len(labels)) for j in range(len(labels)) if i != j and matrix[i][j]]
    return sorted(pairs, key=lambda p: -p[2])


def render_report(metrics: dict[str, float], per_label: dict[str, dict[str, Any]], labels: list[str],
                  matrix: list[list[int]], errors: list[dict[str, Any]], total: int) -> str:
    """Markdown: headline metrics, per-label table, most confused pairs, confusion matrix, top errors."""
    lines = ["# Classification report", "", f"{total} validation examples, {len(labels)} labels.", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in metrics.items()]
    lines += ["", "## Per label", "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label in sorted(labels, key=lambda name: per_label[name]["f1"]):
        s = per_label[label]
        lines.append(f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |")
    pairs = _confused_pairs(labels, matrix)
    lines += ["", "## Most confused (gold → predicted)", ""]
    lines += [f"- {g} → {p}: {n}" for g, p, n in pairs[:10]] or ["- none"]
    if len(labels) <= 20:
        short = [label[:10] for label in labels]
        lines += ["", "## Confusion matrix (rows: gold, columns: predicted)", "",
                  "| gold \\ pred | " + " | ".join(short) + " |", "|---" * (len(labels) + 1) + "|"]
        lines += [f"| {labels[i]} | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(matrix)]
    lines += ["", "## Most confident errors", ""]
    if errors:
        lines += ["| text | gold | predicted | score |", "|---|---|---|---|"]
        for error in errors[:15]:
            text = error["text"].replace("|", "\\|")
            lines.append(f"| {text[:80]} | {error['gold']} | {error['predicted']} | {error['score']:.3f} |")
    else:
        lines.append("None: every validation example is classified correctly.")
    counts = Counter(e["gold"] for e in errors)
    if counts:
        worst = ", ".join(f"{label} ({n})" for label, n in counts.most_common(3))
        lines += ["", f"Labels with the most errors: {worst}. Add varied examples of them, or check their labels."]
    return "\n".join(lines) + "\n"
