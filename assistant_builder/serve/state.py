"""What the routes of one server share (``ServeState``): settings, the model slot, scheduler, metrics,
feedback, reloads, and the server's status; and ``open_feedback`` for ``--feedback``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import Any

from assistant_builder.serve.capture import FeedbackService
from assistant_builder.serve.engine import Engine, Job, Scheduler
from assistant_builder.serve.generation import GENERATION
from assistant_builder.serve.http import to_builtin
from assistant_builder.serve.metrics import ServeMetrics
from assistant_builder.serve.models import Model, ModelSlot, load_model, make_slot
from assistant_builder.serve.openapi import build_openapi, example_request, render_docs
from assistant_builder.serve.reload import Reloader
from assistant_builder.serve.settings import ServeError, ServeSettings


class ServeState:
    """What the routes share: settings, the model slot, scheduler, metrics, feedback, and the server's status."""

    def __init__(self, settings: ServeSettings, predictor: Model | None, engine: Any) -> None:
        self.settings = settings
        self._initial = (predictor, engine)
        #: the model answering new requests (rebound atomically by a reload) and the one before it
        self.slot: ModelSlot = None  # type: ignore[assignment]
        self.previous: ModelSlot | None = None
        self.metrics = ServeMetrics()
        self.status = "starting"  # -> "ready" -> "draining"
        self.scheduler: Scheduler | None = None
        self.openapi: dict[str, Any] = {}
        self.docs = ""
        self.feedback: FeedbackService | None = None
        self.reloader = Reloader(self)
        self.watcher: Any = None
        self.learner: Any = None

    @property
    def predictor(self) -> Model:
        return self.slot.predictor

    @property
    def model(self) -> dict[str, Any]:
        return self.slot.model

    def begin_drain(self) -> None:
        """Called on SIGINT/SIGTERM: /health turns 503 and new predictions are refused."""
        self.status = "draining"

    def info(self, slot: ModelSlot | None = None, previous: ModelSlot | None = None) -> dict[str, Any]:
        """``GET /info``: the model serving (or ``slot``, about to), the one before it, feedback, reloads, limits."""
        s = self.settings
        limits = {"max_batch": s.max_batch, "max_text_chars": s.max_text_chars, "max_body_bytes": s.max_body_bytes,
                  "queue_size": s.queue_size, "max_queue_wait_ms": s.max_queue_wait_ms, "micro_batch_ms": s.micro_batch_ms, "threads": s.threads}
        if slot is None:
            slot, previous = self.slot, self.previous
        return {**slot.predictor.info, "kind": slot.kind, "endpoint": slot.endpoint, "version": slot.version, "serving": slot.describe(),
                "previous": previous.describe() if previous else None,
                "feedback": self.feedback.describe(slot) if self.feedback else None, "reload": self.reloader.describe(),
                "learn": self.learner.describe() if self.learner else None, "limits": limits}

    def swap(self, slot: ModelSlot, document: tuple[dict[str, Any], str] | None = None) -> None:
        """Make ``slot`` answer new requests (atomic: called on the event loop); keep the old one for rollback.
        ``document``: its OpenAPI document and docs page from ``document_for`` (built here if not given)."""
        self.previous, self.slot = self.slot, slot
        info = slot.predictor.info
        self.metrics.model.replace(1, info["task"], info["variant"], slot.version)
        if self.watcher is not None:
            self.watcher.forget_current()  # --watch never swaps back to a run swapped or rolled back from
        self.openapi, self.docs = document or self.document_for(slot, self.previous)

    async def prepare(self) -> None:
        """Load the model if needed, start the scheduler and build the schema; then report ready."""
        loop = asyncio.get_running_loop()
        s = self.settings
        predictor, engine = self._initial
        if predictor is None:
            predictor = await loop.run_in_executor(
                None, lambda: load_model(s.path, s.variant, threads=s.ort_threads, options=s.task_overrides))
        self.slot = make_slot(predictor, s.path, engine)
        self._initial = (None, None)
        info = predictor.info
        self.metrics.model.replace(1, info["task"], info["variant"], self.slot.version)
        if s.feedback:
            self.feedback = open_feedback(s, self.slot, self.metrics)
        if s.regression:
            from assistant_builder.serve.regression import RegressionSet

            self.reloader.regression = await loop.run_in_executor(None, RegressionSet.load, s.regression, self.slot)
        self.scheduler = Scheduler(self.slot.engine, threads=s.threads, queue_size=s.queue_size, max_batch=s.max_batch,
                                   micro_batch_ms=s.micro_batch_ms, metrics=self.metrics, max_queue_wait_ms=s.max_queue_wait_ms)
        self.scheduler.start()
        self.openapi, self.docs = await loop.run_in_executor(None, self.document_for, self.slot, None)
        if s.watch:
            from assistant_builder.serve.watch import Watcher

            self.watcher = Watcher(self, Path(s.watch), s.watch_interval)
            self.watcher.start()
        if s.learn:
            from assistant_builder.serve.learn import Learner, check_learn

            store = feedback_store(s, self.slot)
            self.learner = Learner(self, check_learn(s, self.slot.run_dir, store), store)
            self.learner.start()
        self._listen_for_sighup(loop)
        self.status = "ready"

    async def shutdown(self) -> None:
        if self.learner is not None:
            await self.learner.stop()
        if self.watcher is not None:
            await self.watcher.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.feedback is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.feedback.stop)

    def _listen_for_sighup(self, loop: asyncio.AbstractEventLoop) -> None:
        """SIGHUP reloads (``--watch``: the newest run there; else the path the server was started with).
        Only where the loop runs in the main thread (``builder serve``, not a test client)."""
        hup = getattr(signal, "SIGHUP", None)
        if hup is None:
            return
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(hup, lambda: loop.create_task(self.on_sighup()))

    async def on_sighup(self) -> None:
        from assistant_builder.serve.reload import ReloadRefused

        if self.watcher is not None:
            await self.watcher.check()
            return
        with contextlib.suppress(ReloadRefused):  # logged and counted by the reloader
            await self.reloader.reload(self.settings.path, origin="sighup")

    def document_for(self, slot: ModelSlot, previous: ModelSlot | None) -> tuple[dict[str, Any], str]:
        """The OpenAPI document and docs page for ``slot`` (its example really predicted: run it off the event loop)."""
        s = self.settings
        example = self._example_response(slot)
        document = build_openapi(self.info(slot, previous), max_batch=s.max_batch, max_text_chars=s.max_text_chars,
                                 max_body_bytes=s.max_body_bytes, auth=bool(s.token), example_response=example,
                                 feedback_fields=tuple(slot.ref.task.feedback_fields) if self.feedback else None)
        return document, render_docs(document)

    def _example_response(self, slot: ModelSlot) -> dict[str, Any] | None:
        """The documented example request, really predicted (outside the metrics); None if it does not parse.
        A generation model's example answer is not generated (seconds of a worker's time at every start and reload)."""
        if slot.kind == GENERATION:
            return None
        body = example_request(slot.task_name)
        raws = body.get("inputs") or [body.get("input")]
        try:
            job = Job(slot.predictor.parse(raws), slot.options.get(body.get("top_k"), body.get("fallback_threshold")))
            [predictions] = Engine(slot.predictor).run([job])  # not slot.engine: tests may gate that one
            if isinstance(predictions, BaseException):
                return None
        except Exception:  # noqa: BLE001 - an example the installed task rejects is simply not shown
            return None
        return json.loads(json.dumps({"predictions": predictions, "model": slot.model}, default=to_builtin))


