"""Helpers shared by CLI subcommands."""

from __future__ import annotations

import os
import sys

from assistant_builder.errors import PluginError
from assistant_builder.registry import Registry, build_registry


def load_registry() -> Registry:
    """Build the registry and report each plugin that failed to load, once, on stderr.

    In strict mode (``--strict-plugins`` / ``ASSISTANT_BUILDER_STRICT_PLUGINS=1``) any failure is an error.
    """
    registry = build_registry()
    if registry.failures and os.environ.get("ASSISTANT_BUILDER_STRICT_PLUGINS", "") in ("1", "true"):
        names = ", ".join(f"'{f.name}' ({f.distribution}): {f.error}" for f in registry.failures)
        raise PluginError(f"strict mode: plugins failed to load: {names}", hint="see `builder plugins --traceback`")
    for failure in registry.failures:
        print(f"warning: plugin '{failure.name}' ({failure.distribution}) failed to load: {failure.error} "
              "(see `builder plugins --traceback`)", file=sys.stderr)
    return registry
