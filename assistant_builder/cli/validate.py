"""``builder validate RECIPE [KEY=VALUE ...]``: check a recipe without loading torch."""

from __future__ import annotations

import argparse
from typing import Any



def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("validate", help="check a recipe (every problem at once, no torch)")
    parser.add_argument("recipe", help="path to a recipe .toml file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. train.epochs=3")
    parser.set_defaults(handler=run, trailing_positionals="overrides")


def run(args: argparse.Namespace) -> int:
    from assistant_builder.cli.common import load_registry
    from assistant_builder.recipe.loader import load_recipe

    loaded = load_recipe(args.recipe, args.overrides, registry=load_registry())
    recipe = loaded.recipe
    print(f"{args.recipe}: ok — task '{recipe.task.type}', trainer '{recipe.train.trainer}', "
          f"exports {', '.join(recipe.export.formats) or 'none'}")
    return 0
