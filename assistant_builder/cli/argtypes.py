"""argparse value types shared by subcommands (dependency-free, so ``--help`` stays fast)."""

from __future__ import annotations

import argparse


def positive_int(value: str) -> int:
    """An integer >= 1, or an argparse error saying what was expected."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number
