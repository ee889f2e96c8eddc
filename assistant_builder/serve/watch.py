"""``builder serve --watch RUNS_DIR``: reload when a newer run of the same recipe has finished.

A run counts once it is *finished* (``summary.json``, written last) and has an ONNX bundle. Every
``--watch-interval`` seconds the folder is scanned (in a worker thread: a few ``stat`` calls per
run); the newest finished run is reloaded (with every check of ``serve/reload.py``) when it is
newer than the run serving and was not tried before. A run that was refused, or rolled back from,
is not tried again. "Same recipe": the recipe name in ``recipe.resolved.json`` equals the serving
run's; when the served bundle is not inside a run directory, any run of the same task.
SIGHUP triggers a scan at once (without ``--watch``: a reload of the path the server was started with).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from assistant_builder.serve.models import ModelSlot
from assistant_builder.serve.reload import ReloadRefused

log = logging.getLogger("assistant_builder.serve")


def _read(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def finished_at(run_dir: Path) -> float | None:
    """When ``run_dir`` finished (``summary.json``'s mtime), or None if it is not a finished run with an ONNX bundle."""
    try:
        if not (run_dir / "exports" / "onnx" / "manifest.json").is_file():
            return None
        return (run_dir / "summary.json").stat().st_mtime
    except OSError:
        return None


def identity(slot: ModelSlot) -> tuple[str | None, str]:
    """The recipe name (None for a bundle outside a run directory) and the task of the serving model."""
    run = slot.run_dir
    return (_read(run / "recipe.resolved.json").get("name") if run else None), slot.task_name


def newest_run(runs_dir: Path, recipe: str | None, task: str) -> tuple[Path, float] | None:
    """The newest finished run under ``runs_dir`` of ``recipe`` (or, without one, of ``task``)."""
    best: tuple[Path, float] | None = None
    try:
        children = [p for p in runs_dir.iterdir() if p.is_dir()]
    except OSError:
        return None
    for run in children:
        done = finished_at(run)
        if done is None or (best is not None and (done, run.name) <= (best[1], best[0].name)):
            continue
        resolved = _read(run / "recipe.resolved.json")
        if recipe is not None and resolved.get("name") != recipe:
            continue
        if recipe is None and (resolved.get("task") or {}).get("type") != task:
            continue
        best = (run, done)
    return best


class Watcher:
    """Polls ``runs_dir`` and reloads newer runs through ``state.reloader``."""

    def __init__(self, state: Any, runs_dir: Path, interval: float) -> None:
        self.state = state
        self.runs_dir = runs_dir
        self.interval = interval
        #: runs already tried (swapped, refused or rolled back from): never reloaded again by the watcher
        self.tried: set[Path] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        slot = self.state.slot
        if slot.run_dir is not None:
            self.tried.add(slot.run_dir.resolve())
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="assistant-builder-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def forget_current(self) -> None:
        """After a rollback: never swap back to the run just rolled back from."""
        for slot in (self.state.slot, self.state.previous):
            if slot is not None and slot.run_dir is not None:
                self.tried.add(slot.run_dir.resolve())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    async def check(self) -> dict[str, Any] | None:
        """Scan once; reload the newest untried run if it is newer than the serving one. Never raises."""
        slot = self.state.slot
        recipe, task = identity(slot)
        serving_done = finished_at(slot.run_dir) if slot.run_dir is not None else None
        found = await asyncio.get_running_loop().run_in_executor(None, newest_run, self.runs_dir, recipe, task)
        if found is None:
            return None
        run, done = found
        if run.resolve() in self.tried or (serving_done is not None and done <= serving_done):
            return None
        self.tried.add(run.resolve())
        try:
            return await self.state.reloader.reload(str(run), origin="watch")
        except ReloadRefused as refused:
            if refused.reason == "reload_in_progress":
                self.tried.discard(run.resolve())  # try again at the next scan
            return None  # logged and counted by the reloader; the serving model stays
        except Exception:  # noqa: BLE001 - the watcher must keep running
            log.exception("watching %s failed", self.runs_dir)
            return None
