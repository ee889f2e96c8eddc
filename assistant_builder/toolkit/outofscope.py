"""Out-of-scope rejection: an in-scope score, a threshold fitted on validation, and what it costs.

A classifier always answers with one of its labels. A rejection rule says "none of them" when the
input's **in-scope score** is below a threshold. The score used by the built-in classification
task is the **energy score** (Liu et al., 2020): ``logsumexp`` of the in-scope classes' logits,
high for inputs like the training data. On CLINC150 it separated in-scope from out-of-scope
validation queries better than the maximum softmax probability, Mahalanobis and k-NN distances
on the encoder's sentence vectors, and an out-of-scope class alone (``bench/RESULTS.md``).

``fit_threshold`` chooses the threshold by a stated objective:

* validation has at least ``min_out_of_scope`` out-of-scope examples: maximise out-of-scope F1
  subject to in-scope accuracy (rejections count as errors) >= the accuracy without rejection
  minus ``max_accuracy_loss``;
* otherwise: keep at least ``keep`` of the correctly classified in-scope validation examples;
* fewer than ``min_correct`` correctly classified in-scope examples: no threshold can be fitted
  (``None``: nothing is rejected), with a warning that gives the count.

A fitted threshold lies halfway between the two validation scores it separates, never on one, so a
score that differs by rounding (an exported model) gets the same decision.

Numpy only, torch-free. Scores: higher means more in scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["RejectionScores", "ThresholdFit", "accuracy_at_coverage", "auroc", "energy_scores", "fit_threshold",
           "rejection_scores", "tradeoff_table"]


def energy_scores(logits: np.ndarray, in_scope_columns: Sequence[int] | None = None) -> np.ndarray:
    """``logsumexp`` over the in-scope columns of ``[examples, classes]`` logits (all columns by default)."""
    logits = np.asarray(logits, dtype=np.float64)
    if in_scope_columns is not None:
        logits = logits[:, list(in_scope_columns)]
    if logits.shape[0] == 0:
        return np.zeros(0)
    top = logits.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))[:, 0]


@dataclass(frozen=True)
class RejectionScores:
    """What rejecting below ``threshold`` does on labelled data.

    ``in_scope_accuracy``: share of in-scope examples kept *and* correctly labelled; ``kept``:
    share of in-scope examples not rejected; ``oos_*``: precision / recall / F1 of rejection as a
    detector of out-of-scope examples (``nan`` without out-of-scope examples).
    """

    threshold: float | None
    in_scope_accuracy: float
    kept: float
    oos_precision: float
    oos_recall: float
    oos_f1: float

    def to_dict(self) -> dict[str, float | None]:
        return {"threshold": self.threshold, "in_scope_accuracy": self.in_scope_accuracy, "kept": self.kept,
                "oos_precision": self.oos_precision, "oos_recall": self.oos_recall, "oos_f1": self.oos_f1}


def _arrays(scores: Sequence[float], correct: Sequence[bool], out_of_scope: Sequence[bool]) -> tuple[np.ndarray, ...]:
    s, c, o = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool), np.asarray(out_of_scope, dtype=bool)
    if not (s.shape == c.shape == o.shape):
        raise ValueError(f"scores, correct and out_of_scope must have one value per example, got {s.shape}, {c.shape}, {o.shape}")
    return s, c, o


def rejection_scores(scores: Sequence[float], correct: Sequence[bool], out_of_scope: Sequence[bool],
                     threshold: float | None) -> RejectionScores:
    """``RejectionScores`` of the rule "reject when score < threshold" (``None``: reject nothing).

    ``correct[i]``: the top in-scope label is the gold label (ignored for out-of-scope examples).
    """
    s, c, o = _arrays(scores, correct, out_of_scope)
    rejected = s < threshold if threshold is not None else np.zeros_like(o)
    inside = ~o
    n_in = int(inside.sum())
    accuracy = float((c & ~rejected & inside).sum() / n_in) if n_in else float("nan")
    kept = float((~rejected & inside).sum() / n_in) if n_in else float("nan")
    if not o.any():
        return RejectionScores(threshold, accuracy, kept, float("nan"), float("nan"), float("nan"))
    caught = int((rejected & o).sum())
    precision = caught / int(rejected.sum()) if rejected.any() else 0.0
    recall = caught / int(o.sum())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return RejectionScores(threshold, accuracy, kept, float(precision), float(recall), float(f1))


@dataclass(frozen=True)
class ThresholdFit:
    """A fitted threshold (``None``: reject nothing), the objective that chose it, its scores on the
    fitting data and the warnings a user must see (too little data, no threshold met the floor)."""

    threshold: float | None
    objective: str
    scores: RejectionScores
    warnings: list[str] = field(default_factory=list)


def fit_threshold(scores: Sequence[float], correct: Sequence[bool], out_of_scope: Sequence[bool], *, keep: float = 0.98,
                  max_accuracy_loss: float = 0.01, min_out_of_scope: int = 10, min_correct: int = 20) -> ThresholdFit:
    """Choose the rejection threshold on labelled validation data (see the module docstring for the objectives)."""
    s, c, o = _arrays(scores, correct, out_of_scope)
    correct_in = s[c & ~o]
    if len(correct_in) < min_correct:
        message = (f"only {len(correct_in)} correctly classified in-scope validation examples (at least {min_correct} are "
                   f"needed to fit a rejection threshold); nothing is rejected: add validation data or set fallback_threshold")
        return ThresholdFit(None, "none: too little validation data", rejection_scores(s, c, o, None), [message])
    keep_all = rejection_scores(s, c, o, None)
    if int(o.sum()) >= min_out_of_scope:
        floor = keep_all.in_scope_accuracy - max_accuracy_loss
        best: RejectionScores | None = None
        for candidate in np.unique(s[o]):  # a threshold just above an out-of-scope score catches it
            t = float(np.nextafter(candidate, np.inf))
            result = rejection_scores(s, c, o, t)
            if result.in_scope_accuracy >= floor - 1e-12 and (best is None or result.oos_f1 > best.oos_f1):
                best = result
        objective = (f"max out-of-scope F1 with in-scope accuracy >= {floor:.4f} (no-rejection accuracy "
                     f"{keep_all.in_scope_accuracy:.4f} - {max_accuracy_loss})")
        if best is None or best.oos_f1 <= 0:
            return ThresholdFit(None, objective, keep_all, ["no threshold catches out-of-scope examples within the in-scope "
                                                            "accuracy floor; nothing is rejected"])
        threshold = _between(s, float(best.threshold))
        return ThresholdFit(threshold, objective, rejection_scores(s, c, o, threshold))
    ordered = np.sort(correct_in)
    threshold = _between(s, float(ordered[int(np.floor((1.0 - keep) * len(ordered)))]))
    objective = f"keep >= {keep:.0%} of the correctly classified in-scope validation examples"
    warnings = []
    if o.any():
        warnings.append(f"only {int(o.sum())} out-of-scope validation examples (at least {min_out_of_scope} are needed to "
                        f"fit on them); threshold chosen to {objective}")
    return ThresholdFit(threshold, objective, rejection_scores(s, c, o, threshold), warnings)


def _between(scores: np.ndarray, threshold: float) -> float:
    """The midpoint between the highest score below ``threshold`` and the lowest at or above it: the same
    decisions on the fitting data, with the widest margin on both sides (so an exported model whose scores
    differ by rounding decides the same way)."""
    below, above = scores[scores < threshold], scores[scores >= threshold]
    if not len(below) or not len(above):
        return threshold
    return float((below.max() + above.min()) / 2.0)


def auroc(in_scope_scores: Sequence[float], out_of_scope_scores: Sequence[float]) -> float:
    """Area under the ROC curve of the score as a detector of in-scope inputs (ties count half; ``nan`` if a side is empty)."""
    a, b = np.asarray(in_scope_scores, dtype=np.float64), np.asarray(out_of_scope_scores, dtype=np.float64)
    if not len(a) or not len(b):
        return float("nan")
    both = np.concatenate([a, b])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(len(both))
    sorted_values = both[order]
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0  # average 1-based rank of each tie group
    ranks[order] = np.repeat(average, counts)
    return float((ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2.0) / (len(a) * len(b)))


def accuracy_at_coverage(scores: Sequence[float], correct: Sequence[bool], coverages: Sequence[float] = (1.0, 0.9, 0.8, 0.5)) -> dict[float, float]:
    """Accuracy on the ``coverage`` share of examples with the highest scores (in-scope examples only)."""
    s, c = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    order = np.argsort(-s, kind="mergesort")
    result = {}
    for coverage in coverages:
        n = max(1, int(round(coverage * len(s)))) if len(s) else 0
        result[float(coverage)] = float(c[order[:n]].mean()) if n else float("nan")
    return result


def tradeoff_table(scores: Sequence[float], correct: Sequence[bool], out_of_scope: Sequence[bool],
                   points: int = 9) -> list[RejectionScores]:
    """``rejection_scores`` at thresholds that keep 100%, ..., 60% of the in-scope examples (quantiles of their scores)."""
    s, c, o = _arrays(scores, correct, out_of_scope)
    inside = np.sort(s[~o]) if (~o).any() else np.sort(s)
    if not len(inside):
        return []
    rows = []
    for share in np.linspace(1.0, 0.6, points):
        index = int(np.floor((1.0 - share) * len(inside)))
        rows.append(rejection_scores(s, c, o, float(inside[min(index, len(inside) - 1)])))
    return rows
