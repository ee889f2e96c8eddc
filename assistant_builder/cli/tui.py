"""``builder tui [RECIPE]``: the terminal UI (label, train, evaluate, fix, runs).

``--import FILE`` and ``--export PATH`` work on the recipe's label store without opening the UI.
Textual is imported only inside ``run()`` when the UI opens, so ``builder --help`` stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from assistant_builder.errors import BuilderError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("tui", help="terminal UI: label data, train, evaluate and fix errors",
                                   description="Open the terminal UI for a recipe. Labels are kept in <recipe>.labels.sqlite next to it.")
    parser.add_argument("recipe", nargs="?", help="recipe .toml (default: the only one in the current folder)")
    parser.add_argument("--import", dest="import_files", action="append", default=[], metavar="FILE",
                        help="import examples into the label store and exit (text lines, JSONL or CSV; CoNLL for ner; SQuAD JSON for qa; "
                             "messages or prompt/completion records for generation)")
    parser.add_argument("--export", metavar="PATH", help="write the labelled examples in the task's training format and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from assistant_builder.tui.project import find_recipe, open_project

    from assistant_builder.cli.common import load_registry

    registry = load_registry()
    project = open_project(Path(args.recipe) if args.recipe else find_recipe(Path.cwd()), registry)
    if args.import_files or args.export:
        from assistant_builder.labelling.formats import export_file, import_file
        from assistant_builder.labelling.store import LabelStore

        with LabelStore(project.store_path) as store:
            for path in args.import_files:
                added, present = import_file(store, path, project.kind, **project.import_options())
                print(f"{path}: {added} added, {present} already in {project.store_path.name}")
            if args.export:
                count = export_file(store, args.export, project.kind, **project.export_options())
                print(f"{args.export}: {count} labelled examples written")
        return 0
    try:
        import textual  # noqa: F401
        import textual_plotext  # noqa: F401
    except ImportError:
        raise BuilderError("the terminal UI needs textual and textual-plotext, which are not installed",
                           hint="pip install 'assistant-builder[tui]'") from None
    from assistant_builder.tui.app import BuilderApp

    BuilderApp(project, registry).run()
    return 0
