"""Calibrated confidence: temperature scaling, an isotonic confidence map, expected calibration error, reliability bins.

Temperature scaling (Guo et al., 2017) divides a classifier's logits by one number ``T`` fitted on
validation data to minimise the negative log-likelihood; it changes no prediction (the ranking of
the classes is the same), only how confident the probabilities are. Expected calibration error
(ECE) is the gap between confidence and accuracy, averaged over equal-width confidence bins and
weighted by the share of examples in each. An isotonic map (Zadrozny and Elkan, 2002) of the top
class's probability after temperature scaling corrects what one temperature cannot: a model
over-confident in the middle and under-confident at the top; as it is fitted freely, its error is
measured out of fold (``out_of_fold_probabilities``). Calibrated scores are confidences only: the
predicted class is always the argmax of the logits, never re-read from calibrated probabilities
(``apply_confidence_map``). Torch-free; applying a map needs numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ReliabilityBin", "apply_confidence_map", "expected_calibration_error", "fit_isotonic_map", "fit_temperature",
           "log_softmax", "negative_log_likelihood", "out_of_fold_probabilities", "reliability_bins"]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of ``[examples, classes]`` logits (float64, numerically stable)."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def negative_log_likelihood(logits: np.ndarray, gold: Sequence[int], temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of class ids ``gold`` under ``softmax(logits / temperature)``."""
    gold = np.asarray(gold, dtype=np.int64)
    if not len(gold):
        return 0.0
    return float(-log_softmax(np.asarray(logits, dtype=np.float64) / temperature)[np.arange(len(gold)), gold].mean())


def fit_temperature(logits: np.ndarray, gold: Sequence[int], low: float = 0.05, high: float = 20.0) -> float:
    """The temperature in [``low``, ``high``] that minimises ``negative_log_likelihood`` (golden-section search on log T).

    The likelihood is unimodal in ``log T`` for a fixed set of logits. Returns 1.0 when there are no examples.
    """
    if not len(gold):
        return 1.0
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = negative_log_likelihood(logits, gold, np.exp(c)), negative_log_likelihood(logits, gold, np.exp(d))
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = negative_log_likelihood(logits, gold, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = negative_log_likelihood(logits, gold, np.exp(d))
    return float(np.exp((a + b) / 2))


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin: its range, how many examples fall in it, their mean confidence and accuracy."""

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], bins: int = 15) -> list[ReliabilityBin]:
    """Equal-width bins over (0, 1] of the top-class confidence; empty bins have count 0 and NaN figures."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    result = []
    for index, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (confidence > low) & (confidence <= high) if index else (confidence >= low) & (confidence <= high)
        count = int(inside.sum())
        result.append(ReliabilityBin(float(low), float(high), count,
                                     float(confidence[inside].mean()) if count else float("nan"),
                                     float(correct[inside].mean()) if count else float("nan")))
    return result


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 15) -> float:
    """``sum(count / n * |accuracy - confidence|)`` over ``reliability_bins`` (0 for no examples)."""
    total = len(confidence)
    if not total:
        return 0.0
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in reliability_bins(confidence, correct, bins) if b.count))


def fit_isotonic_map(confidence: Sequence[float], correct: Sequence[bool], bins: int = 5) -> list[tuple[float, float]]:
    """Knots ``(confidence, accuracy)`` of a monotone map from a top-class confidence to the accuracy seen
    at it, for ``np.interp`` (``apply_confidence_map``): the examples are cut into ``bins`` equal-count
    bins by confidence, and isotonic regression (scikit-learn, weighted by bin size) runs over the bins'
    mean confidence and accuracy; one knot per bin.

    Few bins make a smooth map that new data agrees with (bench/RESULTS.md: 5 bins gave the lowest
    out-of-fold error on SST-2); as many bins as examples is plain isotonic regression. The knots'
    accuracies are kept inside ``[0.5 / n, 1 - 0.5 / n]`` so that no score reads 0 or 1 from ``n``
    examples. Returns ``[]`` (no map) for fewer than two examples or a single confidence value.
    """
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if len(confidence) < 2 or np.ptp(confidence) == 0:
        return []
    from sklearn.isotonic import IsotonicRegression  # fit time only: applying a map needs numpy alone

    groups = [g for g in np.array_split(np.argsort(confidence, kind="stable"), min(max(bins, 2), len(confidence))) if len(g)]
    centres = np.array([confidence[g].mean() for g in groups])
    accuracy = np.array([correct[g].mean() for g in groups])
    fitted = IsotonicRegression(increasing=True).fit(centres, accuracy, sample_weight=[len(g) for g in groups]).predict(centres)
    margin = 0.5 / len(confidence)
    return [(round(float(x), 6), round(float(y), 6)) for x, y in zip(centres, np.clip(fitted, margin, 1.0 - margin))]


