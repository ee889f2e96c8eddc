"""Run the app under uvicorn: one process, or ``--workers N`` processes through an app factory.

Shutdown is graceful: on SIGINT/SIGTERM ``/health`` turns 503 and new predictions are refused,
uvicorn stops accepting connections, lets in-flight requests finish (up to ``graceful_timeout``
seconds), then the lifespan stops the scheduler. The process then exits 0.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from assistant_builder.serve.settings import SETTINGS_ENV, ServeError, ServeSettings

#: uvicorn's own messages (startup, shutdown) on stderr; its access log is off (the app logs JSON).
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
                "uvicorn.error": {"level": "INFO"},
                "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}},
}


class DrainingServer(uvicorn.Server):
    """A uvicorn server that tells the app to refuse new work as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_stop = on_stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_stop()
        super().handle_exit(sig, frame)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _config(settings: ServeSettings, app: Any, **extra: Any) -> dict[str, Any]:
    return {"app": app, "host": settings.host, "port": settings.port, "access_log": False, "log_config": LOG_CONFIG,
            "timeout_graceful_shutdown": int(settings.graceful_timeout), "limit_concurrency": settings.max_connections,
            "lifespan": "on", "server_header": False, **extra}


def _announce(settings: ServeSettings, info: dict[str, Any], extra: dict[str, Any]) -> None:
    mode = f"{settings.workers} worker processes, each with its own model" if settings.workers > 1 else "1 process"
    batching = f"micro-batching {settings.micro_batch_ms:g} ms" if settings.micro_batch_ms else "no micro-batching"
    print(f"serving {info['task']} model ({info['variant']}) version {extra['version']} from {info['bundle']} on "
          f"http://{settings.host}:{settings.port} ({mode}, {settings.threads} inference threads, {batching}); "
          f"POST {'/generate' if info.get('kind') == 'generation' else '/predict'}, API docs at /docs", file=sys.stderr)
    for key in ("feedback", "regression", "learn"):
        if key in extra:
            print(f"  {extra[key]}", file=sys.stderr)
    if settings.watch:
        print(f"  watching {settings.watch} every {settings.watch_interval:g} s for a newer run", file=sys.stderr)
    if not settings.token and not is_loopback(settings.host):
        print(f"warning: listening on {settings.host} without a token: anyone who can reach this port can use the "
              "model; pass --token or set ASSISTANT_BUILDER_TOKEN", file=sys.stderr)


def serve(settings: ServeSettings) -> int:
    """Serve until stopped; return the exit code. Model load errors raise ``BuilderError`` before binding."""
    from assistant_builder.serve.app import create_app
    from assistant_builder.serve.models import load_model

    # Load once here so a bad path, variant or model fails fast with a clear message (exit 2).
    predictor = load_model(settings.path, settings.variant, threads=settings.ort_threads, options=settings.task_overrides)
    from assistant_builder.serve.state import preflight

    _announce(settings, predictor.info, preflight(settings, predictor))
    stop_signals: list[int] = []

    def remember(sig: int, frame: FrameType | None) -> None:
        # uvicorn re-raises the signal that stopped it once it has shut down; by then we are done.
        stop_signals.append(sig)

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main_thread else {}
    try:
        if settings.workers > 1:
            del predictor  # each worker loads its own copy
            os.environ[SETTINGS_ENV] = settings.to_env()
            try:
                uvicorn.run(**_config(settings, "assistant_builder.serve.app:app_from_env", factory=True,
                                      workers=settings.workers))
            except SystemExit as exc:
                raise ServeError(f"could not serve on {settings.host}:{settings.port} (exit {exc.code}; see the log above)",
                                 hint="is the port in use? pick another with --port") from None
            return 0
        app = create_app(settings, predictor=predictor)
        server = DrainingServer(uvicorn.Config(**_config(settings, app)), on_stop=app.state.serve.begin_drain)
        try:
            server.run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind or the lifespan fails
            raise ServeError(f"could not serve on {settings.host}:{settings.port} (exit {exc.code}; see the log above)",
                             hint="is the port in use? pick another with --port") from None
        if not server.started:
            raise ServeError(f"could not serve on {settings.host}:{settings.port}; see the log above")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
