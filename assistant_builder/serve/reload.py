"""Hot swap: load a newer model next to the serving one, check it, then swap it in atomically.

``Reloader.reload(path)`` loads the bundle in a worker thread while the server keeps answering with
the old model, runs the checks, and only then rebinds ``state.slot`` (on the event loop, so the swap
is atomic: a request uses the slot it read when it started, and requests already queued finish on
the old model). The checks, in order, each refusing with a reason code:

* ``update_refused``: the path is a warm-start update (``builder run --from``) whose gate refused it
  (it forgot too much, or did not learn what was new: ``RUN/update.json``);
* ``load_failed``: the path is not a loadable bundle (missing, invalid manifest, ONNX error);
* ``verification_failed``: the export verification of the variant that will serve did not pass
  (``verification_passed``: ``manifest["verification"][variant]["passed"]``);
* ``task_changed``: another task (a different API; never allowed: a generation model never replaces
  an encoder model, nor the other way round);
* ``labels_changed``: another label set, unless ``--allow-label-change``; a superset of the serving
  model's labels (new intents an update learned) is allowed;
* ``smoke_failed``: the model fails on the documented example input (or the regression set's; a
  generation model: two tokens for a short prompt);
* ``regression``: with ``--regression FILE``, its primary metric on the set is lower than the
  serving model's by more than ``--max-regression``.

A refusal leaves the old model serving; it is answered (409 with the reason), logged (one JSON
line) and counted (``assistant_builder_model_reloads_total{result="refused",reason=...}``). The
model swapped out stays loaded: ``rollback()`` swaps back at once (a second rollback swaps
forward again). One reload at a time; another one meanwhile is refused with ``reload_in_progress``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assistant_builder.engine.warm_start import refused_update
from assistant_builder.errors import BuilderError, DataError
from assistant_builder.runtime.bundle import verification_failures
from assistant_builder.serve.generation import GENERATION
from assistant_builder.serve.models import ModelSlot, load_slot
from assistant_builder.serve.openapi import example_request

log = logging.getLogger("assistant_builder.serve")


class ReloadRefused(Exception):
    """A reload that did not happen: ``reason`` (a code), the message, and the HTTP status to answer with."""

    def __init__(self, reason: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


def verification_passed(manifest: Mapping[str, Any], variant: str) -> str | None:
    """None when the export verification of ``variant`` (the variant that will serve) passed; else why not.

    The record is read by ``runtime.bundle.verification_failures`` (``manifest["verification"][variant]``);
    unlike ``builder predict``, a reload also refuses a bundle without one.
    """
    failures = verification_failures(manifest, variant)
    if failures is None:
        return (f"the bundle has no verification record for its {variant} model (manifest verification.{variant}); "
                "expected a bundle exported and verified by `builder run`")
    if failures:
        return f"the export verification of its {variant} model did not pass ({'; '.join(failures)})"
    return None


class Reloader:
    """Reloads and rollbacks of one server (``state`` is its ``ServeState``)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.regression: Any = None
        self._lock: asyncio.Lock | None = None
        self.last: dict[str, Any] | None = None

    @property
    def settings(self) -> Any:
        return self.state.settings

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"allow_label_change": s.allow_label_change, "regression": s.regression, "max_regression": s.max_regression,
                "watch": s.watch, "last": self.last}

    async def reload(self, path: str, origin: str = "api") -> dict[str, Any]:
        """Load, check and swap to the bundle at ``path``; the result, or ``ReloadRefused``."""
        lock = self._lock = self._lock or asyncio.Lock()
        if lock.locked():
            raise self._refused(ReloadRefused("reload_in_progress", "another reload is in progress; try again when it ends"),
                                path, origin, count=False)
        async with lock:
            started = time.perf_counter()
            current = self.state.slot
            try:
                candidate, checks = await asyncio.get_running_loop().run_in_executor(None, self._load_and_check, path, current)
            except ReloadRefused as refused:
                raise self._refused(refused, path, origin) from None
            if candidate.version == current.version:
                return self._finish("unchanged", origin, path, started, current, current, checks)
            document = await asyncio.get_running_loop().run_in_executor(None, self.state.document_for, candidate, current)
            self.state.swap(candidate, document)
            return self._finish("swapped", origin, path, started, current, candidate, checks)

    async def rollback(self) -> dict[str, Any]:
        """Swap back to the model served before the last swap (kept loaded)."""
        lock = self._lock = self._lock or asyncio.Lock()
        async with lock:
            previous, current = self.state.previous, self.state.slot
            if previous is None:
                raise ReloadRefused("no_previous_model", "there is no previous model to roll back to (no reload has swapped one in)")
            started = time.perf_counter()
            document = await asyncio.get_running_loop().run_in_executor(None, self.state.document_for, previous, current)
            self.state.swap(previous, document)
            if self.state.learner is not None:
                self.state.learner.rolled_back()
            return self._finish("rolled_back", "api", previous.ref.path, started, current, previous, [])

    # -- in a worker thread ---------------------------------------------------------------------
    def _load_and_check(self, path: str, current: ModelSlot) -> tuple[ModelSlot, list[str]]:
        s = self.settings
        refused = refused_update(Path(path))
        if refused:
            raise ReloadRefused("update_refused", f"{path}: is an update its gate refused ({refused}); the serving model stays")
        try:
            candidate = load_slot(path, s.variant, s.ort_threads, options=s.task_overrides)
        except BuilderError as exc:
            raise ReloadRefused("load_failed", f"{path}: could not be loaded: {exc.message}") from None
        checks = []
        problem = verification_passed(candidate.predictor.bundle.manifest, candidate.predictor.variant)
        if problem:
            raise ReloadRefused("verification_failed", f"{path}: {problem}")
        checks.append(f"verification of {candidate.predictor.variant} passed")
        if candidate.task_name != current.task_name:
            raise ReloadRefused("task_changed", f"{path}: is a '{candidate.task_name}' model; the server serves '{current.task_name}' "
                                "(a different API; start another server for it)")
        added = [label for label in candidate.ref.labels if label not in current.ref.labels]
        if candidate.ref.labels != current.ref.labels and set(current.ref.labels) <= set(candidate.ref.labels):
            checks.append(f"labels extended (+{len(added)}: {', '.join(added[:5])}{'...' if len(added) > 5 else ''})")
        elif candidate.ref.labels != current.ref.labels:
            if not s.allow_label_change:
                raise ReloadRefused("labels_changed", f"{path}: its labels differ from the serving model's: "
                                    f"{_label_diff(current.ref.labels, candidate.ref.labels)}",)
            checks.append(f"labels changed ({_label_diff(current.ref.labels, candidate.ref.labels)}), allowed")
        else:
            checks.append(f"same task and labels ({len(candidate.ref.labels)})")
        self._smoke(candidate, path)
        checks.append("smoke prediction ok")
        if self.regression is not None:
            checks.append(self._regression(candidate, current, path))
        return candidate, checks

    def _smoke(self, candidate: ModelSlot, path: str) -> None:
        if candidate.kind == GENERATION:
            try:
                candidate.predictor.smoke()  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - any failure of the new model refuses it
                raise ReloadRefused("smoke_failed", f"{path}: failed to generate: {type(exc).__name__}: {exc}") from None
            return
        cases = self.regression.cases[:8] if self.regression is not None else []
        raws = [case.raw_input for case in cases]
        if not raws:
            body = example_request(candidate.task_name)
            raws = body.get("inputs") or [body.get("input")]
        try:
            examples = candidate.predictor.parse(raws)
        except DataError:
            return  # the task takes other inputs than the documented example: nothing to try it on
        try:
            predictions = candidate.predictor.predict_examples(examples)
            json.dumps(predictions, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
        except DataError:
            return  # the input does not fit this model (e.g. too long for its max_length): not a model failure
        except Exception as exc:  # noqa: BLE001 - any failure of the new model refuses it
            raise ReloadRefused("smoke_failed", f"{path}: failed on a test input: {type(exc).__name__}: {exc}") from None

    def _regression(self, candidate: ModelSlot, current: ModelSlot, path: str) -> str:
        metric = candidate.ref.task.primary_metric
        try:
            old = self.regression.score(current)
            new = self.regression.score(candidate)
        except BuilderError as exc:
            raise ReloadRefused("regression", f"{path}: {exc.message}") from None
        limit = self.settings.max_regression
        line = f"regression set ({len(self.regression.cases)} cases): {metric} {new:.4f}, serving model {old:.4f}"
        if new < old - limit - 1e-12:
            raise ReloadRefused("regression", f"{path}: {line}: a drop of {old - new:.4f}, more than --max-regression {limit:g}")
        return line

    # -- reporting --------------------------------------------------------------------------------
    def _finish(self, result: str, origin: str, path: str, started: float, old: ModelSlot, new: ModelSlot,
                checks: list[str]) -> dict[str, Any]:
        elapsed = time.perf_counter() - started
        metrics = self.state.metrics
        metrics.reloads.inc(result, "")
        if result == "swapped":
            metrics.reload_seconds.observe(elapsed)
        outcome = {"result": result, "origin": origin, "path": path, "reload_ms": round(elapsed * 1000, 1), "checks": checks,
                   "from": old.describe(), "to": new.describe()}
        self.last = {k: outcome[k] for k in ("result", "origin", "path", "reload_ms")} | {"version": new.version,
                                                                                           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        log.info(json.dumps({"event": "model_reload", "result": result, "origin": origin, "path": path, "from": old.version,
                             "to": new.version, "reload_ms": outcome["reload_ms"]}))
        return outcome

    def _refused(self, refused: ReloadRefused, path: str, origin: str, count: bool = True) -> ReloadRefused:
        if count:
            self.state.metrics.reloads.inc("refused", refused.reason)
            self.last = {"result": "refused", "origin": origin, "path": path, "reason": refused.reason, "message": refused.message,
                         "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        log.warning(json.dumps({"event": "model_reload", "result": "refused", "origin": origin, "path": path,
                                "reason": refused.reason, "message": refused.message}))
        return refused


def _label_diff(old: tuple[str, ...], new: tuple[str, ...]) -> str:
    added = [label for label in new if label not in old]
    removed = [label for label in old if label not in new]
    parts = ([f"added {', '.join(added)}"] if added else []) + ([f"removed {', '.join(removed)}"] if removed else [])
    return "; ".join(parts) or "same labels in another order (class ids would change)"
