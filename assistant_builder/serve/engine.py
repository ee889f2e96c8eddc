"""Inference off the event loop: a bounded queue, a thread pool, optional dynamic micro-batching.

``Engine`` runs several requests' examples through one model call and decodes each request with
its own task options. ``Scheduler`` owns the bounded queue: ``submit`` raises ``QueueFull`` at
once when ``queue_size`` requests are already waiting (the app answers 503 + ``Retry-After``),
so the backlog never grows without bound. With ``max_queue_wait_ms > 0`` it also sheds load by
time, which a count alone cannot do when the model is slow: a request is refused at once when the
queue ahead of it would take longer than that to clear (at the cheapest recent cost per request),
and a request that has waited longer than that is answered 503 instead of being run late. With
``micro_batch_ms > 0`` the scheduler collects
requests for up to that many milliseconds (or until ``max_batch`` examples) before one call;
otherwise each request gets its own call. At most ``threads`` calls run at once. Inside a call,
``run_features`` length-sorts the examples into padded batches of ``MODEL_BATCH_SIZE``. An engine
whose ``batchable`` is False (``serve/generation.py``: one generation per call) is never micro-batched.
"""

from __future__ import annotations

import asyncio
import collections
import math
import concurrent.futures
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant_builder.contracts import ComponentOptions
from assistant_builder.inference import run_features
from assistant_builder.runtime.predictor import Predictor
from assistant_builder.serve.metrics import ServeMetrics

#: examples per ONNX Runtime call inside one engine call (length-sorted, as ``builder predict``).
MODEL_BATCH_SIZE = 32


