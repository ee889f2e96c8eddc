"""Feedback and capture for ``builder serve --feedback STORE``: prediction ids, memory, one store writer.

* ``PredictionMemory``: the newest ``feedback_window`` predictions by ``prediction_id`` (input,
  prediction, the ``ModelRef`` that made it), on the event loop only, O(1) per prediction.
* ``StoreWriter``: the one thread that writes the labelling store (one SQLite connection). Captured
  predictions wait in a bounded queue: ``offer`` never blocks, and a full queue drops the item
  (counted in ``/metrics``). Feedback and store look-ups go ahead of captures and resolve a future
  once their transaction committed.
* ``FeedbackService``: what the routes call: ``after_predict`` (ids, memory, capture decision) and
  ``lookup``/``record`` for ``POST /feedback`` (``serve/feedback_api.py``).

Capture decision per prediction: ``--capture all`` stores every prediction; ``uncertain`` those whose
``task.prediction_confidence`` is below the threshold (``--capture-threshold``, else the task's
``capture_threshold``; an out-of-scope prediction has confidence 0); ``none`` stores nothing of the
traffic (only what users send to ``POST /feedback``).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.labelling.serve_store import Captured, Feedback, FeedbackStore, KnownPrediction
from assistant_builder.serve.metrics import ServeMetrics
from assistant_builder.serve.models import ModelRef, ModelSlot

log = logging.getLogger("assistant_builder.serve")

#: captured predictions written per transaction
WRITE_BATCH = 256
#: seconds a feedback request waits for the store (another process holding its write lock...) before a 503
STORE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Remembered:
    """A prediction the server made: its raw input, the prediction, the model, and when."""

    raw_input: Any
    prediction: dict[str, Any]
    ref: ModelRef
    time: float


class PredictionMemory:
    """Newest-first bounded map ``prediction_id -> Remembered`` (event loop only, no locks)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.prefix = secrets.token_hex(4)  # ids of different server processes never collide
        self._counter = itertools.count(1)
        self._items: collections.OrderedDict[str, Remembered] = collections.OrderedDict()

    def new_id(self) -> str:
        return f"{self.prefix}-{next(self._counter):x}"

    def add(self, prediction_id: str, entry: Remembered) -> None:
        self._items[prediction_id] = entry
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def get(self, prediction_id: str) -> Remembered | None:
        return self._items.get(prediction_id)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class CaptureJob:
    """A prediction to store: the writer turns it into a ``Captured`` row (``task.to_store``) off the event loop."""

    prediction_id: str
    raw_input: Any
    example: Any
    prediction: dict[str, Any]
    confidence: float | None
    ref: ModelRef
    time: float
    reason: str


