"""``builder plugins``: installed plugins, their versions and the components each provides.

``builder plugins check`` (``plugins_check.py``) runs the conformance suite on them.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from assistant_builder.cli import plugins_check


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("plugins", help="list installed plugins and their components; `plugins check` tests them",
                                   description="List installed plugins, their versions and the tasks, trainers, exporters and "
                                               "loggers each provides. `builder plugins check` runs the conformance suite.")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of plugins that failed to load")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="plugins_action", metavar="ACTION")
    plugins_check.add_parser(actions)


def run(args: argparse.Namespace) -> int:
    from assistant_builder.registry import KINDS, build_registry  # not at import: `builder predict` builds this parser too

    plurals = tuple(f"{kind}s" for kind in KINDS)  # JSON keys / table labels, in registry order
    registry = build_registry()
    info = getattr(registry.manager, "plugin_info", {})
    grouped = registry.by_plugin()
    rows = []
    for name in sorted(set(info) | set(grouped)):
        plugin = info.get(name)
        row: dict[str, Any] = {"plugin": name, "distribution": plugin.distribution if plugin else "?",
                               "version": plugin.version if plugin else "?"}
        for kind, plural in zip(KINDS, plurals):
            row[plural] = sorted(r.name for r in grouped.get(name, []) if r.kind == kind)
        rows.append(row)
    failures = [{"plugin": f.name, "distribution": f.distribution, "error": f.error, "traceback": f.traceback} for f in registry.failures]
    if args.json:
        print(json.dumps({"plugins": rows, "failed": [{k: v for k, v in f.items() if k != "traceback"} for f in failures]}, indent=2))
        return 0
    header = ("plugin", "distribution", "version", "provides")
    lines = [(r["plugin"], r["distribution"], r["version"],
              "; ".join(f"{kind}: {', '.join(r[kind])}" for kind in plurals if r[kind])) for r in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
    for line in (header, *lines):
        print("  ".join(str(value).ljust(width) for value, width in zip(line, widths)).rstrip())
    for failure in failures:
        print(f"\nFAILED {failure['plugin']} ({failure['distribution']}): {failure['error']}")
        if args.traceback:
            print(failure["traceback"])
    return 0
