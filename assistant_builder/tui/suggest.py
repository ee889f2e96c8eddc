"""Model in the loop: pre-fill the store's unlabelled items with a trained run's predictions.

Torch-free: the predictor is the ONNX edge runtime (``assistant_builder.runtime.load_predictor``).
Runs in a worker thread, with its own ``LabelStore`` connection (WAL lets the UI keep labelling);
each batch is committed on its own, so stopping half-way keeps what was predicted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant_builder.labelling.store import LabelStore


def model_input(kind: str, payload: dict[str, Any]) -> Any:
    """What the task's ``parse_input`` takes for a stored payload."""
    if kind == "text_class":
        return payload["text"]
    if kind == "token_spans":
        return {"tokens": payload["tokens"]}  # the prediction's "tags" then align with the stored tokens
    return {"question": payload["question"], "context": payload["context"]}


def margin_of(prediction: dict[str, Any]) -> float | None:
    """Uncertainty key (smaller = less certain): top-1 minus top-2 score for classes, the lowest
    entity score for spans, the answer score for QA."""
    top = prediction.get("top")
    if isinstance(top, list) and len(top) >= 2:
        return float(top[0]["score"]) - float(top[1]["score"])
    entities = prediction.get("entities")
    if isinstance(entities, list):
        return min((float(e.get("score", 1.0)) for e in entities), default=1.0)
    score = prediction.get("score")
    return float(score) if isinstance(score, (int, float)) else None


def fill_suggestions(store_path: Path, predictor: Any, kind: str, *, batch_size: int = 64, only_missing: bool = False,
                     should_stop: Callable[[], bool] = lambda: False,
                     on_progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Predict every unlabelled item (or only those without a suggestion); returns how many were done."""
    done = 0
    with LabelStore(store_path) as store:
        ids = store.unlabelled_ids(without_suggestion=only_missing)
        on_progress(0, len(ids))
        for start in range(0, len(ids), batch_size):
            if should_stop():
                break
            items = [store.item(i) for i in ids[start:start + batch_size]]
            predictions = predictor.predict([model_input(kind, item.payload) for item in items])
            store.set_suggestions((item.id, p, margin_of(p)) for item, p in zip(items, predictions))
            done += len(items)
            on_progress(done, len(ids))
    return done
