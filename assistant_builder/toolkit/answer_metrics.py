"""Answer scores as the official SQuAD v1.1 evaluation computes them, for any task that compares answer text.

``normalize_answer`` lower-cases, drops punctuation and the articles a/an/the and collapses
whitespace; ``exact_match_score`` compares normalised strings; ``f1_score`` is the bag-of-words F1
of the normalised strings. Scores are fractions in [0, 1]. Used by the ``qa`` task (extracted
spans) and the ``generation`` task (generated answers, and the agreement of an export's answers
with PyTorch's). Torch-free.
"""

from __future__ import annotations

import re
import string
from collections import Counter

__all__ = ["exact_match_score", "f1_score", "normalize_answer"]

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official SQuAD)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-level F1 between normalized prediction and gold answer (official SQuAD v1.1)."""
    prediction_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    """1.0 if prediction and gold answer normalize to the same string."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))
