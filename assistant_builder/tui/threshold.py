"""The out-of-scope threshold "what-if" of the Evaluate screen: what rejecting below another
threshold would do on the run's validation set.

The rule is the one the task fits and applies (``docs/out_of_scope.md``): an input is rejected when
its in-scope score (energy) is ``< threshold``; the figures are ``toolkit.outofscope.rejection_scores``,
the same as the report's "Out-of-scope rejection" section. A ``fallback_margin`` rule is not part of
the what-if (it does not depend on the threshold). Thresholds move through the gaps between the
validation scores, so each step changes the decision on the examples of exactly one score.

Torch- and textual-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant_builder.toolkit.outofscope import RejectionScores, rejection_scores

__all__ = ["ScoredExample", "WhatIf", "candidate_thresholds", "format_threshold", "step_threshold", "what_if"]


@dataclass(frozen=True)
class ScoredExample:
    """One validation example: its gold label, the in-scope label the model would give it
    (``candidate``: the top in-scope label, whatever the rule decided) and its in-scope score."""

    text: str
    gold: str
    candidate: str
    score: float
    out_of_scope: bool  # the gold label is the fallback label
    source: str = ""


@dataclass(frozen=True)
class WhatIf:
    """Rejecting below ``threshold`` (``None``: reject nothing) on the validation examples.

    ``rows``: the rejected examples and the out-of-scope examples that are accepted, highest score
    first (the accepted out-of-scope ones come first, then the rejected ones, nearest the threshold first).
    """

    threshold: float | None
    scores: RejectionScores
    in_scope: int
    out_of_scope: int
    rejected_in_scope: int
    rejected_out_of_scope: int
    rows: list[tuple[bool, ScoredExample]]  # (rejected, example)

    @property
    def rejected(self) -> int:
        return self.rejected_in_scope + self.rejected_out_of_scope

    @property
    def accepted_out_of_scope(self) -> int:
        return self.out_of_scope - self.rejected_out_of_scope


def what_if(examples: Sequence[ScoredExample], threshold: float | None) -> WhatIf:
    """Counts, ``rejection_scores`` figures and the rejected / wrongly accepted examples at ``threshold``."""
    scores = [e.score for e in examples]
    correct = [e.candidate == e.gold for e in examples]
    out_of_scope = [e.out_of_scope for e in examples]
    rejected = [threshold is not None and e.score < threshold for e in examples]
    rows = [(r, e) for r, e in zip(rejected, examples) if r or e.out_of_scope]
    rows.sort(key=lambda row: -row[1].score)
    return WhatIf(threshold, rejection_scores(scores, correct, out_of_scope, threshold),
                  in_scope=sum(not o for o in out_of_scope), out_of_scope=sum(out_of_scope),
                  rejected_in_scope=sum(r and not o for r, o in zip(rejected, out_of_scope)),
                  rejected_out_of_scope=sum(r and o for r, o in zip(rejected, out_of_scope)), rows=rows)


def candidate_thresholds(scores: Sequence[float]) -> list[float]:
    """The thresholds worth stepping through, ascending: halfway between each two neighbouring distinct
    scores, and one above the highest (reject all). Below the lowest is ``None`` (reject nothing)."""
    unique = np.unique(np.asarray(scores, dtype=np.float64))
    if not len(unique):
        return []
    middles = [float(v) for v in (unique[:-1] + unique[1:]) / 2.0]
    gap = float(unique[-1] - unique[-2]) / 2.0 if len(unique) > 1 else 0.5
    return [*middles, float(unique[-1]) + gap]


def step_threshold(candidates: Sequence[float], threshold: float | None, steps: int) -> float | None:
    """``steps`` candidates above (``steps > 0``: reject more) or below ``threshold``, clamped at both ends
    (``None`` below the lowest). A threshold between two candidates (set in a recipe) steps to its neighbours."""
    if steps == 0:
        return threshold
    current = -math.inf if threshold is None else threshold
    if steps > 0:
        above = [c for c in candidates if c > current]
        return above[min(steps, len(above)) - 1] if above else threshold
    below = [c for c in candidates if c < current]
    return below[steps] if -steps <= len(below) else None  # below[-1]: the next one down


def format_threshold(threshold: float, scores: Sequence[float]) -> str:
    """The shortest decimal for ``threshold`` that rejects the same ``scores`` (for a command line or a recipe)."""
    values = np.asarray(scores, dtype=np.float64)
    decisions = values < threshold
    for digits in range(1, 17):
        text = f"{threshold:.{digits}f}"
        if np.array_equal(values < float(text), decisions):
            return text
    return repr(threshold)
