"""``builder serve ... --feedback RECIPE --learn``: learn from feedback while serving, without a person.

Every ``--learn-check`` seconds (default 30) the learner counts what the feedback store holds that
the serving run has not learned (``assistant_builder/unlearned.py``: labelled or corrected since
that run froze the store). It starts an update when

* at least ``--learn-after`` items are waiting (default 100), or
* at least one is and the oldest has waited ``--learn-wait`` seconds (default 3600: nothing waits
  longer than an hour);

and after an attempt that did not swap a model in (the gate refused it, it failed, the reload
refused it) or a rollback, only once ``--learn-after`` more items have been labelled since, or
``--learn-wait`` has passed: the same data is not retrained in a loop.

The update is ``builder run RECIPE --from SERVING_RUN`` (``docs/updates.md``) in a **separate
process**, at a lower CPU priority (``--learn-priority``: ``idle``, the default, runs it only on
CPU time serving leaves free (Linux ``SCHED_IDLE``; elsewhere ``nice`` +19); ``low`` is ``nice`` +10), on the last ``--learn-threads`` cores (default 1;
CPU affinity where the system has it) with its threads capped to match (``train.num_threads``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, the tokenizers' pool), so the server keeps answering; its output goes to ``RUNS/learn.log``. Its run directory lands in the recipe's
``output.runs_dir``. A finished update is reloaded through the gated reload (``serve/reload.py``,
origin ``learn``); a refused one leaves the serving model, and says why in the history.

``GET /info`` shows ``learn``: the settings, what is waiting, the update running (if any), and the
last ``HISTORY`` attempts (when, parent, run, result, seconds, what it learned, the gate's figures);
``/metrics`` counts attempts by result. ``POST /admin/rollback`` swaps the previous model back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from assistant_builder.jsonfile import read_json_object
from assistant_builder.serve.reload import ReloadRefused
from assistant_builder.serve.settings import ServeError
from assistant_builder.unlearned import Unlearned, runs_dir_of, unlearned

log = logging.getLogger("assistant_builder.serve")

#: attempts kept for ``/info``
HISTORY = 20
#: log lines of a failed update shown in the history
TAIL_LINES = 12
#: results of an attempt
SWAPPED, REFUSED, RELOAD_REFUSED, FAILED = "swapped", "refused", "reload_refused", "failed"


def recipe_extra_stores(recipe: Path) -> list[Path]:
    """The stores the recipe's ``data.extra`` lists, resolved as ``builder run`` does (relative to the recipe)."""
    from assistant_builder.recipe.loader import read_toml

    data = read_toml(recipe)  # a located ConfigError when it is not TOML
    extra = (data.get("data") or {}).get("extra") or []
    return [p if p.is_absolute() else (recipe.parent / p).resolve() for p in (Path(str(e)) for e in extra)]


def check_learn(settings: Any, run_dir: Path | None, store: Path) -> Path:
    """The recipe updates run from; ``ServeError`` when ``--learn`` cannot work with these settings."""
    from assistant_builder.engine.warm_start import EXAMPLE_SETS

    target = Path(str(settings.feedback or ""))
    if target.suffix != ".toml":
        raise ServeError("--learn: needs --feedback RECIPE.toml (the recipe the updates run, whose store receives the feedback), "
                         f"got {settings.feedback!r}")
    if run_dir is None:
        raise ServeError(f"--learn: {settings.path} is a bundle outside a run directory; expected a run directory of "
                         f"`builder run {target}` (updates continue from it)")
    if not (run_dir / EXAMPLE_SETS).is_file():
        raise ServeError(f"--learn: {run_dir} has no record of what it trained on ({EXAMPLE_SETS}); an update cannot continue "
                         "from it", hint=f"train it once more with `builder run {target}` (runs record it), or serve without --learn")
    if not any(_same(path, store) for path in recipe_extra_stores(target)):
        raise ServeError(f"--learn: {target}: its data.extra does not list the feedback store {store.name}, so an update would "
                         "not see the feedback", hint=f'add extra = ["{store.name}"] under [data] in {target.name}')
    return target.resolve()


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def should_learn(waiting: Unlearned, after: int, wait: float, since: tuple[float, int] | None, now: float) -> str | None:
    """Why an update should start now (a sentence), or None. ``since``: (time, waiting count) of the last
    attempt that swapped nothing in, or of a rollback; until ``after`` more items wait, or ``wait`` seconds
    pass, nothing starts again."""
    if waiting.waiting == 0:
        return None
    if since is not None:
        at, count = since
        if waiting.waiting - count < after and now - at < wait:
            return None
    if waiting.waiting >= after:
        return f"{waiting.waiting} items waiting (--learn-after {after})"
    if waiting.waited_seconds(now) >= wait:
        return f"{waiting.waiting} items waiting, the oldest for {waiting.waited_seconds(now):.0f} s (--learn-wait {wait:g})"
    return None


