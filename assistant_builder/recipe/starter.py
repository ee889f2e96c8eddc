"""Render a commented starter recipe from the schema: every table and key, each with a comment
saying what it does, its type, bounds and default. Keys the caller sets are written as values;
the rest are commented out (``# key = default``), so the file documents itself and keeps the
defaults. Used by ``builder init``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from assistant_builder.recipe.fields import OPTIONS_TABLES, FieldDoc, default_text, describe, toml_value
from assistant_builder.recipe.schema import Recipe

WIDTH = 100
KIND_OF_TABLE = {table: kind for kind, table in OPTIONS_TABLES.items()}


def comment(text: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in textwrap.wrap(text, WIDTH - len(indent) - 2)] if text else []


def explain(doc: FieldDoc) -> str:
    """``maximum tokens per input. Integer, >= 8, <= 8192; default 128.``"""
    facts = ", ".join([doc.type, *doc.constraints])
    description = doc.description.rstrip(".")
    return f"{description + '. ' if description else ''}{facts[:1].upper() + facts[1:]}; default: {default_text(doc)}."


def key_lines(doc: FieldDoc, values: Mapping[str, Any], commented: bool = False) -> list[str]:
    """The comment and the (possibly commented-out) assignment of one key."""
    lines = comment(explain(doc))
    if doc.key in values and not commented:
        lines.append(f"{doc.key} = {toml_value(values[doc.key])}")
    elif doc.has_default_value:
        lines.append(f"# {doc.key} = {toml_value(doc.default)}")
    else:
        lines.append(f"# {doc.key} = ...")
    return lines


def options_block(header: str, component: Any, table: str, commented_header: bool = False) -> list[str]:
    """``[task.options]`` (or a commented ``# [log.NAME]``) with every option of ``component``, commented out."""
    options: type[BaseModel] = component.Options
    kind = KIND_OF_TABLE.get(table, "component")
    lines = ["", f"# [{header}]" if commented_header else f"[{header}]"]
    lines += comment(f"options of the {component.name!r} {kind}: {component.description}".rstrip(": "))
    docs = describe(options)
    if not docs:
        lines.append(f"# ({component.name!r} takes no options)")
    for doc in docs:
        lines.append("")
        lines += key_lines(doc, {}, commented=True)
    return lines


def render_recipe(header: Sequence[str], values: Mapping[str, Any], components: Mapping[str, Sequence[Any]]) -> str:
    """A recipe with ``values`` (dotted keys, e.g. ``"data.train"``) set and every other key commented.

    ``components`` maps an options table in ``fields.OPTIONS_TABLES`` (``"task.options"``,
    ``"export.options.NAME"``...) to the components whose options it lists.
    """
    lines = [*header, ""]
    docs = describe(Recipe)
    for doc in docs:  # top-level keys come before the first table
        if doc.table is None and doc.type != "table":
            lines += key_lines(doc, values)
    for doc in docs:
        if doc.table is not None:
            lines += ["", f"[{doc.key}]", *comment(doc.description)]
            lines += _table(doc.key, doc.table, values, components)
    for doc in docs:  # top-level tables of named entries, e.g. [log]
        if doc.table is None and doc.type == "table":
            lines += ["", f"[{doc.key}]", *comment(doc.description)]
            lines += _named_entries(doc.key, components)
    return "\n".join(lines).rstrip() + "\n"


def _table(prefix: str, model: type[BaseModel], values: Mapping[str, Any], components: Mapping[str, Sequence[Any]]) -> list[str]:
    lines: list[str] = []
    own = {k[len(prefix) + 1:]: v for k, v in values.items() if k.startswith(prefix + ".")}
    sub_tables: list[str] = []
    for doc in describe(model):
        path = f"{prefix}.{doc.key}"
        if doc.type == "table" and (path in components or f"{path}.NAME" in components):
            sub_tables.append(path)
            continue
        lines += ([""] if lines else []) + key_lines(doc, own)
    for path in sub_tables:
        if path in components:
            for component in components[path]:
                lines += options_block(path, component, path)
        else:
            for component in components[f"{path}.NAME"]:
                lines += options_block(f"{path}.{component.name}", component, f"{path}.NAME")
    return lines


def _named_entries(key: str, components: Mapping[str, Sequence[Any]]) -> list[str]:
    """``[log]``: one commented ``name = true`` per installed component, then its commented options table."""
    chosen = components.get(f"{key}.NAME", ())
    lines: list[str] = []
    for component in chosen:
        lines += ["", *comment(f"{component.name}: {component.description}"), f"# {component.name} = true"]
    for component in chosen:
        if describe(component.Options):
            lines += options_block(f"{key}.{component.name}", component, f"{key}.NAME", commented_header=True)
    if not chosen:
        lines.append("# (no installed components for this table)")
    return lines