def apply_confidence_map(probabilities: np.ndarray, knots: Sequence[Sequence[float]],
                         winners: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Each row of ``[examples, classes]`` probabilities with its winning class's probability replaced by
    the map's value (``np.interp`` over ``knots``, clipped at their ends) and the other classes rescaled
    to share what is left in their proportions.

    ``winners`` gives each row's winning column: the predicted class, which the caller takes from the
    logits (``np.argmax(logits, axis=1)``); default: each row's first column holding its largest
    probability. The map never changes the prediction, and the scores show it: the winner's new
    probability is raised, where needed, to the least that keeps it at or above every other class,
    and no other class is left above it (rounding cannot put one there). A tie with the second class
    is possible, so a label must never be read back from the result (``argmax`` of a tie takes the
    lower column): the label is ``winners``. Rows sum to 1 up to rounding. No knots: the rows are
    returned as they are (a copy).
    """
    probs = np.array(probabilities, dtype=np.float64)
    if not len(knots) or probs.ndim != 2 or not len(probs) or probs.shape[1] < 2:
        return probs
    x, y = np.asarray(knots, dtype=np.float64).T
    rows = np.arange(len(probs))
    best = np.argmax(probs, axis=1) if winners is None else np.asarray(winners, dtype=np.int64)
    if best.shape != (len(probs),):
        raise ValueError(f"expected one winning column per row ({len(probs)}), got shape {best.shape}")
    top = probs[rows, best]
    others = probs.copy()
    others[rows, best] = -np.inf
    second = np.max(others, axis=1)
    rest = 1.0 - top
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = np.where(rest > 0, second / (rest + second), 1.0 / probs.shape[1])
        mapped = np.clip(np.maximum(np.interp(top, x, y), floor), 0.0, 1.0)
        scale = np.where(rest > 0, (1.0 - mapped) / rest, 0.0)
    result = probs * scale[:, None]
    flat = rest <= 0  # every other class had 0: the freed mass is shared equally
    result[flat] = ((1.0 - mapped[flat]) / (probs.shape[1] - 1))[:, None]
    result = np.minimum(result, mapped[:, None])  # at the floor the second equals the winner only up to rounding
    result[rows, best] = mapped
    return result


def out_of_fold_probabilities(logits: np.ndarray, gold: Sequence[int],
                              fit: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]],
                              folds: int = 10, seed: int = 0) -> np.ndarray | None:
    """Calibrated probabilities of every example from a calibrator fitted without it: ``fit(logits, gold)``
    returns the map from logits to probabilities, fitted here on ``folds - 1`` folds (a seeded shuffle)
    and applied to the fold left out. ``None`` when there are fewer than ``2 * folds`` examples.

    The calibration error of these probabilities is what the calibrator is worth on new data: fitted and
    measured on the same examples, a flexible map (``fit_isotonic_map``) looks better than it is.
    """
    logits, gold = np.asarray(logits, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    if len(gold) < 2 * folds:
        return None
    order = np.random.default_rng(seed).permutation(len(gold))
    result = np.zeros(logits.shape, dtype=np.float64)
    for held_out in np.array_split(order, folds):
        kept = np.setdiff1d(order, held_out)
        result[held_out] = fit(logits[kept], gold[kept])(logits[held_out])
    return result
