"""Calibrated confidence: temperature scaling, expected calibration error, reliability bins.

Temperature scaling (Guo et al., 2017) divides a classifier's logits by one number ``T`` fitted on
validation data to minimise the negative log-likelihood; it changes no prediction (the ranking of
the classes is the same), only how confident the probabilities are. Expected calibration error
(ECE) is the gap between confidence and accuracy, averaged over equal-width confidence bins and
weighted by the share of examples in each. Numpy only, torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ReliabilityBin", "expected_calibration_error", "fit_temperature", "log_softmax", "negative_log_likelihood",
           "reliability_bins"]


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