class QueueFull(Exception):
    """The request cannot be served in time: the queue is full, too slow to clear, or it waited too long.

    ``code`` is the error code the API returns, ``retry_after`` the seconds a client should wait.
    """

    def __init__(self, code: str = "queue_full", message: str = "the queue is full", retry_after: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = max(1, retry_after)


@dataclass
class Job:
    """One request's parsed examples, the task options to decode them with, and its result."""

    examples: list[Any]
    options: ComponentOptions
    future: asyncio.Future[list[dict[str, Any]]] | None = field(default=None, repr=False)
    #: event-loop time at which the job joined the queue
    enqueued: float = 0.0
    #: the model to run it on (the one its request was parsed with; a hot swap does not move queued
    #: jobs); None: the scheduler's own engine
    engine: Engine | None = field(default=None, repr=False)


class Engine:
    """Encode, run and decode several jobs with one model call; results per job, in order.

    Uses the predictor's public parts (task, tokenizer, runner...), so predictions are exactly what
    ``Predictor.predict`` returns for the same inputs and options.
    """

    #: whether the scheduler may put several jobs into one call (micro-batching)
    batchable = True

    def __init__(self, predictor: Predictor, model_batch_size: int = MODEL_BATCH_SIZE) -> None:
        self.predictor = predictor
        self.model_batch_size = model_batch_size

    def run(self, jobs: Sequence[Job]) -> list[list[dict[str, Any]] | BaseException]:
        """Predict every job; a job whose own encode or decode fails gets its exception instead."""
        p = self.predictor
        features: list[dict[str, Any]] = []
        spans: list[tuple[int, int] | BaseException] = []
        for job in jobs:
            try:
                encoded = p.task.encode(job.examples, p.tokenizer, p.labels, job.options, p.max_length)
            except Exception as exc:  # noqa: BLE001 - reported per request
                spans.append(exc)
                continue
            spans.append((len(features), len(features) + len(encoded)))
            features.extend(encoded)
        outputs = run_features(p.runner, features, p.pad_token_id, p.output_names, p.sequence_outputs,
                               self.model_batch_size, p.input_keys) if features else {}
        results: list[list[dict[str, Any]] | BaseException] = []
        for job, span in zip(jobs, spans):
            if isinstance(span, BaseException):
                results.append(span)
                continue
            start, end = span
            try:
                part = {name: values[start:end] for name, values in outputs.items()}
                results.append(p.task.decode(part, features[start:end], job.examples, p.labels, job.options))
            except Exception as exc:  # noqa: BLE001 - reported per request
                results.append(exc)
        return results


class Scheduler:
    """The bounded queue in front of the thread pool; create and ``start`` it inside the event loop."""

    #: model calls whose per-request cost the admission estimate looks at
    COST_WINDOW = 64

    def __init__(self, engine: Engine, *, threads: int, queue_size: int, max_batch: int, micro_batch_ms: float,
                 metrics: ServeMetrics, max_queue_wait_ms: float = 0.0) -> None:
        self.engine = engine
        self.threads = threads
        self.queue_size = queue_size
        self.max_wait = max_queue_wait_ms / 1000.0
        #: the cheapest recent model cost per request, seconds (None until the first call ends)
        self.seconds_per_job: float | None = None
        self._costs: collections.deque[float] = collections.deque(maxlen=self.COST_WINDOW)
        self.max_batch = max_batch
        self.window = micro_batch_ms / 1000.0
        self.metrics = metrics
        self.pending: collections.deque[Job] = collections.deque()
        self.executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="assistant-builder-infer")
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(threads)
        self._calls: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._dispatch(), name="assistant-builder-batcher")

    async def stop(self) -> None:
        """Finish the model calls in progress, fail what is still queued, and shut the pool down."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
        while self.pending:
            job = self.pending.popleft()
            if job.future is not None and not job.future.done():
                job.future.set_exception(RuntimeError("the server shut down before this request ran"))
        self._update_depth()
        self.executor.shutdown(wait=True)

    async def submit(self, job: Job) -> list[dict[str, Any]]:
        """Queue ``job`` and wait for its predictions; raise ``QueueFull`` at once when the queue is full."""
        return await self.enqueue(job)

    def enqueue(self, job: Job) -> asyncio.Future[list[dict[str, Any]]]:
        """Queue ``job`` and return its future (``submit`` without the wait: a streamed response answers
        a refusal before it starts); raise ``QueueFull`` at once when the queue is full or too slow."""
        if len(self.pending) >= self.queue_size:
            raise QueueFull("queue_full", f"{self.queue_size} requests are already waiting for the model")
        expected_wait = self.expected_wait()
        if self.max_wait > 0 and expected_wait > self.max_wait:
            raise QueueFull("overloaded", f"the {len(self.pending)} requests ahead would take about {expected_wait * 1000:.0f} ms, "
                            f"more than the {self.max_wait * 1000:.0f} ms limit", retry_after=math.ceil(expected_wait))
        loop = asyncio.get_running_loop()
        job.future = loop.create_future()
        job.enqueued = loop.time()
        self.pending.append(job)
        self._update_depth()
        self._arrived.set()
        return job.future

    def expected_wait(self) -> float:
        """Seconds the requests now queued will take to clear (0 before the first model call)."""
        return len(self.pending) * (self.seconds_per_job or 0.0) / self.threads

    def _expired(self, job: Job) -> bool:
        """Answer (503) and drop a job that waited longer than ``max_queue_wait_ms``; True if it was."""
        if self.max_wait <= 0 or job.future is None or job.future.done():
            return False
        waited = asyncio.get_running_loop().time() - job.enqueued
        if waited <= self.max_wait:
            return False
        job.future.set_exception(QueueFull("queue_timeout", f"waited {waited * 1000:.0f} ms for the model, more than the "
                                           f"{self.max_wait * 1000:.0f} ms limit"))
        return True

    def _update_depth(self) -> None:
        self.metrics.queue_depth.set(len(self.pending))

    async def _next_job(self) -> Job:
        while True:
            while not self.pending:
                self._arrived.clear()
                await self._arrived.wait()
            job = self.pending.popleft()
            if self._expired(job):
                continue
            if job.future is None or not job.future.done():  # skip requests whose client went away
                return job

    async def _collect(self) -> list[Job]:
        """One model call's jobs: the oldest waiting one, plus (when micro-batching) what fits in the window."""
        first = await self._next_job()
        batch, examples = [first], len(first.examples)
        try:
            await self._fill(batch, examples)
        except asyncio.CancelledError:  # shutting down: leave the jobs for ``stop`` to answer
            self.pending.extendleft(reversed(batch))
            raise
        self._update_depth()
        return batch

    async def _fill(self, batch: list[Job], examples: int) -> None:
        """Micro-batching: add waiting jobs to ``batch`` until the window closes or ``max_batch`` is reached."""
        if self.window > 0 and getattr(batch[0].engine or self.engine, "batchable", True):
            deadline = asyncio.get_running_loop().time() + self.window
            while examples < self.max_batch:
                if not self.pending:
                    remaining = deadline - asyncio.get_running_loop().time()
                    if remaining <= 0:
                        break
                    self._arrived.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), remaining)
                    continue
                if examples + len(self.pending[0].examples) > self.max_batch or self.pending[0].engine is not batch[0].engine:
                    break  # it starts the next call (one call runs one model)
                job = self.pending.popleft()
                if self._expired(job) or (job.future is not None and job.future.done()):
                    continue  # too late, or the client went away
                batch.append(job)
                examples += len(job.examples)

    async def _dispatch(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                batch = await self._collect()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.get_running_loop().create_task(self._call(batch))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    def _record_cost(self, seconds_per_job: float) -> None:
        """Admission uses the cheapest recent cost, not an average: under overload every call slows
        down (the event loop answering 503s competes for the CPU), and an average would then refuse
        ever more requests, starving the model. Requests admitted too optimistically are caught by
        the actual-wait check instead, before they cost a model call."""
        self._costs.append(seconds_per_job)
        self.seconds_per_job = min(self._costs)

    async def _call(self, batch: list[Job]) -> None:
        try:
            self.metrics.batch_size.observe(sum(len(job.examples) for job in batch))
            self.metrics.batch_requests.observe(len(batch))
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                engine = batch[0].engine or self.engine
                results: list[Any] = await loop.run_in_executor(self.executor, engine.run, batch)
            except Exception as exc:  # noqa: BLE001 - the whole call failed: every request gets the error
                results = [exc] * len(batch)
            self._record_cost((loop.time() - started) / len(batch))
            for job, result in zip(batch, results):
                if job.future is None or job.future.done():
                    continue  # the client went away
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
        finally:
            self._slots.release()
