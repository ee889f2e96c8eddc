"""Start/end logits of every window of a question -> one answer span in the context.

For each window the ``n_best`` highest start and end logits among *context* tokens are paired
(end >= start, at most ``max_answer_length`` tokens); a span scores ``start_logit + end_logit``
(the SQuAD reference post-processing), and the best span over all windows wins. ``score`` in the
prediction is that span's softmax probability among the n-best candidates of the question (and
the null answer, when unanswerable questions are on), so it lies in [0, 1].

Spans come from the tokens' character offsets, trimmed of white space by the encoder; ``decide``
trims the winning span once more (``encoding.trim_span``), so an answer never starts or ends with
white space and ``answer == context[start:end]`` always; the evaluation scores that same text.

The null answer (``""``) is the first token (CLS) as both start and end; its score is the lowest
CLS score over the question's windows. It is predicted, when allowed, if it beats the best span
by more than ``null_threshold``: if ``Candidates.null_difference`` (null score minus best span
score) is above it. ``question_candidates`` / ``candidates_all`` rank a question's spans and
``decide`` turns them into the prediction; ``no_answer.py`` fits ``null_threshold`` on the same
candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant_builder.contracts import Feature
from assistant_builder.toolkit.decoding import softmax
from assistant_builder_tasks.qa.encoding import trim_span


@dataclass(frozen=True)
class Span:
    """A candidate answer: character offsets in the context and its logit score."""

    start: int
    end: int
    score: float


def window_candidates(start_logits: np.ndarray, end_logits: np.ndarray, offsets: Sequence[Any], n_best: int,
                      max_answer_length: int) -> list[Span]:
    """Valid spans of one window: context tokens only, end >= start, at most ``max_answer_length`` tokens."""
    context = np.array([o is not None for o in offsets[: len(start_logits)]], dtype=bool)
    if not context.any():
        return []
    starts = _top_context(start_logits, context, n_best)
    ends = _top_context(end_logits, context, n_best)
    spans = []
    for i in starts:
        for j in ends:
            if i <= j < i + max_answer_length:
                spans.append(Span(offsets[i][0], offsets[j][1], float(start_logits[i]) + float(end_logits[j])))
    if not spans:  # no pair among the n best fits: fall back to the best single token
        scores = np.where(context, start_logits.astype(np.float64) + end_logits.astype(np.float64), -np.inf)
        k = int(np.argmax(scores))
        spans.append(Span(offsets[k][0], offsets[k][1], float(scores[k])))
    return spans


def _top_context(logits: np.ndarray, context: np.ndarray, n: int) -> list[int]:
    masked = np.where(context, logits.astype(np.float64), -np.inf)
    order = np.argsort(-masked, kind="stable")[:n]
    return [int(i) for i in order if context[i]]


@dataclass(frozen=True)
class Candidates:
    """One question's spans, best first (at most ``n_best``, distinct offsets), and its null (CLS) score."""

    spans: tuple[Span, ...]
    null_score: float

    @property
    def null_difference(self) -> float:
        """``null_score - best span score``; the null answer is predicted when this is above ``null_threshold``
        (``inf`` without any span: the null answer is then always predicted, when allowed)."""
        return self.null_score - self.spans[0].score if self.spans else float("inf")


def question_candidates(feature_rows: Sequence[tuple[Feature, np.ndarray, np.ndarray]], n_best: int,
                        max_answer_length: int) -> Candidates:
    """The ranked spans of one question over its windows ``(feature, start_logits, end_logits)`` and its null score."""
    best: dict[tuple[int, int], float] = {}
    null_score = np.inf
    for feature, start_logits, end_logits in feature_rows:
        null_score = min(null_score, float(start_logits[0]) + float(end_logits[0]))
        for span in window_candidates(start_logits, end_logits, feature["offsets"], n_best, max_answer_length):
            key = (span.start, span.end)
            if span.score > best.get(key, -np.inf):
                best[key] = span.score
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:n_best]
    return Candidates(tuple(Span(start, end, score) for (start, end), score in ranked), float(null_score))


def decide(candidates: Candidates, context: str, allow_null: bool, null_threshold: float) -> dict[str, Any]:
    """The prediction for one question from its ``candidates``: the best span, or ``""`` when allowed and
    ``candidates.null_difference > null_threshold``."""
    spans, null_score = candidates.spans, candidates.null_score
    scores = [s.score for s in spans] + ([null_score] if allow_null and np.isfinite(null_score) else [])
    probabilities = softmax(np.array(scores, dtype=np.float64)) if scores else np.zeros(0)
    if allow_null and (not spans or candidates.null_difference > null_threshold):
        return {"answer": "", "start": None, "end": None, "score": float(probabilities[-1]) if len(probabilities) else 1.0}
    if not spans:
        return {"answer": "", "start": None, "end": None, "score": 0.0}
    start, end = trim_span(context, spans[0].start, spans[0].end)
    return {"answer": context[start:end], "start": start, "end": end, "score": float(probabilities[0])}


def decode_example(feature_rows: Sequence[tuple[Feature, np.ndarray, np.ndarray]], context: str, n_best: int,
                   max_answer_length: int, allow_null: bool, null_threshold: float) -> dict[str, Any]:
    """The prediction for one question from its windows ``(feature, start_logits, end_logits)``."""
    return decide(question_candidates(feature_rows, n_best, max_answer_length), context, allow_null, null_threshold)


def candidates_all(start_logits: Sequence[np.ndarray], end_logits: Sequence[np.ndarray], features: Sequence[Feature],
                   questions: int, n_best: int, max_answer_length: int) -> list[Candidates]:
    """``Candidates`` of each of ``questions`` questions, from per-feature logits aligned with ``features``."""
    rows: list[list[tuple[Feature, np.ndarray, np.ndarray]]] = [[] for _ in range(questions)]
    for feature, start, end in zip(features, start_logits, end_logits):
        rows[feature["example_index"]].append((feature, np.asarray(start), np.asarray(end)))
    return [question_candidates(r, n_best, max_answer_length) for r in rows]


def decode_all(start_logits: Sequence[np.ndarray], end_logits: Sequence[np.ndarray], features: Sequence[Feature],
               contexts: Sequence[str], n_best: int, max_answer_length: int, allow_null: bool,
               null_threshold: float) -> list[dict[str, Any]]:
    """One prediction per context (question), from per-feature logits aligned with ``features``."""
    candidates = candidates_all(start_logits, end_logits, features, len(contexts), n_best, max_answer_length)
    return [decide(c, context, allow_null, null_threshold) for c, context in zip(candidates, contexts)]
