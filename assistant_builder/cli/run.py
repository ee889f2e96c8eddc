"""``builder run RECIPE [KEY=VALUE ...]`` / ``builder run --resume RUN_DIR``: train, evaluate,
export and verify, headless. ``builder run RECIPE --folds K``: k-fold cross-validation on the
training data (``engine/folds.py``), printing per-fold metrics and mean ± std.

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
    parser.add_argument("--from", dest="from_run", metavar="RUN_DIR",
                        help="a warm-start update of that finished run: train on what is new since it (new lines, data.extra "
                             "items, new labels) plus a replayed sample of what it learned, then keep the result only if it "
                             "forgot no more than update.max_forgetting (docs/updates.md)")
    parser.add_argument("--folds", type=int, metavar="K", help="k-fold cross-validation on the training data (each fold a run, "
                        "export off) under RUNS/<name>-cv-<timestamp>/; refused when data.validation is set, unless "
                        "--folds-include-validation")
    parser.add_argument("--folds-include-validation", action="store_true",
                        help="with --folds: pool data.train and data.validation before splitting into folds")
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
    if args.folds is not None or args.folds_include_validation:
        if args.from_run:
            raise ConfigError("builder run", [ConfigIssue("--from", "cannot be combined with --folds")])
        return _run_folds(args, registry)
    resume_dir = None
    if args.resume:
        if args.from_run:
            raise ConfigError("builder run", [ConfigIssue("--from", "not with --resume: a resumed update continues from the parent it recorded")])
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
        result = run_engine(loaded, registry, [progress], stop_event, overrides=args.overrides, resume_dir=resume_dir,
                            from_run=Path(args.from_run) if args.from_run else None)
    finally:
        progress.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if main_process:
        print(render_summary(result.summary))
    return 0


def _run_folds(args: argparse.Namespace, registry: Any) -> int:
    """``--folds K``: every fold's progress on stderr, the per-fold and mean ± std table on stdout."""
    from assistant_builder.cli.progress import ConsoleProgress
    from assistant_builder.engine.folds import render_table, run_folds
    from assistant_builder.recipe.loader import load_recipe

    if args.resume or not args.recipe or args.folds is None:
        raise ConfigError("builder run", [ConfigIssue("--folds", "expected `builder run RECIPE --folds K` (no --resume); "
                                                      "--folds-include-validation needs --folds")])
    loaded = load_recipe(args.recipe, args.overrides, registry=registry)

    def callbacks(fold: int) -> list[Any]:
        if not args.quiet:
            print(f"fold {fold}/{args.folds}", file=sys.stderr, flush=True)
        return [ConsoleProgress(quiet=args.quiet)]

    stop_event = threading.Event()
    previous = _install_stop_handlers(stop_event)
    try:
        result = run_folds(loaded, registry, args.folds, include_validation=args.folds_include_validation, callbacks=callbacks,
                           stop_event=stop_event, overrides=args.overrides)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(render_table(result.summary))
    print(f"cross-validation: {result.cv_dir} ({result.cv_dir / 'cv_summary.json'}, cv_report.md)")
    return 0
