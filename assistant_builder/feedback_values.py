"""Value checks and confidence measures of the feedback contract, with no dependency on ``contracts``.

``contracts.Task``'s default ``feedback_gold`` and ``prediction_confidence`` use them, and
``assistant_builder.feedback`` re-exports them (import them from there). Torch-free.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from assistant_builder.errors import DataError


def shown(value: Any) -> str:
    """``value`` as JSON for an error message, cut to 80 characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def require_label(value: Any, labels: Sequence[str], field: str = "label") -> str:
    """``value`` if it is one of ``labels``; else ``DataError`` naming ``field`` and the allowed labels."""
    if isinstance(value, str) and value in labels:
        return value
    allowed = ", ".join(labels)
    raise DataError(f"{field}: expected one of the model's labels ({allowed}), got {shown(value)}",
                    hint="labels are case-sensitive; GET /info lists them")


def require_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise DataError(f"{field}: expected true or false, got {shown(value)}")
    return value


def top_margin(prediction: Mapping[str, Any]) -> float | None:
    """Top-1 minus top-2 score of ``prediction["top"]``; with one listed score, ``2 * score - 1``
    (a lower bound of the margin); ``None`` without scores."""
    top = prediction.get("top")
    if isinstance(top, list) and top and all(isinstance(t, Mapping) and isinstance(t.get("score"), (int, float)) for t in top):
        first = float(top[0]["score"])
        second = float(top[1]["score"]) if len(top) > 1 else 1.0 - first
        return _unit(first - second)
    score = prediction.get("score")
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        return _unit(2.0 * float(score) - 1.0)
    return None


def _unit(value: float) -> float:
    return 0.0 if not math.isfinite(value) else min(1.0, max(0.0, value))


def lowest_entity_score(prediction: Mapping[str, Any]) -> float | None:
    """The lowest ``score`` of ``prediction["entities"]``; ``None`` without entities (no measure)."""
    entities = prediction.get("entities")
    if not isinstance(entities, list):
        return None
    scores = [float(e["score"]) for e in entities if isinstance(e, Mapping) and isinstance(e.get("score"), (int, float))]
    return _unit(min(scores)) if scores else None


def default_confidence(prediction: Mapping[str, Any]) -> float | None:
    """``Task.prediction_confidence``'s default: 0 when ``in_scope`` is false, else the top-2 margin
    (``top``), else the lowest entity score (``entities``), else ``score``, else ``None``."""
    if prediction.get("in_scope") is False:
        return 0.0
    if isinstance(prediction.get("top"), list):
        return top_margin(prediction)
    if "entities" in prediction:
        return lowest_entity_score(prediction)
    score = prediction.get("score")
    return _unit(float(score)) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
