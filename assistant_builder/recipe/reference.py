"""Generate the recipe reference (``docs/recipes.md``) from the schema and the built-in components.

    python -m assistant_builder.recipe.reference > docs/recipes.md

Every table and key of ``recipe/schema.py`` with its type, default, bounds and description, then
the ``Options`` of each built-in task, trainer, exporter and logger. ``tests/unit/test_recipes_doc.py``
fails when the committed file differs from this output, so the reference follows the schema.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from assistant_builder.recipe.fields import OPTIONS_TABLES, FieldDoc, default_text, describe
from assistant_builder.recipe.schema import Recipe

COMMAND = "python -m assistant_builder.recipe.reference > docs/recipes.md"
KIND_TITLES = {"task": "Tasks", "trainer": "Trainers", "exporter": "Exporters", "logger": "Loggers"}

INTRO = f"""\
# Recipe reference

<!-- Generated from assistant_builder/recipe/schema.py and the built-in plugins' Options by
     `{COMMAND}`. Do not edit by hand: change the schema or the
     plugin, then regenerate (tests/unit/test_recipes_doc.py checks that this file is current). -->

A recipe is a TOML file with one table per part of the pipeline. `builder init --task TASK DIR` writes
a starter recipe with every key below commented; `builder validate recipe.toml` checks one without
loading torch and reports every problem at once; `builder run recipe.toml train.epochs=3` overrides keys
from the command line (type-checked like the file). Paths are relative to the recipe file. A key left
out takes its default; a required key has none. Unknown keys are errors (with a did-you-mean).

Component options live in a sub-table checked against the chosen component's `Options`:
`[task.options]`, `[train.options]`, `[export.options.<exporter>]` and `[log.<logger>]`. The options of
the built-in components are listed after the recipe tables; `builder plugins` lists installed plugins.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def table_rows(docs: Iterable[FieldDoc]) -> list[str]:
    lines = ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for doc in docs:
        default = default_text(doc)
        default = default if default in ("required", "not set", "defaults below") else _code(default)
        constraints = ", ".join(_code(c.removeprefix("matches ")) if c.startswith("matches ") else c for c in doc.constraints)
        lines.append(f"| `{doc.key}` | {_cell(doc.type)} | {_cell(default)} | {_cell(constraints)} | {_cell(doc.description)} |")
    return lines


def schema_section() -> list[str]:
    docs = describe(Recipe)
    lines = ["## Top-level keys", "", *table_rows(d for d in docs if d.type != "table"), ""]
    for doc in docs:
        if doc.type != "table":
            continue
        requirement = " (required)" if doc.required else ""
        lines += [f"## `[{doc.key}]`{requirement}", ""]
        if doc.description:
            lines += [doc.description[:1].upper() + doc.description[1:] + ".", ""]
        if doc.table is not None:
            lines += [*table_rows(describe(doc.table)), ""]
            for sub in describe(doc.table):  # nested tables, e.g. [train.augment]
                if sub.table is not None:
                    lines += [f"### `[{doc.key}.{sub.key}]`", "", sub.description[:1].upper() + sub.description[1:] + ".", "",
                              *table_rows(describe(sub.table)), ""]
        else:
            lines += [f"A {doc.type} of named entries; default: {_code(default_text(doc))}.", ""]
    return lines


def _options_rows(options: type[BaseModel]) -> list[str]:
    docs = describe(options)
    return table_rows(docs) if docs else ["Takes no options."]


def components_section(registry: Any) -> list[str]:
    lines = ["## Options of the built-in components", ""]
    for kind, title in KIND_TITLES.items():
        names = registry.names(kind) if kind in registry.components else []
        if not names:
            continue
        where = OPTIONS_TABLES.get(kind, "").replace("NAME", "<name>")
        lines += [f"### {title}: `[{where}]`", ""]
        for name in names:
            component = registry.get(kind, name).component
            text = component.description.rstrip(".")
            lines += [f"#### `{name}`", "", f"{text[:1].upper()}{text[1:]}.", "",
                      *_options_rows(component.Options), ""]
    return lines


def render_reference() -> str:
    """The Markdown of ``docs/recipes.md``: the schema, then the built-in components' options."""
    from assistant_builder.plugins import make_plugin_manager
    from assistant_builder.registry import build_registry

    registry = build_registry(make_plugin_manager(entry_points=False))  # built-ins only: the same everywhere
    lines = [INTRO, *schema_section(), *components_section(registry)]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    sys.stdout.write(render_reference())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
