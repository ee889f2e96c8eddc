"""Helpers shared by CLI subcommands."""

from __future__ import annotations

import sys

from assistant_builder.registry import Registry, build_registry


def load_registry() -> Registry:
    """Build the registry and report each plugin that failed to load, once, on stderr."""
    registry = build_registry()
    for failure in registry.failures:
        print(f"warning: plugin '{failure.name}' ({failure.distribution}) failed to load: {failure.error} "
              "(see `builder plugins --traceback`)", file=sys.stderr)
    return registry
