"""``builder``: entry point. Errors go to stderr as titled messages; results go to stdout.

Importing this module (and running ``--help``, ``validate`` or ``plugins``) loads no torch.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from assistant_builder import __version__
from assistant_builder.errors import BuilderError

SUBCOMMANDS = ("run", "validate", "plugins", "predict", "serve")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    import importlib

    parser = argparse.ArgumentParser(prog="builder", description="Build a personal NLP assistant component from your own labelled text.")
    parser.add_argument("--version", action="version", version=f"assistant-builder {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"assistant_builder.cli.{name.replace('plugins', 'plugins_cmd')}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    # argparse cannot take positionals after an option (`predict RUN --variant fp32 "text"`):
    # subcommands name the list that collects such trailing positionals.
    trailing = getattr(args, "trailing_positionals", None)
    if extras:
        if trailing is None or any(item.startswith("-") for item in extras):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        getattr(args, trailing).extend(extras)
    try:
        return int(args.handler(args) or 0)
    except BuilderError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
