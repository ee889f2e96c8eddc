"""``builder plugins check [NAME ...]``: run the conformance suite on installed plugins.

Prints one row per check (component, kind, plugin, check, status, detail) and exits with 1 if any
check failed. The functional checks train, export and reload a tiny model built in code, so they
need torch (the ``train`` extra); ``--static`` runs only the torch-free ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from assistant_builder.errors import BuilderError

COLUMNS = ("component", "kind", "plugin", "check", "status", "detail")


def add_parser(actions: Any) -> None:
    parser = actions.add_parser(
        "check", help="run the conformance suite on installed plugins (all, or those named)",
        description="Check installed task, trainer, exporter and logger plugins against their contracts: class attributes, "
                    "options, torch-free imports, and a functional round trip with a tiny model built in code. "
                    "Exit code 1 if any check fails.")
    parser.add_argument("names", nargs="*", metavar="NAME", help="plugin or component names (default: every installed one)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--static", action="store_true", help="only the torch-free checks (no tiny model, no torch needed)")
    parser.add_argument("-q", "--quiet", action="store_true", help="list only the checks that did not pass")
    parser.add_argument("--traceback", action="store_true", help="print the plugin's traceback for each failed check")
    parser.set_defaults(handler=run, trailing_positionals="names")


def summary(results: list[Any]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {"components": len({(r.kind, r.component, r.plugin) for r in results}), "checks": len(results),
            "passed": counts["pass"], "failed": counts["fail"], "skipped": counts["skip"], "warnings": counts["warn"]}


def render_table(results: list[Any], quiet: bool = False) -> str:
    rows = [tuple(str(getattr(r, c)).replace("\n", " ") for c in COLUMNS) for r in results if not quiet or r.status != "pass"]
    widths = [max(len(x) for x in column) for column in zip(COLUMNS, *rows)]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in (COLUMNS, *rows)]
    counts = summary(results)
    lines.append("")
    lines.append(f"{counts['components']} component(s), {counts['checks']} checks: {counts['passed']} passed, "
                 f"{counts['failed']} failed, {counts['skipped']} skipped, {counts['warnings']} warning(s)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from assistant_builder.conformance import check_registry, torch_available
    from assistant_builder.registry import build_registry

    if not args.static and not torch_available():
        raise BuilderError("`builder plugins check` trains, exports and reloads a tiny model with each plugin, which needs "
                           "torch; it is not installed",
                           hint="pip install 'assistant-builder[train]', or run `builder plugins check --static` for the "
                                "torch-free checks only")
    registry = build_registry()  # load failures become failed 'load' checks rather than warnings

    def progress(registration: Any) -> None:
        if sys.stderr.isatty():
            print(f"checking {registration.kind} '{registration.name}' ({registration.plugin}) ...", file=sys.stderr, flush=True)

    results = check_registry(registry, args.names, functional=not args.static, progress=progress)
    failed = [r for r in results if r.failed]
    if args.json:
        print(json.dumps({"ok": not failed, "summary": summary(results),
                          "results": [{k: v for k, v in r.to_dict().items() if k != "traceback" or args.traceback}
                                      for r in results if not args.quiet or r.status != "pass"]}, indent=2))
    else:
        print(render_table(results, args.quiet))
        if args.traceback:
            for result in failed:
                if result.traceback:
                    print(f"\n--- {result.kind} '{result.component}' ({result.plugin}): {result.check}\n{result.traceback.rstrip()}")
    return 1 if failed else 0
