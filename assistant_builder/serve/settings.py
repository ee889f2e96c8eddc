"""What ``builder serve`` was asked to do: one frozen dataclass, plus size parsing and env transport.

Worker processes (``--workers N``) are spawned fresh by uvicorn and build their app through a
factory, so the settings travel to them as JSON in an environment variable.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from assistant_builder.errors import BuilderError

#: environment variable carrying the settings to worker processes (JSON).
SETTINGS_ENV = "ASSISTANT_BUILDER_SERVE_SETTINGS"
#: environment variable holding the bearer token when ``--token`` is not given.
TOKEN_ENV = "ASSISTANT_BUILDER_TOKEN"

#: values of ``--capture``
CAPTURE_MODES = ("none", "uncertain", "all")
#: ``--learn-priority``: how the update process yields the CPU to serving (``serve/learn.py``)
LEARN_PRIORITIES = ("idle", "low")

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


class ServeError(BuilderError):
    """The server could not start (bad option, port in use...)."""

    title = "serve error"
    exit_code = 2


def parse_size(text: str) -> int:
    """``"1MB"`` -> 1_000_000, ``"512KiB"`` -> 524_288, ``"2048"`` -> 2048 (KB/MB decimal, KiB/MiB binary)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise ValueError(f"expected a size such as 1048576, 512KB or 1MB, got {text!r}")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise ValueError(f"expected a positive size, got {text!r}")
    return size


