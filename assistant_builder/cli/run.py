"""``builder run RECIPE [KEY=VALUE ...]`` / ``builder run --resume RUN_DIR``: train, evaluate,
export and verify, headless.

Ctrl+C or SIGTERM stops training at the next optimiser step, writes a checkpoint and prints the
resume command; a second Ctrl+C aborts at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from assistant_builder.distributed import is_main_process
from assistant_builder.errors import ConfigError, ConfigIssue


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="train, evaluate, export and verify a recipe")
    parser.add_argument("recipe", nargs="?", help="path to a recipe .toml file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="type-checked overrides, e.g. train.epochs=3")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    parser.set_defaults(handler=run, trailing_positionals="overrides")


def _install_stop_handlers(stop_event: threading.Event) -> dict[int, Any]:
    def request_stop(signum: int, frame: Any) -> None:
        if stop_event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop_event.set()
        print(f"\n{signal.Signals(signum).name}: stopping after the current step and writing a checkpoint "
              "(Ctrl+C again to abort without one)", file=sys.stderr, flush=True)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
    return previous


def run(args: argparse.Namespace) -> int:
    from assistant_builder.cli.progress import ConsoleProgress, render_summary
    from assistant_builder.engine import run as run_engine

    # imported here, not at module level: building the parser for `builder predict` stays light
    from assistant_builder.cli.common import load_registry
    from assistant_builder.recipe.loader import load_recipe, load_run_recipe

    registry = load_registry()
    resume_dir = None
    if args.resume:
        if args.recipe or args.overrides:
            raise ConfigError("builder run", [ConfigIssue("--resume", "takes only the run directory; the recipe and overrides are read from it")])
        resume_dir = Path(args.resume).resolve()
        loaded = load_run_recipe(resume_dir, registry=registry)
    elif args.recipe:
        loaded = load_recipe(args.recipe, args.overrides, registry=registry)
    else:
        raise ConfigError("builder run", [ConfigIssue("RECIPE", "expected a recipe file (or --resume RUN_DIR)")])
    stop_event = threading.Event()
    previous = _install_stop_handlers(stop_event)
    main_process = is_main_process()
    progress = ConsoleProgress(quiet=args.quiet or not main_process)
    try:
        result = run_engine(loaded, registry, [progress], stop_event, overrides=args.overrides, resume_dir=resume_dir)
    finally:
        progress.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if main_process:
        print(render_summary(result.summary))
    return 0