def feedback_store(settings: ServeSettings, slot: ModelSlot) -> Path:
    """The store ``--feedback`` names (a ``*.labels.sqlite``, or a recipe whose store is used), checked
    against the task; ``ServeError`` if feedback cannot work."""
    from assistant_builder.feedback import supports_feedback
    from assistant_builder.labelling.records import STORE_SUFFIX, store_path_for

    if not supports_feedback(slot.ref.task):
        raise ServeError(f"--feedback: task '{slot.task_name}' does not implement the feedback contract (Task.to_store, "
                         "from_store, prediction_gold, feedback_gold)", hint="serve without --feedback, or add them to the task "
                         "(docs/writing_plugins.md)")
    target = Path(str(settings.feedback))
    store = store_path_for(target) if target.suffix == ".toml" else target
    if not str(store).endswith(STORE_SUFFIX):
        raise ServeError(f"--feedback {target}: expected a labelling store (*{STORE_SUFFIX}) or a recipe (*.toml), whose "
                         "store is used")
    return store


def open_feedback(settings: ServeSettings, slot: ModelSlot, metrics: ServeMetrics) -> FeedbackService:
    """The started feedback service for ``--feedback``; ``ServeError`` if the store cannot be opened."""
    store = feedback_store(settings, slot)
    service = FeedbackService(store, capture=settings.capture, capture_max=settings.capture_max,
                              capture_threshold=settings.capture_threshold, window=settings.feedback_window,
                              queue_size=settings.capture_queue, metrics=metrics)
    try:
        service.start()
    except Exception as exc:  # noqa: BLE001 - sqlite3 errors: unwritable folder, not a database
        raise ServeError(f"--feedback {store}: the labelling store could not be opened: {type(exc).__name__}: {exc}") from None
    return service


def preflight(settings: ServeSettings, predictor: Model) -> dict[str, Any]:
    """Check ``--feedback`` and ``--regression`` before the port is bound (so mistakes fail fast, exit 2);
    returns what the start-up message shows."""
    from assistant_builder.labelling.serve_store import FeedbackStore

    slot = make_slot(predictor, settings.path)
    found: dict[str, Any] = {}
    if settings.feedback:
        store = feedback_store(settings, slot)
        try:
            with FeedbackStore(store):
                pass
        except Exception as exc:  # noqa: BLE001 - sqlite3 errors
            raise ServeError(f"--feedback {store}: the labelling store could not be opened: {type(exc).__name__}: {exc}") from None
        threshold = settings.capture_threshold if settings.capture_threshold is not None else slot.ref.task.capture_threshold
        found["feedback"] = f"feedback to {store} (capture {settings.capture}" + (
            f", below confidence {threshold:g}" if settings.capture == "uncertain" else "") + ")"
    if settings.regression:
        from assistant_builder.serve.regression import RegressionSet

        found["regression"] = f"{len(RegressionSet.load(settings.regression, slot).cases)} regression cases"
    if settings.learn:
        from assistant_builder.serve.learn import check_learn
        from assistant_builder.unlearned import runs_dir_of

        recipe = check_learn(settings, slot.run_dir, feedback_store(settings, slot))
        found["learn"] = (f"learning: `builder run {recipe.name} --from` the serving run once {settings.learn_after} items wait "
                          f"(or one has waited {settings.learn_wait:g} s), into {runs_dir_of(recipe)}, {settings.learn_threads} "
                          "thread(s), lower priority")
    found["version"] = slot.version
    return found
