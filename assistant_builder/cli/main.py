"""``builder``: entry point. Errors go to stderr as titled messages; results go to stdout.

Importing this module (and running ``--help``, ``validate`` or ``plugins``) loads no torch.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from assistant_builder import __version__
from assistant_builder.errors import BuilderError

#: subcommands, in the order ``--help`` lists them; each lives in its own module under ``assistant_builder.cli``
SUBCOMMANDS = ("init", "run", "validate", "data", "plugins", "predict", "serve", "feedback", "tui")
#: subcommands whose module is not named after them (``init`` and ``plugins`` would shadow other names)
MODULES = {"init": "init_cmd", "plugins": "plugins_cmd", "feedback": "feedback_cmd"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    import importlib

    parser = argparse.ArgumentParser(prog="builder", description="Build a personal NLP assistant component from your own labelled text.")
    parser.add_argument("--version", action="version", version=f"assistant-builder {__version__}")
    plugins = parser.add_argument_group("plugin switches (also as environment variables)")
    plugins.add_argument("--plugins", metavar="A,B", help="load only these plugins (ASSISTANT_BUILDER_PLUGINS)")
    plugins.add_argument("--block-plugins", metavar="C,D", help="never load these plugins (ASSISTANT_BUILDER_BLOCK_PLUGINS)")
    plugins.add_argument("--strict-plugins", action="store_true",
                         help="fail if any plugin fails to load, e.g. in CI (ASSISTANT_BUILDER_STRICT_PLUGINS=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"assistant_builder.cli.{MODULES.get(name, name)}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    return _run(argv)[0]


def entry() -> NoReturn:
    """The ``builder`` console script: run the CLI and exit with its code.

    Commands that set ``quick_exit`` (``predict``: it writes no files, its output is on stdout)
    end with ``os._exit`` once stdout, stderr and logging are flushed. Interpreter teardown with an
    ONNX Runtime session loaded takes 40-60 ms, a sixth of the edge cold start (bench/RESULTS.md).
    """
    code, quick = _run(None)
    if quick:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            logging.shutdown()
        except (OSError, ValueError):  # e.g. a closed pipe: let the normal exit report it
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


def _run(argv: Sequence[str] | None) -> tuple[int, bool]:
    """Parse ``argv`` and run the chosen command; return its exit code and whether it allows a quick exit."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # pydantic scans every installed distribution for its own plugins on the first model; the CLI
    # uses none, and the scan is a large share of `builder predict`'s cold start. Set the variable
    # yourself (e.g. to an empty string) to keep pydantic plugins on.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    # argparse cannot take positionals after an option (`predict RUN --variant fp32 "text"`):
    # subcommands name the list that collects such trailing positionals.
    trailing = getattr(args, "trailing_positionals", None)
    if extras:
        if trailing is None or any(item.startswith("-") for item in extras):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        getattr(args, trailing).extend(extras)
    for flag, variable in (("plugins", "ASSISTANT_BUILDER_PLUGINS"), ("block_plugins", "ASSISTANT_BUILDER_BLOCK_PLUGINS")):
        if getattr(args, flag):
            os.environ[variable] = getattr(args, flag)
    if args.strict_plugins:
        os.environ["ASSISTANT_BUILDER_STRICT_PLUGINS"] = "1"
    quick = bool(getattr(args, "quick_exit", False))
    try:
        return int(args.handler(args) or 0), quick
    except BuilderError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code, quick
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"disk full: {error.filename or ''} {error.strerror}; files being written were left untouched "
                  "(writes are atomic)\n  hint: free some space and run the command again", file=sys.stderr)
            return 1, quick
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130, False


if __name__ == "__main__":  # pragma: no cover
    entry()
