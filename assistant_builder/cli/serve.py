"""``builder serve RUN_DIR_OR_BUNDLE``: serve an exported ONNX bundle over HTTP, torch-free.

Starlette + uvicorn; routes ``POST /predict`` (``POST /generate`` for a generation run), ``POST /feedback`` (with ``--feedback``),
``POST /admin/reload`` and ``/admin/rollback`` (with ``--token``), ``GET /health``, ``/info``,
``/metrics``, ``/openapi.json`` and ``/docs``. Binds 127.0.0.1 unless told otherwise. The server code is
imported only when the command runs, so ``builder --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from assistant_builder.cli.argtypes import positive_int
from assistant_builder.errors import BuilderError




def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {value!r}")
    return number


def _milliseconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 10_000:
        raise argparse.ArgumentTypeError(f"expected milliseconds between 0 (off) and 10000, got {value!r}")
    return number


def _unit(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value!r}")
    return number


def _non_negative(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got {value!r}")
    return int(value)


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {value!r}")
    return number


def _size(value: str) -> int:
    from assistant_builder.serve.settings import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``subparsers`` and return its parser."""
    parser = subparsers.add_parser(
        "serve",
        help="serve an exported model over HTTP (ONNX, no torch needed)",
        description="Serve an exported ONNX bundle over HTTP: POST /predict (POST /generate for a generation run), GET /health, /info, /metrics, /docs.",
        epilog="examples:\n  builder serve runs/quickstart-20250101-120000\n"
               "  builder serve runs/my-run --port 9000 --token s3cret --micro-batch-ms 5\n"
               "  builder serve runs/my-run --feedback recipes/my.toml --watch runs   # feedback loop, see docs/feedback.md\n"
               "  builder serve runs/my-run --feedback recipes/my.toml --learn --token s3cret   # learns while serving, docs/updates.md\n"
               "  curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{\"inputs\": [\"wake me at 7\"]}'\n\n"
               "With --workers N each worker process loads its own copy of the model (N times the memory);\n"
               "/metrics then reports the worker that answered the scrape.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="RUN_DIR_OR_BUNDLE", help="a run directory or its exports/onnx bundle folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=_port, default=8000, help="port to bind (default 8000)")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N",
                        help="worker processes, each loading its own model (default 1)")
    parser.add_argument("--variant", default="auto", help="model variant: auto (int8 if exported, else fp32), fp32 or int8")
    parser.add_argument("--allow-unverified", action="store_true",
                        help="serve even when the run's export failed verification (its fp32 model, or the variant "
                             "chosen, broke a gate in export_report.md); default: refused, as builder predict does")
    parser.add_argument("--token", default=None,
                        help="bearer token required on every route but /health (default: $ASSISTANT_BUILDER_TOKEN, which is "
                             "safer: command lines are visible to other users; none)")
    parser.add_argument("--max-batch", type=positive_int, default=64, metavar="N",
                        help="most inputs per request, and per micro-batch (default 64)")
    parser.add_argument("--max-text-chars", type=positive_int, default=2000, metavar="N",
                        help="longest text (each string field of an input) in characters (default 2000)")
    parser.add_argument("--max-body-bytes", type=_size, default="1MB", metavar="SIZE",
                        help="largest request body, e.g. 1MB, 512KiB, 65536 (default 1MB)")
    parser.add_argument("--queue-size", type=positive_int, default=256, metavar="N",
                        help="prediction requests allowed to wait for the model; more get 503 + Retry-After (default 256)")
    parser.add_argument("--max-queue-wait-ms", type=_milliseconds, default=1000.0, metavar="MS",
                        help="shed load by time: answer 503 + Retry-After when the queue ahead would take longer than MS ms, "
                             "or a request has waited that long (default 1000; 0: off)")
    parser.add_argument("--micro-batch-ms", type=_milliseconds, default=0.0, metavar="MS",
                        help="collect concurrent requests for up to MS ms into one model call (default 0: off)")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="concurrent model calls per worker (default: cores / workers)")
    parser.add_argument("--graceful-timeout", type=positive_int, default=30, metavar="SECONDS",
                        help="on Ctrl+C/SIGTERM, how long in-flight requests may take to finish (default 30)")
    feedback = parser.add_argument_group("feedback and capture (docs/feedback.md)")
    feedback.add_argument("--feedback", default=None, metavar="STORE_OR_RECIPE",
                          help="record POST /feedback and captured predictions in this labelling store (*.labels.sqlite, created "
                               "if absent), or a recipe's store; every prediction then carries a prediction_id")
    feedback.add_argument("--capture", choices=("none", "uncertain", "all"), default="uncertain",
                          help="with --feedback, also store predictions: none (only what users send to /feedback), uncertain "
                               "(below --capture-threshold; out-of-scope ones always), all (default uncertain)")
    feedback.add_argument("--capture-threshold", type=_unit, default=None, metavar="C",
                          help="confidence below which a prediction is uncertain (default: the task's; classification 0.7 "
                               "top-2 margin, ner 0.6 entity score, qa 0.5 answer score)")
    feedback.add_argument("--capture-max", type=_non_negative, default=10_000, metavar="N",
                          help="captured items waiting to be labelled, at most; the oldest go first (default 10000; 0: no limit)")
    feedback.add_argument("--feedback-window", type=positive_int, default=10_000, metavar="N",
                          help="recent predictions POST /feedback can refer to (captured ones always; default 10000)")
    parser.add_argument("--fallback-threshold", type=float, default=None, metavar="ENERGY",
                        help="classification with a fallback label: reject below this energy score instead of the threshold "
                             "fitted into the bundle (GET /info shows it; a request's fallback_threshold wins)")
    reload = parser.add_argument_group("hot reload (POST /admin/reload needs --token; or SIGHUP)")
    reload.add_argument("--watch", default=None, metavar="RUNS_DIR",
                        help="reload when a newer finished run of the same recipe appears in RUNS_DIR")
    reload.add_argument("--watch-interval", type=_seconds, default=5.0, metavar="SECONDS",
                        help="how often --watch looks (default 5)")
    reload.add_argument("--allow-label-change", action="store_true",
                        help="accept a reloaded model whose label set differs (default: refused)")
    reload.add_argument("--regression", default=None, metavar="FILE.jsonl",
                        help='a pinned set a reloaded model must not do worse on: lines {"input": ..., "label"|"entities"|"answer": ...}')
    reload.add_argument("--max-regression", type=_unit, default=0.01, metavar="DROP",
                        help="largest drop of the task's primary metric on --regression a reload may have (default 0.01)")
    learn = parser.add_argument_group("learning while serving (docs/updates.md; needs --feedback RECIPE.toml)")
    learn.add_argument("--learn", action="store_true",
                       help="start `builder run RECIPE --from SERVING_RUN` in a separate low-priority process when enough feedback "
                            "waits to be learned, and swap the result in through the gated reload")
    learn.add_argument("--learn-after", type=positive_int, default=100, metavar="N",
                       help="start an update once N labelled items wait (default 100)")
    learn.add_argument("--learn-wait", type=_long_seconds, default=3600.0, metavar="SECONDS",
                       help="... or once the oldest waiting item has waited this long (default 3600)")
    learn.add_argument("--learn-check", type=_seconds, default=30.0, metavar="SECONDS",
                       help="how often to count what waits (default 30)")
    learn.add_argument("--learn-threads", type=positive_int, default=1, metavar="N",
                       help="CPU threads of the update process (default 1, so serving keeps the other cores)")
    learn.add_argument("--learn-priority", choices=("idle", "low"), default="idle",
                       help="CPU priority of the update process: idle (default: it runs only on CPU time serving leaves "
                            "free; Linux SCHED_IDLE, elsewhere nice +19) or low (nice +10: updates finish sooner under "
                            "heavy traffic, at some cost to serving latency)")
    parser.set_defaults(handler=run)
    return parser


