"""Agreement between two models' predictions, for export verification (``Task.agreement``).

Torch-free. Three ways to count, for three kinds of prediction:

* ``example_agreement``: one decision per example (a label); the share of equal keys.
* ``unit_agreement``: a set of units per example (entities as ``(start, end, type)``, words with
  their tags); micro Dice over all units, ``2 |A ∩ B| / (|A| + |B|)`` summed over examples: one
  differing entity of a long sentence costs that entity, not the sentence.
* ``overlap_agreement``: a graded score per example (an answer's token F1 against the reference
  answer), averaged over examples.

Every function takes the predictions of the model under test first and the reference second, and
returns 1.0 when there is nothing to compare.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any

__all__ = ["example_agreement", "overlap_agreement", "unit_agreement"]


def example_agreement(keys: Sequence[Hashable], reference_keys: Sequence[Hashable]) -> float:
    """Fraction of positions where ``keys[i] == reference_keys[i]`` (1.0 for no examples)."""
    if len(keys) != len(reference_keys):
        raise ValueError(f"expected as many predictions as reference predictions, got {len(keys)} and {len(reference_keys)}")
    if not keys:
        return 1.0
    return sum(a == b for a, b in zip(keys, reference_keys)) / len(keys)


def unit_agreement(units: Sequence[Collection[Hashable]], reference_units: Sequence[Collection[Hashable]]) -> float:
    """Micro Dice between per-example multisets of units: ``2 * shared / (predicted + reference)``.

    Examples where both sides have no units add nothing; 1.0 when no example has any unit.
    """
    if len(units) != len(reference_units):
        raise ValueError(f"expected as many predictions as reference predictions, got {len(units)} and {len(reference_units)}")
    shared = total = 0
    for mine, theirs in zip(units, reference_units):
        shared += sum((Counter(mine) & Counter(theirs)).values())
        total += len(mine) + len(theirs)
    return 2 * shared / total if total else 1.0


def overlap_agreement(predictions: Sequence[Any], reference: Sequence[Any], score: Callable[[Any, Any], float]) -> float:
    """Mean of ``score(prediction, reference prediction)`` over examples (each in [0, 1]); 1.0 for none."""
    if len(predictions) != len(reference):
        raise ValueError(f"expected as many predictions as reference predictions, got {len(predictions)} and {len(reference)}")
    if not predictions:
        return 1.0
    return sum(score(a, b) for a, b in zip(predictions, reference)) / len(predictions)
