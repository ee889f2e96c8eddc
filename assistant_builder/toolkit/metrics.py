"""Evaluation building blocks: entity-level scores (seqeval, strict IOB2), span errors, classification scores.

Torch-free; seqeval and scikit-learn are imported only inside the functions that score with them,
so a task module that imports this one stays cheap to import (``builder predict`` imports tasks).

Span errors compare one sentence's gold and predicted entity sets (exact matches are correct):

* ``wrong type``: a predicted entity has exactly the gold entity's words but another type;
* ``wrong boundary``: a predicted entity overlaps the gold entity with different words (its type
  may differ too);
* ``missed``: no predicted entity overlaps the gold entity;
* ``spurious``: a predicted entity overlaps no gold entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant_builder.toolkit.tags import Span

__all__ = ["ERROR_KINDS", "SpanError", "entity_scores", "zero_scores", "token_accuracy", "span_errors", "count_span_errors",
           "ClassificationScores", "classification_scores", "markdown_cell"]

ERROR_KINDS = ("wrong type", "wrong boundary", "missed", "spurious")
"""The span error categories, in report order."""

SpanError = tuple[str, "Span | None", "Span | None"]
"""``(kind, gold span or None, predicted span or None)``."""


def zero_scores() -> dict[str, Any]:
    """The per-type entry of a type with no gold and no predicted entity."""
    return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                  types: Sequence[str] = ()) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Micro ``precision``/``recall``/``f1`` and per-type scores of predicted IOB2 sequences (one per sentence).

    Strict matching (seqeval ``mode="strict"``, ``IOB2``): an entity counts only if its words and
    its type both match. Per-type entries hold ``precision``, ``recall``, ``f1`` and ``support``
    (gold entities); every type in ``types`` gets one (zeros if it never occurs). With no entity
    at all on either side every score is 0.
    """
    if not any(t != "O" for tags in [*gold, *predicted] for t in tags):
        micro, per_type = {"precision": 0.0, "recall": 0.0, "f1": 0.0}, {}
    else:
        from seqeval.metrics import classification_report
        from seqeval.scheme import IOB2

        table = classification_report([list(t) for t in gold], [list(t) for t in predicted], mode="strict", scheme=IOB2,
                                      output_dict=True, zero_division=0)
        row = table["micro avg"]
        micro = {"precision": float(row["precision"]), "recall": float(row["recall"]), "f1": float(row["f1-score"])}
        per_type = {name: {"precision": float(r["precision"]), "recall": float(r["recall"]), "f1": float(r["f1-score"]),
                           "support": int(r["support"])}
                    for name, r in table.items() if not name.endswith(" avg")}
    for entity_type in types:
        per_type.setdefault(entity_type, zero_scores())
    return micro, per_type


def token_accuracy(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """The share of words whose predicted tag equals the gold tag (0 when there are no words)."""
    words = sum(len(tags) for tags in gold)
    correct = sum(g == p for gold_tags, predicted_tags in zip(gold, predicted) for g, p in zip(gold_tags, predicted_tags))
    return correct / words if words else 0.0


def span_errors(gold: Sequence[Span], predicted: Sequence[Span]) -> list[SpanError]:
    """The span errors of one sentence (see the module docstring): gold-side errors in gold order, then spurious ones."""
    gold_set, predicted_set = set(gold), set(predicted)
    wrong_gold = [g for g in gold if g not in predicted_set]
    wrong_predicted = [p for p in predicted if p not in gold_set]
    explained: set[Span] = set()
    errors: list[SpanError] = []
    for g in wrong_gold:
        overlapping = [p for p in wrong_predicted if p[0] < g[1] and g[0] < p[1]]
        same_words = [p for p in overlapping if p[:2] == g[:2]]
        kind = "wrong type" if same_words else "wrong boundary" if overlapping else "missed"
        errors.append((kind, g, (same_words or overlapping or [None])[0]))
        explained.update(overlapping)
    errors.extend(("spurious", None, p) for p in wrong_predicted if p not in explained)
    return errors


def count_span_errors(kinds: Sequence[str]) -> dict[str, int]:
    """``{kind: count}`` for every kind of ``ERROR_KINDS`` (in that order), from the kinds of the errors found."""
    return {kind: sum(k == kind for k in kinds) for kind in ERROR_KINDS}


@dataclass(frozen=True)
class ClassificationScores:
    """Single-label classification scores over a fixed label list (``classification_scores``).

    Macro averages are over every label of the list (labels absent from gold and predictions
    count as 0); ``present_macro_f1`` averages only over labels that occur in gold or predictions.
    ``per_label[label]`` holds ``precision``, ``recall``, ``f1`` and ``support``;
    ``confusion_matrix[gold][predicted]`` counts examples whose gold and predicted labels are both
    in the list.
    """

    accuracy: float
    macro_f1: float
    weighted_f1: float
    macro_precision: float
    macro_recall: float
    present_macro_f1: float
    per_label: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion_matrix: list[list[int]] = field(default_factory=list)


def classification_scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> ClassificationScores:
    """Accuracy, macro / weighted averages, per-label scores and the confusion matrix (scikit-learn).

    ``accuracy`` is over every example, also those whose gold label is not in ``labels``.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(labels)
    accuracy = float(accuracy_score(gold, predicted))
    macro = precision_recall_fscore_support(gold, predicted, labels=labels, average="macro", zero_division=0)
    weighted = precision_recall_fscore_support(gold, predicted, labels=labels, average="weighted", zero_division=0)
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    matrix = confusion_matrix(gold, predicted, labels=labels)
    per_label = {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for label, p, r, f, s in zip(labels, precision, recall, f1, support)}
    predicted_labels = set(predicted)
    present = [s["f1"] for label, s in per_label.items() if s["support"] or label in predicted_labels]
    return ClassificationScores(accuracy=accuracy, macro_f1=float(macro[2]), weighted_f1=float(weighted[2]),
                                macro_precision=float(macro[0]), macro_recall=float(macro[1]),
                                present_macro_f1=sum(present) / len(present) if present else 0.0,
                                per_label=per_label, confusion_matrix=matrix.tolist())


def markdown_cell(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters with ``|`` escaped, for a cell of a Markdown table in a report."""
    return text[:limit].replace("|", "\\|")