def _long_seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0 < number <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 604800 (a week), got {value!r}")
    return number


def run(args: argparse.Namespace) -> int:
    """Build the settings and serve until stopped; return the exit code."""
    from assistant_builder.serve.settings import TOKEN_ENV, ServeSettings, default_threads
    from assistant_builder.serve.server import serve

    from assistant_builder.cli.predict import check_verified
    from assistant_builder.runtime.bundle import read_bundle

    bundle = read_bundle(args.path)
    check_verified(bundle, bundle.choose_variant(args.variant), args.path, allow=args.allow_unverified)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    if token is not None and not token.strip():
        raise BuilderError("--token: expected a non-empty token, got an empty string")
    settings = ServeSettings(
        path=args.path, host=args.host, port=args.port, workers=args.workers, variant=args.variant, token=token,
        max_batch=args.max_batch, max_text_chars=args.max_text_chars, max_body_bytes=args.max_body_bytes,
        queue_size=args.queue_size, max_queue_wait_ms=args.max_queue_wait_ms, micro_batch_ms=args.micro_batch_ms,
        threads=args.threads or default_threads(args.workers), graceful_timeout=args.graceful_timeout,
        feedback=args.feedback, capture=args.capture, capture_threshold=args.capture_threshold, capture_max=args.capture_max,
        fallback_threshold=args.fallback_threshold,
        feedback_window=args.feedback_window, watch=args.watch, watch_interval=args.watch_interval,
        allow_label_change=args.allow_label_change, regression=args.regression, max_regression=args.max_regression,
        learn=args.learn, learn_after=args.learn_after, learn_wait=args.learn_wait, learn_check=args.learn_check,
        learn_threads=args.learn_threads, learn_priority=args.learn_priority)
    return serve(settings)