def default_threads(workers: int) -> int:
    """Inference threads per worker process: the cores this process may use, shared between workers."""
    from assistant_builder.runtime.sessions import cpu_count

    return max(1, cpu_count() // max(1, workers))


@dataclass(frozen=True)
class ServeSettings:
    """Everything the app and the server need; defaults match the CLI's."""

    path: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    variant: str = "auto"
    token: str | None = None
    max_batch: int = 64
    max_text_chars: int = 2000
    max_body_bytes: int = 1_000_000
    queue_size: int = 256
    micro_batch_ms: float = 0.0
    #: shed load by time: refuse a request whose expected wait, or drop one whose actual wait, exceeds this (0: off)
    max_queue_wait_ms: float = 1000.0
    #: concurrent model calls per worker process (the inference thread pool's size).
    threads: int = 1
    #: ONNX Runtime intra-op threads per model call (0: cores per worker divided by ``threads``).
    intra_op_threads: int = 0
    graceful_timeout: float = 30.0
    max_connections: int = 1024
    #: labelling store (``*.labels.sqlite``) that feedback and captured predictions go to; None: feedback off
    feedback: str | None = None
    #: which predictions to store without being asked: ``none``, ``uncertain`` (below the threshold) or ``all``
    capture: str = "uncertain"
    #: captured items waiting to be labelled, at most; the oldest go first (0: no limit)
    capture_max: int = 10_000
    #: ``--capture uncertain`` stores predictions whose confidence is below this (None: the task's ``capture_threshold``)
    capture_threshold: float | None = None
    #: rejection threshold for every request (None: the one fitted into the bundle); a request's ``fallback_threshold`` wins
    fallback_threshold: float | None = None
    #: predictions remembered for ``POST /feedback`` (captured ones can also be found in the store)
    feedback_window: int = 10_000
    #: captured predictions waiting for the store writer; more are dropped (counted in /metrics)
    capture_queue: int = 1024
    #: folder of run directories to watch for a newer finished run of the same recipe (None: off)
    watch: str | None = None
    watch_interval: float = 5.0
    #: accept a reload whose label set differs from the serving model's
    allow_label_change: bool = False
    #: JSONL regression set a reloaded model must not do worse on (by more than ``max_regression``)
    regression: str | None = None
    max_regression: float = 0.01
    #: learn from feedback while serving (``serve/learn.py``): updates of ``--feedback RECIPE`` started when enough waits
    learn: bool = False
    #: start an update once this many labelled items wait to be learned
    learn_after: int = 100
    #: ... or once the oldest waiting item has waited this many seconds
    learn_wait: float = 3600.0
    #: how often the learner counts what waits (seconds)
    learn_check: float = 30.0
    #: CPU threads of the update process
    learn_threads: int = 1
    #: the update process's CPU priority: ``idle`` (it runs only on CPU time serving leaves) or ``low`` (``nice`` +10)
    learn_priority: str = "idle"

    def __post_init__(self) -> None:
        problems = [f"{name}: expected a positive integer, got {getattr(self, name)!r}"
                    for name in ("port", "workers", "max_batch", "max_text_chars", "max_body_bytes", "queue_size",
                                 "threads", "max_connections")
                    if not isinstance(getattr(self, name), int) or getattr(self, name) < (0 if name == "port" else 1)]
        if self.max_queue_wait_ms < 0:
            problems.append(f"max_queue_wait_ms: expected 0 (off) or a positive number, got {self.max_queue_wait_ms}")
        if self.micro_batch_ms < 0:
            problems.append(f"micro_batch_ms: expected 0 (off) or a positive number, got {self.micro_batch_ms}")
        if self.intra_op_threads < 0:
            problems.append(f"intra_op_threads: expected 0 (automatic) or a positive integer, got {self.intra_op_threads}")
        if self.capture not in CAPTURE_MODES:
            problems.append(f"capture: expected one of {', '.join(CAPTURE_MODES)}, got {self.capture!r}")
        for name in ("capture_max", "feedback_window", "capture_queue"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "capture_max" else 1):
                problems.append(f"{name}: expected a {'non-negative' if name == 'capture_max' else 'positive'} integer, got {value!r}")
        if self.capture_threshold is not None and not 0.0 <= self.capture_threshold <= 1.0:
            problems.append(f"capture_threshold: expected a confidence between 0 and 1, got {self.capture_threshold}")
        if not 0.0 <= self.max_regression <= 1.0:
            problems.append(f"max_regression: expected a metric drop between 0 and 1, got {self.max_regression}")
        if self.watch_interval <= 0:
            problems.append(f"watch_interval: expected a positive number of seconds, got {self.watch_interval}")
        if self.learn_after < 1 or self.learn_threads < 1:
            problems.append(f"learn_after, learn_threads: expected positive integers, got {self.learn_after}, {self.learn_threads}")
        if self.learn_priority not in LEARN_PRIORITIES:
            problems.append(f"learn_priority: expected one of {', '.join(LEARN_PRIORITIES)}, got {self.learn_priority!r}")
        if self.learn_wait <= 0 or self.learn_check <= 0:
            problems.append(f"learn_wait, learn_check: expected positive numbers of seconds, got {self.learn_wait:g}, {self.learn_check:g}")
        if self.learn and not self.feedback:
            problems.append("learn: --learn needs --feedback RECIPE.toml (the recipe its updates run; its store receives the feedback)")
        if self.workers > 1 and (self.feedback or self.watch):
            problems.append("workers: --feedback and --watch need one worker process (each worker would have its own "
                            f"predictions and models), got {self.workers}")
        if problems:
            raise ServeError("; ".join(problems))

    @property
    def task_overrides(self) -> dict[str, Any] | None:
        """Task options every loaded model decides with (``--fallback-threshold``); None: the bundle's own."""
        return {"fallback_threshold": self.fallback_threshold} if self.fallback_threshold is not None else None

    @property
    def ort_threads(self) -> int:
        """ONNX Runtime intra-op threads for this worker's session."""
        if self.intra_op_threads:
            return self.intra_op_threads
        return max(1, default_threads(self.workers) // self.threads)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeSettings:
        raw = (environ if environ is not None else os.environ).get(SETTINGS_ENV)
        if not raw:
            raise ServeError(f"{SETTINGS_ENV} is not set; expected the JSON settings `builder serve` passes to its workers",
                             hint="start the server with `builder serve RUN_DIR`")
        data: dict[str, Any] = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def describe(self) -> dict[str, Any]:
        """The settings without the token (for logs and /info)."""
        data = asdict(self)
        data["token"] = "set" if self.token else None
        return data
