"""``builder run RECIPE [KEY=VALUE ...]``: train, evaluate, export and verify, headless."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from assistant_builder.recipe.loader import load_recipe
from assistant_builder.cli.common import load_registry


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="train, evaluate, export and verify a recipe")
    parser.add_argument("recipe", help="path to a recipe .toml file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="type-checked overrides, e.g. train.epochs=3")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    parser.set_defaults(handler=run, trailing_positionals="overrides")


def run(args: argparse.Namespace) -> int:
    from assistant_builder.cli.progress import ConsoleProgress, render_summary
    from assistant_builder.engine import run as run_engine

    registry = load_registry()
    loaded = load_recipe(args.recipe, args.overrides, registry=registry)
    stop_event = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop_event.set()

    previous = signal.signal(signal.SIGTERM, request_stop)
    progress = ConsoleProgress(quiet=args.quiet)
    try:
        result = run_engine(loaded, registry, [progress], stop_event, overrides=args.overrides)
    except KeyboardInterrupt:
        stop_event.set()
        raise
    finally:
        progress.close()
        signal.signal(signal.SIGTERM, previous)
    print(render_summary(result.summary))
    return 0