class Learner:
    """Starts updates when enough feedback waits, and reloads what they produce (see the module doc)."""

    def __init__(self, state: Any, recipe: Path, store: Path) -> None:
        s = state.settings
        self.state = state
        self.recipe = recipe
        self.store = store
        self.after, self.wait, self.interval, self.threads = s.learn_after, s.learn_wait, s.learn_check, s.learn_threads
        self.priority = s.learn_priority
        self.runs_dir = runs_dir_of(recipe)
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.running: dict[str, Any] | None = None
        self.waiting: Unlearned | None = None
        #: (time, waiting count) of the last attempt that swapped nothing in, or of a rollback
        self.since: tuple[float, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._rolled_back_at: float | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="assistant-builder-learn")

    async def stop(self) -> None:
        """Stop checking; an update still running is stopped (SIGTERM: it checkpoints, `builder run --resume` continues it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with contextlib.suppress(asyncio.TimeoutError, ProcessLookupError):
                await asyncio.wait_for(process.wait(), timeout=30)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()

    def rolled_back(self) -> None:
        """After ``/admin/rollback``: do not relearn at once what waits for the model now serving
        (counted at the next check, against that model)."""
        self._rolled_back_at = time.time()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    # -- one check --------------------------------------------------------------------------------
    async def check(self) -> dict[str, Any] | None:
        """Count what waits; start an update (and wait for it) if it is time. Returns the attempt's
        history entry, or None. Never raises (the server keeps serving)."""
        if self.running is not None:
            return None
        try:
            parent = self.state.slot.run_dir
            self.waiting = await asyncio.get_running_loop().run_in_executor(None, unlearned, self.store, parent)
            if self._rolled_back_at is not None:
                self.since, self._rolled_back_at = (self._rolled_back_at, self.waiting.waiting), None
            reason = should_learn(self.waiting, self.after, self.wait, self.since, time.time())
            if reason is None or parent is None:
                return None
            return await self._update(parent, reason)
        except Exception:  # noqa: BLE001 - the learner must keep running
            log.exception("--learn: checking %s failed", self.store)
            self.running = None
            return None

    async def _update(self, parent: Path, reason: str) -> dict[str, Any]:
        waiting = self.waiting
        assert waiting is not None
        started = time.time()
        self.running = {"started": _stamp(started), "parent": str(parent), "reason": reason, "waiting": waiting.waiting}
        log.info(json.dumps({"event": "learn_start", "parent": str(parent), "reason": reason, "waiting": waiting.waiting}))
        before = self._known_runs()
        code, tail = await self._run_update(parent)
        entry: dict[str, Any] = {"started": _stamp(started), "parent": str(parent), "reason": reason,
                                 "waiting": waiting.describe(), "exit_code": code}
        run = self._new_run(before, parent)
        record = read_json_object(run / "update.json") if run else {}
        entry["run"] = str(run) if run else None
        plan = record.get("plan") or {}
        entry["learned"] = {k: plan[k] for k in ("new_examples", "corrected", "new_labels", "new_trained", "held_out", "replayed")
                            if k in plan}
        entry["gate"] = record.get("gate")
        if code == 0 and run is not None:
            try:
                outcome = await self.state.reloader.reload(str(run), origin="learn")
                entry["result"], entry["reload"] = SWAPPED, {k: outcome.get(k) for k in ("result", "reload_ms", "checks")}
                serving = self.state.slot.run_dir
                if outcome.get("result") != "swapped" and not (serving is not None and _same(serving, run)):
                    entry["result"] = RELOAD_REFUSED
            except ReloadRefused as refused:
                entry["result"], entry["reload"] = RELOAD_REFUSED, {"reason": refused.reason, "message": refused.message}
        elif code == 3 and run is not None:
            entry["result"] = REFUSED
            entry["reasons"] = (record.get("gate") or {}).get("reasons", [])
        else:
            entry["result"] = FAILED
            entry["log_tail"] = tail
        entry["seconds"] = round(time.time() - started, 1)
        if entry["result"] != SWAPPED:
            self.since = (started, waiting.waiting)
        else:
            self.since = None
        self.state.metrics.learn.inc(entry["result"])
        self.history.append(entry)
        self.running = None
        log.info(json.dumps({"event": "learn_done", "result": entry["result"], "run": entry["run"], "seconds": entry["seconds"]}))
        return entry

    def command(self, parent: Path) -> list[str]:
        """The update's command line (``train.num_threads``: torch's threads, capped like the process)."""
        return [sys.executable, "-m", "assistant_builder.cli.main", "run", str(self.recipe), f"train.num_threads={self.threads}",
                "--from", str(parent), "-q"]

    def environment(self) -> dict[str, str]:
        """The update process's environment: threads capped, never downloading when the server does not."""
        threads = str(self.threads)
        return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
                "TOKENIZERS_PARALLELISM": "false"}

    async def _run_update(self, parent: Path) -> tuple[int, list[str]]:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.runs_dir / "learn.log"
        with log_path.open("ab") as out:
            out.write(f"\n== {_stamp(time.time())} {' '.join(self.command(parent))}\n".encode())
            out.flush()
            start = log_path.stat().st_size
            self._process = await asyncio.create_subprocess_exec(
                *self.command(parent), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=self.environment(),
                cwd=str(self.recipe.parent), preexec_fn=background(self.threads, self.priority) if os.name == "posix" else None)
            if self.running is not None:
                self.running["pid"] = self._process.pid
            code = await self._process.wait()
        self._process = None
        with log_path.open("rb") as done:
            done.seek(start)
            tail = done.read().decode("utf-8", "replace").splitlines()[-TAIL_LINES:]
        return code, tail

    def _known_runs(self) -> set[Path]:
        with contextlib.suppress(OSError):
            return {p for p in self.runs_dir.iterdir() if p.is_dir()}
        return set()

    def _new_run(self, before: set[Path], parent: Path) -> Path | None:
        """The run directory the update created (an update of ``parent`` that was not there before)."""
        found = [p for p in self._known_runs() - before
                 if (read_json_object(p / "update.json")).get("parent") and _same(Path(str(read_json_object(p / "update.json")["parent"])), parent)]
        return max(found, key=lambda p: p.stat().st_mtime) if found else None

    def describe(self) -> dict[str, Any]:
        """``/info``'s ``learn``."""
        return {"recipe": str(self.recipe), "store": str(self.store), "runs_dir": str(self.runs_dir),
                "after": self.after, "wait_seconds": self.wait, "check_seconds": self.interval, "threads": self.threads,
                "priority": self.priority,
                "waiting": self.waiting.describe() if self.waiting else None, "running": self.running,
                "history": list(self.history)}


def background(threads: int, priority: str = "idle") -> Any:
    """What the update process does before it starts (in the child, before exec): a lower CPU priority
    (``priority`` ``idle``: the ``SCHED_IDLE`` policy where the system has it, so the update runs only
    on CPU time nothing else wants, else ``nice`` +19; ``low``: ``nice`` +10) and, where there are more
    cores than ``threads``, only the last ``threads`` of them (CPU affinity: torch and ONNX Runtime size
    their thread pools by it), leaving the others to serving. Every thread the update starts inherits both."""

    def prepare() -> None:  # pragma: no cover - runs in the child
        idle = False
        if priority == "idle":
            with contextlib.suppress(AttributeError, OSError):
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
                idle = True
        if not idle:
            with contextlib.suppress(OSError):
                os.nice(19 if priority == "idle" else 10)
        with contextlib.suppress(AttributeError, OSError):
            cores = sorted(os.sched_getaffinity(0))
            if len(cores) > threads:
                os.sched_setaffinity(0, cores[-threads:])

    return prepare


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(at))


