"""Model in the loop: pre-fill the store's unlabelled items with a trained run's predictions.

Torch-free: the predictor is the ONNX edge runtime (``assistant_builder.runtime.load_predictor``),
or for a ``generation`` bundle its assistant (``runtime.assistant``), whose suggestion is the
generated answer ``{"completion", "tokens", "finish_reason"}``, as ``builder predict`` prints it.
Runs in a worker thread, with its own ``LabelStore`` connection (WAL lets the UI keep labelling);
each batch is committed on its own, so stopping half-way keeps what was predicted. Answers are
generated one item per batch (seconds each on a CPU), so the queue's head gets its suggestion first
and a stop takes effect after the current answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant_builder.labelling.store import LabelStore


#: items predicted per committed batch, per labelling kind (default 64)
BATCH_SIZES = {"response": 1}


def model_input(kind: str, payload: dict[str, Any]) -> Any:
    """What the task's ``parse_input`` takes for a stored payload."""
    if kind == "text_class":
        return payload["text"]
    if kind == "token_spans":
        return {"tokens": payload["tokens"]}  # the prediction's "tags" then align with the stored tokens
    if kind == "response":
        return {"messages": payload["messages"]}  # the prompt: it ends with the message to answer
    return {"question": payload["question"], "context": payload["context"]}


def suggested_response(suggestion: dict[str, Any] | None) -> str | None:
    """The answer text of a ``response`` suggestion (a generated ``completion``), or None."""
    text = (suggestion or {}).get("completion")
    return text if isinstance(text, str) and text.strip() else None


class AnswerPredictor:
    """A generation bundle behind the ``predict(inputs) -> [prediction]`` interface of the other tasks."""

    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant

    def predict(self, inputs: list[Any]) -> list[dict[str, Any]]:
        return [self.assistant.answer(raw, where=f"item {index + 1}").to_dict() for index, raw in enumerate(inputs)]


def load_suggester(run_dir: Path) -> Any:
    """The predictor of ``run_dir``'s exported bundle: an ``AnswerPredictor`` for a generation bundle,
    else ``runtime.load_predictor``'s."""
    from assistant_builder.runtime.assistant import Assistant, is_generation_bundle
    from assistant_builder.runtime.bundle import read_bundle

    bundle = read_bundle(run_dir)
    if is_generation_bundle(bundle):
        return AnswerPredictor(Assistant(bundle, bundle.choose_variant("auto")))
    from assistant_builder.runtime import load_predictor

    return load_predictor(run_dir)


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


def fill_suggestions(store_path: Path, predictor: Any, kind: str, *, batch_size: int | None = None, only_missing: bool = False,
                     should_stop: Callable[[], bool] = lambda: False,
                     on_progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Predict every unlabelled item (or only those without a suggestion); returns how many were done."""
    done = 0
    batch_size = batch_size or BATCH_SIZES.get(kind, 64)
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