class StoreWriter:
    """The single thread that writes the store. Start it, ``offer`` captures, ``call`` store operations."""

    def __init__(self, path: Path, *, queue_size: int, capture_max: int | None, metrics: ServeMetrics) -> None:
        self.path = path
        self.queue_size = queue_size
        self.capture_max = capture_max
        self.metrics = metrics
        self._captures: collections.deque[CaptureJob] = collections.deque()
        self._calls: collections.deque[tuple[Callable[[FeedbackStore], Any], concurrent.futures.Future[Any]]] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        #: set when the store cannot be opened any more: every later call fails at once instead of waiting
        self._broken: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="assistant-builder-store-writer", daemon=True)

    def start(self) -> None:
        with FeedbackStore(self.path):  # create the file and tables, and fail here (startup) if it cannot be opened
            pass
        self._thread.start()

    def offer(self, job: CaptureJob) -> bool:
        """Queue a capture without ever waiting; False (and counted as dropped) when the queue is full."""
        with self._wake:
            if self._broken is not None:
                self.metrics.capture.inc("failed")
                return False
            if self._stopping or len(self._captures) >= self.queue_size:
                self.metrics.capture.inc("dropped")
                return False
            self._captures.append(job)
            self.metrics.capture_queue.set(len(self._captures))
            self._wake.notify()
        return True

    def call(self, operation: Callable[[FeedbackStore], Any]) -> concurrent.futures.Future[Any]:
        """Run ``operation(store)`` on the writer thread, ahead of queued captures; its future resolves after it returns
        (for writes: after the commit)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._wake:
            if self._stopping or self._broken is not None:
                future.set_exception(self._broken or RuntimeError("the server is shutting down"))
                return future
            self._calls.append((operation, future))
            self._wake.notify()
        return future

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then end the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def pending(self) -> int:
        return len(self._captures)

    def _next(self) -> tuple[list[tuple[Callable[[FeedbackStore], Any], concurrent.futures.Future[Any]]], list[CaptureJob]] | None:
        with self._wake:
            while not self._calls and not self._captures:
                if self._stopping:
                    return None
                self._wake.wait()
            calls = list(self._calls)
            self._calls.clear()
            batch = [self._captures.popleft() for _ in range(min(WRITE_BATCH, len(self._captures)))]
            self.metrics.capture_queue.set(len(self._captures))
            return calls, batch

    def _run(self) -> None:
        try:
            store = FeedbackStore(self.path)
        except Exception as error:  # noqa: BLE001 - e.g. the file was removed or made read-only after start-up
            log.exception("the store writer could not open %s", self.path)
            self._give_up(error)
            return
        with store:
            while (work := self._next()) is not None:
                calls, batch = work
                for operation, future in calls:
                    if not future.set_running_or_notify_cancel():
                        continue
                    try:
                        future.set_result(operation(store))
                    except BaseException as error:  # noqa: BLE001 - handed to the request that asked
                        future.set_exception(error)
                if batch:
                    self._write_captures(store, batch)

    def _give_up(self, error: BaseException) -> None:
        with self._wake:
            self._broken = error
            calls, self._calls = list(self._calls), collections.deque()
            self.metrics.capture.inc("failed", amount=len(self._captures))
            self._captures.clear()
        for _, future in calls:
            if future.set_running_or_notify_cancel():
                future.set_exception(error)

    def _write_captures(self, store: FeedbackStore, batch: Sequence[CaptureJob]) -> None:
        rows = []
        for job in batch:
            try:
                payload = job.ref.task.to_store(job.example).payload
                rows.append(Captured(job.prediction_id, job.raw_input, payload, json_ready(job.prediction), job.confidence, job.ref.version,
                                     job.time, f"captured by builder serve ({job.reason}), model {job.ref.version}, "
                                     f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(job.time))}"))
            except Exception:  # noqa: BLE001 - a task bug loses this capture only
                log.exception("could not capture a prediction")
                self.metrics.capture.inc("failed")
        try:
            result = store.capture(rows, self.capture_max or None)
        except Exception:  # noqa: BLE001 - the store is locked or the disk full: these captures are lost, serving goes on
            log.exception("could not write %d captured predictions to %s", len(rows), self.path)
            self.metrics.capture.inc("failed", amount=len(rows))
            return
        for name, count in (("stored", result.stored), ("duplicate", result.duplicates), ("evicted", result.evicted)):
            if count:
                self.metrics.capture.inc(name, amount=count)


class FeedbackService:
    """Prediction ids, the prediction memory, capture decisions and the store writer of one server."""

    def __init__(self, store: Path, *, capture: str, capture_max: int, capture_threshold: float | None, window: int,
                 queue_size: int, metrics: ServeMetrics) -> None:
        self.store = store
        self.capture = capture
        self.capture_max = capture_max
        self.threshold = capture_threshold
        self.memory = PredictionMemory(window)
        self.metrics = metrics
        self.writer = StoreWriter(store, queue_size=queue_size, capture_max=capture_max or None, metrics=metrics)

    def start(self) -> None:
        self.writer.start()

    def stop(self) -> None:
        self.writer.stop()

    def threshold_for(self, ref: ModelRef) -> float:
        return self.threshold if self.threshold is not None else float(ref.task.capture_threshold)

    def describe(self, slot: ModelSlot) -> dict[str, Any]:
        return {"store": str(self.store), "capture": self.capture, "capture_threshold": self.threshold_for(slot.ref),
                "capture_max": self.capture_max or None, "window": self.memory.size, "remembered": len(self.memory),
                "capture_queue": self.writer.pending}

    def after_predict(self, slot: ModelSlot, raws: Sequence[Any], examples: Sequence[Any], predictions: list[dict[str, Any]]) -> None:
        """Give each prediction its ``prediction_id``, remember it, and queue the ones to capture (never waits)."""
        now = time.time()
        ref = slot.ref
        threshold = self.threshold_for(ref)
        for raw, example, prediction in zip(raws, examples, predictions):
            prediction_id = self.memory.new_id()
            if self.capture != "none":
                self._consider(prediction_id, raw, example, prediction, ref, threshold, now)
            prediction["prediction_id"] = prediction_id
            self.memory.add(prediction_id, Remembered(raw, prediction, ref, now))

    def _consider(self, prediction_id: str, raw: Any, example: Any, prediction: dict[str, Any], ref: ModelRef, threshold: float,
                  now: float) -> None:
        """Queue ``prediction`` for the store if ``--capture`` wants it; a task error here never fails the request."""
        try:
            confidence = ref.task.prediction_confidence(prediction)
            rejected = prediction.get("in_scope") is False  # an out-of-scope rule rejected it: always uncertain
            if rejected:
                reason = "out of scope"
            elif self.capture == "all":
                reason = "all"
            else:
                reason = f"confidence {confidence:.2f} < {threshold:g}" if confidence is not None else ""
            if self.capture == "all" or rejected or (confidence is not None and confidence < threshold):
                self.writer.offer(CaptureJob(prediction_id, raw, example, dict(prediction), confidence, ref, now, reason))
        except Exception:  # noqa: BLE001 - e.g. a task's prediction_confidence bug: the prediction is answered anyway
            log.exception("could not decide whether to capture a prediction")
            self.metrics.capture.inc("failed")

    async def lookup(self, prediction_id: str) -> Remembered | KnownPrediction | None:
        """The prediction from memory, else from the store (a captured one, or one given feedback before)."""
        found = self.memory.get(prediction_id)
        if found is not None:
            return found
        return await asyncio.wait_for(asyncio.wrap_future(self.writer.call(lambda store: store.find_prediction(prediction_id))),
                                      STORE_TIMEOUT)

    async def record(self, feedback: Feedback) -> tuple[int, str]:
        """Write one feedback request; returns ``(item_id, status)`` once committed."""
        item_id, status = await asyncio.wait_for(asyncio.wrap_future(self.writer.call(lambda store: store.record_feedback(feedback))),
                                                 STORE_TIMEOUT)
        self.metrics.feedback.inc(status)
        return item_id, status


def json_ready(value: Any) -> Any:
    """``value`` through JSON (numpy scalars become numbers), as the store will keep it."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
